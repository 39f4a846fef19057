"""Demo: solvers on closed-form flows (plots), the FireFlow edit workflow through the real ComfyUI server on a tiny
FLUX checkpoint, then a real edit with the same workflow on the toy shapes FLUX (trained on first use, minutes)."""
import argparse
import pathlib
import time


import host_env

ROOT = host_env.ROOT
host_env.expose_core()


def server_edit(out_dir):
    """The README's main job: the 8-step FireFlow edit workflow through the real ComfyUI server on tiny parts."""
    import json
    import shutil
    import tempfile
    import fixtures
    from comfy_server import ComfyServer
    from substitute import substitute, write_test_image
    fixtures.ensure_files()
    api = json.loads((ROOT / "workflows" / "api" / "fireflow_edit.json").read_text())
    ids = {n["class_type"]: nid for nid, n in api.items()}
    with tempfile.TemporaryDirectory() as base, ComfyServer(base) as srv:
        write_test_image(srv.base / "input")
        start = time.perf_counter()
        result = srv.run(substitute(api))
        seconds = time.perf_counter() - start
        if result["status"]["status_str"] != "success":
            raise SystemExit(f"the edit failed: {result['status']}")
        image = result["outputs"][ids["SaveImage"]]["images"][0]
        target = out_dir / "demo_edit.png"
        shutil.copy(srv.base / "output" / image["subfolder"] / image["filename"], target)
    inverted = result["outputs"][ids["FireFlowInverter"]]["text"][0]
    sampled = result["outputs"][ids["FireFlowSampler"]]["text"][0]
    nfe = int(inverted.split(" evaluations")[0].split()[-1]) + int(sampled.split(" evaluations")[0].split()[-1])
    held = inverted.split(": ")[-1].split(" on ")[0]
    return (f"FireFlow edit through the ComfyUI server (tiny FLUX-dev checkpoint, 64x64 image, 8 steps): {nfe} model "
            f"evaluations, {seconds:.1f} s, feature cache {held}; image: {target}")


DEMO_SOURCE, DEMO_TARGET, DEMO_SEED = "a red circle", "a blue circle", 0


def toy_edit(out_dir, source=DEMO_SOURCE, target=DEMO_TARGET, seed=DEMO_SEED):
    """A real edit: the FireFlow edit and reconstruction workflows through the real ComfyUI server on the toy shapes
    FLUX (trained on first use, scripts/toy_model.py), read back by the task's pixel classifier."""
    import json
    import tempfile
    import numpy as np
    import torch
    from PIL import Image
    import toy_model
    import toy_shapes as toy
    from bench import quality
    from comfy_server import ComfyServer
    from make_workflows import SOURCE, TARGET
    from substitute import substitute_toy
    toy_model.ensure(log=lambda line: print(line, flush=True))
    def workflow(name, captions, **kw):
        return substitute_toy(json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text()), captions, seed,
                              **kw)
    runs = {"edit": workflow("fireflow_edit", {SOURCE: source, TARGET: target}, cfg=toy_model.EDIT_CFG),
            "reconstruction": workflow("fireflow_reconstruction", {SOURCE: source}),
            "flowedit": workflow("fireflow_flowedit", {SOURCE: source, TARGET: target}, cfg=toy_model.EDIT_CFG)}
    images, texts, seconds = {}, {}, {}
    with tempfile.TemporaryDirectory() as base, ComfyServer(base) as srv:
        for name, api in runs.items():
            start = time.perf_counter()
            result = srv.run(api)
            seconds[name] = time.perf_counter() - start
            if result["status"]["status_str"] != "success":
                raise SystemExit(f"the toy {name} failed: {result['status']}")
            save = next(nid for nid, n in api.items() if n["class_type"] == "SaveImage")
            info = result["outputs"][save]["images"][0]
            pixels = np.asarray(Image.open(srv.base / "output" / info["subfolder"] / info["filename"]).convert("RGB"))
            images[name] = toy.from_comfy_image(torch.from_numpy(pixels.astype("float32") / 255)[None])[0]
            texts[name] = {api[nid]["class_type"]: out["text"][0] for nid, out in result["outputs"].items()
                           if "text" in out}
    src = toy.scene_of(source, seed)
    tgt = toy.scene_of(target, seed)
    s = quality.score(src, tgt, "colour", images["edit"], images["reconstruction"])
    fe = quality.score(src, tgt, "colour", images["flowedit"], None)
    read, read_fe = toy.classify(images["edit"], tgt.bg), toy.classify(images["flowedit"], tgt.bg)
    row = torch.cat([toy.render(src), images["reconstruction"], images["edit"], images["flowedit"]], dim=2)
    pic = ((row.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    picture = out_dir / "demo_toy_edit.png"
    Image.fromarray(np.ascontiguousarray(pic)).resize((pic.shape[1] * 8, pic.shape[0] * 8), Image.NEAREST).save(picture)
    from bench.quality import _evals
    nfe = {k: sum(_evals(t) for t in texts[k].values() if " evaluations" in t) for k in ("edit", "flowedit")}
    return (f"Toy edit '{source}' -> '{target}' through the ComfyUI server (toy shapes FLUX, FireFlow 8 steps, V "
            f"injection, CFG {toy_model.EDIT_CFG:g}): the classifier reads a {read.colour} {read.shape}; structure kept: "
            f"mask IoU {s['iou']:.2f}, centroid shift {s['centroid_shift']:.2f} px; background PSNR "
            f"{s['background_psnr']:.1f} dB; reconstruction PSNR {s['reconstruction_psnr']:.1f} dB; {nfe['edit']} model "
            f"evaluations, {seconds['edit']:.1f} s.\nThe same edit with FlowEdit (fireflow_flowedit.json, no inversion): "
            f"the classifier reads a {read_fe.colour} {read_fe.shape}; mask IoU {fe['iou']:.2f}; background PSNR "
            f"{fe['background_psnr']:.1f} dB; {nfe['flowedit']} model evaluations, {seconds['flowedit']:.1f} s.\n"
            f"Picture (source | reconstruction | FireFlow edit | FlowEdit): {picture}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "results" / "demo"))
    a = ap.parse_args()
    out_dir = pathlib.Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from bench import analytic
    res = analytic.run(out_dir)
    rt = res["round_trip_gaussian_flux1024_n8"]
    print("Round trip on N(0, 0.5^2) <-> N(0, 1), FLUX 1024^2 grid, 8 steps (max abs error):")
    for s in ("euler", "rf_solver", "fireflow", "rf_solver_3"):
        print(f"  {s:12s} {rt[s]['nfe']:3d} NFE  {rt[s]['max_abs_error']:.3g}")
    print(f"plots: {', '.join(str(p) for p in sorted(out_dir.glob('analytic_*.png')))}")
    print(server_edit(out_dir))
    print(toy_edit(out_dir))


if __name__ == "__main__":
    main()

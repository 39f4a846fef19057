"""Demo: solvers on closed-form flows (plots), then the FireFlow edit workflow through the real ComfyUI server."""
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


if __name__ == "__main__":
    main()

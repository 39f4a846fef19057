"""`python -m bench quality`: the papers' editing tables in miniature, on the toy shapes FLUX (issue 12).

A fixed seeded set of edit pairs (a third each: colour, shape, background change), every method run as one batch
through the pack's own nodes (Inverter, V-Injection Patch, Sampler) on the trained toy model; images are read by the
task's pixel classifier (scripts/toy_shapes.py), never by eye.

Per method: edit success (the classifier reads the target's colour and shape; for background edits also the target
background outside the object), structure (IoU of the edited object's mask with the source's, centroid shift in
pixels), background PSNR outside both objects (colour and shape edits), reconstruction PSNR (the same inversion
sampled back with the source prompt, no injection), model evaluations (inversion + edit) and wall time per pair.
Inversion runs at CFG 1 with the source caption (the papers' setting); the edit at the toy model's edit CFG (2) with
the empty caption as the negative, so an edit costs its inversion's evaluations plus twice the edit's (both CFG
branches).
"""
import random
import time
from dataclasses import dataclass, field
from typing import Optional

import torch

PAIRS, SEED = 120, 0


@dataclass(frozen=True)
class Method:
    solver: str
    steps: int
    inject: int = 1  # editing steps that receive features (0: none recorded)
    single: str = "all"
    double: str = "none"
    features: tuple = ("v",)
    modes: dict = field(default_factory=lambda: {"v": "replace"})
    note: str = ""
    kind: str = "fireflow"  # "fireflow" (invert, edit), "flowedit" (no inversion), "rf_inversion" (controlled passes)
    masked: bool = False  # edit only inside the pair's mask (the area a user would paint: see `masks`)
    region: str = "all"  # V-Injection's inject_region
    n_max: int = 24  # FlowEdit: edited steps of `steps`
    cfgs: tuple = (1.0, 2.0)  # FlowEdit: source and target CFG (the toy edits at CFG 2)
    gamma: float = 0.5  # RF-Inversion: forward control on every step, reverse control eta on the first eta_steps
    eta: float = 0.9
    eta_steps: int = 3


METHODS = {
    "FireFlow 8, V injection": Method("fireflow", 8),
    "FireFlow 8, no injection": Method("fireflow", 8, inject=0),
    "RF-Solver 15, RF-Edit (V, late blocks, 5 steps)": Method("rf_solver", 15, inject=5, single="2-3"),
    "Euler 9 (equal NFE), V injection": Method("euler", 9),
    "Euler 28+28, V injection": Method("euler", 28),
    "FireFlow 8, inject 2 steps": Method("fireflow", 8, inject=2),
    "FireFlow 8, inject 4 steps": Method("fireflow", 8, inject=4),
    "FireFlow 8, V in double + single blocks": Method("fireflow", 8, double="all"),
    "FireFlow 8, add_q": Method("fireflow", 8, features=("q",), modes={"q": "add", "v": "keep"}),
    "FireFlow 8, replace_k": Method("fireflow", 8, features=("k",), modes={"k": "replace", "v": "keep"}),
    "FireFlow 8, V injection, masked": Method("fireflow", 8, masked=True),
    "FireFlow 8, V inside the mask only, masked": Method("fireflow", 8, masked=True, region="inside_mask"),
    "FireFlow 8, V outside the mask only, masked": Method("fireflow", 8, masked=True, region="outside_mask"),
    "FireFlow 8, no injection, masked": Method("fireflow", 8, inject=0, masked=True),
    "FlowEdit (Euler 28, n_max 24)": Method("euler", 28, inject=0, kind="flowedit"),
    "FlowEdit (FireFlow 28, n_max 24)": Method("fireflow", 28, inject=0, kind="flowedit"),
    "FlowEdit (Euler 28, n_max 24), masked": Method("euler", 28, inject=0, kind="flowedit", masked=True),
    "RF-Inversion (FireFlow 8, gamma 0.5, eta 0.9 on 3 steps)": Method("fireflow", 8, inject=0, kind="rf_inversion"),
    "RF-Inversion (FireFlow 8, gamma 0.3, eta 0.5 on 2 steps)": Method("fireflow", 8, inject=0, kind="rf_inversion",
                                                                       gamma=0.3, eta=0.5, eta_steps=2),
    "RF-Inversion (Euler 28, gamma 0.5, eta 0.9 on 10 steps)": Method("euler", 28, inject=0, kind="rf_inversion",
                                                                      eta_steps=10),
    "RF-Inversion (FireFlow 28, gamma 0.5, eta 0.9 on 10 steps)": Method("fireflow", 28, inject=0,
                                                                         kind="rf_inversion", eta_steps=10),
}
MASK_MARGIN = 2  # pixels around the objects a painted mask covers


def edit_pairs(n=PAIRS, seed=SEED):
    import toy_shapes as toy
    rng = random.Random(seed)
    kinds = ("colour", "shape", "background")
    out = []
    for i in range(n):
        s = toy.sample(rng)
        out.append((s, toy.edit_of(s, kinds[i % 3], rng), kinds[i % 3]))
    return out


def _node(name):
    import nodes as comfy_nodes
    return comfy_nodes.NODE_CLASS_MAPPINGS[name]()


def _cond(captions):
    import toy_shapes as toy
    tokens, pooled = toy.encode_text(captions)
    return [[tokens, {"pooled_output": pooled, "guidance": 1.0}]]


def _evals(summary):
    """Model evaluations in a node summary, both CFG branches counted ("9 evaluations x 2 CFG branches": 18;
    FlowEdit: "48 evaluations (72 with both CFG branches ...)": 72)."""
    n = int(summary.split(" evaluations")[0].split()[-1])
    if " with both CFG branches" in summary:
        return int(summary.split(" with both CFG branches")[0].split("(")[-1])
    return 2 * n if " evaluations x 2 CFG branches" in summary else n


def _grow(mask, px):
    return torch.nn.functional.max_pool2d(mask.float()[None, None], 2 * px + 1, stride=1, padding=px)[0, 0] > 0


def masks(sources, targets, kinds):
    """The area a user would paint, [B, H, W]: both objects and MASK_MARGIN pixels around them for colour and shape
    edits, everything but the source object for background edits."""
    import toy_shapes as toy
    out = []
    for s, t, k in zip(sources, targets, kinds):
        m = ~toy.object_mask(s) if k == "background" else _grow(toy.object_mask(s) | toy.object_mask(t), MASK_MARGIN)
        out.append(m.float())
    return torch.stack(out)


def run_method(model, m: Method, sources, targets, kinds=None):
    """(edited images, reconstructed images or None, NFE per pair, seconds per pair) for one method on the batch."""
    import toy_model
    import toy_shapes as toy
    imgs = torch.stack([toy.render(s) for s in sources])
    lat = {"samples": toy_model.from_model_space(toy.to_latent(imgs))}
    src, tgt = _cond([toy.caption(s) for s in sources]), _cond([toy.caption(t) for t in targets])
    negative = _cond([""] * len(targets))
    mask = masks(sources, targets, kinds) if m.masked else None
    dec = lambda x: toy.from_latent(toy_model.to_model_space(x["result"][0]["samples"]))  # noqa: E731
    start = time.perf_counter()
    if m.kind == "flowedit":
        with torch.inference_mode():
            r = _node("FireFlowFlowEdit").edit(model, src, tgt, lat, m.steps, m.n_max, 0, 1, m.solver, 0, 1.0, 1.0,
                                               negative=negative, source_cfg=m.cfgs[0], target_cfg=m.cfgs[1],
                                               mask=mask, mask_feather=0)
        return dec(r), None, _evals(r["ui"]["text"][0]), (time.perf_counter() - start) / len(sources)
    spec = forward = reverse = None
    if m.inject:
        f = set(m.features)
        spec = _node("FireFlowFeatureCache").make("v" in f, "q" in f, "k" in f, m.single, m.double, m.inject,
                                                  "reference", "auto", "auto", "model", max_cache_gb=64.0)[0]
    inv_cond = src
    if m.kind == "rf_inversion":  # the paper inverts with the empty prompt
        inv_cond = _cond([""] * len(sources))
        forward = _node("FireFlowForwardControl").make(m.gamma, 0, -1, 0)[0]
        reverse = _node("FireFlowReverseControl").make(m.eta, 0, m.eta_steps, "constant")[0]
    with torch.inference_mode():
        out = _node("FireFlowInverter").invert(model, inv_cond, lat, m.steps, m.solver, 1.0, feature_cache=spec,
                                               control=forward)
        inv, rec = out["result"]
        nfe = _evals(out["ui"]["text"][0])
        edit_model = model
        if m.inject:
            modes = {"v": "keep", "q": "keep", "k": "keep", **m.modes}
            edit_model = _node("FireFlowVInjection").patch(model, rec, -1, modes["v"], modes["q"], modes["k"],
                                                           1.0, 1.0, 1.0, inject_region=m.region)["result"][0]
        r = _node("FireFlowSampler").sample(edit_model, tgt, inv, 2.0, inversion=rec, cfg=toy_model.EDIT_CFG,
                                            negative=negative, mask=mask, mask_feather=0, control=reverse)
        nfe += _evals(r["ui"]["text"][0])
        seconds = time.perf_counter() - start
        back = _node("FireFlowSampler").sample(model, inv_cond, inv, 1.0, inversion=rec)
    return dec(r), dec(back), nfe, seconds / len(sources)


def _psnr(a, b, mask=None):
    d = (a - b) ** 2
    if mask is not None:
        d = d[:, mask]
    mse = float(d.mean()) if d.numel() else 0.0
    return 99.0 if mse == 0 else 10 * torch.log10(torch.tensor(4.0 / mse)).item()  # peak-to-peak 2 in [-1, 1]


def score(source, target, kind, edited, recon, mask=None):
    """Scores of one edit pair (images [3, H, W] in [-1, 1]); with a mask also the largest error in the kept area
    (pixels two or more from the mask: a latent pixel covers 2 x 2 pixels, and the mask is resized to the latent
    bilinearly)."""
    import toy_shapes as toy
    src_img = toy.render(source)
    src_mask = toy.object_mask(source)
    read = toy.classify(edited, target.bg)
    ok = read.colour == target.colour and read.shape == target.shape
    if kind == "background":
        want = toy.render(target)
        outside = ~(src_mask | read.mask)
        ok = ok and float((edited - want)[:, outside].abs().mean()) < 0.25
    cs, ce = toy.centroid(src_mask), toy.centroid(read.mask)
    keep = ~(src_mask | read.mask)
    return {"success": ok, "iou": toy.iou(src_mask, read.mask),
            "centroid_shift": float(((cs[0] - ce[0]) ** 2 + (cs[1] - ce[1]) ** 2) ** 0.5) if read.mask.any() else None,
            "background_psnr": _psnr(edited, src_img, keep) if kind != "background" else None,
            "reconstruction_psnr": _psnr(recon, src_img) if recon is not None else None,
            "kept_max_error": _max_abs((edited - src_img)[:, ~_grow(mask > 0, 2)]) if mask is not None else None}


def _max_abs(d):
    return float(d.abs().max()) if d.numel() else None


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def run(out_dir, n=PAIRS, methods=None, grid_pairs=6):
    import toy_model
    model = toy_model.load()
    pairs = edit_pairs(n)
    sources, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    gate = toy_model.gate(model)
    results, images = {}, {}
    for name, m in (methods or METHODS).items():
        kinds = [p[2] for p in pairs]
        edited, recon, nfe, sec = run_method(model, m, sources, targets, kinds)
        pair_masks = masks(sources, targets, kinds) if m.masked else [None] * len(pairs)
        rows = [score(s, t, k, e, r, mk) for (s, t, k), e, r, mk in
                zip(pairs, edited, recon if recon is not None else [None] * len(pairs), pair_masks)]
        by_kind = {k: [r for r, (_, _, kk) in zip(rows, pairs) if kk == k] for k in ("colour", "shape", "background")}
        results[name] = {
            "solver": m.solver, "steps": m.steps, "inject_steps": m.inject, "nfe": nfe, "seconds_per_pair": sec,
            "kind": m.kind, "masked": m.masked, "inject_region": m.region,
            "success": _mean([r["success"] for r in rows]),
            "success_by_kind": {k: _mean([r["success"] for r in v]) for k, v in by_kind.items()},
            "iou": _mean([r["iou"] for r in rows]),
            "iou_colour_edits": _mean([r["iou"] for r in by_kind["colour"]]),
            "centroid_shift_px": _mean([r["centroid_shift"] for r in rows]),
            "background_psnr": _mean([r["background_psnr"] for r in rows]),
            "reconstruction_psnr": _mean([r["reconstruction_psnr"] for r in rows]),
            "kept_max_error": max((r["kept_max_error"] for r in rows if r["kept_max_error"] is not None),
                                  default=None),
            "per_pair": rows}
        images[name] = edited[:grid_pairs]
    doc = {"pairs": n, "seed": SEED, "kinds": "colour, shape, background (a third each)", "gate": gate,
           "model": {"config": toy_model.CONFIG, "train_steps": toy_model.STEPS}, "methods": results}
    _grid(out_dir, sources[:grid_pairs], targets[:grid_pairs], images)
    _plot(out_dir, results)
    return doc


def _grid(out_dir, sources, targets, images, scale=4):
    """docs-ready image grid: one row per pair, columns source | each method."""
    import numpy as np
    from PIL import Image
    import toy_shapes as toy
    cols = [torch.stack([toy.render(s) for s in sources])] + list(images.values())
    rows = []
    for i in range(len(sources)):
        row = torch.cat([c[i] for c in cols], dim=2)
        rows.append(torch.nn.functional.pad(row, (0, 0, 0, 2), value=1.0))
    grid = ((torch.cat(rows, dim=1).clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(grid)).resize((grid.shape[1] * scale, grid.shape[0] * scale),
                                                       Image.NEAREST).save(out_dir / "quality_grid.png")
    (out_dir / "quality_grid.txt").write_text("columns: source, " + ", ".join(images) + "\nrows (target captions): "
                                              + "; ".join(toy.caption(t) for t in targets) + "\n")


def _plot(out_dir, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, r in results.items():
        ax.scatter(r["iou_colour_edits"], r["success"], s=20 + r["nfe"])
        ax.annotate(name, (r["iou_colour_edits"], r["success"]), fontsize=6)
    ax.set_xlabel("structure kept: mask IoU, colour edits")
    ax.set_ylabel("edit success")
    ax.set_title("toy shapes FLUX: editability vs structure (marker size ~ NFE)")
    fig.tight_layout()
    fig.savefig(out_dir / "quality_tradeoff.png", dpi=120)
    plt.close(fig)


def render(doc):
    """README lines: the method table, and which of the papers' claims this toy reproduces (computed, not written)."""
    m = doc["methods"]
    g = doc["gate"]
    lines = [f"{doc['pairs']} seeded edit pairs ({doc['kinds']}) on the toy shapes FLUX (gate: {g['both'] * 100:.0f} % "
             f"of {g['n']} seeded captions generated with the right colour and shape). Success: the classifier reads "
             "the target; IoU: the edited object's mask vs the source's (colour edits, where the shape should stay); "
             "background PSNR outside both objects (colour and shape edits); reconstruction: the same inversion "
             "sampled back with the prompt it was inverted with (RF-Inversion: the empty prompt, without the reverse "
             "control). Masked rows edit inside the area a user would paint (both objects and 2 pixels around them; for "
             "background edits everything but the object).", "",
             "| method | NFE | success (colour / shape / background) | IoU, colour edits | centroid shift px | "
             "background PSNR dB | reconstruction PSNR dB | ms per pair |", "|---|---|---|---|---|---|---|---|"]
    for name, r in m.items():
        k = r["success_by_kind"]
        recon = "-" if r["reconstruction_psnr"] is None else f"{r['reconstruction_psnr']:.1f}"
        lines.append(f"| {name} | {r['nfe']} | {r['success']:.2f} ({k['colour']:.2f} / {k['shape']:.2f} / "
                     f"{k['background']:.2f}) | {r['iou_colour_edits']:.2f} | {r['centroid_shift_px']:.2f} | "
                     f"{r['background_psnr']:.1f} | {recon} | {r['seconds_per_pair'] * 1000:.0f} |")
    ff, none = m["FireFlow 8, V injection"], m["FireFlow 8, no injection"]
    eu9, eu28, rf = m["Euler 9 (equal NFE), V injection"], m["Euler 28+28, V injection"], \
        m["RF-Solver 15, RF-Edit (V, late blocks, 5 steps)"]

    def verdict(ok):
        return "reproduced" if ok else "not reproduced"
    lines += ["", "Claims, checked on these numbers:", "",
              f"- V injection keeps the source's background (FireFlow): {ff['background_psnr']:.1f} dB with vs "
              f"{none['background_psnr']:.1f} dB without: {verdict(ff['background_psnr'] > none['background_psnr'])}.",
              f"- V injection keeps the edited object's shape and place (FireFlow): mask IoU {ff['iou_colour_edits']:.2f}"
              f" with vs {none['iou_colour_edits']:.2f} without: "
              f"{verdict(ff['iou_colour_edits'] > none['iou_colour_edits'])}.",
              f"- FireFlow at {ff['nfe']} evaluations edits as well as Euler at {eu28['nfe']}: success "
              f"{ff['success']:.2f} vs {eu28['success']:.2f}, IoU {ff['iou_colour_edits']:.2f} vs "
              f"{eu28['iou_colour_edits']:.2f}, reconstruction {ff['reconstruction_psnr']:.1f} vs "
              f"{eu28['reconstruction_psnr']:.1f} dB: "
              f"{verdict(ff['success'] >= eu28['success'] - 0.05 and ff['iou_colour_edits'] >= eu28['iou_colour_edits'] - 0.05)}.",
              f"- At equal NFE FireFlow reconstructs better than Euler: {ff['reconstruction_psnr']:.1f} vs "
              f"{eu9['reconstruction_psnr']:.1f} dB: {verdict(ff['reconstruction_psnr'] > eu9['reconstruction_psnr'])}.",
              f"- FireFlow matches RF-Edit (RF-Solver, {rf['nfe']} evaluations) at fewer evaluations: success "
              f"{ff['success']:.2f} vs {rf['success']:.2f}, IoU {ff['iou_colour_edits']:.2f} vs "
              f"{rf['iou_colour_edits']:.2f}: "
              f"{verdict(ff['success'] >= rf['success'] - 0.05 and ff['iou_colour_edits'] >= rf['iou_colour_edits'] - 0.05)}."]
    return lines + _method_claims(m, verdict)


def _method_claims(m, verdict):
    """The issue 14 methods' claims, where their rows were run."""
    get = m.get
    masked, fe, rfi = get("FireFlow 8, V injection, masked"), get("FlowEdit (Euler 28, n_max 24)"), \
        get("RF-Inversion (FireFlow 8, gamma 0.5, eta 0.9 on 3 steps)")
    lines = []
    kept = [r["kept_max_error"] for r in m.values() if r.get("kept_max_error") is not None]
    if kept:
        lines.append(f"- A masked edit returns the source outside the mask: largest pixel error there "
                     f"{max(kept):.1g} over every masked row: {verdict(max(kept) < 1e-3)}.")
    plain, ff = get("FireFlow 8, no injection, masked"), get("FireFlow 8, V injection")
    if plain and masked:
        lines.append(f"- Masked edits, with and without V injection (measured, no claim to check): success "
                     f"{masked['success']:.2f} / {plain['success']:.2f}, IoU {masked['iou_colour_edits']:.2f} / "
                     f"{plain['iou_colour_edits']:.2f}, background {masked['background_psnr']:.1f} / "
                     f"{plain['background_psnr']:.1f} dB (the background here includes the mask's margin).")
    inside, outside = get("FireFlow 8, V inside the mask only, masked"), get("FireFlow 8, V outside the mask only, masked")
    if masked and inside and outside:
        lines.append(f"- inject_region (measured, no claim to check): all tokens {masked['success']:.2f} success / "
                     f"{masked['background_psnr']:.1f} dB, inside the mask only {inside['success']:.2f} / "
                     f"{inside['background_psnr']:.1f} dB, outside only {outside['success']:.2f} / "
                     f"{outside['background_psnr']:.1f} dB.")
    if fe and ff:
        lines.append(f"- FlowEdit edits without inversion at least as well as FireFlow with V injection (Kulikov et al. "
                     f"against inversion-based editing): success {fe['success']:.2f} vs {ff['success']:.2f}, background "
                     f"{fe['background_psnr']:.1f} vs {ff['background_psnr']:.1f} dB, at {fe['nfe']} against "
                     f"{ff['nfe']} evaluations: {verdict(fe['success'] >= ff['success'] - 0.05)}.")
    loose = get("RF-Inversion (FireFlow 8, gamma 0.3, eta 0.5 on 2 steps)")
    if rfi and loose:
        lines.append(f"- RF-Inversion's controllers trade editability for faithfulness (Rout et al.): gamma 0.5 / eta 0.9 "
                     f"succeeds {rfi['success']:.2f} and keeps {rfi['background_psnr']:.1f} dB, gamma 0.3 / eta 0.5 "
                     f"{loose['success']:.2f} and {loose['background_psnr']:.1f} dB: "
                     f"{verdict(rfi['background_psnr'] > loose['background_psnr'] and rfi['success'] < loose['success'])}.")
    eu, f28 = get("RF-Inversion (Euler 28, gamma 0.5, eta 0.9 on 10 steps)"), \
        get("RF-Inversion (FireFlow 28, gamma 0.5, eta 0.9 on 10 steps)")
    if rfi and eu and f28:
        lines.append(f"- FireFlow's velocity reuse costs RF-Inversion nothing measurable here: FireFlow 28 / Euler 28 / "
                     f"FireFlow 8 succeed {f28['success']:.2f} / {eu['success']:.2f} / {rfi['success']:.2f} with "
                     f"{f28['background_psnr']:.1f} / {eu['background_psnr']:.1f} / {rfi['background_psnr']:.1f} dB at "
                     f"{f28['nfe']} / {eu['nfe']} / {rfi['nfe']} evaluations.")
    return lines

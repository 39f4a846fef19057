"""Demo: solvers on closed-form flows (plots), then the FireFlow edit workflow through the real ComfyUI server."""
import argparse
import pathlib
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def trajectories(out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from fireflow.fields import ring_mixture
    from fireflow.schedules import linear_grid
    from fireflow.solvers import get_solver, integrate
    field = ring_mixture()
    x1 = field.sample(400, 1.0, torch.Generator().manual_seed(0))
    target = field.sample(2000, 0.0, torch.Generator().manual_seed(1))
    budget = {"euler": 9, "fireflow": 8, "midpoint": 4}  # 9, 9 and 8 evaluations
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
    for ax, (solver, n) in zip(axes, budget.items()):
        path = [x1]
        integrate(field, x1, linear_grid(n), solver, callback=lambda i, x, d: path.append(x))
        ax.scatter(*target.T, s=2, c="lightgray", label="target")
        for k in range(0, 400, 8):
            ax.plot([p[k, 0] for p in path], [p[k, 1] for p in path], lw=0.5, c="tab:blue", alpha=0.5)
        ax.scatter(*path[-1].T, s=3, c="tab:red", label="samples")
        ax.set_title(f"{solver}: {n} steps, {get_solver(solver).nfe(n)} NFE")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "demo_trajectories.png", dpi=110)
    plt.close(fig)


def server_edit(out_dir):
    """The README's main job: the 8-step FireFlow edit workflow through the real ComfyUI server on tiny parts."""
    import json
    import shutil
    import tempfile
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import fixtures
    from server import ComfyServer
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
    trajectories(out_dir)
    rt = res["round_trip_gaussian_flux1024_n8"]
    print("Round trip on N(0, 0.5^2) <-> N(0, 1), FLUX 1024^2 grid, 8 steps (max abs error):")
    for s in ("euler", "rf_solver", "fireflow", "rf_solver_3"):
        print(f"  {s:12s} {rt[s]['nfe']:3d} NFE  {rt[s]['max_abs_error']:.3g}")
    print(f"plots: {out_dir}/demo_trajectories.png, {out_dir}/analytic_error_vs_nfe.png")
    print(server_edit(out_dir))


if __name__ == "__main__":
    main()

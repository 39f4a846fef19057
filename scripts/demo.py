"""Demo: FireFlow vs Euler/RF-Solver on closed-form flows (plots), then a round trip through the real ComfyUI."""
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


def host_round_trip():
    sys.path.insert(0, str(ROOT / "scripts"))
    sys.path.insert(0, str(ROOT / "tests" / "host"))
    import hostlib  # boots ComfyUI and loads the pack through its custom-node loader
    import fixtures
    import nodes as comfy_nodes
    inverter = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowInverter"]()
    sampler = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowSampler"]()
    model = fixtures.tiny_flux(0)
    lat, cond = hostlib.latent(0, size=32), hostlib.conditioning(0)
    counted, calls = hostlib.counting_clone(model)
    start = time.perf_counter()
    with torch.inference_mode():
        inv, rec = inverter.invert(counted, cond, lat, 8, "fireflow", 1.0)["result"]
        back = sampler.sample(counted, cond, inv, 1.0, inversion=rec)["result"][0]["samples"]
    seconds = time.perf_counter() - start
    err = (back - lat["samples"]).pow(2).mean().sqrt().item()
    return f"FireFlow round trip in ComfyUI (tiny FLUX, 8 steps): {len(calls)} NFE, {seconds:.2f} s, RMS error {err:.3g}"


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
    print(host_round_trip())
    print(f"plots: {out_dir}/demo_trajectories.png, {out_dir}/analytic_error_vs_nfe.png")


if __name__ == "__main__":
    main()

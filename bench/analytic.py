"""Solver accuracy on closed-form fields: NFE per pass, observed orders, round trips at N = 8 (ALGORITHM.md 7)."""
import math

import torch

from fireflow.fields import GaussianFlow, reference_gaussian, ring_mixture
from fireflow.schedules import flux_grid, inversion_grid, linear_grid
from fireflow.solvers import SOLVER_NAMES, get_solver, integrate

ORDER_STEPS = (16, 32, 64, 128)


def round_trip(field, x0, grid, solver):
    inv = integrate(field, x0, inversion_grid(grid), solver)
    rec = integrate(field, inv.x, grid, solver)
    return (rec.x - x0).abs().max().item(), inv.nfe + rec.nfe


def fitted_slope(ns, errs):
    """Least-squares slope of log(err) against log(1/N): the observed order."""
    xs = [math.log(1 / n) for n in ns]
    ys = [math.log(e) for e in errs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def orders():
    """Observed orders on the 2-D mixture, reference-free: d_N = max |x_N - x_2N| (Richardson), which falls like N^-p
    for a p-th order solver; no solver under test serves as the reference."""
    field = ring_mixture()
    x1 = field.sample(256, 1.0, torch.Generator().manual_seed(1))
    out = {}
    for s in SOLVER_NAMES:
        xs = {n: integrate(field, x1, linear_grid(n), s).x for n in ORDER_STEPS + (2 * ORDER_STEPS[-1],)}
        diffs = [(xs[n] - xs[2 * n]).abs().max().item() for n in ORDER_STEPS]
        out[s] = {"steps": list(ORDER_STEPS), "nfe": [get_solver(s).nfe(n) for n in ORDER_STEPS],
                  "max_abs_diff_n_vs_2n": diffs, "order_last_pair": math.log2(diffs[-2] / diffs[-1]),
                  "order_fitted": fitted_slope(ORDER_STEPS, diffs)}
    return out


def round_trips_flux_1024(steps=8):
    field = reference_gaussian()
    x0 = field.sample((4096,), 0.0, torch.Generator().manual_seed(0))
    grid = flux_grid(steps, 4096)
    out = {}
    for s in SOLVER_NAMES:
        err, nfe = round_trip(field, x0, grid, s)
        out[s] = {"steps": steps, "nfe": nfe, "max_abs_error": err}
    # equal budget: FireFlow N = 8 (18 NFE) against Euler N = 9 (18 NFE) and midpoint N = 4 (16 NFE) / 5 (20 NFE)
    ff = out["fireflow"]["max_abs_error"]
    euler18, _ = round_trip(field, x0, flux_grid(9, 4096), "euler")
    mid20, _ = round_trip(field, x0, flux_grid(5, 4096), "midpoint")
    out["equal_nfe"] = {"fireflow_18": ff, "euler_18": euler18, "midpoint_20": mid20,
                        "euler_over_fireflow": euler18 / ff, "midpoint20_over_fireflow18": mid20 / ff}
    return out


PUBLISHED_ROUND_TRIP_N8 = {"euler": 0.95, "rf_solver": 1.0e-2, "fireflow": 3.6e-2}  # ALGORITHM.md section 7


def round_trips_published_setup(steps=8):
    """The published example's figures are reproduced (to their two printed digits) by sigma0/sigma1 = 1.5 at
    |x0 - mu0| = 3; ALGORITHM.md does not state its setup, so this is an inference (tests/unit/test_solvers.py)."""
    field = GaussianFlow(0.0, 1.5, 0.0, 1.0)
    x0 = torch.tensor([3.0, -3.0], dtype=torch.float64)
    out = {"field": "N(0, 1.5^2) -> N(0, 1), x0 = +-3", "published": PUBLISHED_ROUND_TRIP_N8}
    for s in SOLVER_NAMES:
        err, nfe = round_trip(field, x0, flux_grid(steps, 4096), s)
        out[s] = {"steps": steps, "nfe": nfe, "max_abs_error": err}
    return out


EQUAL_BUDGET = {"euler": 10, "fireflow": 9, "midpoint": 5, "rf_solver": 5, "rf_solver_3": 5}  # 10 NFE each


def energy_distance(x, y):
    """Energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between two sample sets [n, D] (0 iff equal in law)."""
    return (2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()).item()


def equal_nfe_transport(n=2000):
    """Noise -> data on the 2-D mixture with 10 evaluations per solver: energy distance to the true data law."""
    field = ring_mixture()
    x1 = field.sample(n, 1.0, torch.Generator().manual_seed(10))
    target = field.sample(n, 0.0, torch.Generator().manual_seed(11))
    exact = integrate(field, x1, linear_grid(2048), "rf_solver_3").x
    out = {"reference_fine_solve": energy_distance(exact, target)}
    paths = {}
    for s, steps in EQUAL_BUDGET.items():
        path = [x1]
        res = integrate(field, x1, linear_grid(steps), s, callback=lambda i, x, d, path=path: path.append(x))
        out[s] = {"steps": steps, "nfe": res.nfe, "energy_distance": energy_distance(res.x, target),
                  "max_abs_error_vs_fine_solve": (res.x - exact).abs().max().item()}
        paths[s] = torch.stack(path)
    return out, paths, target


def round_trip_vs_nfe():
    """Invert then reconstruct on the mixture (FLUX 1024^2 grid) for several N: error against evaluations."""
    field = ring_mixture()
    x0 = field.sample(512, 0.0, torch.Generator().manual_seed(2))
    out = {}
    for s in SOLVER_NAMES:
        rows = [round_trip(field, x0, flux_grid(n, 4096), s) for n in (4, 8, 16, 32, 64)]
        nfe, err = [r[1] for r in rows], [r[0] for r in rows]
        out[s] = {"nfe": nfe, "max_abs_error": err, "slope_vs_nfe": fitted_slope(nfe, err)}
    return out


def nfe_per_pass(n=8):
    return {s: {"per_pass": get_solver(s).nfe(n), "inversion_plus_edit": 2 * get_solver(s).nfe(n)}
            for s in SOLVER_NAMES}


def run(plots_dir=None):
    transport, paths, target = equal_nfe_transport()
    result = {"nfe_per_pass_n8": nfe_per_pass(), "orders_ring_mixture": orders(),
              "round_trip_gaussian_flux1024_n8": round_trips_flux_1024(),
              "round_trip_published_setup_n8": round_trips_published_setup(),
              "equal_nfe_transport_10": transport, "round_trip_vs_nfe_mixture": round_trip_vs_nfe()}
    if plots_dir is not None:
        plot(result, plots_dir)
        plot_trajectories(transport, paths, target, plots_dir)
    return result


def plot_trajectories(transport, paths, target, plots_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(paths), figsize=(4 * len(paths), 4), sharex=True, sharey=True)
    for ax, (s, path) in zip(axes, paths.items()):
        ax.scatter(*target[:800].T, s=2, c="lightgray")
        for k in range(0, 400, 8):
            ax.plot(path[:, k, 0], path[:, k, 1], lw=0.5, c="tab:blue", alpha=0.5)
        ax.scatter(*path[-1, :800].T, s=2, c="tab:red")
        r = transport[s]
        ax.set_title(f"{s}: {r['steps']} steps, {r['nfe']} NFE\nenergy distance {r['energy_distance']:.4f}", fontsize=9)
    fig.suptitle("Noise -> 2-D Gaussian mixture at 10 evaluations (gray: target, red: samples)", fontsize=10)
    fig.tight_layout()
    fig.savefig(plots_dir / "analytic_trajectories_equal_nfe.png", dpi=100)
    plt.close(fig)


def plot(result, plots_dir):
    from .plots import loglog
    loglog({f"{s} (slope {r['slope_vs_nfe']:.2f})": (r["nfe"], r["max_abs_error"])
            for s, r in result["round_trip_vs_nfe_mixture"].items()},
           "model evaluations, inversion + reconstruction", "round-trip max abs error",
           "Round trip on the 2-D mixture, FLUX 1024² grid", plots_dir / "analytic_round_trip_vs_nfe.png")
    loglog({f"{s} (slope {r['order_fitted']:.2f})": (r["nfe"], r["max_abs_diff_n_vs_2n"])
            for s, r in result["orders_ring_mixture"].items()},
           "model evaluations per pass (NFE)", "max |x_N - x_2N| (Richardson error estimate)",
           "Denoising pass on a 2-D Gaussian-mixture flow", plots_dir / "analytic_error_vs_nfe.png")

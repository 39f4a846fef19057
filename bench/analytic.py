"""Solver accuracy on closed-form fields: NFE per pass, observed orders, round trips at N = 8 (ALGORITHM.md 7)."""
import math

import torch

from fireflow.fields import reference_gaussian, ring_mixture
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
    field = ring_mixture()
    x1 = field.sample(256, 1.0, torch.Generator().manual_seed(1))
    ref = integrate(field, x1, linear_grid(4096), "rf_solver_3").x
    out = {}
    for s in SOLVER_NAMES:
        errs = [(integrate(field, x1, linear_grid(n), s).x - ref).abs().max().item() for n in ORDER_STEPS]
        out[s] = {"steps": list(ORDER_STEPS), "nfe": [get_solver(s).nfe(n) for n in ORDER_STEPS],
                  "max_abs_error": errs, "order_last_pair": math.log2(errs[-2] / errs[-1]),
                  "order_fitted": fitted_slope(ORDER_STEPS, errs)}
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


def nfe_per_pass(n=8):
    return {s: {"per_pass": get_solver(s).nfe(n), "inversion_plus_edit": 2 * get_solver(s).nfe(n)}
            for s in SOLVER_NAMES}


def run(plots_dir=None):
    result = {"nfe_per_pass_n8": nfe_per_pass(), "orders_ring_mixture": orders(),
              "round_trip_gaussian_flux1024_n8": round_trips_flux_1024(),
              "reference_round_trip_n8": {"euler": 0.95, "rf_solver": 1.0e-2, "fireflow": 3.6e-2}}
    if plots_dir is not None:
        plot(result, plots_dir)
    return result


def plot(result, plots_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for s, r in result["orders_ring_mixture"].items():
        ax.loglog(r["nfe"], r["max_abs_error"], "o-", label=f"{s} (slope {r['order_fitted']:.2f})")
    ax.set_xlabel("model evaluations per pass (NFE)")
    ax.set_ylabel("max abs error vs reference")
    ax.set_title("Denoising pass on a 2-D Gaussian-mixture flow")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(plots_dir / "analytic_error_vs_nfe.png", dpi=120)
    plt.close(fig)

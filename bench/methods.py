"""`python -m bench methods`: what each editing method costs (model evaluations, memory held between its passes, at
FLUX.1-dev 1024^2 geometry) and what FireFlow's velocity reuse costs RF-Inversion's controlled ODEs in accuracy
(closed-form 2-D mixture against a 512-step midpoint reference, every solver at the same steps).
"""
import math

import torch

from fireflow.control import Controller, strengths
from fireflow.fields import ring_mixture
from fireflow.flowedit import nfe as flowedit_nfe
from fireflow.schedules import flux_grid, inversion_grid
from fireflow.solvers import MID, get_solver, integrate

from .editing import FLUX_DEV, SETTINGS

LATENT_1024 = (1, 16, 128, 128)  # FLUX.1's latent of a 1024^2 image
SOLVERS = ("euler", "fireflow", "midpoint")
STEPS = (8, 16, 32)
REFERENCE_STEPS = 512
ETA_WINDOW = 3 / 8  # the reverse control acts on the first 3/8 of the steps (3 of 8, about the paper's 10 of 28)


def _controlled(direction, solver, steps, x, target, field):
    grid = flux_grid(steps, 4096)
    if direction == "forward":
        hook = Controller("forward", target, strengths(0.5, 0, -1, steps))
        return integrate(field, x, inversion_grid(grid), solver, hooks=[hook]).x
    hook = Controller("reverse", target, strengths(0.9, 0, round(ETA_WINDOW * steps), steps))
    return integrate(field, x, grid, solver, hooks=[hook]).x


def rf_accuracy():
    """Max error of RF-Inversion's forward (gamma 0.5 on every step) and reverse (eta 0.9 on the first 3/8) passes on
    the FLUX 1024^2 grid, per solver and step count, against a fine midpoint solve of the same controlled ODE."""
    field = ring_mixture()
    g = torch.Generator().manual_seed(5)
    x0 = field.sample(512, 0.0, g)
    noise = torch.randn(512, 2, generator=g, dtype=torch.float64)
    out = {}
    for direction, start, target in (("forward", x0, noise), ("reverse", noise, x0)):
        ref = _controlled(direction, "midpoint", REFERENCE_STEPS, start, target, field)
        out[direction] = {}
        for s in SOLVERS:
            e = [(_controlled(direction, s, n, start, target, field) - ref).abs().max().item() for n in STEPS]
            out[direction][s] = {"steps": list(STEPS), "nfe": [get_solver(s).nfe(n) for n in STEPS],
                                 "max_abs_error": e, "order": math.log2(e[-2] / e[-1])}
    return out


def _at(entry, steps):
    """(nfe, error) of a solver's entry at `steps`."""
    i = entry["steps"].index(steps)
    return entry["nfe"][i], entry["max_abs_error"][i]


def costs():
    """Evaluations per edit and memory held between the passes (FLUX.1-dev 1024^2, batch 1, bf16 features)."""
    latent = math.prod(LATENT_1024) * 4  # one fp32 latent
    L = LATENT_1024[2] * LATENT_1024[3] // 4

    def features(spec, solver, steps):
        plan = spec.resolve((FLUX_DEV["double"], FLUX_DEV["single"]), steps, solver)
        return plan.estimate_bytes(1, FLUX_DEV["heads"], FLUX_DEV["head_dim"], FLUX_DEV["text_tokens"], L,
                                   torch.bfloat16)

    def trajectory(solver, steps):  # every grid state, and the midpoints where the solver evaluates them
        return (steps + 1 + steps * (MID in get_solver(solver).calls)) * latent
    spec, solver, steps = SETTINGS["fireflow_default"]
    rf_spec, rf_solver, rf_steps = SETTINGS["rf_edit"]
    ff_nfe = 2 * get_solver("fireflow").nfe(8)
    return {
        "FireFlow edit (8 steps, V injection)": {
            "nfe": ff_nfe, "feature_bytes": features(spec, solver, steps), "trajectory_bytes": trajectory(solver, 8)},
        "FireFlow masked edit (8 steps, V injection, a mask)": {
            "nfe": ff_nfe, "feature_bytes": features(spec, solver, steps), "trajectory_bytes": trajectory(solver, 8)},
        "RF-Edit (RF-Solver 15, V in blocks 20-37, 5 steps)": {
            "nfe": 2 * get_solver(rf_solver).nfe(rf_steps), "feature_bytes": features(rf_spec, rf_solver, rf_steps),
            "trajectory_bytes": trajectory(rf_solver, rf_steps)},
        "RF-Inversion (FireFlow 8, gamma 0.5, eta 0.9 on 3 steps)": {
            "nfe": ff_nfe, "feature_bytes": 0, "trajectory_bytes": trajectory("fireflow", 8)},
        "RF-Inversion (Euler 28, as the paper)": {
            "nfe": 2 * 28, "feature_bytes": 0, "trajectory_bytes": trajectory("euler", 28)},
        "FlowEdit (Euler, 24 of 28 steps, as the paper)": {
            "nfe": flowedit_nfe(28, 24, 0, 1, "euler"), "feature_bytes": 0, "trajectory_bytes": 0},
        "FlowEdit (FireFlow, 24 of 28 steps)": {
            "nfe": flowedit_nfe(28, 24, 0, 1, "fireflow"), "feature_bytes": 0, "trajectory_bytes": 0},
        "_notes": {"latent_bytes": latent},
    }


def run():
    return {"rf_accuracy": rf_accuracy(), "costs": costs()}


def _gib(n):
    return "-" if not n else f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 29 else f"{n / 2 ** 20:.0f} MiB"


def render(doc):
    """README lines: cost per method, and the accuracy of RF-Inversion's passes per solver."""
    c = {k: v for k, v in doc["costs"].items() if not k.startswith("_")}
    lines = ["| method (FLUX.1-dev, 1024², batch 1) | model evaluations per edit | attention features held (bf16) | "
             "trajectory held (fp32, masks / RF-Inversion) |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['nfe']} | {_gib(v['feature_bytes'])} | {_gib(v['trajectory_bytes'])} |" for k, v in c.items()]
    a = doc["rf_accuracy"]
    lines += ["", "RF-Inversion's controlled passes per solver: max error against a 512-step midpoint solve of the same "
              "controlled ODE (closed-form 2-D mixture, FLUX 1024² grid; FireFlow reuses the model's velocity and "
              "re-applies the controller exactly):", "",
              "| pass | " + " | ".join(f"{s}, {n} steps ({_at(a['forward'][s], n)[0]} NFE)" for s in SOLVERS
                                      for n in (8, 32)) + " | order |", "|---" * (2 * len(SOLVERS) + 2) + "|"]
    for d, label in (("forward", "forward, gamma 0.5 on every step"), ("reverse", "reverse, eta 0.9 on the first 3/8")):
        orders = ", ".join(f"{s} {a[d][s]['order']:.2f}" for s in SOLVERS)
        lines.append(f"| {label} | " + " | ".join(f"{_at(a[d][s], n)[1]:.2g}" for s in SOLVERS for n in (8, 32))
                     + f" | {orders} |")
    eq = {d: (_at(a[d]["fireflow"], 16), _at(a[d]["midpoint"], 8), _at(a[d]["euler"], 16)) for d in a}
    rev_ff, rev_mid, fwd_ff, fwd_mid = (_at(a["reverse"]["fireflow"], 8), _at(a["reverse"]["midpoint"], 8),
                                        _at(a["forward"]["fireflow"], 8), _at(a["forward"]["midpoint"], 8))
    lines += ["", "At about equal cost: " + "; ".join(
        f"{d}: FireFlow 16 steps ({f[0]} NFE) {f[1]:.2g}, midpoint 8 steps ({m[0]}) {m[1]:.2g}, Euler 16 steps "
        f"({e[0]}) {e[1]:.2g}" for d, (f, m, e) in eq.items())
        + f". At equal steps FireFlow's reuse costs the reverse pass {rev_ff[1] / rev_mid[1]:.1f}x the midpoint's "
        f"error (8 steps) for {rev_ff[0]} instead of {rev_mid[0]} evaluations; the forward pass, whose controller is "
        f"singular at t = 1 (every solver falls to order ~{a['forward']['midpoint']['order']:.1f}), loses nothing "
        f"({fwd_ff[1]:.2g} vs {fwd_mid[1]:.2g})."]
    return lines

"""FlowEdit: inversion-free text-based editing with a pre-trained flow (Kulikov et al. 2024, arXiv 2412.08629,
Algorithm 1), on any core solver. Host-free.

On a descending grid t_0 = 1 > ... > t_T = 0 the edit skips the first T - n_max steps, starts at z = x_src at
t_{T - n_max}, and integrates
    dz/dt = V(z, t) = v_tar(z + z_src - x_src, t) - v_src(z_src, t),   z_src = (1 - t) x_src + t n,
with n ~ N(0, I) drawn afresh for every step (the step's evaluations share it) and V averaged over n_avg draws, down to
t_{T - n_min}. The last n_min steps then sample the target alone from z_tar = z + (1 - t) x_src + t n - x_src, like
SDEdit. The paper integrates with Euler; any solver of the core can walk both phases (FireFlow reuses the previous
midpoint's V). A mask keeps z = x_src outside it (and the target phase on the source's interpolant), so the source
comes back exactly there.
"""
from typing import NamedTuple

import torch

from .errors import SettingError
from .masking import Interpolant, MaskGuide
from .solvers import EvalPoint, get_solver, integrate

NOISE_MIX = (1_000_003, 1_009)  # seeds of the per-(step, draw) generators: (seed * a + step) * b + draw


def window(steps, n_max, n_min):
    """(first, switch): FlowEdit steps are [first, switch), target sampling [switch, steps)."""
    n_max, n_min = int(n_max), int(n_min)
    if not 1 <= n_max <= steps:
        raise SettingError("n_max", n_max, f"must lie in 1..steps ({steps})")
    if not 0 <= n_min <= n_max:
        raise SettingError("n_min", n_min, f"must lie in 0..n_max ({n_max})")
    return steps - n_max, steps - n_min


def seeded_noise(seed, shape):
    """noise(step, draw) -> N(0, I) of `shape`, a function of (seed, step, draw) alone (CPU generator, fp32), so a
    rerun, a resumed pass or another solver sees the same draws."""
    a, b = NOISE_MIX

    def noise(step, draw):
        g = torch.Generator().manual_seed(((int(seed) * a + step) * b + draw) % 2 ** 63)
        return torch.randn(tuple(shape), generator=g, dtype=torch.float32)
    return noise


def nfe(steps, n_max, n_min, n_avg, solver):
    """Model evaluations of one FlowEdit pass (each CFG branch counts once)."""
    first, switch = window(steps, n_max, n_min)
    rule = get_solver(solver)
    return 2 * n_avg * rule.nfe(switch - first) * (switch > first) + rule.nfe(steps - switch) * (steps > switch)


class Constant:
    """Reference of the FlowEdit phase: z = x_src at every time."""

    def __init__(self, x):
        self.x = x

    def reference(self, kind, index, t):
        return self.x


class FlowEditResult(NamedTuple):
    x: torch.Tensor
    nfe: int  # model evaluations (source and target each count)
    first: int  # the first step walked
    switch: int  # the first target-sampling step (= steps when n_min = 0)


def flowedit(v_src, v_tar, x_src, grid, n_max, n_min=0, n_avg=1, solver="euler", noise=None, mask=None,
             mask_until=0.0, callback=None):
    """Edit `x_src` from the source to the target velocity field along `grid` (descending, T + 1 times).

    v_src, v_tar: callables (x, t, point) -> velocity; `point` is the EvalPoint in the whole grid's step numbering.
    noise: noise(step, draw) -> tensor like x_src (default: seeded_noise(0, x_src.shape)).
    mask: broadcastable to x_src, 1 where the edit acts; outside it the result is x_src.
    callback: optional (step, z) after each step, in the whole grid's numbering.
    """
    n_avg = int(n_avg)
    if n_avg < 1:
        raise SettingError("n_avg", n_avg, "must be at least 1")
    g = [float(t) for t in grid]
    steps = len(g) - 1
    if g[0] <= g[-1]:
        raise SettingError("grid", "ascending", "FlowEdit walks a descending grid (from noise to the image)")
    first, switch = window(steps, n_max, n_min)
    noise = noise or seeded_noise(0, x_src.shape)
    x_src = x_src.to(torch.promote_types(x_src.dtype, torch.float32))
    z, calls = x_src, 0

    def run(velocity, x, start, stop, reference):
        hooks = () if mask is None else (MaskGuide(mask, reference, mask_until),)
        step_cb = None if callback is None else (lambda i, x_next, _d: callback(start + i, x_next))
        return integrate(velocity, x, g[start:stop + 1], solver, callback=step_cb, hooks=hooks)

    if switch > first:
        draws = {}

        def delta(z, t, point):
            step = first + point.step
            if step not in draws:
                draws.clear()
                draws[step] = [noise(step, k).to(z.device, z.dtype) for k in range(n_avg)]
            p = EvalPoint(step, point.call, t)
            total = None
            for n in draws[step]:
                z_src = (1 - t) * x_src + t * n
                z_tar = z + z_src - x_src
                d = v_tar(z_tar, t, p) - v_src(z_src, t, p)
                total = d if total is None else total + d
            return total / n_avg if n_avg > 1 else total
        out = run(delta, z, first, switch, Constant(x_src))
        z, calls = out.x, 2 * n_avg * out.nfe
    if switch < steps:
        n = noise(switch, 0).to(z.device, z.dtype)
        t = g[switch]
        z = z + ((1 - t) * x_src + t * n) - x_src

        def target(x, t, point):
            return v_tar(x, t, EvalPoint(switch + point.step, point.call, t))
        out = run(target, z, switch, steps, Interpolant(x_src, n))
        z, calls = out.x, calls + out.nfe
    return FlowEditResult(z, calls, first, switch)

"""RF-Inversion's controlled ODEs (Rout et al. 2024, "Semantic Image Inversion and Editing using Rectified
Stochastic Differential Equations", arXiv 2410.10792, Algorithms 1 and 2), as a pass hook for any core solver.

The model's velocity v is pulled towards the straight-line velocity that ends the pass on a fixed target:
    forward (inversion, t: 0 -> 1, target y1 = a seeded noise):  u = (y1 - x) / (1 - t)
    reverse (edit, t: 1 -> 0, target y0 = the source latent):     u = (x - y0) / t
    v_hat = v + s_i (u - v),  s_i = gamma (forward) or eta_i (reverse) on the pass's steps [start, stop), else 0.
Both are velocities dx/dt in the same time t as the model and the step, so the papers' listings are reproduced
exactly on a linear grid (t_i = i / N, sigma(t) = t); on a shifted grid the controller uses the step's own t where the
listing mixes i / N and sigma(t_i). With s = 1 on a step that ends the pass, Euler, midpoint and FireFlow land on the
target exactly (the controlled field is then a straight line to it).

FireFlow reuses the model part of the previous midpoint velocity and re-applies the controller at the new state
(`transforms_velocity`), since u is known exactly.
"""
from dataclasses import dataclass

import torch

from .errors import ChoiceError, SettingError
from .masking import repeat_to_batch
from .solvers import PassHook

TRENDS = ("constant", "linear_increase", "linear_decrease")


def strengths(value, start, stop, steps, trend="constant"):
    """Controller strength per step of a pass of `steps` steps: `value` on [start, stop) (stop -1: to the end),
    0 elsewhere; a linear trend runs from 0 to value (increase) or value to 0 (decrease) across the window."""
    if trend not in TRENDS:
        raise ChoiceError("eta_trend", trend, TRENDS)
    stop = steps if stop < 0 else min(int(stop), steps)
    start = int(start)
    if not 0 <= start <= stop:
        raise SettingError("start_step", start, f"must lie in 0..stop_step ({stop})")
    out = [0.0] * steps
    n = stop - start
    for i in range(start, stop):
        p = (i - start) / (n - 1) if n > 1 else 1.0
        out[i] = float(value) * {"constant": 1.0, "linear_increase": p, "linear_decrease": 1.0 - p}[trend]
    return tuple(out)


@dataclass(frozen=True)
class ControlSpec:
    """What a controlled pass needs besides the target: the direction, the per-step strengths of the whole pass."""
    direction: str  # "forward" (inversion) or "reverse" (edit)
    strength: float
    start_step: int = 0
    stop_step: int = -1
    trend: str = "constant"
    seed: int = 0  # forward: the seed of the target noise y1

    def __post_init__(self):
        if self.direction not in ("forward", "reverse"):
            raise ChoiceError("direction", self.direction, ("forward", "reverse"))
        if self.trend not in TRENDS:
            raise ChoiceError("eta_trend", self.trend, TRENDS)
        name = "gamma" if self.direction == "forward" else "eta"
        if not (float(self.strength) >= 0 and float(self.strength) < float("inf")):
            raise SettingError(name, self.strength, "must be a finite number >= 0")
        if self.start_step < 0 or (0 <= self.stop_step < self.start_step):
            raise SettingError("start_step", self.start_step, f"must be >= 0 and at most stop_step ({self.stop_step})")

    def per_step(self, steps):
        return strengths(self.strength, self.start_step, self.stop_step, steps, self.trend)

    def describe(self, steps):
        s = self.per_step(steps)
        on = [i for i, v in enumerate(s) if v > 0]
        name = "gamma" if self.direction == "forward" else "eta"
        where = f"steps {on[0]}-{on[-1]}" if on else "no step"
        trend = f", {self.trend}" if self.trend != "constant" else ""
        return f"RF-Inversion {self.direction} control, {name} {self.strength:g} on {where}{trend}"

    def noise(self, shape):
        """The forward target y1 ~ N(0, I), from this spec's seed (CPU generator: the same on every device)."""
        g = torch.Generator().manual_seed(int(self.seed))
        return torch.randn(tuple(shape), generator=g, dtype=torch.float32)


class Controller(PassHook):
    """The controlled field as a hook: v_hat = v + s_step (u(x, t) - v). `per_step` covers the whole pass; `offset` is
    this run's first step in it (two-expert passes run in segments)."""
    transforms_velocity = True

    def __init__(self, direction, target, per_step):
        self.forward, self.target, self.per_step, self.offset = direction == "forward", target, per_step, 0
        self._placed = None  # the target on the state's device, dtype and batch (moved once, not per evaluation)

    def _target(self, x):
        key = (x.device, x.dtype, x.shape[0])
        if self._placed is None or self._placed[0] != key:
            self._placed = key, repeat_to_batch(self.target, x.shape[0]).to(x.device, x.dtype)
        return self._placed[1]

    def velocity(self, point, x, v):
        s = self.per_step[self.offset + point.step]
        if s == 0:
            return v
        t = point.t
        y = self._target(x)
        if self.forward:
            if t >= 1:
                raise SettingError("gamma", s, "cannot act at t = 1 (the straight line to the noise has no length)")
            u = (y - x) / (1.0 - t)
        else:
            if t <= 0:
                raise SettingError("eta", s, "cannot act at t = 0 (the straight line to the image has no length)")
            u = (x - y) / t
        return v + s * (u - v)

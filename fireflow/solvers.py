"""Rectified-flow ODE solvers: Euler, midpoint, RF-Solver (2nd and 3rd order) and FireFlow (ALGORITHM.md section 1).

A solver only ever calls `velocity(x, t, point)`, where `point` says which evaluation of the pass this is
(step index and FIRST/MID call, integers, never float keys). One loop, `integrate`, walks a grid in either
direction: an ascending grid inverts (t = 0 -> 1, h > 0), a descending grid samples (t = 1 -> 0, h < 0).

Precision: the ODE state and every update are kept in at least fp32, whatever dtype the velocity comes back in.
Solver state is explicit: a step returns the `carry` the next step needs; it is reset at the start of each pass.

Hooks (`PassHook`) change a pass without touching the solvers: the state at each grid position (masked edits
project it onto recorded states), the input of each evaluation, and the velocity it returns (RF-Inversion's
controller). FireFlow reuses the carried *model* velocity; a hook that transforms velocities re-applies its transform
at the new state (`Evaluator.reuse`), so an exact term such as a controller is never half a step stale.
"""
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import torch

from .errors import ChoiceError
from .schedules import check_grid

FIRST = 0  # evaluation at the start of a step (t = a)
MID = 1    # evaluation at the step's midpoint (t = a + h/2)


class EvalPoint(NamedTuple):
    """Where an evaluation sits in a pass: step index (walking order), call (FIRST or MID), time t."""
    step: int
    call: int
    t: float


class StepOut(NamedTuple):
    """What one step returns: the new state, the carry for the next step, and its last evaluation (for previews)."""
    x: torch.Tensor
    carry: object
    x_eval: torch.Tensor
    t_eval: float
    v_eval: torch.Tensor


def euler_step(evaluate, x, a, b, carry):
    """Euler / vanilla ReFlow: x_b = x_a + h v(x_a, a). 1 NFE."""
    h = b - a
    v = evaluate(x, a, FIRST)
    return StepOut(x + h * v, None, x, a, v)


def midpoint_step(evaluate, x, a, b, carry):
    """Explicit midpoint: x_mid = x_a + (h/2) v0, w = v(x_mid, a + h/2), x_b = x_a + h w. 2 NFE."""
    h = b - a
    v0 = evaluate(x, a, FIRST)
    x_mid = x + (h / 2) * v0
    w = evaluate(x_mid, a + h / 2, MID)
    return StepOut(x + h * w, None, x_mid, a + h / 2, w)


def rf_solver_step(evaluate, x, a, b, carry):
    """RF-Solver (Wang et al. 2024, arXiv 2411.04746), second-order Taylor form.

    x_b = x_a + h v0 + (1/2) h^2 dv, with dv = (w - v0) / (h/2) estimated from the midpoint evaluation.
    Algebraically equal to the midpoint step (to rounding). 2 NFE.
    """
    h = b - a
    v0 = evaluate(x, a, FIRST)
    x_mid = x + (h / 2) * v0
    w = evaluate(x_mid, a + h / 2, MID)
    dv = (w - v0) / (h / 2)
    return StepOut(x + h * v0 + 0.5 * h * h * dv, None, x_mid, a + h / 2, w)


def rf_solver3_step(evaluate, x, a, b, carry):
    """RF-Solver with the third-order Taylor term (the RF-Solver paper's order ablation). 2 NFE.

    x_b = x_a + h v0 + h^2/2 v' + h^3/6 v'', where v' and v'' at t = a come from the quadratic through the previous
    step's midpoint velocity (carry), v0 = v(x_a, a) and w = v(x_a + (h/2) v0, a + h/2). The first step of a pass has
    no earlier evaluation and takes the second-order (midpoint) update.
    """
    h = b - a
    m = a + h / 2
    v0 = evaluate(x, a, FIRST)
    x_mid = x + (h / 2) * v0
    w = evaluate(x_mid, m, MID)
    if carry is None:
        x_b = x + h * w
    else:
        tp, wp = carry
        d01 = (v0 - wp) / (a - tp)            # Newton divided differences over (tp, a, m)
        d12 = (w - v0) / (m - a)
        d012 = (d12 - d01) / (m - tp)
        dv = d01 + d012 * (a - tp)            # p'(a)
        x_b = x + h * v0 + (h * h / 2) * dv + (h ** 3 / 6) * (2 * d012)
    return StepOut(x_b, (m, w), x_mid, m, w)


def fireflow_step(evaluate, x, a, b, carry):
    """FireFlow (Deng et al. 2024, arXiv 2412.07517): a midpoint step that reuses the previous midpoint velocity.

    u = v(x_a, a) on a pass's first step, else the carried w of the previous step (no model call);
    x_mid = x_a + (h/2) u, w = v(x_mid, a + h/2), x_b = x_a + h w; w is carried. N + 1 NFE per pass of N steps.
    """
    h = b - a
    u = evaluate(x, a, FIRST) if carry is None else evaluate.reuse(carry, x, a)
    x_mid = x + (h / 2) * u
    w = evaluate(x_mid, a + h / 2, MID)
    return StepOut(x + h * w, w, x_mid, a + h / 2, w)


@dataclass(frozen=True)
class Solver:
    """A named one-step rule plus its cost: `nfe(n)` model evaluations for a pass of n steps.

    calls: which calls (FIRST, MID) a step may evaluate.
    reuses_midpoint_velocity: a step's start velocity is the previous step's midpoint velocity (no model call), so
    FIRST is evaluated only on the first step of a pass.
    """
    name: str
    step: Callable
    nfe: Callable[[int], int]
    calls: tuple
    description: str
    reuses_midpoint_velocity: bool = False

    def evaluates(self, step, call):
        """Whether step `step` of a pass evaluates the model at `call`."""
        if call not in self.calls:
            return False
        return not (call == FIRST and self.reuses_midpoint_velocity and step > 0)


SOLVERS = {s.name: s for s in (
    Solver("fireflow", fireflow_step, lambda n: n + 1, (FIRST, MID),
           "FireFlow: second order at about 1 evaluation per step (N + 1 per pass)", reuses_midpoint_velocity=True),
    Solver("rf_solver", rf_solver_step, lambda n: 2 * n, (FIRST, MID),
           "RF-Solver: second-order Taylor step, 2 evaluations per step"),
    Solver("midpoint", midpoint_step, lambda n: 2 * n, (FIRST, MID),
           "Explicit midpoint: second order, 2 evaluations per step (same update as RF-Solver)"),
    Solver("rf_solver_3", rf_solver3_step, lambda n: 2 * n, (FIRST, MID),
           "RF-Solver with a third-order Taylor term from the previous step, 2 evaluations per step"),
    Solver("euler", euler_step, lambda n: n, (FIRST,),
           "Euler / vanilla ReFlow: first order, 1 evaluation per step"),
)}
SOLVER_NAMES = tuple(SOLVERS)


def get_solver(name):
    """Look a solver up by name; the error lists the valid names."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise ChoiceError("solver", name, SOLVER_NAMES) from None


class PassResult(NamedTuple):
    """Output of one pass: the final state, the number of velocity evaluations, and where each one happened."""
    x: torch.Tensor
    nfe: int
    points: tuple


class PassHook:
    """Base of the objects that change a pass without changing a solver (all methods optional, identity here).

    state(position, t, x): the state at grid position `position` of this run (0: the start, i + 1: after step i);
    eval_input(point, x): the input of an evaluation; velocity(point, x, v): the velocity an evaluation returns (v is
    the model's velocity, or the previous hook's result), called only on hooks that set `transforms_velocity`, which
    also makes FireFlow's reuse re-apply it at the new state instead of carrying the transformed value.
    """
    transforms_velocity = False

    def state(self, position, t, x):
        return x

    def eval_input(self, point, x):
        return x

    def velocity(self, point, x, v):
        return v


class Evaluator:
    """`evaluate(x, t, call)` for one pass: records the EvalPoint, applies the hooks, calls `velocity`."""

    def __init__(self, velocity, hooks, dtype):
        self.velocity_fn, self.hooks, self.dtype = velocity, tuple(hooks), dtype
        self.points, self.step, self.last = [], 0, None
        self.transforming = [h for h in self.hooks if h.transforms_velocity]

    def __call__(self, x, t, call):
        point = EvalPoint(self.step, call, t)
        self.points.append(point)
        for hook in self.hooks:
            x = hook.eval_input(point, x)
        v = self.velocity_fn(x, t, point)
        if v.shape != x.shape:
            raise ValueError(f"velocity returned shape {tuple(v.shape)} for a state of shape {tuple(x.shape)}")
        v = v.to(self.dtype)
        self.last = v
        for hook in self.transforming:
            v = hook.velocity(point, x, v)
        return v

    def reuse(self, carry, x, t):
        """The start velocity of a step that makes no model call (FireFlow): the last evaluation's model velocity,
        with velocity-transforming hooks applied at the current state and time."""
        if not self.transforming:
            return carry
        point, v = EvalPoint(self.step, FIRST, t), self.last
        for hook in self.transforming:
            v = hook.velocity(point, x, v)
        return v


def integrate(velocity, x, grid, solver="fireflow", callback: Optional[Callable] = None, hooks=()):
    """Walk `x` along `grid` with one solver; ascending grids invert, descending grids sample.

    velocity: callable (x, t, point: EvalPoint) -> tensor shaped like x.
    x: the start state, any shape; updated in max(fp32, x.dtype).
    grid: N + 1 strictly monotonic times in [0, 1].
    callback: optional (step, x_next, denoised) after each step, denoised = x_eval - t_eval * v_eval (x0 estimate).
    hooks: PassHook objects, applied in order.
    """
    rule = get_solver(solver)
    times = check_grid(grid).tolist()
    dtype = torch.promote_types(x.dtype, torch.float32)
    x = x.to(dtype)
    evaluate = Evaluator(velocity, hooks, dtype)
    for hook in evaluate.hooks:
        x = hook.state(0, times[0], x)
    carry = None
    for i in range(len(times) - 1):
        evaluate.step = i
        out = rule.step(evaluate, x, times[i], times[i + 1], carry)
        x, carry = out.x, out.carry
        for hook in evaluate.hooks:
            x = hook.state(i + 1, times[i + 1], x)
        if callback is not None:
            callback(i, x, out.x_eval - out.t_eval * out.v_eval)
    return PassResult(x, len(evaluate.points), tuple(evaluate.points))

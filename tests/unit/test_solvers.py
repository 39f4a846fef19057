"""Solvers checked against expectations that do not come from the solvers themselves (ALGORITHM.md sections 1 and 7).

- On a single Gaussian the velocity is affine in x, so every step of every solver is an affine map of the start state.
  `closed_form_pass` below follows each update rule as ALGORITHM.md writes it, with plain Python floats (no torch, no
  fireflow.solvers), and the solver's output must equal it to 1e-9; the exact flow is computed the same way.
- Orders come from theory (Euler 1; midpoint, RF-Solver, FireFlow 2, asserted as >= 1.8 as ALGORITHM.md says) and are
  measured against the exact flow on the Gaussian, or reference-free (Richardson ratios) on the 2-D mixture.
- The published round-trip example (ALGORITHM.md section 7) is compared at its printed precision; see
  `test_published_round_trip_example` for which setup reproduces it and which does not.
"""
import math

import pytest
import torch

from fireflow.fields import GaussianFlow, reference_gaussian, ring_mixture
from fireflow.schedules import flux_grid, inversion_grid, linear_grid
from fireflow.solvers import FIRST, MID, SOLVER_NAMES, get_solver, integrate

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------------------------------
# Independent closed form: plain Python floats, formulas from ALGORITHM.md sections 1, 2 and 7.
# An affine function of the start state x0 is a pair (p, q) meaning p * x0 + q.

def grid_from_formula(steps, tokens=None):
    """ALGORITHM.md section 2, descending: t_lin = 1 - i/N, shifted by mu(L) unless tokens is None."""
    t_lin = [1.0 - i / steps for i in range(steps + 1)]
    if tokens is None:
        return t_lin
    em = math.exp(0.5 + (tokens - 256) * (1.15 - 0.5) / (4096 - 256))
    return [0.0 if t <= 0 else em / (em + (1.0 / t - 1.0)) for t in t_lin]


def gaussian_velocity(mu0, sigma0, mu1, sigma1):
    """v(x, t) = (mu1 - mu0) + (s'/s)(x - c(t)), s'/s = (t sigma1^2 - (1-t) sigma0^2) / s^2, applied to x = (p, q)."""
    def v(t, x):
        s2 = (1 - t) ** 2 * sigma0 ** 2 + t ** 2 * sigma1 ** 2
        k = (t * sigma1 ** 2 - (1 - t) * sigma0 ** 2) / s2
        c = (1 - t) * mu0 + t * mu1
        return (k * x[0], k * (x[1] - c) + (mu1 - mu0))
    return v


def gaussian_exact(mu0, sigma0, mu1, sigma1, a, b):
    """Exact flow from time a to b as an affine map (p, q): x(b) = c(b) + s(b)/s(a) (x(a) - c(a))."""
    s = lambda t: math.sqrt((1 - t) ** 2 * sigma0 ** 2 + t ** 2 * sigma1 ** 2)  # noqa: E731
    c = lambda t: (1 - t) * mu0 + t * mu1  # noqa: E731
    r = s(b) / s(a)
    return (r, c(b) - r * c(a))


def comb(*terms):
    """sum of coefficient * affine pair."""
    return (sum(w * x[0] for w, x in terms), sum(w * x[1] for w, x in terms))


def closed_form_pass(v, times, solver, start=(1.0, 0.0)):
    """One pass of `solver` over `times` (either direction) on an affine velocity; returns the affine result."""
    x, carry = start, None  # carried state is reset at the start of every pass (ALGORITHM.md section 1)
    for a, b in zip(times, times[1:]):
        h = b - a
        m = a + h / 2  # the midpoint time is the arithmetic mean of the two grid values
        if solver == "euler":
            x = comb((1, x), (h, v(a, x)))
            continue
        u = carry if (solver == "fireflow" and carry is not None) else v(a, x)
        w = v(m, comb((1, x), (h / 2, u)))
        if solver in ("midpoint", "fireflow"):
            new = comb((1, x), (h, w))
        elif solver == "rf_solver":  # the Taylor form: x_a + h v0 + 1/2 h^2 (w - v0) / (h/2)
            new = comb((1, x), (h, u), (0.5 * h * h / (h / 2), w), (-0.5 * h * h / (h / 2), u))
        elif solver == "rf_solver_3":
            # solvers.py docstring: x_b = x_a + h v0 + h^2/2 p'(a) + h^3/6 p''(a), p the quadratic through the previous
            # step's midpoint velocity, v0 and w; the first step of a pass is a midpoint step. Computed here from the
            # Lagrange basis (the solver uses Newton divided differences).
            if carry is None:
                new = comb((1, x), (h, w))
            else:
                tp, wp = carry
                nodes, vals = (tp, a, m), (wp, u, w)
                d1, d2 = [], []
                for i, ti in enumerate(nodes):
                    oj, ok = [tj for j, tj in enumerate(nodes) if j != i]
                    den = (ti - oj) * (ti - ok)
                    d1.append(((a - oj) + (a - ok)) / den)  # L_i'(a)
                    d2.append(2.0 / den)                    # L_i''
                new = comb((1, x), (h, u), *[(h * h / 2 * d1[i] + h ** 3 / 6 * d2[i], vals[i]) for i in range(3)])
        else:
            raise AssertionError(solver)
        carry = (m, w) if solver == "rf_solver_3" else w
        x = new
    return x


# ---------------------------------------------------------------------------------------------------------------------
# Counting and call structure

def counted(field):
    calls = []

    def velocity(x, t, point):
        calls.append(point)
        return field(x, t)
    return velocity, calls


def round_trip(field, x0, grid, solver):
    inv = integrate(field, x0, inversion_grid(grid), solver)
    rec = integrate(field, inv.x, grid, solver)
    return (rec.x - x0).abs().max().item(), inv.nfe + rec.nfe


@pytest.mark.parametrize("solver, per_pass", [("euler", lambda n: n), ("midpoint", lambda n: 2 * n),
                                              ("rf_solver", lambda n: 2 * n), ("rf_solver_3", lambda n: 2 * n),
                                              ("fireflow", lambda n: n + 1)])
@pytest.mark.parametrize("n", [1, 2, 8])
def test_nfe_per_pass_is_counted(solver, per_pass, n):
    velocity, calls = counted(reference_gaussian())
    out = integrate(velocity, torch.randn(16, dtype=torch.float64), linear_grid(n), solver)
    assert len(calls) == out.nfe == per_pass(n) == get_solver(solver).nfe(n)


def test_fireflow_evaluates_first_call_once_per_pass():
    velocity, calls = counted(reference_gaussian())
    integrate(velocity, torch.zeros(4), inversion_grid(linear_grid(8)), "fireflow")
    assert [(p.step, p.call) for p in calls] == [(0, FIRST)] + [(i, MID) for i in range(8)]
    calls.clear()  # the carried velocity is reset for the next pass
    integrate(velocity, torch.zeros(4), linear_grid(8), "fireflow")
    assert calls[0].call == FIRST and calls[0].t == 1.0


def test_midpoint_time_is_arithmetic_mean():
    velocity, calls = counted(reference_gaussian())
    g = flux_grid(4, 4096)
    integrate(velocity, torch.zeros(4), g, "midpoint")
    for p in calls:
        if p.call == MID:
            assert p.t == pytest.approx((g[p.step] + g[p.step + 1]).item() / 2, abs=1e-15)


def test_rf_solver_taylor_form_equals_midpoint():
    field = ring_mixture()
    x = field.sample(64, 1.0, torch.Generator().manual_seed(0)).float()
    a = integrate(field, x, flux_grid(8, 4096), "rf_solver").x
    b = integrate(field, x, flux_grid(8, 4096), "midpoint").x
    assert torch.allclose(a, b, atol=1e-5, rtol=0)


def test_fireflow_first_step_is_one_exact_midpoint_step():
    field = ring_mixture()
    x = field.sample(64, 0.0, torch.Generator().manual_seed(0))
    g = inversion_grid(flux_grid(8, 4096))
    ff = integrate(field, x, g[:2], "fireflow").x
    mp = integrate(field, x, g[:2], "midpoint").x
    assert torch.equal(ff, mp)


def test_state_kept_in_fp32_for_low_precision_input():
    out = integrate(reference_gaussian(), torch.zeros(4, dtype=torch.bfloat16), linear_grid(2), "euler")
    assert out.x.dtype == torch.float32


def test_unknown_solver_lists_choices():
    with pytest.raises(ValueError, match="choose one of: fireflow"):
        integrate(reference_gaussian(), torch.zeros(2), linear_grid(2), "heun")


# ---------------------------------------------------------------------------------------------------------------------
# Exact agreement with the independent closed form on single Gaussians

GAUSSIANS = {"N(0,.5^2)->N(0,1)": (0.0, 0.5, 0.0, 1.0), "N(1,.3^2)->N(-.5,1.2^2)": (1.0, 0.3, -0.5, 1.2)}
GRIDS = {"flux1024_n8": (8, 4096), "flux512_n3": (3, 1024), "linear_n1": (1, None), "linear_n5": (5, None)}
X0 = [-3.0 + 0.5 * i for i in range(13)]


def _closed_form_case(params, grid_key, solver):
    times = grid_from_formula(*GRIDS[grid_key])
    v = gaussian_velocity(*params)
    inv = closed_form_pass(v, times[::-1], solver)
    rec = closed_form_pass(v, times, solver, start=inv)
    return times, inv, rec


@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("grid_key", GRIDS)
@pytest.mark.parametrize("gaussian", GAUSSIANS)
def test_gaussian_inversion_and_round_trip_equal_closed_form(gaussian, grid_key, solver):
    params = GAUSSIANS[gaussian]
    times, inv, rec = _closed_form_case(params, grid_key, solver)
    field = GaussianFlow(*params)
    x0 = torch.tensor(X0, dtype=torch.float64)
    grid = torch.tensor(times, dtype=torch.float64)
    got_inv = integrate(field, x0, inversion_grid(grid), solver).x
    got_rec = integrate(field, got_inv, grid, solver).x
    for got, (p, q) in ((got_inv, inv), (got_rec, rec)):
        want = torch.tensor([p * x + q for x in X0], dtype=torch.float64)
        assert torch.allclose(got, want, atol=1e-9, rtol=0), (got - want).abs().max().item()


def test_closed_form_converges_to_the_exact_flow():
    """The closed form itself, checked against the exact flow: a 4096-step midpoint pass lands on it (error ~ h^2)."""
    for params in GAUSSIANS.values():
        p, q = closed_form_pass(gaussian_velocity(*params), grid_from_formula(4096)[::-1], "midpoint")
        ep, eq = gaussian_exact(*params, 0.0, 1.0)
        assert abs(p - ep) < 1e-6 and abs(q - eq) < 1e-6


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_gaussian_errors_against_exact_flow_equal_closed_form(solver):
    """Inversion error against the exact flow and round-trip error (exact: the identity) at N = 8 on the FLUX 1024^2
    grid: the solver's, computed with torch, equal the closed form's, and are not zero (the step is approximate)."""
    params = GAUSSIANS["N(1,.3^2)->N(-.5,1.2^2)"]
    times, (ip, iq), (rp, rq) = _closed_form_case(params, "flux1024_n8", solver)
    ep, eq = gaussian_exact(*params, 0.0, 1.0)
    x0 = torch.tensor(X0, dtype=torch.float64)
    field, grid = GaussianFlow(*params), torch.tensor(times, dtype=torch.float64)
    inv = integrate(field, x0, inversion_grid(grid), solver).x
    rec = integrate(field, inv, grid, solver).x
    want_inv = max(abs((ip - ep) * x + (iq - eq)) for x in X0)
    want_rec = max(abs((rp - 1) * x + rq) for x in X0)
    assert (inv - (ep * x0 + eq)).abs().max().item() == pytest.approx(want_inv, rel=1e-6)
    assert (rec - x0).abs().max().item() == pytest.approx(want_rec, rel=1e-6)
    assert want_inv > 1e-6 and want_rec > 1e-6


# ---------------------------------------------------------------------------------------------------------------------
# Published example (ALGORITHM.md section 7): "single Gaussian, FLUX shift for L = 4096, 8 steps, inversion then
# reconstruction, max abs error: Euler 0.95, RF-Solver 1.0e-2, FireFlow 3.6e-2 at 16, 32 and 18 NFE."
#
# The example does not say which Gaussian or which samples. On a centred Gaussian every pass is x -> G x, so the
# round-trip error is |G - 1| * max|x0|: the samples only scale all three figures alike, and the ratios between
# solvers depend on sigma0/sigma1 alone.
# - The pack's reference_gaussian, N(0, 0.5^2) -> N(0, 1) with 4096 samples (seed 0, max|x0| = 1.77), does NOT
#   reproduce the example: the closed form gives Euler 0.98 (+3 %), FireFlow 0.042 (+17 %) and RF-Solver 4.9e-3
#   (half the published 1.0e-2, a factor 2.1). Its ratios (Euler/FireFlow 23, RF-Solver/FireFlow 0.12) differ from the
#   published ones (26, 0.28) whatever the samples, so no choice of samples fixes it; fp32 or bf16 time and bf16
#   state (ALGORITHM.md 6.1) do not either (bf16 state gives RF-Solver 2e-2, FireFlow 5.5e-2).
# - sigma0 / sigma1 = 1.5 at |x0 - mu0| = 3 (for instance N(0, 1) data and N(0, (2/3)^2) noise, at a 3-sigma sample)
#   reproduces all three to their printed two digits (0.952, 1.005e-2, 3.58e-2). That is one round ratio matching two
#   sample-independent ratios, so it is strong evidence this was the published setup, but an inference: ALGORITHM.md
#   does not state it. The tolerance is the printed precision (rounding to two significant digits), nothing wider.
PUBLISHED = {"euler": (0.95, 16), "rf_solver": (1.0e-2, 32), "fireflow": (3.6e-2, 18)}


@pytest.mark.parametrize("solver", PUBLISHED)
@pytest.mark.parametrize("field", [GaussianFlow(0.0, 1.5, 0.0, 1.0), GaussianFlow(0.0, 1.0, 0.0, 2 / 3)],
                         ids=["sigma 1.5->1", "sigma 1->2/3"])
def test_published_round_trip_example(field, solver):
    published, nfe = PUBLISHED[solver]
    err, used = round_trip(field, torch.tensor([3.0, -3.0], dtype=torch.float64), flux_grid(8, 4096), solver)
    assert used == nfe
    assert float(f"{err:.2g}") == published, err


def test_fireflow_beats_euler_at_equal_budget():
    """FireFlow paper Table 3: better reconstruction than ReFlow inversion (Euler) at the same 18 NFE."""
    field = reference_gaussian()
    x0 = field.sample((4096,), 0.0, torch.Generator().manual_seed(0))
    ff, nff = round_trip(field, x0, flux_grid(8, 4096), "fireflow")
    eu, neu = round_trip(field, x0, flux_grid(9, 4096), "euler")
    assert nff == neu == 18 and ff < eu


# ---------------------------------------------------------------------------------------------------------------------
# Observed orders, from theory: Euler 1, the others 2 (>= 1.8 as ALGORITHM.md section 7 says)

def _order_bounds(solver):
    return (0.85, 1.2) if solver == "euler" else (1.8, math.inf)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_order_against_exact_flow_on_gaussian(solver):
    """Denoising pass t = 1 -> 0 on the linear grid, error against the exact flow (computed here, not by a solver)."""
    params = GAUSSIANS["N(1,.3^2)->N(-.5,1.2^2)"]
    field = GaussianFlow(*params)
    x1 = torch.tensor(X0, dtype=torch.float64)
    p, q = gaussian_exact(*params, 1.0, 0.0)
    exact = p * x1 + q
    errs = [(integrate(field, x1, linear_grid(n), solver).x - exact).abs().max().item() for n in (64, 128)]
    lo, hi = _order_bounds(solver)
    assert lo < math.log2(errs[0] / errs[1]) < hi, errs


@pytest.fixture(scope="module")
def richardson_orders():
    """Reference-free orders on the 2-D mixture: log2 |x_N - x_2N| / |x_2N - x_4N| for N = 64 (no exact solution there,
    and no solver under test used as the reference)."""
    field = ring_mixture()
    x1 = field.sample(64, 1.0, torch.Generator().manual_seed(1))
    out = {}
    for s in SOLVER_NAMES:
        x = [integrate(field, x1, linear_grid(n), s).x for n in (64, 128, 256)]
        out[s] = math.log2((x[0] - x[1]).abs().max().item() / (x[1] - x[2]).abs().max().item())
    return out


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_order_on_mixture_richardson(richardson_orders, solver):
    lo, hi = _order_bounds(solver)
    assert lo < richardson_orders[solver] < hi, richardson_orders


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_round_trip_error_shrinks_with_steps(solver):
    field = ring_mixture()
    x0 = field.sample(256, 0.0, torch.Generator().manual_seed(2))
    errs = [round_trip(field, x0, flux_grid(n, 4096), solver)[0] for n in (8, 16, 32)]
    assert errs[0] > errs[1] > errs[2]


def test_gaussian_field_matches_its_formulas():
    """GaussianFlow's velocity and exact flow against the formulas of ALGORITHM.md section 7, evaluated here."""
    params = GAUSSIANS["N(1,.3^2)->N(-.5,1.2^2)"]
    field = GaussianFlow(*params)
    x = torch.tensor(X0, dtype=torch.float64)
    for t in (0.0, 0.3, 0.77, 1.0):
        k, d = gaussian_velocity(*params)(t, (1.0, 0.0))
        assert torch.allclose(field(x, t), k * x + d, atol=1e-12, rtol=0)
    for a, b in ((0.0, 1.0), (1.0, 0.0), (0.2, 0.9)):
        p, q = gaussian_exact(*params, a, b)
        assert torch.allclose(field.exact(x, a, b), p * x + q, atol=1e-12, rtol=0)

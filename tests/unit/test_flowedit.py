"""FlowEdit (fireflow/flowedit.py) on closed-form fields.

- By hand: for two affine fields with the same slope, v_c(x, t) = a x + b_c, the FlowEdit velocity is
  V = a (z - x_src) + (b_tar - b_src) whatever the noise, so D = z - x_src follows a scalar recursion that plain
  Python floats compute (Euler, midpoint, FireFlow), and the result does not depend on the seed.
- The authors' algorithm: `official_loop` follows the published FlowEditFLUX / FlowEditSD3 loop (skip while
  T - i > n_max, V averaged over n_avg fresh draws, the SDEdit-style phase for the last n_min steps) with its own
  indexing; with the same draws the pack's Euler pass must equal it.
- Identical source and target fields edit nothing; a mask keeps the source outside exactly.
"""
import pytest
import torch

from fireflow.errors import SettingError
from fireflow.fields import GaussianFlow, ring_mixture
from fireflow.flowedit import flowedit, nfe, seeded_noise
from fireflow.schedules import flux_grid
from fireflow.solvers import SOLVER_NAMES

pytestmark = pytest.mark.usefixtures("one_thread")


class Affine:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def __call__(self, x, t, point=None):
        return self.a * x + self.b


def by_hand(grid, first, a, db, solver):
    """D = z - x_src from 0 at t_first: Euler D += h (a D + db); midpoint and FireFlow through the midpoint D."""
    d, carry = 0.0, None
    for i in range(first, len(grid) - 1):
        h = grid[i + 1] - grid[i]
        if solver == "euler":
            d = d + h * (a * d + db)
            continue
        u = a * d + db if (solver == "midpoint" or carry is None) else carry
        w = a * (d + h / 2 * u) + db
        d, carry = d + h * w, w
    return d


@pytest.mark.parametrize("solver", ["euler", "midpoint", "fireflow"])
def test_affine_fields_follow_the_hand_computed_recursion(solver):
    grid = flux_grid(10, 1024).tolist()
    x = torch.linspace(-1, 1, 7, dtype=torch.float64)
    src, tar = Affine(0.7, 0.2), Affine(0.7, -0.5)
    outs = [flowedit(src, tar, x, grid, n_max=7, solver=solver, noise=seeded_noise(seed, x.shape)).x
            for seed in (0, 1)]
    want = x + by_hand(grid, 3, 0.7, -0.7, solver)
    assert (outs[0] - want).abs().max() < 1e-12
    assert (outs[0] - outs[1]).abs().max() < 1e-12  # the noise cancels for equal slopes (to rounding)


def official_loop(v_src, v_tar, x_src, timesteps, n_max, n_min, n_avg, noise):
    """The published loop's structure: i over all T steps, t_i and t_{i-1} from the schedule."""
    T = len(timesteps) - 1
    zt_edit = x_src.clone()
    xt_tar = None
    for i in range(T):
        if T - i > n_max:
            continue
        t_i, t_im1 = timesteps[i], timesteps[i + 1]
        if T - i > n_min:
            v_delta = torch.zeros_like(x_src)
            for k in range(n_avg):
                fwd = noise(i, k)
                zt_src = (1 - t_i) * x_src + t_i * fwd
                zt_tar = zt_edit + zt_src - x_src
                v_delta = v_delta + (1 / n_avg) * (v_tar(zt_tar, t_i) - v_src(zt_src, t_i))
            zt_edit = zt_edit + (t_im1 - t_i) * v_delta
        else:
            if i == T - n_min:
                fwd = noise(i, 0)
                xt_tar = zt_edit + (t_i * fwd + (1 - t_i) * x_src) - x_src
            xt_tar = xt_tar + (t_im1 - t_i) * v_tar(xt_tar, t_i)
    return zt_edit if n_min == 0 else xt_tar


@pytest.mark.parametrize("n_min,n_avg", [(0, 1), (3, 1), (2, 3)])
def test_euler_equals_the_published_loop(n_min, n_avg):
    field = ring_mixture()
    shifted = ring_mixture()
    shifted.mu = shifted.mu + torch.tensor([0.6, -0.3], dtype=torch.float64)  # the "target prompt": moved data
    g = torch.Generator().manual_seed(0)
    x = 1.5 * torch.randn(32, 2, generator=g, dtype=torch.float64)
    grid = flux_grid(12, 4096).tolist()
    noise = seeded_noise(5, x.shape)
    noise64 = lambda i, k: noise(i, k).double()  # noqa: E731
    got = flowedit(field, shifted, x, grid, n_max=9, n_min=n_min, n_avg=n_avg, noise=noise64)
    want = official_loop(field, shifted, x, grid, 9, n_min, n_avg, noise64)
    assert (got.x - want).abs().max() < 1e-12
    assert (got.x - x).abs().max() > 0.1


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_the_same_field_on_both_sides_edits_nothing(solver):
    field = GaussianFlow(0.2, 0.6, 0.0, 1.0)
    x = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = flowedit(field, field, x, flux_grid(8, 256).tolist(), n_max=6, solver=solver)
    assert (out.x - x).abs().max() < 1e-12


@pytest.mark.parametrize("n_min", [0, 2])
def test_a_mask_keeps_the_source_outside_and_edits_inside_as_without_it(n_min):
    src, tar = GaussianFlow(0.0, 0.5, 0.0, 1.0), GaussianFlow(1.0, 0.4, 0.0, 1.0)  # elementwise fields
    x = 0.5 * torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    mask[..., 2:6, 1:5] = 1
    grid = flux_grid(8, 256).tolist()
    free = flowedit(src, tar, x, grid, n_max=7, n_min=n_min, solver="fireflow").x
    masked = flowedit(src, tar, x, grid, n_max=7, n_min=n_min, solver="fireflow", mask=mask).x
    inside, outside = (mask == 1).expand_as(x), (mask == 0).expand_as(x)
    assert torch.equal(masked[outside], x[outside])
    assert (masked[inside] - free[inside]).abs().max() < 1e-12
    assert (free[outside] - x[outside]).abs().max() > 0.1


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_counted_evaluations_match_the_formula(solver):
    calls = []
    field = GaussianFlow(0.0, 0.5, 0.0, 1.0)

    def counted(x, t, point):
        calls.append(point)
        return field(x, t)
    x = torch.zeros(4, dtype=torch.float64) + 0.3
    out = flowedit(counted, counted, x, flux_grid(10, 256).tolist(), n_max=8, n_min=2, n_avg=2, solver=solver)
    assert out.nfe == len(calls) == nfe(10, 8, 2, 2, solver)
    assert (out.first, out.switch) == (2, 8)
    assert {p.step for p in calls} == set(range(2, 10))  # the whole grid's step numbers


def test_bad_windows_are_refused():
    x = torch.zeros(3)
    for kw in (dict(n_max=0), dict(n_max=9), dict(n_max=4, n_min=5), dict(n_max=4, n_avg=0)):
        with pytest.raises(SettingError):
            flowedit(Affine(0, 0), Affine(0, 1), x, flux_grid(8, 256).tolist(), **kw)

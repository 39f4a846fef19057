"""Masked edits on closed-form flows: outside the mask the edit replays the inversion's recorded trajectory and
returns the source exactly; inside it the edit is what it would be without a mask (the Gaussian field acts on every
coordinate alone, so a coordinate inside the mask never sees the ones outside)."""
import pytest
import torch

from fireflow.fields import GaussianFlow
from fireflow.masking import Interpolant, MaskGuide, TrajectoryRecorder, feather, token_weights
from fireflow.schedules import flux_grid, inversion_grid
from fireflow.solvers import SOLVER_NAMES, integrate

pytestmark = pytest.mark.usefixtures("one_thread")

SOURCE = GaussianFlow(0.0, 0.5, 0.0, 1.0)  # the field the image was inverted with
TARGET = GaussianFlow(1.5, 0.4, 0.0, 1.0)  # the edit's field: another data distribution, the same noise


def square_mask(size=16, lo=4, hi=12):
    m = torch.zeros(1, 1, size, size, dtype=torch.float64)
    m[..., lo:hi, lo:hi] = 1
    return m


def invert(x0, grid, solver):
    rec = TrajectoryRecorder(len(grid) - 1)
    out = integrate(SOURCE, x0, inversion_grid(grid), solver, hooks=[rec])
    return out.x, rec.freeze()


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_outside_the_mask_the_edit_returns_the_source_exactly(solver):
    g = torch.Generator().manual_seed(0)
    x0 = 0.5 * torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64)
    grid = flux_grid(8, 1024)
    noise, traj = invert(x0, grid, solver)
    mask = square_mask()
    masked = integrate(TARGET, noise, grid, solver, hooks=[MaskGuide(mask, traj)]).x
    free = integrate(TARGET, noise, grid, solver).x
    outside, inside = (mask == 0).expand_as(x0), (mask == 1).expand_as(x0)
    assert torch.equal(masked[outside], x0[outside])
    assert torch.equal(masked[inside], free[inside])
    assert (free[outside] - x0[outside]).abs().max() > 0.1  # without the mask the outside would change


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_the_trajectory_holds_every_state_the_inversion_evaluated(solver):
    """states[k] is the inversion's state at t_k; mids[k] its midpoint input on interval k (none for Euler)."""
    x0 = torch.linspace(-1, 1, 12, dtype=torch.float64)
    grid = flux_grid(6, 1024)
    seen = []
    integrate(lambda x, t, p: seen.append((p, x.clone())) or SOURCE(x, t), x0, inversion_grid(grid), solver)
    noise, traj = invert(x0, grid, solver)
    assert torch.equal(traj.states[-1], x0) and torch.equal(traj.states[0], noise)
    for point, x in seen:
        k = 6 - point.step  # ascending position of the step's start -> descending index
        if point.call == 0:
            assert torch.equal(traj.states[k], x)
        else:
            assert torch.equal(traj.mids[k - 1], x)
    assert all(m is None for m in traj.mids) == (solver == "euler")


def test_blend_until_frees_the_last_steps():
    x0 = 0.5 * torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grid = flux_grid(8, 1024)
    noise, traj = invert(x0, grid, "fireflow")
    mask = square_mask()
    seen = []

    class Spy(MaskGuide):
        def state(self, position, t, x):
            out = super().state(position, t, x)
            seen.append((t, out))
            return out
    out = integrate(TARGET, noise, grid, "fireflow", hooks=[Spy(mask, traj, until=0.5)]).x
    outside = (mask == 0).expand_as(x0)
    for k, (t, x) in enumerate(seen):
        on_record = torch.equal(x[outside], traj.states[k][outside])
        assert on_record == (t >= 0.5)
    assert (out[outside] - x0[outside]).abs().max() > 1e-3  # freed: the outside no longer ends at the source


def test_inpainting_from_noise_keeps_the_clean_latent_outside():
    """Without an inversion the reference is the interpolant t n + (1 - t) x0 (ComfyUI's own inpainting)."""
    g = torch.Generator().manual_seed(2)
    x0, n = torch.randn(1, 1, 8, 8, generator=g, dtype=torch.float64), torch.randn(1, 1, 8, 8, generator=g,
                                                                                   dtype=torch.float64)
    mask = square_mask(8, 2, 6)
    out = integrate(TARGET, n, flux_grid(8, 256), "midpoint", hooks=[MaskGuide(mask, Interpolant(x0, n))]).x
    outside = (mask == 0).expand_as(x0)
    assert torch.equal(out[outside], x0[outside])


def test_feather_ramps_across_the_edge_and_is_exact_beyond_its_radius():
    m = square_mask(32, 8, 24)[0, 0]
    f = feather(m, 3)
    row = f[16]
    assert torch.equal(row[:5], torch.zeros(5, dtype=row.dtype)) and torch.equal(row[12:20], torch.ones(8,
                                                                                                         dtype=row.dtype))
    ramp = row[5:12]  # pixels 5..11: within 3 of the edge between 7 and 8
    assert torch.allclose(ramp, torch.arange(1, 8, dtype=row.dtype) / 7)
    assert torch.equal(feather(m, 0), m)
    far = torch.ones_like(m, dtype=torch.bool)
    far[5:27, 5:27] = False  # farther than 3 px outside the square
    far_in = torch.zeros_like(far)
    far_in[11:21, 11:21] = True  # farther than 3 px inside
    assert (f[far] == 0).all() and (f[far_in] == 1).all()


def test_token_weights_are_the_mean_over_each_patch_in_row_major_order():
    m = torch.tensor([[1., 1., 0., 0., 1.],
                      [1., 0., 0., 0., 1.],
                      [0., 0., 0., 1., 0.]])[None, None].repeat(1, 16, 1, 1)
    w = token_weights(m, patch=2)  # padded to 4 x 6 by repeating the last row and column
    assert w.shape == (1, 6)
    assert torch.allclose(w[0], torch.tensor([0.75, 0.0, 1.0, 0.0, 0.5, 0.0]))
    video = m[:, :, None].repeat(1, 1, 3, 1, 1)  # [B, C, T, H, W]: 3 frames, temporal patch 1
    assert torch.equal(token_weights(video, 2), w.repeat(1, 3))


@pytest.mark.parametrize("solver", ["fireflow", "rf_solver", "euler"])
def test_every_evaluation_sees_the_inversion_state_outside_the_mask(solver):
    """What a network's attention would read outside the mask: exactly what the inversion's own evaluation read at the
    same time (matched by time, independently of the trajectory's indexing)."""
    x0 = 0.5 * torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    grid = flux_grid(5, 1024)
    inputs = []
    rec = TrajectoryRecorder(5)
    integrate(lambda x, t, p: inputs.append((t, x.clone())) or SOURCE(x, t), x0, inversion_grid(grid), solver,
              hooks=[rec])
    traj = rec.freeze()
    mask = square_mask(8, 2, 6)
    seen = []
    integrate(lambda x, t, p: seen.append((t, x.clone())) or TARGET(x, t), traj.states[0], grid, solver,
              hooks=[MaskGuide(mask, traj)])
    outside = (mask == 0).expand_as(x0)
    for t, x in seen:
        same_time = [y for s, y in inputs if abs(s - t) < 1e-12]
        if not same_time:  # a step start the inversion did not evaluate (FireFlow): a grid state of its path
            same_time = [traj.states[[abs(g - t) < 1e-12 for g in grid.tolist()].index(True)]]
        assert torch.equal(x[outside], same_time[0][outside])

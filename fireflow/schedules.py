"""Time grids for rectified flows (ALGORITHM.md section 2).

A grid is a 1-D float64 tensor of N + 1 times. Descending grids (1 -> 0) denoise; ascending grids (0 -> 1) invert.
"""
import math

import torch

from .errors import GridError

# FLUX's resolution-dependent shift: mu grows linearly with the number of image tokens.
BASE_IMAGE_TOKENS = 256
MAX_IMAGE_TOKENS = 4096
BASE_SHIFT = 0.5
MAX_SHIFT = 1.15
# FLUX packs 2x2 latent pixels into one token; the VAE downsamples by 8, so a token covers 16x16 image pixels.
PATCH_SIZE = 2
VAE_DOWNSCALE = 8


def image_tokens(latent_height, latent_width, patch_size=PATCH_SIZE):
    """Number of image tokens L for a latent of the given size (ComfyUI pads to the patch size)."""
    return math.ceil(latent_height / patch_size) * math.ceil(latent_width / patch_size)


def flux_mu(tokens, base_tokens=BASE_IMAGE_TOKENS, max_tokens=MAX_IMAGE_TOKENS,
            base_shift=BASE_SHIFT, max_shift=MAX_SHIFT):
    """FLUX shift mu = 0.5 + (L - 256) (1.15 - 0.5) / (4096 - 256), linear in the token count L."""
    return base_shift + (tokens - base_tokens) * (max_shift - base_shift) / (max_tokens - base_tokens)


def linear_grid(steps):
    """Plain descending grid linspace(1, 0, steps + 1) (FLUX-schnell uses no shift)."""
    _check_steps(steps)
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)


def shift_times(t, mu):
    """Apply t' = e^mu / (e^mu + (1/t - 1)) elementwise, keeping t = 0 and t = 1 exact."""
    t = torch.as_tensor(t, dtype=torch.float64)
    out = torch.empty_like(t)
    zero = t <= 0
    inner = t[~zero]
    em = math.exp(mu)
    out[~zero] = em / (em + (1.0 / inner - 1.0))
    out[zero] = 0.0
    return out


def flux_grid(steps, tokens, shift=True):
    """Descending FLUX grid for `steps` steps at L = `tokens` image tokens (ALGORITHM.md section 2).

    Computed from the formula, not from ComfyUI's 10,000-entry sigma table, so it matches the reference exactly:
    1024^2 (L = 4096), 8 steps -> [1, .9567, .9045, .8403, .7595, .6546, .5128, .3109, 0].
    """
    grid = linear_grid(steps)
    return shift_times(grid, flux_mu(tokens)) if shift else grid


def flux2_mu(tokens, steps):
    """FLUX.2's empirical shift (as its reference code and ComfyUI's Flux2Scheduler): linear in the image token
    count, interpolated in the step count between fits at 10 and 200 steps, the 200-step fit alone above 4300 tokens."""
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    if tokens > 4300:
        return a2 * tokens + b2
    m200, m10 = a2 * tokens + b2, a1 * tokens + b1
    a = (m200 - m10) / 190.0
    return a * steps + (m200 - 200.0 * a)


def flux2_grid(steps, tokens):
    """Descending FLUX.2 grid: linspace(1, 0) shifted by flux2_mu(tokens, steps)."""
    return shift_times(linear_grid(steps), flux2_mu(tokens, steps))


def expert_split(grid, boundary) -> int:
    """How many steps of a descending grid t_0 > ... > t_N run on the high-noise expert of a two-expert model (Wan 2.2
    A14B): those that start at t_i >= boundary, as ComfyUI's two-sampler workflows split them. The inversion walks
    the mirror image, so each interval is evaluated by the same expert in both passes."""
    g = [float(v) for v in grid]
    return sum(1 for t in g[:-1] if t >= boundary)


def expert_segments(steps, split, inverting):
    """[(expert, first step, last step + 1)] of a pass, in walking order, empty segments left out. Inversion steps
    are numbered from t = 0: its first steps - split belong to the low-noise expert."""
    parts = [("high", 0, split), ("low", split, steps)]
    if inverting:
        parts = [("low", 0, steps - split), ("high", steps - split, steps)]
    return [p for p in parts if p[2] > p[1]]


def inversion_grid(grid):
    """The same times in ascending order (t = 0 -> 1), as inversion walks them."""
    return torch.flip(torch.as_tensor(grid, dtype=torch.float64), dims=(0,))


def check_grid(grid):
    """Validate a grid: at least two finite times in [0, 1], strictly monotonic. Returns it as float64."""
    g = torch.as_tensor(grid, dtype=torch.float64).flatten()
    if g.numel() < 2:
        raise GridError(f"a time grid needs at least 2 values (1 step); got {g.numel()}")
    if not torch.isfinite(g).all():
        raise GridError("the time grid contains NaN or infinite values")
    if g.min() < 0 or g.max() > 1:
        raise GridError(f"rectified-flow times must lie in [0, 1]; got range [{g.min():.4g}, {g.max():.4g}]")
    d = torch.diff(g)
    if not ((d > 0).all() or (d < 0).all()):
        raise GridError("the time grid must be strictly increasing (inversion) or strictly decreasing (sampling)")
    return g


def _check_steps(steps):
    if int(steps) != steps or steps < 1:
        raise GridError(f"steps must be a whole number >= 1; got {steps}")

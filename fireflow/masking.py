"""Masked edits: outside a mask, a pass follows reference states; inside it, the edit runs free (host-free).

An edit from an inversion replays the inversion's own trajectory outside the mask: the inversion's state at every grid
time and at every midpoint it evaluated is kept (`Trajectory`, recorded by `TrajectoryRecorder`), and the edit blends
    x <- m x + (1 - m) x_ref
before every model evaluation and at every grid position (`MaskGuide`), so each evaluation sees, outside the mask,
exactly what the inversion saw at the same time, and the last position (t = 0) returns the source latent itself where
m = 0. Sampling from noise (inpainting) uses the rectified-flow interpolant t n + (1 - t) x_0 as the reference
instead, as ComfyUI's own samplers do. Feathering (`feather`) has compact support, so latent pixels farther than the
feather radius from the mask's edge are blended with exactly 0 or 1.

Indexing follows the edit: a descending grid t_0 = 1 > ... > t_N = 0; interval k lies between t_k and t_{k+1}.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .errors import RecordMismatch, SettingError
from .solvers import MID, PassHook

INJECT_REGIONS = ("all", "inside_mask", "outside_mask")


def feather(mask, radius):
    """Soften a mask's edges over `radius` pixels on each side: a box blur of width 2 radius + 1 with replicated
    borders. The ramp is linear across the edge; pixels farther than `radius` from it keep exactly 0 or 1.

    mask: [..., H, W] with values in [0, 1]."""
    radius = int(radius)
    if radius < 0:
        raise SettingError("mask_feather", radius, "must be 0 or more pixels")
    if radius == 0:
        return mask
    shape = mask.shape
    m = mask.reshape(-1, 1, shape[-2], shape[-1]).float()
    m = F.pad(m, (radius,) * 4, mode="replicate")
    m = F.avg_pool2d(m, 2 * radius + 1, stride=1)
    return m.clamp(0, 1).reshape(shape)


def token_weights(mask, patch, tpatch=1):
    """Per image token, the mean of a latent-resolution mask over the latent pixels it covers: [B, L] in the row-major
    (frame, row, column) order every supported family's patchify uses. mask: [B, C, H, W] or [B, C, T, H, W]
    (channels equal, as ComfyUI repeats them); padded like the latent (replicated) to a multiple of the patch."""
    m = mask.float().mean(dim=1, keepdim=True)
    if m.ndim == 4:
        ph, pw = (-m.shape[-2]) % patch, (-m.shape[-1]) % patch
        m = F.pad(m, (0, pw, 0, ph), mode="replicate") if ph or pw else m
        return F.avg_pool2d(m, patch).flatten(1)
    pt, ph, pw = (-m.shape[-3]) % tpatch, (-m.shape[-2]) % patch, (-m.shape[-1]) % patch
    m = F.pad(m, (0, pw, 0, ph, 0, pt), mode="replicate") if pt or ph or pw else m
    return F.avg_pool3d(m, (tpatch, patch, patch)).flatten(1)


@dataclass(frozen=True)
class Trajectory:
    """An inversion's states in the edit's indexing: states[k] at t_k (states[0] the inverted latent, states[N] the
    source latent), mids[k] the midpoint state of interval k, where the solver evaluated one (else None).
    Tensors in the sampler's (model) latent space, in the solver's state dtype (fp32 or wider), on the host."""
    states: Tuple[torch.Tensor, ...]
    mids: Tuple[Optional[torch.Tensor], ...]

    @property
    def nbytes(self):
        return sum(t.numel() * t.element_size() for t in self.states + self.mids if t is not None)

    def reference(self, kind, index, t):
        if kind == "state":
            return self.states[index]
        ref = self.mids[index]
        if ref is None:
            raise RecordMismatch(f"the edit evaluates a midpoint on interval {index}, where the inversion made none",
                                 "solver", None, index)
        return ref


class Interpolant:
    """Reference states of inpainting from noise: t n + (1 - t) x_0 (the rectified-flow interpolant)."""

    def __init__(self, clean, noise):
        self.clean, self.noise = clean, noise

    def reference(self, kind, index, t):
        return t * self.noise + (1.0 - t) * self.clean


class TrajectoryRecorder(PassHook):
    """Inversion hook: keeps the state at every grid position and the input of every midpoint evaluation, re-indexed
    for the edit. One recorder serves every run of a pass (segments of a two-expert pass: `offset` is the run's first
    step in the whole pass)."""

    def __init__(self, steps):
        self.steps, self.offset = steps, 0
        self.states, self.mids = [None] * (steps + 1), [None] * steps

    @staticmethod
    def _keep(x):
        return x.detach().to("cpu", copy=True)  # the solver's state dtype (fp32 or wider)

    def state(self, position, t, x):
        self.states[self.steps - (self.offset + position)] = self._keep(x)
        return x

    def eval_input(self, point, x):
        if point.call == MID:
            self.mids[self.steps - 1 - (self.offset + point.step)] = self._keep(x)
        return x

    def freeze(self):
        if any(s is None for s in self.states):
            raise SettingError("trajectory", "incomplete", "the inversion did not walk every step")
        return Trajectory(tuple(self.states), tuple(self.mids))


class MaskGuide(PassHook):
    """Edit hook: x <- m x + (1 - m) x_ref before every evaluation and at every grid position while t >= `until`.

    mask: broadcastable to the state (1: edit, 0: keep the reference); reference: an object with
    reference(kind, index, t) for kind 'state' (grid position of the whole pass) or 'mid' (interval); offset: the run's
    first step in the whole pass."""

    def __init__(self, mask, reference, until=0.0):
        if not 0 <= float(until) < 1:
            raise SettingError("mask_blend_until", until, "must be in [0, 1); 0 blends down to the clean image")
        self.mask, self.reference, self.until, self.offset = mask, reference, float(until), 0
        self._placed = None

    def _blend(self, x, kind, index, t):
        if t < self.until:
            return x
        ref = repeat_to_batch(self.reference.reference(kind, index, t).to(x.device, x.dtype), x.shape[0])
        key = (x.device, x.dtype, x.shape[0])
        if self._placed is None or self._placed[0] != key:  # the mask moved once, not per evaluation
            self._placed = key, repeat_to_batch(self.mask.to(x.device, x.dtype), x.shape[0])
        m = self._placed[1]
        return m * x + (1 - m) * ref

    def state(self, position, t, x):
        return self._blend(x, "state", self.offset + position, t)

    def eval_input(self, point, x):
        if point.call == MID:
            return self._blend(x, "mid", self.offset + point.step, point.t)
        return self._blend(x, "state", self.offset + point.step, point.t)


def repeat_to_batch(t, batch):
    """A batch-B tensor repeated to `batch` rows (one inversion edited with several prompts at once); batch 1 is left to
    broadcasting. Refuses a batch that is not a multiple of B."""
    if t.shape[0] in (1, batch):
        return t
    if batch % t.shape[0]:
        raise SettingError("batch", batch, f"must be a multiple of the mask's or target's batch {t.shape[0]}")
    return t.repeat(batch // t.shape[0], *[1] * (t.ndim - 1))

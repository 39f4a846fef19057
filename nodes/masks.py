"""Masks in ComfyUI's forms (a MASK input, a latent's noise_mask, SamplerCustom's denoise mask) for masked edits.

The pack's own Sampler builds the mask here (feathered at its own resolution, then brought to the latent's shape with
ComfyUI's own reshape_mask) and replays the inversion's trajectory outside it; SamplerCustom runs get theirs from
ComfyUI already at the latent's shape (`sampler_mask_hook`).
"""
import logging

import torch

import comfy.utils

from ..fireflow.masking import Interpolant, MaskGuide, feather
from ..fireflow.solvers import PassHook

log = logging.getLogger("fireflow")
SAMPLER_NODE = "FireFlow Solver (SAMPLER)"
FEATHER_TIP = ("Soften the mask's edge by this many pixels (of the mask) on each side, so the edit blends into the "
               "kept part; latent pixels farther than that from the edge are kept exactly. 0: a hard edge.")
UNTIL_TIP = ("Outside the mask the edit follows the inversion's own trajectory while sigma >= this value; below it "
             "the whole image is denoised freely, which can heal seams. 0 (default): follow it to the end, so the "
             "unmasked part comes back exactly as the source latent.")
MASK_TIP = ("Edit only inside this mask (1 = edit, 0 = keep, as ComfyUI's inpainting masks). Outside it the edit "
            "replays the inversion, so that part comes back as the source. Overrides the latent's noise mask "
            "(SetLatentNoiseMask). Changing the mask re-runs only the Sampler.")


def mask_input(mask, latent):
    """The mask to use: the node's MASK input, else the latent's noise_mask, else None."""
    if mask is not None:
        return mask
    return latent.get("noise_mask") if isinstance(latent, dict) else None


def latent_mask(mask, shape, feather_px, node):
    """The mask at the latent's shape [B, C, (T,) H, W], feathered at its own resolution first; refuses a mask that
    cannot be one (wrong values, batch, or nothing to edit) before any work."""
    if not isinstance(mask, torch.Tensor) or mask.ndim < 2 or mask.numel() == 0:
        raise ValueError(f"{node}: the mask must be a MASK ([batch, height, width]); got "
                         f"{type(mask).__name__}{list(getattr(mask, 'shape', []))}")
    m = mask.detach().to("cpu", torch.float32)
    if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise ValueError(f"{node}: the mask's values must lie in [0, 1] (1 = edit); check the node that made it")
    if not (m > 0).any():
        raise ValueError(f"{node}: the mask is empty (all 0), so nothing would be edited: paint the area to edit "
                         "(right-click the image, Open in MaskEditor) or disconnect the mask")
    m = m.reshape(-1, m.shape[-2], m.shape[-1])
    if len(shape) == 4 and m.shape[0] not in (1, shape[0]):
        raise ValueError(f"{node}: the mask has batch {m.shape[0]}, the latent {shape[0]}: use one mask for every "
                         "image or one per image")
    return comfy.utils.reshape_mask(feather(m, feather_px), shape)


def describe(mask):
    """'mask covering 23 % of the latent' for summaries."""
    return f"mask over {100 * float(mask.float().mean()):.0f} % of the latent"


def sampler_mask_hook(ctx, denoise_mask, noise, latent_image, run_guards):
    """The MaskGuide of a SamplerCustom run with a masked latent: inpainting from noise keeps the interpolant of the
    clean latent outside the mask, an edit from an inverted latent (DisableNoise) the inversion's trajectory, which a
    V-Injection model carries. An inversion inverts the whole latent (the mask is the edit's business)."""
    from .attention import InjectionGuard
    if ctx.pass_name == "invert":
        log.info("[FireFlow] %s: the latent's mask is not used by an inversion (the whole latent is inverted); the "
                 "edit applies it", SAMPLER_NODE)
        return PassHook()
    ctx.mask = denoise_mask
    if noise is not None and torch.any(noise):
        return MaskGuide(denoise_mask, Interpolant(latent_image, noise))
    record = next((g.inversion for g in run_guards if isinstance(g, InjectionGuard)
                   and g.inversion.trajectory is not None), None)
    if record is None:
        raise ValueError(f"{SAMPLER_NODE}: a masked edit from an inverted latent (DisableNoise) replays the "
                         "inversion's trajectory outside the mask, and this model carries none: use the FireFlow "
                         "Sampler with the Inverter's inversion, or a model patched by a V-Injection Patch made from "
                         "it; or sample from RandomNoise to inpaint")
    return MaskGuide(denoise_mask, record.trajectory)

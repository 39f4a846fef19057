"""Running one FireFlow pass (inversion or sampling) through ComfyUI's guider, with checks done before any work."""
import hashlib
import logging
import math

import torch

import comfy.model_management
import comfy.samplers
import latent_preview
import node_helpers

from ..fireflow.schedules import check_grid, flux2_grid, flux_grid, image_tokens
from ..fireflow.solvers import get_solver
from .checks import check_finite_conditioning
from .families import family_of
from .flow_sampler import EvalContext, flow_sampler, velocity_model

log = logging.getLogger("fireflow")
SCHEDULES = ("auto", "flux_shift", "linear", "model")


def check_latent(latent, node, model=None):
    """Return the latent's samples tensor after refusing what cannot be inverted or sampled.

    Image latents are 4-D; families whose image latent is a one-frame video latent (Qwen-Image: [B, C, 1, H, W]) are
    accepted as 5-D with one frame; video families (Wan, HunyuanVideo) take [B, C, T, H, W] with any T."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise ValueError(f"{node}: the LATENT input carries no samples tensor")
    s = latent["samples"]
    fam = family_of(model) if model is not None else None
    video = fam is not None and fam.video
    if video and s.ndim != 5:
        raise ValueError(f"{node}: {fam.name} is a video model; it takes a video latent [batch, channels, frames, "
                         f"height, width], got shape {list(s.shape)}: encode with the model's video VAE (a single "
                         "image is a one-frame video)")
    one_frame = fam is not None and fam.frames and s.ndim == 5 and s.shape[2] == 1
    if s.ndim != 4 and not one_frame and not video:
        what = f"{fam.name} image latent [batch, channels, 1, height, width]" if fam is not None and fam.frames else \
            "image latent [batch, channels, height, width]"
        raise ValueError(f"{node}: expected an {what}, got shape {list(s.shape)} (video latents need a video model: "
                         "Wan or HunyuanVideo; audio latents are not supported)")
    if s.numel() == 0:
        raise ValueError(f"{node}: the latent is empty (shape {list(s.shape)})")
    if not torch.isfinite(s).all():
        raise ValueError(f"{node}: the latent contains NaN or infinite values; re-encode the image (VAEEncode) "
                         "or check the node that produced it")
    # fp16 / bf16 latents are walked in fp32 from the start: ComfyUI's process_latent_in would otherwise shift and
    # scale them in half precision before the first step.
    return s if s.dtype in (torch.float32, torch.float64) else s.float()


def check_channels(model, samples, node):
    want = model.get_model_object("latent_format").latent_channels
    if samples.shape[1] != want:
        raise ValueError(f"{node}: the latent has {samples.shape[1]} channels but the model expects {want}: "
                         "encode the image with this model's VAE")


def check_conditioning(conditioning, samples, node, prompt_batches=False):
    """Refuse empty or malformed conditioning; return the largest conditioning batch.

    prompt_batches: also accept a multiple of the latent batch (the sampler then edits each latent once per prompt).
    """
    if not conditioning:
        raise ValueError(f"{node}: the conditioning is empty; connect a text encoder (CLIPTextEncode) output")
    for c in conditioning:
        t = c[0]
        if t.ndim != 3 or t.shape[1] == 0:
            raise ValueError(f"{node}: a conditioning tensor has shape {list(t.shape)}; expected [batch, tokens, dim]"
                             " with at least one token")
        n = samples.shape[0]
        if t.shape[0] not in (1, n) and not (prompt_batches and t.shape[0] % n == 0):
            more = ", or a multiple of it to edit with several prompts" if prompt_batches else ""
            raise ValueError(f"{node}: conditioning batch {t.shape[0]} does not match latent batch {n}"
                             f" (use batch 1 conditioning, or as many as latents{more})")
    check_finite_conditioning(conditioning, node)
    return max(c[0].shape[0] for c in conditioning)


def check_guidance(guidance, node):
    if not math.isfinite(float(guidance)):
        raise ValueError(f"{node}: guidance is {guidance}; set a finite number (-1 keeps the conditioning's own)")


def with_guidance(conditioning, guidance):
    """Copy of the conditioning with FLUX guidance set (negative keeps the conditioning's own value)."""
    if guidance < 0:
        return conditioning
    return node_helpers.conditioning_set_values(conditioning, {"guidance": guidance})


def resolve_grid(model, samples, steps, schedule, sigmas):
    """Descending grid (float64) from SIGMAS, or from the schedule: FLUX resolution shift or linear."""
    if sigmas is not None:
        g = check_grid(sigmas.detach().to("cpu", torch.float64))
        if g[0] < g[-1]:
            raise ValueError("SIGMAS must be descending (as ComfyUI schedulers produce them); the inverter walks "
                             "them backwards itself, so do not flip them")
        if g[-1] != 0:
            raise ValueError(f"SIGMAS must end at 0 (the clean image); they end at {g[-1].item():.4g}")
        return g
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    fam = family_of(model)
    if schedule == "auto":
        schedule = auto_schedule(model, fam)
    steps = int(steps)
    if schedule == "model":
        return model_grid(model, steps)
    if schedule == "flux2":
        return flux2_grid(steps, fam.image_tokens(samples.shape))
    tokens = fam.image_tokens(samples.shape) if fam is not None else image_tokens(samples.shape[-2], samples.shape[-1])
    return flux_grid(steps, tokens, shift=(schedule == "flux_shift"))


def auto_schedule(model, fam):
    """What `auto` means for this model: a shift set by a ModelSampling* node wins; FLUX.1 keeps the reference grid
    (resolution shift for dev, linear for schnell); FLUX.2 its own scheduler; everything else its model_sampling."""
    if "model_sampling" in getattr(model, "object_patches", {}):
        return "model"
    if fam is not None and fam.schedule == "flux1":
        unet = getattr(model.model, "model_config", None)
        guided = bool(getattr(unet, "unet_config", {}).get("guidance_embed", True))
        return "flux_shift" if guided else "linear"
    if fam is not None and fam.schedule == "flux2":
        return "flux2"
    return "model"


def model_grid(model, steps):
    """The model's own sigmas (its model_sampling, with any shift a ModelSampling* node applied), evenly spaced in
    time: sigma(1 - i / N), i = 0..N, from the continuous formula rather than ComfyUI's 1000-entry table."""
    ms = model.get_model_object("model_sampling")
    ms = getattr(ms, "inner", ms)
    grid = [float(ms.percent_to_sigma(i / steps)) for i in range(steps + 1)]
    if grid[0] != 1.0:
        raise ValueError(f"the model's own schedule starts at sigma {grid[0]:.4g}, not 1: it is not a rectified-flow "
                         "schedule; choose schedule flux_shift or linear")
    return check_grid(grid)


FINGERPRINT_VALUES = 16  # strided over each weight tensor


def model_fingerprint(model) -> str:
    """Family, config and a strided sample of every weight tensor (16 values each): tells fine-tunes and merges apart
    even when they leave most layers alone, without hashing gigabytes (FLUX: about 12k values).

    Weights that a loaded LoRA patched in place are read from the patcher's backup, so the fingerprint does not
    depend on which clone happens to be loaded.
    """
    dm = model.model.diffusion_model
    h = hashlib.sha256(type(model.model).__name__.encode())
    h.update(repr(sorted(model.model.model_config.unet_config.items())).encode())
    backup = getattr(model, "backup", {}) or {}
    for name, p in dm.state_dict().items():
        saved = backup.get("diffusion_model." + name)
        p = saved.weight if saved is not None else p
        flat = p.detach().reshape(-1)
        flat = flat[:: max(1, flat.numel() // FINGERPRINT_VALUES)][:FINGERPRINT_VALUES].to("cpu", torch.float32)
        h.update(name.encode() + flat.numpy().tobytes())
    return h.hexdigest()[:16]


def run_pass(model, conditioning, samples, grid, solver, node, install=None, negative=None, cfg=1.0, offset=0,
             whole=None, hooks=(), mask=None):
    """Walk `grid` (ascending: inversion) from `samples` with the core solver; returns (samples, nfe, context).

    The model is cloned (raw-velocity object patch, plus `install(clone)` hooks) and driven through ComfyUI's
    CFGGuider, so model loading, memory management, wrappers, patches and CFG batching apply: with cfg != 1 and a
    negative, ComfyUI evaluates both branches (usually in one batch) and combines them. Progress counts model
    evaluations (one per solver call, whatever the branches); previews show x0 estimates. `offset` and `whole`: this
    run walks one segment of a pass (steps from `offset` of the grid `whole`), as a two-expert model does.
    hooks: core PassHooks for the run (fireflow/solvers.py); mask: the edit's latent-resolution mask, for the guards.
    """
    nfe = get_solver(solver).nfe(len(grid) - 1)
    m = velocity_model(model)
    if install is not None:
        install(m)
    guider = comfy.samplers.CFGGuider(m)
    conds = {"positive": conditioning}
    if negative is not None and cfg != 1:
        conds["negative"] = negative
    guider.inner_set_conds(conds)
    guider.set_cfg(float(cfg) if "negative" in conds else 1.0)
    preview = latent_preview.prepare_callback(m, nfe)
    ctx = EvalContext(offset=offset, grid=whole, hooks=hooks, mask=mask)
    sampler = flow_sampler(solver, on_eval=lambda i, x0: preview(i - 1, x0, None, nfe), context=ctx)
    out = guider.sample(torch.zeros_like(samples), samples, sampler, grid.to(torch.float32), callback=None,
                        disable_pbar=True, seed=0)
    log.info("[FireFlow] %s: %s, %d steps, %d evaluations", node, solver, len(grid) - 1, ctx.nfe)
    return out.to(comfy.model_management.intermediate_device()), ctx.nfe, ctx

"""The one adapter between ComfyUI's sampling path and the host-free solvers (the pack's KSAMPLER).

- `RawVelocitySampling`: a clone-scoped `model_sampling` stand-in whose `calculate_denoised` returns the model
  output (the velocity v) unchanged; everything else is delegated to the model's own sampling object.
- `to_velocity`: the single place where a host output becomes a velocity.
- `FlowKSampler`: a KSAMPLER whose `sample()` skips the stock noise_scaling / inverse_noise_scaling (the inversion
  would end in 1 / (1 - 1) and an edit from t = 1 would throw the inverted latent away).
- `EvalContext`: (pass, step, call) published in transformer_options for attention hooks; a plain object, so it
  survives ComfyUI's dict copies by reference.
- Before the first evaluation the sampler refuses what cannot work (a model that is not a rectified flow, a start
  at sigma 0 without the raw velocity, non-finite input) and runs the guards of clones that record or inject
  features (nodes/checks.py); after each evaluation it refuses non-finite output; after the pass, the guards again.
"""
import torch

import comfy.model_management
import comfy.model_sampling
import comfy.samplers

from ..fireflow.solvers import integrate
from .checks import check_finite_conditioning, entries, guards, non_finite_message
from .errors import node_errors
from .masks import sampler_mask_hook

PACK_KEY = "fireflow"
SAMPLER_NODE = "FireFlow Solver (SAMPLER)"


class RawVelocitySampling(torch.nn.Module):
    """Delegating model_sampling whose denoised output is the raw model output (v = eps - x0 for FLUX)."""
    fireflow_raw_velocity = True

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def calculate_denoised(self, sigma, model_output, model_input):
        return model_output

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)


# CONST subclasses that are not an ODE velocity from noise to data: Wan FlowRVS maps an image to an image (newer
# ComfyUI), so inverting it to noise means nothing.
NOT_VELOCITY = ("IMG_TO_IMG_FLOW",)


def is_rectified_flow(model_patcher) -> bool:
    """True when the model predicts a rectified-flow velocity (FLUX, SD3, ...), i.e. x0 = x - t v."""
    ms = model_patcher.get_model_object("model_sampling")
    ms = getattr(ms, "inner", ms)
    mro = {c.__name__ for c in type(ms).__mro__}
    return isinstance(ms, comfy.model_sampling.CONST) and not mro & set(NOT_VELOCITY)


def model_family(model_patcher) -> str:
    return type(model_patcher.model).__name__


def require_flow_model(model_patcher, node="FireFlow"):
    """Refuse, before any evaluation, a model the pack cannot walk as one ODE: not a rectified-flow velocity, a
    family that is not one (MeanFlow, distilled super-resolution), or sampling split into context windows."""
    from .families import family_of
    if model_patcher.model_options.get("context_handler") is not None:
        raise ValueError(f"{node}: this model carries context windows (a Context Windows node): each window is "
                         "denoised on its own and the results are blended, which is not one ODE and cannot be "
                         "inverted or replayed. Remove the Context Windows node and invert the whole clip (fewer "
                         "frames or a lower resolution if it does not fit)")
    fam = family_of(model_patcher)
    if fam is not None and fam.no_flow:
        raise ValueError(f"{node}: {fam.name} ({model_family(model_patcher)}) cannot be inverted: {fam.no_flow}")
    if not is_rectified_flow(model_patcher):
        ms = model_patcher.get_model_object("model_sampling")
        kind = next((c.__name__ for c in type(ms).__mro__ if c.__module__ == comfy.model_sampling.__name__
                     and c.__name__ in ("EPS", "V_PREDICTION", "EDM", "X0", "IMG_TO_IMG", "COSMOS_RFLOW")
                     + NOT_VELOCITY), type(ms).__name__)
        why = (" (an image-to-image flow, not a velocity from noise to data, so it cannot be inverted)"
               if kind in NOT_VELOCITY else
               " in the form FireFlow needs (Cosmos-Predict2 is a rectified flow, but ComfyUI runs it in EDM's "
               "parametrisation, sigma = t / (1 - t), which this pack does not convert)" if kind == "COSMOS_RFLOW"
               else "")
        raise ValueError(
            f"{node}: the model ({model_family(model_patcher)}, {kind} prediction) is not a rectified flow{why}. "
            "FireFlow inverts rectified-flow models such as FLUX, SD3, Qwen-Image; load one of those instead.")


def velocity_model(model_patcher):
    """A clone whose model evaluations return the raw velocity (clone-scoped; the input MODEL is untouched)."""
    m = model_patcher.clone()
    m.add_object_patch("model_sampling", RawVelocitySampling(m.get_model_object("model_sampling")))
    return m


SIGMA_ZERO = ("{node}: these sigmas start at 0, where the velocity cannot be recovered from the denoised output "
              "a SAMPLER receives: use the FireFlow Inverter node to invert, or start the sigmas above 0 (ComfyUI's "
              "FlipSigmas does)")


def to_velocity(out, x, t, raw):
    """The single conversion from a host output to a velocity: raw output, or (x - x0) / t from a denoised x0."""
    if raw:
        return out
    if t == 0:
        raise ValueError(SIGMA_ZERO.format(node=SAMPLER_NODE))
    return (x - out) / t


class EvalContext:
    """Which evaluation is running: pass ('invert' for ascending sigmas, else 'sample'), step, call (0 first,
    1 mid); plus per-run counters (nfe, stats) that hooks may fill. One per sampling run. A pass split between two
    expert models (Wan 2.2 A14B) walks one segment per run: `offset` numbers its steps within the whole pass and
    `grid` is the whole pass's grid, which the guards check."""
    __slots__ = ("pass_name", "step", "call", "nfe", "stats", "cfg", "layouts", "offset", "grid", "span", "hooks",
                 "mask", "token_mask", "role")

    def __init__(self, pass_name=None, cfg=1.0, offset=0, grid=None, hooks=(), mask=None):
        self.pass_name, self.step, self.call, self.nfe, self.stats = pass_name, -1, -1, 0, {}
        self.cfg, self.layouts, self.offset, self.grid, self.span = cfg, {}, offset, grid, None
        # core PassHooks this run applies (trajectory recording, a masked edit's guide, RF-Inversion's controller),
        # the edit's latent-resolution mask and its per-token weights (V-Injection's inject_region), and FlowEdit's
        # side of the current evaluation ('source' or 'target')
        self.hooks, self.mask, self.token_mask, self.role = tuple(hooks), mask, None, None

    def __deepcopy__(self, memo):
        return self


def flow_sampler_function(model, x, sigmas, extra_args=None, callback=None, disable=None, solver="fireflow",
                          on_eval=None, context=None, conds=None, cfg=1.0, denoise_mask=None, noise=None,
                          latent_image=None, control=None):
    """KSAMPLER sampler function: walk `sigmas` with a core solver, publishing the EvalContext per evaluation.

    conds: the guider's conditioning {'positive': ..., 'negative': ...} and cfg (FlowKSampler passes them), for the
    guards' checks before the first evaluation. denoise_mask, noise, latent_image: a masked SamplerCustom run
    (nodes/masks.py); control: the SAMPLER node's RF-Inversion control.
    """
    extra_args = dict(extra_args or {})
    options = extra_args.get("model_options", {})
    topts = dict(options.get("transformer_options", {}))
    ctx = context if context is not None else EvalContext()
    ctx.pass_name = "invert" if float(sigmas[0]) < float(sigmas[-1]) else "sample"
    ctx.cfg = float(cfg)
    ctx.span = range(ctx.offset, ctx.offset + len(sigmas) - 1)  # the steps of the whole pass this run walks
    raw = bool(getattr(model.inner_model.inner_model.model_sampling, "fireflow_raw_velocity", False))
    if not raw and float(sigmas[0]) == 0:
        raise ValueError(SIGMA_ZERO.format(node=SAMPLER_NODE))
    if not torch.isfinite(x).all():
        raise ValueError(f"{SAMPLER_NODE}: the start latent contains NaN or infinite values")
    run_guards = guards(options)
    hooks = list(ctx.hooks)
    if control is not None:
        hooks.insert(0, control.hook(ctx, x, len(sigmas) - 1, model, run_guards))
    if denoise_mask is not None:
        hooks.append(sampler_mask_hook(ctx, denoise_mask, noise, latent_image, run_guards))
    for hook in hooks:
        hook.offset = ctx.offset
    with node_errors("FireFlow"):
        for guard in run_guards:
            guard.before(ctx, ctx.grid if ctx.grid is not None else sigmas, solver, tuple(x.shape), conds)
    topts[PACK_KEY] = ctx
    extra_args["model_options"] = {**options, "transformer_options": topts}
    # Timesteps in fp32 whatever the latent's dtype: an fp16 latent would otherwise feed t = 0.26636 for 0.26646.
    s_in = torch.ones(x.shape[0], device=x.device, dtype=torch.float32)

    def velocity(xe, t, point):
        comfy.model_management.throw_exception_if_processing_interrupted()
        ctx.step, ctx.call = ctx.offset + point.step, point.call
        out = model(xe, s_in * t, **extra_args)
        v = to_velocity(out.to(xe.dtype), xe, t, raw)
        if not torch.isfinite(v).all():
            raise ValueError(non_finite_message(options, ctx.pass_name, point.step, t))
        ctx.nfe += 1
        if on_eval is not None:
            on_eval(ctx.nfe, xe - t * v)
        return v

    def step_callback(i, x_next, denoised):
        if callback is not None:
            callback({"x": x_next, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})

    result = integrate(velocity, x, sigmas.detach().to("cpu", torch.float64), solver, callback=step_callback,
                       hooks=hooks)
    for guard in run_guards:
        guard.after(ctx)
    return result.x


class FlowKSampler(comfy.samplers.KSAMPLER):
    """KSAMPLER without noise_scaling / inverse_noise_scaling.

    Start state: with all-zero noise (DisableNoise, or the pack's own nodes) the latent already is the state at
    sigmas[0] (a clean latent for inversion, an inverted latent for editing); otherwise the rectified-flow
    interpolant sigmas[0] * noise + (1 - sigmas[0]) * latent, as ComfyUI does.
    """

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        patcher = getattr(model_wrap, "model_patcher", None)
        if patcher is not None:
            require_flow_model(patcher, SAMPLER_NODE)
        by_kind = getattr(model_wrap, "conds", None)  # the guider's processed conditioning, when it exposes it
        conds = None if by_kind is None else {key: entries(by_kind[key]) for key in by_kind}
        check_finite_conditioning([e for key in sorted(conds or {}) for e in conds[key]], SAMPLER_NODE)
        extra_args["denoise_mask"] = None
        model_k = comfy.samplers.KSamplerX0Inpaint(model_wrap, sigmas)
        model_k.latent_image, model_k.noise = latent_image, noise
        if latent_image is None:
            x = noise
        elif not torch.any(noise):
            x = latent_image
        else:
            s0 = float(sigmas[0])
            x = s0 * noise + (1.0 - s0) * latent_image
        total = len(sigmas) - 1
        k_callback = None
        if callback is not None:
            k_callback = lambda d: callback(d["i"], d["denoised"], d["x"], total)  # noqa: E731
        return self.sampler_function(model_k, x, sigmas, extra_args=extra_args, callback=k_callback,
                                     disable=disable_pbar, conds=conds, cfg=getattr(model_wrap, "cfg", 1.0),
                                     denoise_mask=denoise_mask, noise=noise, latent_image=latent_image,
                                     **self.extra_options)


def flow_sampler(solver, on_eval=None, context=None, control=None):
    """A SAMPLER object for SamplerCustom / SamplerCustomAdvanced, or for the pack's own nodes (with a context)."""
    opts = {"solver": solver}
    if on_eval is not None:
        opts["on_eval"] = on_eval
    if context is not None:
        opts["context"] = context
    if control is not None:
        opts["control"] = control
    return FlowKSampler(flow_sampler_function, extra_options=opts)

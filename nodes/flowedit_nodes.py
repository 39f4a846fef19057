"""FlowEdit (Kulikov et al. 2024, arXiv 2412.08629) in ComfyUI: a GUIDER with a source and a target side, a SAMPLER
that walks the core's FlowEdit (fireflow/flowedit.py) with any solver, and one node that does both.

The guider evaluates one side per call: the sampler says which in the EvalContext (`role`), so each side keeps its own
prompt, negative and CFG while ComfyUI's sampling_function still batches a side's two CFG branches. A stock sampler
with this guider samples the target side. No inversion, no feature cache: the edit starts from the source latent.
"""
import logging

import torch

import comfy.model_management
import comfy.samplers
import latent_preview

from ..fireflow.flowedit import flowedit, nfe as flowedit_nfe, seeded_noise, window
from ..fireflow.solvers import SOLVER_NAMES
from .checks import guards
from .errors import node_errors
from .flow_sampler import (PACK_KEY, EvalContext, FlowKSampler, non_finite_message, require_flow_model, to_velocity,
                           velocity_model)
from .masks import FEATHER_TIP, describe, latent_mask, mask_input
from .passes import (SCHEDULES, check_channels, check_conditioning, check_guidance, check_latent, resolve_grid,
                     with_guidance)

log = logging.getLogger("fireflow")
CATEGORY = "FireFlow/FlowEdit"
GUIDER_NODE, SAMPLER_NODE, EDIT_NODE = "FlowEdit Guider", "FlowEdit Sampler", "FlowEdit"
SIDES = {"source": ("source_positive", "source_negative"), "target": ("positive", "negative")}
N_MAX_TIP = ("FlowEdit walks only the last n_max steps of the grid (it starts at the noise level of step steps - "
             "n_max): more edits more strongly, fewer keeps more of the source. Published: 24 of 28 (FLUX), 33 of 50 "
             "(SD3).")
N_MIN_TIP = ("The last n_min steps sample the target prompt alone from the edit so far (SDEdit-like), which can add "
             "detail; 0 (published) edits to the end.")
N_AVG_TIP = "Average the edit direction over this many noise draws per step (each costs 2 evaluations). Published: 1."
GUIDANCE_TIP = "Distilled guidance of the {side} side (FLUX.1 / FLUX.2 dev; CFG families ignore it). Published: {v}."
CFG_TIP = ("CFG of the {side} side, used when a negative is connected (CFG families); without one the side runs at "
           "cfg 1. Published (SD3): {v}.")


class FlowEditGuider(comfy.samplers.CFGGuider):
    """Two sides, each (prompt, negative, cfg); `predict_noise` evaluates the side the EvalContext names (default
    the target, so stock samplers generate with the target prompt)."""

    def __init__(self, model_patcher):
        super().__init__(model_patcher)
        self.cfgs = {"source": 1.0, "target": 1.0}

    def set_sides(self, source, target, negative, source_cfg, target_cfg):
        conds = {"positive": target, "source_positive": source}
        for side, cfg in (("source", source_cfg), ("target", target_cfg)):
            use = negative is not None and cfg != 1
            self.cfgs[side] = float(cfg) if use else 1.0
            if use:
                conds[SIDES[side][1]] = negative
        self.inner_set_conds(conds)
        self.cfg = self.cfgs["target"]

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        ctx = model_options.get("transformer_options", {}).get(PACK_KEY)
        side = getattr(ctx, "role", None) or "target"
        pos, neg = SIDES[side]
        return comfy.samplers.sampling_function(self.inner_model, x, timestep, self.conds.get(neg),
                                                self.conds.get(pos), self.cfgs[side], model_options=model_options,
                                                seed=seed)


def flowedit_sampler_function(model, x, sigmas, extra_args=None, callback=None, disable=None, solver="euler",
                              n_max=24, n_min=0, n_avg=1, mask=None, mask_until=0.0, on_step=None, context=None,
                              conds=None, cfg=1.0, denoise_mask=None, noise=None, latent_image=None):
    """KSAMPLER function: FlowEdit from the source latent (`latent_image`, model space) along `sigmas`; the
    FlowEdit GUIDER's two sides are the source and target velocities. The NOISE input's seed draws the noise."""
    guider = model.inner_model
    if not isinstance(guider, FlowEditGuider):
        raise ValueError(f"{SAMPLER_NODE}: connect a {GUIDER_NODE} as the guider (it holds the source and target "
                         "prompts FlowEdit needs)")
    if any(guards(extra_args.get("model_options", {}) if extra_args else {})):
        raise ValueError(f"{SAMPLER_NODE}: FlowEdit uses no inversion features: connect the model without the "
                         "V-Injection Patch")
    if latent_image is None or not torch.any(latent_image):
        raise ValueError(f"{SAMPLER_NODE}: FlowEdit edits an image: connect the source image's latent (VAEEncode) "
                         "as latent_image")
    if float(sigmas[0]) < float(sigmas[-1]):
        raise ValueError(f"{SAMPLER_NODE}: FlowEdit walks descending sigmas (from noise to the image); do not flip them")
    extra_args = dict(extra_args or {})
    options = extra_args.get("model_options", {})
    topts = dict(options.get("transformer_options", {}))
    ctx = context if context is not None else EvalContext("sample")
    ctx.pass_name = "sample"
    topts[PACK_KEY] = ctx
    extra_args["model_options"] = {**options, "transformer_options": topts}
    raw = bool(getattr(guider.inner_model.model_sampling, "fireflow_raw_velocity", False))
    s_in = torch.ones(latent_image.shape[0], device=latent_image.device, dtype=torch.float32)
    branch_evals = [0]  # evaluations of each CFG branch: a side with a negative evaluates two per call

    def side(role):
        def velocity(xe, t, point):
            comfy.model_management.throw_exception_if_processing_interrupted()
            ctx.role, ctx.step, ctx.call = role, point.step, point.call
            out = model(xe, s_in * t, **extra_args)
            v = to_velocity(out.to(xe.dtype), xe, t, raw)
            if not torch.isfinite(v).all():
                raise ValueError(non_finite_message(options, "sample", point.step, t))
            ctx.nfe += 1
            branch_evals[0] += 2 if guider.cfgs[role] != 1 else 1
            return v
        return velocity

    total = len(sigmas) - 1

    def step_cb(step, z):
        if on_step is not None:
            on_step(step, z)
        if callback is not None:
            callback({"x": z, "i": step, "sigma": sigmas[step], "sigma_hat": sigmas[step], "denoised": z})

    seed = extra_args.get("seed") or 0
    with node_errors(SAMPLER_NODE):
        out = flowedit(side("source"), side("target"), latent_image, sigmas.detach().to("cpu", torch.float64).tolist(),
                       n_max, n_min, n_avg, solver, seeded_noise(seed, latent_image.shape),
                       mask=mask if mask is not None else denoise_mask, mask_until=mask_until, callback=step_cb)
    ctx.stats["branch_evaluations"] = branch_evals[0]
    return out.x


def flowedit_sampler(solver, n_max, n_min, n_avg, **options):
    """FlowEdit's SAMPLER: FlowKSampler's start-state and checks, then the FlowEdit walk from the source latent."""
    return FlowKSampler(flowedit_sampler_function, extra_options={"solver": solver, "n_max": int(n_max),
                                                                  "n_min": int(n_min), "n_avg": int(n_avg),
                                                                  **options})


def _prompt_inputs():
    return {
        "model": ("MODEL", {"tooltip": "A rectified-flow model (FLUX, SD3.5, Qwen-Image, ...)."}),
        "source": ("CONDITIONING", {"tooltip": "The source prompt: a description of the input image."}),
        "target": ("CONDITIONING", {"tooltip": "The target prompt: the edited image."}),
    }


def _side_inputs():
    return {
        "source_guidance": ("FLOAT", {"default": 1.5, "min": -1.0, "max": 100.0, "step": 0.1,
                                      "tooltip": GUIDANCE_TIP.format(side="source", v="1.5 (FLUX)")}),
        "target_guidance": ("FLOAT", {"default": 5.5, "min": -1.0, "max": 100.0, "step": 0.1,
                                      "tooltip": GUIDANCE_TIP.format(side="target", v="5.5 (FLUX)")}),
    }


def _cfg_inputs():
    return {
        "negative": ("CONDITIONING", {"tooltip": "Negative prompt for both sides (CFG families); FLUX needs none."}),
        "source_cfg": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1,
                                 "tooltip": CFG_TIP.format(side="source", v="3.5")}),
        "target_cfg": ("FLOAT", {"default": 13.5, "min": 0.0, "max": 100.0, "step": 0.1,
                                 "tooltip": CFG_TIP.format(side="target", v="13.5")}),
    }


def make_guider(model, source, target, negative, source_guidance, target_guidance, source_cfg, target_cfg, node,
                samples=None):
    """A FlowEditGuider on `model` with both sides checked; distilled guidance set on each side's prompt."""
    require_flow_model(model, node)
    from .families import family_of
    fam = family_of(model)
    for what, cond in (("source", source), ("target", target)):
        if samples is not None:
            check_conditioning(cond, samples, f"{node} ({what} prompt)")
        elif not cond:
            raise ValueError(f"{node}: the {what} conditioning is empty; connect a text encoder output")
    for value, name in ((source_guidance, "source_guidance"), (target_guidance, "target_guidance"),
                        (source_cfg, "source_cfg"), (target_cfg, "target_cfg")):
        check_guidance(value, f"{node} ({name})")
    if fam is None or fam.guidance_mode(model) == "embedded":
        source, target = with_guidance(source, source_guidance), with_guidance(target, target_guidance)
    guider = FlowEditGuider(model)
    guider.set_sides(source, target, negative, source_cfg, target_cfg)
    return guider


class FireFlowFlowEditGuider:
    DESCRIPTION = ("FlowEdit's guider (Kulikov et al. 2024): the source prompt describes the input image, the target "
                   "prompt the edit; each side has its own guidance / CFG. Use it with the FlowEdit Sampler in "
                   "SamplerCustomAdvanced (latent_image: the source image's latent; sigmas: the whole schedule; "
                   "noise: RandomNoise, whose seed draws FlowEdit's noise). A stock sampler samples the target.")
    CATEGORY = CATEGORY
    FUNCTION = "get_guider"
    RETURN_TYPES = ("GUIDER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**_prompt_inputs(), **_side_inputs()}, "optional": _cfg_inputs()}

    def get_guider(self, model, source, target, source_guidance, target_guidance, negative=None, source_cfg=3.5,
                   target_cfg=13.5):
        return (make_guider(model, source, target, negative, source_guidance, target_guidance, source_cfg,
                            target_cfg, GUIDER_NODE),)


def _window_inputs():
    return {
        "n_max": ("INT", {"default": 24, "min": 1, "max": 1000, "tooltip": N_MAX_TIP}),
        "n_min": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip": N_MIN_TIP}),
        "n_avg": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": N_AVG_TIP}),
        "solver": (SOLVER_NAMES, {"default": "euler", "tooltip": "ODE solver of the edit: euler (published, 2 "
                                  "evaluations per step), fireflow (second order, about 2 per step), midpoint / "
                                  "rf_solver (4 per step)."}),
    }


class FireFlowFlowEditSampler:
    DESCRIPTION = ("FlowEdit as a SAMPLER for SamplerCustomAdvanced with the FlowEdit Guider: edits the latent_image "
                   "(the source image) along the sigmas without inverting it. Evaluations: 2 x n_avg per solver call "
                   "of the edited steps, plus the target-only steps.")
    CATEGORY = CATEGORY
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": _window_inputs()}

    def get_sampler(self, n_max, n_min, n_avg, solver):
        if n_min > n_max:
            raise ValueError(f"{SAMPLER_NODE}: n_min ({n_min}) must not exceed n_max ({n_max})")
        return (flowedit_sampler(solver, n_max, n_min, n_avg),)


class FireFlowFlowEdit:
    DESCRIPTION = ("FlowEdit (Kulikov et al. 2024) in one node: edits an image latent from a source prompt to a "
                   "target prompt without inversion, by integrating the difference of the two prompts' velocities "
                   "along noisy copies of the source. No feature cache, nothing to record; a mask (or the latent's "
                   "noise mask) keeps the source exactly outside it.")
    CATEGORY = CATEGORY
    FUNCTION = "edit"
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The edited latent (VAEDecode it).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            **_prompt_inputs(),
            "latent": ("LATENT", {"tooltip": "The source image's latent (VAEEncode)."}),
            "steps": ("INT", {"default": 28, "min": 1, "max": 1000, "tooltip": "Steps of the whole grid; FlowEdit "
                              "walks the last n_max of them. Published: 28 (FLUX), 50 (SD3)."}),
            **_window_inputs(),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                             "tooltip": "Seed of FlowEdit's per-step noise."}),
            **_side_inputs()},
            "optional": {**_cfg_inputs(),
                         "schedule": (SCHEDULES, {"advanced": True, "default": "auto", "tooltip": "Time grid, as on "
                                      "the FireFlow Inverter (auto: the model's own, including a ModelSampling "
                                      "shift)."}),
                         "sigmas": ("SIGMAS", {"tooltip": "Optional descending sigmas ending at 0 instead of the "
                                                          "built-in grid."}),
                         "mask": ("MASK", {"tooltip": "Edit only inside this mask (1 = edit); the rest stays the "
                                                      "source exactly. Overrides the latent's noise mask."}),
                         "mask_feather": ("INT", {"default": 8, "min": 0, "max": 512, "tooltip": FEATHER_TIP})}}

    def edit(self, model, source, target, latent, steps, n_max, n_min, n_avg, solver, seed, source_guidance,
             target_guidance, negative=None, source_cfg=3.5, target_cfg=13.5, schedule="auto", sigmas=None,
             mask=None, mask_feather=8):
        node = EDIT_NODE
        require_flow_model(model, node)
        samples = check_latent(latent, node, model)
        check_channels(model, samples, node)
        if not torch.any(samples):
            raise ValueError(f"{node}: the latent is all zeros; connect the source image's VAEEncode output")
        with node_errors(node):
            grid = resolve_grid(model, samples, steps, schedule, sigmas)
            first, switch = window(len(grid) - 1, n_max, n_min)
        guider = make_guider(velocity_model(model), source, target, negative, source_guidance, target_guidance,
                             source_cfg, target_cfg, node, samples)
        chosen = mask_input(mask, latent)
        m = latent_mask(chosen, tuple(samples.shape), mask_feather, node) if chosen is not None else None
        total = flowedit_nfe(len(grid) - 1, n_max, n_min, n_avg, solver)
        preview = latent_preview.prepare_callback(guider.model_patcher, len(grid) - 1 - first)
        ctx = EvalContext("sample")
        sampler = flowedit_sampler(solver, n_max, n_min, n_avg, mask=m, context=ctx,
                                   on_step=lambda i, z: preview(i - first, z, None, len(grid) - 1 - first))
        out = guider.sample(torch.zeros_like(samples), samples, sampler, grid.to(torch.float32), disable_pbar=True,
                            seed=int(seed))
        result = {k: v for k, v in latent.items() if k != "samples"}
        result["samples"] = out.to(comfy.model_management.intermediate_device())
        g = grid.tolist()
        branches = ctx.stats.get("branch_evaluations", ctx.nfe)
        text = (f"FlowEdit: {solver}, steps {first}-{len(g) - 2} of {len(g) - 1} (sigma {g[first]:.3g} -> 0"
                + (f", target alone from sigma {g[switch]:.3g}" if switch < len(g) - 1 else "")
                + f"), n_avg {n_avg}, {ctx.nfe} evaluations"
                + (f" ({branches} with both CFG branches of the sides with a negative)" if branches != ctx.nfe else ""))
        if m is not None:
            text += f"; {describe(m)}, the rest is the source"
        log.info("[FireFlow] %s: %s (planned %d)", node, text, total)
        return {"ui": {"text": [text]}, "result": (result,)}


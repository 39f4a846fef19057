"""FireFlow Inverter, FireFlow Sampler and the solver SAMPLER node."""
import logging

import torch

import comfy.model_management

from ..fireflow.features import CacheSpec, FeatureStore
from ..fireflow.masking import MaskGuide, TrajectoryRecorder
from ..fireflow.record import InversionRecord, tensor_fingerprint
from ..fireflow.schedules import expert_split, inversion_grid
from ..fireflow.solvers import FIRST, SOLVER_NAMES, SOLVERS
from .attention import InjectionGuard, RecordingGuard, family_blocks, install, recorder
from .checks import add_guard, check_feature_conditioning, guards
from .families import family_of
from .editing_nodes import ADVANCED, human_bytes
from .errors import node_errors
from .experts import BOUNDARY_TIP, LOW_TIP, auto_boundary, check_experts, check_pair, walk
from .control_nodes import CONTROL, FlowControl
from .flow_sampler import EvalContext, flow_sampler, require_flow_model
from .masks import FEATHER_TIP, MASK_TIP, UNTIL_TIP, describe, latent_mask, mask_input
from .passes import (SCHEDULES, check_channels, check_conditioning, check_guidance, check_latent, model_fingerprint,
                     resolve_grid, with_guidance)

log = logging.getLogger("fireflow")

CATEGORY = "FireFlow"
INVERSION = "FIREFLOW_INVERSION"
SOLVER_TIP = "ODE solver. " + " ".join(f"{name}: {rule.description}." for name, rule in SOLVERS.items())
STEPS_TIP = "Number of steps on the time grid; the edit walks the same grid back. The paper edits with 8."
SCHEDULE_TIP = ("Time grid. auto: the model's own schedule, including a shift set with ModelSamplingFlux / "
                "ModelSamplingSD3 / ModelSamplingAuraFlow; FLUX.1 without such a node gets the FireFlow reference grid "
                "(resolution shift for dev, linear for schnell), FLUX.2 its own scheduler. flux_shift: FLUX.1's "
                "resolution shift; linear: no shift; model: the model's sampling. Ignored when SIGMAS are connected. "
                "Edit has no effect? A larger shift (max_shift on ModelSamplingFlux, shift on ModelSamplingSD3) in "
                "front of both passes spends more steps at high noise, where the layout changes.")
NEGATIVE_TIP = "Negative prompt for CFG (only used when cfg is not 1)."


def _family_name(model):
    fam = family_of(model)
    return fam.name if fam is not None else type(model.model).__name__


def _embedded_guidance(model):
    """Families with a distilled guidance input take the guidance widget; CFG families ignore it."""
    fam = family_of(model)
    return fam is None or fam.guidance_mode(model) == "embedded"


def check_cfg(cfg, negative, node):
    import math
    if not math.isfinite(float(cfg)):
        raise ValueError(f"{node}: cfg is {cfg}; set a finite number")
    if cfg != 1 and negative is None:
        raise ValueError(f"{node}: cfg {cfg:g} needs a negative conditioning: connect one (an empty prompt through "
                         "the same text encoder), or set cfg 1")


def _summary(text):
    return {"text": [text]}


class FireFlowInverter:
    DESCRIPTION = ("Inverts an image latent into structured noise by walking the rectified-flow ODE from t = 0 to "
                   "t = 1 (FireFlow, Deng et al. 2024). Connect its LATENT and INVERSION outputs to the FireFlow "
                   "Sampler to reconstruct or edit. The input MODEL is not changed.")
    CATEGORY = CATEGORY
    FUNCTION = "invert"
    RETURN_TYPES = ("LATENT", INVERSION)
    RETURN_NAMES = ("inverted_latent", "inversion")
    OUTPUT_TOOLTIPS = ("The structured noise at t = 1 (feed it to the FireFlow Sampler).",
                       "What the inversion did (grid, solver, shapes, fingerprints), for the sampler.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "A rectified-flow model: FLUX.1 / FLUX.2, Chroma, Qwen-Image, SD3.5, "
                                    "Lumina 2 / Z-Image, HiDream, HunyuanImage 2.1 (README: model families)."}),
                "conditioning": ("CONDITIONING", {"tooltip": "The source prompt: a description of the input image."}),
                "latent": ("LATENT", {"tooltip": "The image latent to invert (VAEEncode output)."}),
                "steps": ("INT", {"default": 8, "min": 1, "max": 1000, "tooltip": STEPS_TIP}),
                "solver": (SOLVER_NAMES, {"default": "fireflow", "tooltip": SOLVER_TIP}),
                "guidance": ("FLOAT", {"default": 1.0, "min": -1.0, "max": 100.0, "step": 0.1,
                                       "tooltip": "Distilled guidance during inversion (FLUX.1 / FLUX.2 dev; CFG "
                                                  "families ignore it). The reference inverts with 1. "
                                                  "-1 keeps the conditioning's own value (FluxGuidance)."}),
            },
            "optional": {
                "schedule": (SCHEDULES, {**ADVANCED, "default": "auto", "tooltip": SCHEDULE_TIP}),
                "sigmas": ("SIGMAS", {"tooltip": "Optional descending sigmas ending at 0 to use instead of the "
                                                 "built-in grid (the inverter walks them backwards)."}),
                "feature_cache": ("FIREFLOW_CACHE", {"tooltip": "Connect an Attention Feature Cache to record the "
                                                                "attention features an edit needs (V-Injection)."}),
                "negative": ("CONDITIONING", {"tooltip": NEGATIVE_TIP}),
                "cfg": ("FLOAT", {**ADVANCED, "default": 1.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                  "tooltip": "CFG scale of the inversion. 1 (the usual choice, and the reference's) "
                                             "evaluates the prompt alone; other values need a negative, evaluate "
                                             "both branches, and the edit must then use CFG too."}),
                "model_low_noise": ("MODEL", {"tooltip": LOW_TIP}),
                "expert_boundary": ("FLOAT", {**ADVANCED, "default": -1.0, "min": -1.0, "max": 1.0, "step": 0.005,
                                              "tooltip": BOUNDARY_TIP}),
                "control": (CONTROL, {"tooltip": "An RF-Inversion Forward Control: steer the inversion towards a "
                                                 "seeded noise (RF-Inversion, Rout et al. 2024)."}),
                "keep_trajectory": ("BOOLEAN", {**ADVANCED, "default": True, "tooltip": "Keep the inversion's state "
                                    "at every grid time and midpoint (2N + 1 latents; the summary gives the bytes), so "
                                    "a masked edit can replay it outside the mask and the RF-Inversion reverse "
                                    "control knows the source. Off: only the inverted latent is kept."}),
            },
        }

    def invert(self, model, conditioning, latent, steps, solver, guidance, schedule="auto", sigmas=None,
               feature_cache=None, negative=None, cfg=1.0, model_low_noise=None, expert_boundary=-1.0, control=None,
               keep_trajectory=True):
        node = "FireFlow Inverter"
        require_flow_model(model, node)
        if model_low_noise is not None:
            require_flow_model(model_low_noise, node)
            check_pair(model, model_low_noise, node)
        samples = check_latent(latent, node, model)
        check_channels(model, samples, node)
        check_conditioning(conditioning, samples, node)
        check_guidance(guidance, node)
        check_cfg(cfg, negative, node)
        if negative is not None and cfg != 1:
            check_conditioning(negative, samples, node)
        if solver not in SOLVERS:
            raise ValueError(f"{node}: unknown solver {solver!r}; choose one of {', '.join(SOLVER_NAMES)}")
        with node_errors(node):
            grid = resolve_grid(model, samples, steps, schedule, sigmas)
        store = None
        branches = (0, 1) if cfg != 1 else (0,)
        if feature_cache is not None:
            fam, counts = family_blocks(model, node)
            check_feature_conditioning({"positive": conditioning, "negative": negative if cfg != 1 else None}, node,
                                       recording=True)
            store = self._feature_store(model, fam, counts, feature_cache, samples, conditioning, grid, solver,
                                        branches, node)
        cond = with_guidance(conditioning, guidance) if _embedded_guidance(model) else conditioning

        def hooks(m):
            install(m, fam, store.plan.blocks, recorder(store))
            add_guard(m, RecordingGuard(fam, store))
        models, split, experts = {"high": model}, len(grid) - 1, {}  # one model: every step on it
        if model_low_noise is not None:  # Wan 2.2 A14B: the low-noise expert walks up to the boundary, then the high
            boundary = auto_boundary(model, expert_boundary)
            models["low"], split = model_low_noise, expert_split(grid.tolist(), boundary)
            experts = dict(experts=(model_fingerprint(model), model_fingerprint(model_low_noise)),
                           expert_boundary=boundary, expert_steps=split)
        steps = len(grid) - 1
        path = TrajectoryRecorder(steps) if keep_trajectory else None
        if control is not None and not isinstance(control, FlowControl):
            raise ValueError(f"{node}: control must come from an RF-Inversion Forward Control node")
        controller = None if control is None else control.controller(True, tuple(samples.shape), steps, None, None,
                                                                      node)
        inverted, nfe, _ = walk(models, cond, samples, inversion_grid(grid), split, solver, node,
                                install=hooks if store is not None else None, negative=negative, cfg=cfg,
                                hooks=[h for h in (controller, path) if h is not None])
        features = None
        if store is not None:
            with node_errors(node):
                features = store.freeze()
        trajectory = path.freeze() if path is not None else None
        record = InversionRecord(
            grid=tuple(float(v) for v in grid.to(torch.float32).tolist()), solver=solver,
            latent_shape=tuple(samples.shape), latent_fingerprint=tensor_fingerprint(samples),
            model_fingerprint=model_fingerprint(model), guidance=None if guidance < 0 else float(guidance), nfe=nfe,
            features=features, family=_family_name(model), cfg=float(cfg), trajectory=trajectory,
            control="" if control is None else control.describe(steps), **experts)
        out = {k: v for k, v in latent.items() if k != "samples"}  # a noise mask goes on to the edit
        out["samples"] = inverted
        text = f"inverted: {record.describe()}"
        if trajectory is not None:
            text += f"; trajectory kept for masked edits: {human_bytes(trajectory.nbytes)}"
        if store is not None:
            text += (f"; recorded {store.plan.entries} feature tensors ({', '.join(store.plan.spec.features)}) in "
                     f"{store.plan.describe_blocks()}: {human_bytes(store.nbytes)} on {store.device}")
        return {"ui": _summary(text), "result": (out, record)}

    @staticmethod
    def _feature_store(model, fam, counts, spec, samples, conditioning, grid, solver, branches, node):
        """Resolve the cache spec for this model and grid, report the estimate, and make the empty store."""
        if not isinstance(spec, CacheSpec):
            raise ValueError(f"{node}: feature_cache must come from an Attention Feature Cache node")
        spec = fam.with_recipe(spec, counts)
        with node_errors(node):
            spec = spec.for_grid(grid.detach().to("cpu", torch.float32).tolist())
        width = fam.attention_width(model.model.diffusion_model)
        dtype = model.model.manual_cast_dtype or model.model.get_dtype()
        L = fam.image_tokens(samples.shape)
        # families whose text enters by cross-attention hold image tokens only in their self-attention
        T = max(c[0].shape[1] for c in conditioning) if fam.joint_text else 0
        with node_errors(node):
            plan, estimate = spec.check_budget(counts, len(grid) - 1, solver, (samples.shape[0], 1, width, T, L),
                                               dtype, branches)
        log.info("[FireFlow] %s: recording %d tensors in %s, about %s (peak: that plus one tensor being copied)",
                 node, plan.entries, plan.describe_blocks(), human_bytes(estimate))
        device = "cpu" if spec.device == "cpu" else comfy.model_management.get_torch_device()
        return FeatureStore(plan, L, device, dtype)


class FireFlowSampler:
    DESCRIPTION = ("Walks from noise (normally the Inverter's output) back to an image latent along the inversion's "
                   "grid with the same solver, under the target prompt. Without an INVERSION input it samples with "
                   "the steps/solver/schedule widgets instead. Connect a V-Injection model to edit.")
    CATEGORY = CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The denoised image latent (VAEDecode it).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The same model as the inversion (or its V-Injection clone)."}),
                "conditioning": ("CONDITIONING", {"tooltip": "The target prompt (the source prompt to reconstruct)."}),
                "latent": ("LATENT", {"tooltip": "The starting noise: the Inverter's inverted_latent."}),
                "guidance": ("FLOAT", {"default": 2.0, "min": -1.0, "max": 100.0, "step": 0.1,
                                       "tooltip": "Distilled guidance for the edit (FLUX.1 / FLUX.2 dev; CFG families "
                                                  "use cfg). The reference edits with 2 (2.5-3 for "
                                                  "some stylisations) and reconstructs with 1. -1 keeps the "
                                                  "conditioning's own value (FluxGuidance)."}),
            },
            "optional": {
                "inversion": (INVERSION, {"tooltip": "The Inverter's record: the grid and solver to walk back. "
                                                     "When connected, steps, solver, schedule and sigmas are ignored."}),
                "steps": ("INT", {"default": 8, "min": 1, "max": 1000, "tooltip": STEPS_TIP}),
                "solver": (SOLVER_NAMES, {"default": "fireflow", "tooltip": SOLVER_TIP}),
                "schedule": (SCHEDULES, {**ADVANCED, "default": "auto", "tooltip": SCHEDULE_TIP}),
                "sigmas": ("SIGMAS", {"tooltip": "Optional descending sigmas (only without an INVERSION input)."}),
                "negative": ("CONDITIONING", {"tooltip": NEGATIVE_TIP}),
                "cfg": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 100.0, "step": 0.1,
                                  "tooltip": "CFG scale of the edit. -1: the family's usual value when a negative is "
                                             "connected (FLUX.1 / FLUX.2 dev / Kontext: 1, they use guidance instead; "
                                             "Chroma, Qwen-Image, SD3.5, HiDream: 4), else 1."}),
                "model_low_noise": ("MODEL", {"tooltip": LOW_TIP + " With an INVERSION it must be the inversion's "
                                                         "low-noise expert (or its V-Injection clone)."}),
                "expert_boundary": ("FLOAT", {**ADVANCED, "default": -1.0, "min": -1.0, "max": 1.0, "step": 0.005,
                                              "tooltip": BOUNDARY_TIP}),
                "mask": ("MASK", {"tooltip": MASK_TIP}),
                "mask_feather": ("INT", {"default": 8, "min": 0, "max": 512, "tooltip": FEATHER_TIP}),
                "mask_blend_until": ("FLOAT", {**ADVANCED, "default": 0.0, "min": 0.0, "max": 0.99, "step": 0.01,
                                               "tooltip": UNTIL_TIP}),
                "control": (CONTROL, {"tooltip": "An RF-Inversion Reverse Control: steer the first steps of the edit "
                                                 "back towards the source image (RF-Inversion, Rout et al. 2024)."}),
            },
        }

    def sample(self, model, conditioning, latent, guidance, inversion=None, steps=8, solver="fireflow",
               schedule="auto", sigmas=None, negative=None, cfg=-1.0, model_low_noise=None, expert_boundary=-1.0,
               mask=None, mask_feather=8, mask_blend_until=0.0, control=None):
        node = "FireFlow Sampler"
        require_flow_model(model, node)
        if model_low_noise is not None:
            require_flow_model(model_low_noise, node)
            check_pair(model, model_low_noise, node)
        models, split = {"high": model}, None  # split: edit steps on the high-noise expert of a two-expert pass
        samples = check_latent(latent, node, model)
        check_channels(model, samples, node)
        cond_batch = check_conditioning(conditioning, samples, node, prompt_batches=True)
        check_guidance(guidance, node)
        if cfg < 0:
            fam = family_of(model)
            cfg = (fam.default_cfg if fam is not None else 1.0) if negative is not None else 1.0
        check_cfg(cfg, negative, node)
        if negative is not None and cfg != 1:
            check_conditioning(negative, samples, node, prompt_batches=True)
        if inversion is not None:
            if not isinstance(inversion, InversionRecord):
                raise ValueError(f"{node}: the inversion input is not a FireFlow inversion record")
            if inversion.family and inversion.family != _family_name(model):
                raise ValueError(f"{node}: this inversion was made with a {inversion.family} model; this model is "
                                 f"{_family_name(model)}. Connect the model the inversion used")
            with node_errors(node):
                inversion.check_latent(samples.shape)
            grid, solver = inversion.grid_tensor(), inversion.solver
            if inversion.experts:
                models, split = check_experts(inversion, model, model_low_noise, node), inversion.expert_steps
            elif model_low_noise is not None:
                raise ValueError(f"{node}: this inversion was made with one model; disconnect model_low_noise (or "
                                 "invert with both Wan 2.2 experts)")
        else:
            if not torch.any(samples):
                raise ValueError(f"{node}: the latent is all zeros (an empty latent). Connect the Inverter's "
                                 "inverted_latent, or generate with SamplerCustomAdvanced + RandomNoise + the "
                                 "FireFlow Solver SAMPLER")
            with node_errors(node):
                grid = resolve_grid(model, samples, steps, schedule, sigmas)
            if model_low_noise is not None:
                models = {"high": model, "low": model_low_noise}
                split = expert_split(grid.tolist(), auto_boundary(model, expert_boundary))
        if cond_batch > samples.shape[0]:  # one inversion, several target prompts in one pass
            samples = samples.repeat(cond_batch // samples.shape[0], *[1] * (samples.ndim - 1))
        hooks, mask_latent = self._hooks(model, inversion, latent, samples, mask, mask_feather, mask_blend_until,
                                         control, len(grid) - 1, node)
        injecting = [g for m in models.values() for g in guards(m.model_options) if isinstance(g, InjectionGuard)]
        neg = negative if cfg != 1 else None
        for g in injecting:  # the same checks the sampler runs, here before the model is even loaded
            g.check_record(inversion)
            g.before(EvalContext("sample", cfg, mask=mask_latent), grid, solver, tuple(samples.shape),
                     {"positive": conditioning, "negative": neg})
        cond = with_guidance(conditioning, guidance) if _embedded_guidance(model) else conditioning
        out_samples, nfe, ctx = walk(models, cond, samples, grid, len(grid) - 1 if split is None else split, solver,
                                     node, negative=neg, cfg=cfg, hooks=hooks, mask=mask_latent)
        out = {k: v for k, v in latent.items() if k != "samples"}
        out["samples"] = out_samples
        g = ", ".join(f"{v:.4f}" for v in grid.tolist())
        branches = f" x 2 CFG branches (cfg {cfg:g})" if neg is not None else ""
        text = f"sampled: {solver}, {len(grid) - 1} steps, {nfe} evaluations{branches}, grid [{g}]"
        if split is not None:
            text += f"; high-noise expert for steps 0-{split - 1}, low-noise from step {split}"
        if mask_latent is not None:
            text += (f"; {describe(mask_latent)}, the rest replays the inversion"
                     + (f" down to sigma {mask_blend_until:g}" if mask_blend_until > 0 else ""))
        if control is not None:
            text += f"; {control.describe(len(grid) - 1)}"
        hits = ctx.stats.get("hits")
        if hits:
            evals = sorted({(s, c) for s, c, _, _ in hits})
            image_only = any(g.inversion.features.plan.spec.text_tokens == "image_only" for g in injecting)
            text_mode = "text tokens replaced" if all(ctx.stats["text_replaced"]) else \
                f"text tokens kept ({'text_tokens image_only' if image_only else 'the prompts have other lengths'})"
            if ctx.layouts and all(lay.text == 0 for lay in ctx.layouts.values()):
                text_mode = "self-attention over the image tokens (the text enters by cross-attention)"
            sig = grid.detach().to("cpu", torch.float64).tolist()
            at = ", ".join(f"{sig[st] if c == FIRST else (sig[st] + sig[st + 1]) / 2:.3g}" for st, c in evals)
            text += f"; injected {len(hits)} block calls at (step, call) {evals} (sigma {at}), {text_mode}"

        return {"ui": _summary(text), "result": (out,)}

    @staticmethod
    def _hooks(model, inversion, latent, samples, mask, feather_px, until, control, steps, node):
        """The pass hooks of an edit: RF-Inversion's reverse controller, and a masked edit's guide replaying the
        inversion outside the mask. Returns (hooks, latent-resolution mask or None); refuses before any work."""
        hooks, m = [], None
        trajectory = getattr(inversion, "trajectory", None)
        if control is not None:
            if not isinstance(control, FlowControl):
                raise ValueError(f"{node}: control must come from an RF-Inversion Reverse Control node")
            hooks.append(control.controller(False, tuple(samples.shape), steps,
                                            model.get_model_object("process_latent_in"), trajectory, node))
        chosen = mask_input(mask, latent)
        if chosen is not None:
            if inversion is None:
                raise ValueError(f"{node}: a masked edit replays the inversion outside the mask: connect the "
                                 "Inverter's inversion output (to inpaint from noise, use SamplerCustomAdvanced with "
                                 "RandomNoise and the FireFlow Solver SAMPLER)")
            if trajectory is None:
                raise ValueError(f"{node}: this inversion kept no trajectory (keep_trajectory off, or a file saved by "
                                 "0.4 or earlier), which a masked edit replays outside the mask: invert again with "
                                 "keep_trajectory on")
            m = latent_mask(chosen, tuple(samples.shape), feather_px, node)
            with node_errors(node):
                hooks.append(MaskGuide(m, trajectory, until))
        return hooks, m


class FireFlowSolverSampler:
    DESCRIPTION = ("The FireFlow, RF-Solver, midpoint and Euler solvers as a SAMPLER for SamplerCustom / "
                   "SamplerCustomAdvanced (text-to-image: FireFlow at N + 1 evaluations). With DisableNoise the "
                   "latent is taken as the state at the first sigma, so ascending sigmas invert and descending "
                   "sigmas from 1 sample from an inverted latent.")
    CATEGORY = CATEGORY + "/samplers"
    FUNCTION = "get_sampler"
    RETURN_TYPES = ("SAMPLER",)

    NODE = "FireFlow Solver (SAMPLER)"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"solver": (SOLVER_NAMES, {"default": "fireflow", "tooltip": SOLVER_TIP})},
                "optional": {"control": (CONTROL, {"tooltip": "RF-Inversion: a Forward Control for an inverting pass "
                                                              "(FlipSigmas), a Reverse Control (with its source_latent) "
                                                              "for a sampling one."})}}

    def get_sampler(self, solver, control=None):
        if control is not None and not isinstance(control, FlowControl):
            raise ValueError(f"{self.NODE}: control must come from an RF-Inversion Forward or Reverse Control node")
        return (flow_sampler(solver, control=control),)

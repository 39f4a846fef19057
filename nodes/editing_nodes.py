"""Attention Feature Cache and V-Injection Patch: editing by re-using inversion's attention features."""
import logging

from ..fireflow.errors import ChoiceError, MissingFeatureError, StepsError
from ..fireflow.features import STORAGE_DEVICES, STORAGE_DTYPES, CacheSpec
from ..fireflow.injection import CALL_POLICIES, MODES, TEXT_POLICIES, Strategy, apply_strategy
from ..fireflow.masking import INJECT_REGIONS
from ..fireflow.record import InversionRecord
from .attention import InjectionGuard, family_blocks, injector, install
from .checks import add_guard
from .errors import node_errors
from .passes import model_fingerprint

log = logging.getLogger("fireflow")
CATEGORY = "FireFlow"
CACHE = "FIREFLOW_CACHE"
INVERSION = "FIREFLOW_INVERSION"
# Rarely changed inputs: newer frontends fold them into the node's advanced section; older ones ignore the flag and
# show them as before. The classic API carries it on both (ComfyUI 0.3.75's V3 schema has no advanced inputs).
ADVANCED = {"advanced": True}


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


class FireFlowFeatureCache:
    DESCRIPTION = ("Says what the FireFlow Inverter records for editing: which attention features (V by default), "
                   "in which blocks, for how many editing steps, at which evaluations, and where they are kept. "
                   "Only what the edit will consume is stored; the Inverter reports the estimate and the bytes held. "
                   "Defaults reproduce the FireFlow paper (V of all 38 single-stream blocks, 1 step, midpoint calls).")
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (CACHE,)
    RETURN_NAMES = ("feature_cache",)
    OUTPUT_TOOLTIPS = ("Connect to the FireFlow Inverter's feature_cache input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "record_v": ("BOOLEAN", {"default": True, "tooltip": "Record V (needed by replace_v / add_v, the default "
                                                                 "editing strategy)."}),
            "record_q": ("BOOLEAN", {**ADVANCED, "default": False,
                                     "tooltip": "Record Q (for add_q / replace_q variants)."}),
            "record_k": ("BOOLEAN", {**ADVANCED, "default": False,
                                     "tooltip": "Record K (for add_k / replace_k variants)."}),
            "single_blocks": ("STRING", {"default": "auto", "tooltip": "Single-stream blocks: 'auto' (the family's "
                                         "recipe: all for FLUX, Chroma, HiDream; FireFlow), 'all', '20-37' (RF-Edit), "
                                         "a list like '0-9, 30-37', or 'none'. FLUX.1 has 38."}),
            "double_blocks": ("STRING", {**ADVANCED, "default": "auto", "tooltip": "Double-stream (joint) blocks: "
                                         "'auto' (the family's recipe: none for FLUX, where the reference uses none; "
                                         "all for Qwen-Image and SD3, which have no single-stream blocks), 'all', a "
                                         "list, or 'none'. FLUX.1 has 19 (0-18)."}),
            "inject_steps": ("INT", {"default": 1, "min": 1, "max": 1000, "tooltip": "How many of the first (noisiest) "
                                     "editing steps will receive features. FireFlow: 1; RF-Edit: 2-8. More keeps more "
                                     "of the source structure and follows the prompt less."}),
            "calls": (CALL_POLICIES, {**ADVANCED, "default": "reference", "tooltip": "Which evaluations inside a "
                      "step. reference: as each method's code does (FireFlow: midpoint calls only, both calls at 1 "
                      "step; RF-Solver: both). mid: midpoint only. both: the step-start call too."}),
            "text_tokens": (TEXT_POLICIES, {"default": "auto", "tooltip": "auto: image tokens always, text tokens too "
                            "when both prompts have the same token count (the reference replaces the whole sequence). "
                            "image_only: never text (stores less). full: whole sequence, error if lengths differ."}),
            "device": (STORAGE_DEVICES, {**ADVANCED, "default": "auto", "tooltip": "Where features are kept: "
                       "gpu on the compute device (fastest), cpu in (pinned) host memory (saves VRAM). auto: gpu for "
                       "image models, cpu for video models (Wan, HunyuanVideo)."}),
            "dtype": (tuple(STORAGE_DTYPES), {"default": "auto", "tooltip": "Storage precision: model (as computed), "
                      "fp16, bf16, or fp8 (half the bytes of bf16, per-tensor scale). auto: model for image models, "
                      "fp8 for video models."}),
        }, "optional": {
            "inject_until_sigma": ("FLOAT", {**ADVANCED, "default": 0.0, "min": 0.0, "max": 0.999, "step": 0.01,
                                             "tooltip": "0: use inject_steps. Otherwise inject the editing steps "
                                             "that start at a noise level sigma >= this value, whatever the grid: "
                                             "a model with a large shift (Wan, SD3) spends more steps at high sigma, "
                                             "so 'the first k steps' means something else per model."}),
            "max_cache_gb": ("FLOAT", {**ADVANCED, "default": 8.0, "min": 0.001, "max": 1024.0, "step": 0.5,
                                       "tooltip":
                             "Refuse to record more than this many GiB (checked before the inversion starts; the "
                             "message lists settings that fit). FLUX-dev 1024² at the defaults needs 1.0 GiB."}),
        }}

    def make(self, record_v, record_q, record_k, single_blocks, double_blocks, inject_steps, calls, text_tokens,
             device, dtype, max_cache_gb=8.0, inject_until_sigma=0.0):
        features = tuple(f for f, on in (("q", record_q), ("k", record_k), ("v", record_v)) if on)
        if not features:
            raise ValueError("Attention Feature Cache: record at least one of V, Q, K")
        with node_errors("Attention Feature Cache"):
            return (CacheSpec(features=features, single_blocks=single_blocks, double_blocks=double_blocks,
                              inject_steps=inject_steps, calls=calls, text_tokens=text_tokens, device=device,
                              dtype=dtype, max_gb=max_cache_gb, inject_until_sigma=inject_until_sigma),)


class FireFlowVInjection:
    DESCRIPTION = ("Returns a clone of the MODEL that, during the FireFlow Sampler's first inject steps, puts the "
                   "attention features recorded by the Inverter back in (replace V by default: FireFlow / RF-Edit "
                   "editing). The input MODEL is not changed; other patches and attention overrides keep working.")
    CATEGORY = CATEGORY
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("Use this model in the FireFlow Sampler (with the same INVERSION).",)

    @classmethod
    def INPUT_TYPES(cls):
        mode_tip = "keep: leave the editing pass's {f}; replace: use the recorded {f}; add: {f} + ratio x recorded {f}."
        req = {
            "model": ("MODEL", {"tooltip": "The model used for the inversion."}),
            "inversion": (INVERSION, {"tooltip": "The Inverter's INVERSION output, recorded with a feature cache."}),
            "inject_steps": ("INT", {"default": -1, "min": -1, "max": 1000, "tooltip": "Editing steps that receive "
                                     "features: -1 = as recorded; 0 = none (plain sampling); at most as recorded."}),
        }
        for f, default in (("v", "replace"), ("q", "keep"), ("k", "keep")):
            extra = ADVANCED if f != "v" else {}
            req[f"{f}_mode"] = (MODES, {**extra, "default": default, "tooltip": mode_tip.format(f=f.upper())})
        for f in ("v", "q", "k"):
            req[f"{f}_ratio"] = ("FLOAT", {**ADVANCED, "default": 1.0, "min": -10.0, "max": 10.0, "step": 0.05,
                                           "tooltip": f"Weight of the recorded {f.upper()} when {f}_mode is add."})
        return {"required": req, "optional": {
            "inject_region": (INJECT_REGIONS, {**ADVANCED, "default": "all", "tooltip": "With a masked edit (a mask "
                              "on the FireFlow Sampler): put features back into every image token (all), only the "
                              "tokens inside the mask (keeps more of the masked object's layout, edits it less), or "
                              "only those outside (the edited area is free; the kept area is replayed anyway). Each "
                              "token is weighted by how much of it the mask covers."}),
        }}

    def patch(self, model, inversion, inject_steps, v_mode, q_mode, k_mode, v_ratio, q_ratio, k_ratio,
              inject_region="all"):
        node = "V-Injection Patch"
        if not isinstance(inversion, InversionRecord):
            raise ValueError(f"{node}: the inversion input is not a FireFlow inversion record")
        store = inversion.features
        if store is None:
            raise ValueError(f"{node}: this inversion recorded no attention features: connect an Attention Feature "
                             "Cache to the Inverter's feature_cache input")
        fam, counts = family_blocks(model, node)
        if inversion.family and inversion.family != fam.name:
            raise ValueError(f"{node}: the features were recorded with a {inversion.family} model; this model is "
                             f"{fam.name}: connect the model that was used for the inversion")
        if counts != store.plan.block_counts:
            raise ValueError(f"{node}: the features were recorded for a model with {store.plan.block_counts} (double, "
                             f"single) blocks; this model has {counts}: connect the inversion's model")
        expert = inversion.expert_of(model_fingerprint(model))
        if expert is None:
            theirs = " / ".join(inversion.experts) if inversion.experts else inversion.model_fingerprint
            raise ValueError(f"{node}: the features were recorded with another model (fingerprint {theirs}, this "
                             f"model {model_fingerprint(model)}): connect the model that was used for the inversion"
                             + (" (either Wan 2.2 expert)" if inversion.experts else ""))
        plan = store.plan
        with node_errors(node):
            strategy = Strategy(q=q_mode, k=k_mode, v=v_mode, q_ratio=q_ratio, k_ratio=k_ratio, v_ratio=v_ratio)
            missing = [f for f in strategy.used if f not in plan.spec.features]
            if missing:
                raise MissingFeatureError(missing, plan.spec.features)
            recorded = plan.spec.inject_steps
            steps = recorded if inject_steps < 0 else inject_steps
            if steps > recorded:
                raise StepsError(steps, recorded, "recorded")
            if inject_region not in INJECT_REGIONS:
                raise ChoiceError("inject_region", inject_region, INJECT_REGIONS)
        m = model.clone()
        whole = plan.injection_for(steps)
        span = inversion.expert_span(expert)  # a two-expert inversion: the steps this expert walks
        plan_map = {dst: src for dst, src in whole.items() if dst[0] in span}
        if plan_map and strategy.used:
            install(m, fam, plan.blocks, injector(plan_map, store, strategy, apply_strategy, inject_region))
            add_guard(m, InjectionGuard(inversion, plan_map, fam, expert, {s for s, _ in whole}, inject_region))
        region = "" if inject_region == "all" else f" ({inject_region.replace('_', ' ')} tokens only)"
        summary = (f"{strategy.describe()}{region} in {plan.describe_blocks()}: {len(plan_map)} evaluation(s) per "
                   f"block {sorted(plan_map)} (step, call); {human_bytes(store.nbytes)} held")
        if expert != "both":
            summary += (f"; {expert}-noise expert (edit steps {span.start}-{span.stop - 1}"
                        f"{', the other injections are for the other expert' if len(plan_map) < len(whole) else ''})")
        log.info("[FireFlow] %s: %s", node, summary)
        return {"ui": {"text": [summary]}, "result": (m,)}

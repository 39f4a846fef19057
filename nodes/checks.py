"""Checks shared by the pack's nodes and its SAMPLER, run before the first model evaluation.

- Conditioning in either of ComfyUI's forms (node inputs `[[tensor, dict], ...]`, or a guider's processed dicts).
- Guards: a clone that records or injects attention features carries one in transformer_options; the sampler calls
  `before()` ahead of the first evaluation (with the conditioning the guider will use) and `after()` behind the last,
  so the SAMPLER path is checked exactly like the pack's own nodes.
- Non-finite model output, with the model patches that may have caused it.
"""
import math

import torch

GUARDS_KEY = "fireflow_guards"
CFG_HOOKS = ("sampler_cfg_function", "sampler_pre_cfg_function", "sampler_post_cfg_function", "model_function_wrapper")


def entries(conds):
    """Conditioning entries as dicts ('cross_attn' holds the token tensor), from either of ComfyUI's forms."""
    out = []
    for c in conds or ():
        if isinstance(c, dict):
            out.append(c)
        else:
            out.append({**c[1], "cross_attn": c[0]})
    return out


def check_finite_conditioning(conds, node, what="conditioning"):
    for e in entries(conds):
        for key, name in (("cross_attn", "token embeddings"), ("pooled_output", "pooled vector")):
            t = e.get(key)
            if isinstance(t, torch.Tensor) and not torch.isfinite(t).all():
                raise ValueError(f"{node}: the {what}'s {name} contain NaN or infinite values: check the text encoder "
                                 "or the node that produced the conditioning")
        g = e.get("guidance")
        if g is not None and not (isinstance(g, torch.Tensor) or math.isfinite(float(g))):
            raise ValueError(f"{node}: the {what}'s guidance is {g}: set a finite value (FluxGuidance)")


def reference_latents(e):
    """Reference latents of one entry (FLUX.1 Kontext / FLUX.2 ReferenceLatent, Qwen-Image-Edit), in either form."""
    refs = e.get("reference_latents")
    if refs is None:
        processed = (e.get("model_conds") or {}).get("ref_latents")
        refs = getattr(processed, "cond", None)
    return list(refs or ())


def lead_latents(e, family):
    """Latents whose tokens a video family places right before the image (HunyuanVideo's ref_latent, Wan's
    reference_latent with a ref_conv model), in either form; Wan reads the first frame of the last one."""
    out = []
    for key, processed_key in family.lead_latents:
        t = e.get(key)
        if t is None:
            t = getattr((e.get("model_conds") or {}).get(processed_key), "cond", None)
        elif isinstance(t, (list, tuple)):  # Wan's reference_latents: the last one, its first frame
            t = t[-1][:, :, 0] if t else None
        if t is not None:
            out.append(t)
    return out


def image_conditioning(e, family):
    """The processed image conditioning (start image, CLIP vision, reference frame) that must be the same in the
    inversion and the edit, {model_conds key: tensor}."""
    conds = e.get("model_conds") or {}
    return {k: conds[k].cond for k in family.same_conds if isinstance(getattr(conds.get(k), "cond", None),
                                                                        torch.Tensor)}


BRANCHES = (("positive", 0), ("negative", 1))


def by_branch(conds):
    """{CFG branch: entries} from {'positive': ..., 'negative': ...} (0 = the prompt, 1 = the negative)."""
    return {branch: entries(conds[key]) for key, branch in BRANCHES if conds.get(key)}


def check_feature_conditioning(conds, node, recording):
    """Refuse conditioning with which recorded features would land on the wrong tokens, before any evaluation.

    conds: {'positive': ..., 'negative': ...} in either of ComfyUI's forms. Returns {branch: entries}.
    """
    verb, role = ("recorded", "source") if recording else ("injected", "target")
    branches = by_branch(conds)
    for branch, items in branches.items():
        which = f"{role} prompt's" if branch == 0 else "negative"
        for e in items:
            if e.get("area") is not None or e.get("mask") is not None:
                raise ValueError(f"{node}: attention features cannot be {verb} with area or mask conditioning "
                                 "(ConditioningSetArea / ConditioningSetMask): the model then sees other token counts "
                                 f"than the recorded image. Remove the area or mask from the {which} conditioning")
        if len(items) > 1 and recording:
            raise ValueError(f"{node}: the {which} conditioning has {len(items)} entries (ConditioningCombine); each "
                             "is evaluated on its own, so their recorded features would overwrite each other. Invert "
                             "with one prompt (ConditioningConcat joins two into one)")
        shapes = {tuple(tuple(r.shape[1:]) for r in reference_latents(e)) for e in items}
        if len(shapes) > 1:
            raise ValueError(f"{node}: the entries of the {which} conditioning carry different reference latents; "
                             "with attention features every entry needs the same ones")
    return branches


def guards(model_options):
    return tuple(model_options.get("transformer_options", {}).get(GUARDS_KEY, ()))


def add_guard(model_clone, guard):
    """Attach a guard to a clone (never to a model someone else holds)."""
    topts = model_clone.model_options.setdefault("transformer_options", {})
    topts[GUARDS_KEY] = tuple(topts.get(GUARDS_KEY, ())) + (guard,)


class Guard:
    """Base: plain object (ComfyUI copies dicts and lists of options, not this); no-op hooks."""

    def __deepcopy__(self, memo):
        return self

    def before(self, ctx, sigmas, solver, shape, conds):
        """ctx: the pass's EvalContext (pass_name, cfg); conds: {'positive': ..., 'negative': ...} or None."""

    def after(self, ctx):
        pass


def _callable_name(fn):
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return name.split(".<locals>")[0].split(".")[0]


def non_finite_message(model_options, pass_name, step, t):
    """Why a velocity came back NaN or infinite, naming the model patches that may have produced it."""
    where = f"{'inversion' if pass_name == 'invert' else 'sampling'} step {step + 1}, t = {t:.4g}"
    suspects = []
    for key in CFG_HOOKS:
        hooks = model_options.get(key)
        for fn in (hooks if isinstance(hooks, (list, tuple)) else [hooks] if hooks is not None else []):
            suspects.append(f"{_callable_name(fn)} ({key})")
    if suspects:
        hint = (f"this model carries patches that act on every evaluation: {', '.join(suspects)}. Bypass them for "
                "FireFlow; patches that divide by sigma (RescaleCFG) cannot run at t = 0, where inversion starts")
    else:
        hint = "no sampler patch is attached, so check the model weights, their dtype, and the inputs"
    return f"FireFlow: the model returned NaN or infinite values at {where}; {hint}"

"""Clone-scoped attention hooks for FLUX blocks: record features during inversion, inject them during the edit.

For each chosen block, `patches_replace["dit"][(kind, i)]` gets a function that, only for the evaluations the plan
names, calls the block with a copied transformer_options whose `optimized_attention_override` is chained to any
override already there (attention accelerators, other packs). A replace patch already registered for that block is
called instead of the original block. The override sees q, k, v as [B, heads, T + L, head_dim] (text first); Q and
K arrive after RoPE, which is a fixed per-position rotation, so replacing or adding them commutes with it.
"""
import torch

import comfy.model_base

from ..fireflow.errors import TextLengthError
from ..fireflow.features import DOUBLE, SINGLE
from .checks import Guard, check_feature_conditioning
from .errors import node_errors
from .flow_sampler import PACK_KEY

BLOCK_NAMES = {DOUBLE: "double_block", SINGLE: "single_block"}
SUPPORTED = "FLUX.1 dev / schnell (and fine-tunes loaded as FLUX)"


def flux_blocks(model_patcher, node):
    """(double, single) block counts of a FLUX model; a clear error for other families."""
    base = model_patcher.model
    dm = getattr(base, "diffusion_model", None)
    if not isinstance(base, comfy.model_base.Flux) or not hasattr(dm, "single_blocks"):
        raise ValueError(f"{node}: attention features are supported for {SUPPORTED}; this model is "
                         f"{type(base).__name__}. Inversion and sampling without the feature cache still work.")
    return len(dm.double_blocks), len(dm.single_blocks)


def _qkv(args, kwargs):
    if len(args) >= 3:
        return args[0], args[1], args[2], args[3:], kwargs
    kw = dict(kwargs)
    return kw.pop("q"), kw.pop("k"), kw.pop("v"), args, kw


def _chained_override(action, previous):
    def override(func, *args, **kwargs):
        q, k, v, rest, kw = _qkv(args, kwargs)
        q, k, v = action(q, k, v)
        if previous is not None:
            return previous(func, q, k, v, *rest, **kw)
        return func(q, k, v, *rest, **kw)
    return override


def _block_patch(kind, index, decide, previous_patch):
    """A patches_replace function: run the block, with our override only when `decide` returns an action."""
    def patch(args, extra):
        topts = args.get("transformer_options") or {}
        ctx = topts.get(PACK_KEY)
        action = decide(ctx, kind, index) if ctx is not None else None
        if action is not None:
            topts = dict(topts)
            topts["optimized_attention_override"] = _chained_override(action, topts.get("optimized_attention_override"))
            args = {**args, "transformer_options": topts}
        if previous_patch is not None:
            return previous_patch(args, extra)
        return extra["original_block"](args)
    return patch


def install(model_clone, blocks, decide):
    """Register `decide(ctx, kind, index) -> action or None` on the clone's chosen blocks, chaining what is there."""
    existing = model_clone.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    for kind, index in blocks:
        name = BLOCK_NAMES[kind]
        model_clone.set_model_patch_replace(_block_patch(kind, index, decide, existing.get((name, index))),
                                            "dit", name, index)


def recorder(store):
    """decide() for inversion: store q, k, v at the planned inversion evaluations."""
    def decide(ctx, kind, index):
        if ctx.pass_name != "invert" or not store.wants(ctx.step, ctx.call):
            return None
        step, call = ctx.step, ctx.call

        def action(q, k, v):
            store.put(step, call, kind, index, q, k, v)
            return q, k, v
        return action
    return decide


def injector(plan_map, store, strategy, apply_strategy):
    """decide() for editing: swap in recorded features at the mapped editing evaluations; count hits in ctx."""
    def decide(ctx, kind, index):
        if ctx.pass_name != "sample":
            return None
        src = plan_map.get((ctx.step, ctx.call))
        if src is None:
            return None
        stats = ctx.stats

        def action(q, k, v):
            stored = store.get(src[0], src[1], kind, index)
            q, k, v, text = apply_strategy(strategy, q, k, v, stored, store.image_tokens, store.plan.spec.text_tokens)
            stats.setdefault("hits", set()).add((ctx.step, ctx.call, kind, index))
            stats.setdefault("text_replaced", set()).add(text)
            return q, k, v
        return action
    return decide


class RecordingGuard(Guard):
    """On the Inverter's recording clone: the source conditioning must give the features a single, plain home."""
    node = "FireFlow Inverter"

    def before(self, pass_name, sigmas, solver, shape, conds):
        if pass_name == "invert" and conds is not None:
            check_feature_conditioning(conds, self.node, recording=True)


class InjectionGuard(Guard):
    """On a V-Injection clone: before the edit, the pass must match the inversion (grid, solver, latent, prompt
    lengths when whole sequences are replaced) and the conditioning must be plain; after it, every planned
    injection must have happened."""
    node = "FireFlow edit (V-Injection model)"

    def __init__(self, inversion, plan_map):
        self.inversion = inversion
        store = inversion.features
        self.planned = {(s, c, kind, i) for s, c in plan_map for kind, i in store.plan.blocks}

    def check_record(self, record):
        """The sampler's INVERSION input must be the one whose features this clone carries."""
        if record is not None and record.latent_fingerprint != self.inversion.latent_fingerprint:
            raise ValueError(f"{self.node}: the V-Injection model carries features of another inversion than the one "
                             "connected to the sampler: connect the same Inverter output to both")

    def before(self, pass_name, sigmas, solver, shape, conds):
        if pass_name != "sample":
            return
        inv, store = self.inversion, self.inversion.features
        with node_errors(self.node):
            inv.check_grid(sigmas.detach().to("cpu", torch.float32).tolist(), solver)
            if tuple(shape[1:]) != tuple(inv.latent_shape[1:]) or shape[0] % inv.latent_shape[0]:
                inv.check_latent(shape)
            if conds is None:
                return
            for e in check_feature_conditioning(conds, self.node, recording=False):
                tokens = e["cross_attn"].shape[1]
                if store.plan.spec.text_tokens == "full" and tokens != store.text_tokens:
                    raise TextLengthError(store.text_tokens, tokens)

    def after(self, pass_name, ctx):
        if pass_name != "sample":
            return
        missed = self.planned - ctx.stats.get("hits", set())
        if missed:
            raise RuntimeError(f"{self.node}: {len(missed)} of {len(self.planned)} planned feature injections did "
                               f"not happen (first missed (step, call, kind, block): {sorted(missed)[0]}): another "
                               "patch on these blocks may bypass them. The result would be an unedited sample")

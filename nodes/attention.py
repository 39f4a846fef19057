"""Clone-scoped attention hooks on a family's blocks: record features during inversion, inject them during the edit.

For each chosen block, `patches_replace["dit"][(name, i)]` gets a function that, only for the evaluations the plan
names, calls the block with a copied transformer_options whose `optimized_attention_override` is chained to any
override already there (attention accelerators, other packs). A replace patch already registered for that block is
called instead of the original block. Inside the block, only the family's joint self-attention call is touched
(SD3.5-Medium's extra image-only attention is left alone). Families whose ComfyUI code has no block hooks (Lumina 2 /
Z-Image, HiDream) get one model-wide override instead, which numbers the attention calls of each forward and skips
the refiner calls that come before the blocks. q, k, v arrive as [B, heads, S, head_dim]
(skip_reshape) or [B, S, heads * head_dim]; the hooks see [B, heads, S, head_dim] per CFG branch
(`cond_or_uncond`), with the branch's TokenLayout (published by the guards before the first evaluation). Q and K
arrive after RoPE, a fixed per-position rotation, so replacing or adding them commutes with it.
"""
import torch

from ..fireflow.errors import TextLengthError
from ..fireflow.masking import token_weights
from ..fireflow.record import tensor_fingerprint
from .checks import Guard, check_feature_conditioning, image_conditioning, lead_latents, reference_latents
from .errors import node_errors
from .families import require_family
from .flow_sampler import PACK_KEY


def family_blocks(model_patcher, node):
    """(family adapter, (double, single) block counts) of a model whose features the pack supports."""
    fam = require_family(model_patcher, node)
    return fam, fam.block_counts(model_patcher.model.diffusion_model)


def _qkv(args, kwargs):
    if len(args) >= 3:
        return args[0], args[1], args[2], args[3:], kwargs
    kw = dict(kwargs)
    return kw.pop("q"), kw.pop("k"), kw.pop("v"), args, kw


def _heads(rest, kw):
    return rest[0] if rest else kw.get("heads")


def _to_bhsd(t, heads, skip_reshape):
    """View q/k/v as [B, heads, S, head_dim]; returns (view, function restoring the call's own layout)."""
    if t.ndim == 4 and skip_reshape:
        return t, lambda x: x
    if t.ndim == 4:  # [B, S, heads, head_dim] (SD3's MMDiT)
        return t.transpose(1, 2), lambda x: x.transpose(1, 2)
    if t.ndim == 3 and heads:
        b, s, hd = t.shape
        return t.view(b, s, heads, hd // heads).transpose(1, 2), lambda x: x.transpose(1, 2).reshape(b, s, hd)
    raise ValueError(f"FireFlow: an attention call passed q of shape {list(t.shape)} (skip_reshape={skip_reshape}); "
                     "the family adapter does not know this layout, so no features are recorded or replaced")


def _per_branch(action, q, k, v, branches, layouts):
    """Run `action(q, k, v, layout, branch)` on each CFG branch's rows; reassemble the batch."""
    n = len(branches)
    if q.shape[0] % n:
        raise ValueError(f"FireFlow: attention batch {q.shape[0]} is not a multiple of its {n} CFG branches")
    size = q.shape[0] // n
    outs = []
    for i, branch in enumerate(branches):
        layout = layouts.get(branch)
        if layout is None:
            raise ValueError(f"FireFlow: no token layout for CFG branch {branch}; the pass was not checked before it "
                             "started (run it with a FireFlow node or the FireFlow SAMPLER)")
        rows = slice(i * size, (i + 1) * size)
        outs.append(action(q[rows], k[rows], v[rows], layout, branch))
    if n == 1:
        return outs[0]
    return tuple(torch.cat([o[j] for o in outs]) for j in range(3))


def _apply(action, args, kwargs, branches, layouts):
    """One hooked attention call: q, k, v through `action` per CFG branch, in the call's own layout."""
    q, k, v, rest, kw = _qkv(args, kwargs)
    heads, skip = _heads(rest, kw), bool(kw.get("skip_reshape", False))
    (q4, back), (k4, _), (v4, _) = (_to_bhsd(t, heads, skip) for t in (q, k, v))
    q4, k4, v4 = _per_branch(action, q4, k4, v4, branches, layouts)
    return (back(q4), back(k4), back(v4)) + tuple(rest), kw


def _call(previous, func, args, kw):
    return previous(func, *args, **kw) if previous is not None else func(*args, **kw)


def _chained_override(action, previous, branches, layouts, attn_call):
    calls = [0]

    def override(func, *args, **kwargs):
        index, calls[0] = calls[0], calls[0] + 1
        if index == attn_call:
            args, kwargs = _apply(action, args, kwargs, branches, layouts)
        return _call(previous, func, args, kwargs)
    return override


def _block_patch(kind, index, decide, previous_patch, attn_call):
    """A patches_replace function: run the block, with our override only when `decide` returns an action."""
    def patch(args, extra):
        topts = args.get("transformer_options") or {}
        ctx = topts.get(PACK_KEY)
        action = decide(ctx, kind, index) if ctx is not None else None
        if action is not None:
            branches = list(topts.get("cond_or_uncond") or [0])
            topts = dict(topts)
            topts["optimized_attention_override"] = _chained_override(
                action, topts.get("optimized_attention_override"), branches, ctx.layouts, attn_call)
            args = {**args, "transformer_options": topts}
        if previous_patch is not None:
            return previous_patch(args, extra)
        return extra["original_block"](args)
    return patch


def _numbered_override(order, chosen, decide, previous):
    """A model-wide attention override for families without block hooks: the n-th attention call of a forward (one
    evaluation of one group of CFG branches) belongs to block order[n]; a new evaluation restarts the count."""
    state = {"key": None, "n": 0}

    def override(func, *args, **kwargs):
        topts = kwargs.get("transformer_options") or {}
        ctx = topts.get(PACK_KEY)
        if ctx is not None:
            branches = list(topts.get("cond_or_uncond") or [0])
            key = (id(ctx), ctx.pass_name, ctx.step, ctx.call, tuple(branches))
            if key != state["key"]:
                state.update(key=key, n=0)
            target = order[state["n"] % len(order)]
            state["n"] += 1
            action = decide(ctx, *target) if target in chosen else None
            if action is not None:
                args, kwargs = _apply(action, args, kwargs, branches, ctx.layouts)
        return _call(previous, func, args, kwargs)
    return override


def install(model_clone, family, blocks, decide):
    """Register `decide(ctx, kind, index) -> action or None` on the clone's chosen blocks, chaining what is there."""
    topts = model_clone.model_options.setdefault("transformer_options", {})
    if family.hook == "calls":
        order = family.call_order(model_clone.model.diffusion_model)
        topts["optimized_attention_override"] = _numbered_override(
            order, set(blocks), decide, topts.get("optimized_attention_override"))
        return
    existing = topts.get("patches_replace", {}).get("dit", {})
    for kind, index in blocks:
        name = family.patch_name(kind)
        model_clone.set_model_patch_replace(
            _block_patch(kind, index, decide, existing.get((name, index)), family.attn_call), "dit", name, index)


def recorder(store):
    """decide() for inversion: store q, k, v at the planned inversion evaluations."""
    def decide(ctx, kind, index):
        if ctx.pass_name != "invert" or not store.wants(ctx.step, ctx.call):
            return None
        step, call = ctx.step, ctx.call

        def action(q, k, v, layout, branch):
            store.put(step, call, kind, index, q, k, v, layout, branch)
            return q, k, v
        return action
    return decide


def injector(plan_map, store, strategy, apply_strategy, region="all"):
    """decide() for editing: swap in recorded features at the mapped editing evaluations; count hits in ctx.
    region: 'all' image tokens, or only those 'inside_mask' / 'outside_mask' (weighted by the mask's share of each
    token, ctx.token_mask, which the InjectionGuard computes before the pass)."""
    def decide(ctx, kind, index):
        if ctx.pass_name != "sample":
            return None
        src = plan_map.get((ctx.step, ctx.call))
        if src is None:
            return None
        stats = ctx.stats
        weights = None if region == "all" else ctx.token_mask if region == "inside_mask" else 1 - ctx.token_mask

        def action(q, k, v, layout, branch):
            stored = store.get(src[0], src[1], kind, index, branch)
            q, k, v, text = apply_strategy(strategy, q, k, v, stored, layout, store.plan.spec.text_tokens, weights)
            stats.setdefault("hits", set()).add((ctx.step, ctx.call, kind, index))
            stats.setdefault("text_replaced", set()).add(text)
            stats.setdefault("branches", set()).add(branch)
            return q, k, v
        return action
    return decide


def token_layouts(family, shape, branches):
    """{CFG branch: TokenLayout} of a pass over a latent of `shape` with these conditioning entries. The text length
    is checked exactly when every entry of every branch has the same token count (ComfyUI may otherwise batch
    branches by repeating the shorter prompt)."""
    for items in branches.values():
        for e in items:
            for key in family.unplaced:
                if e.get(key) is not None:  # node form, and the guider's processed dicts keep the key too
                    raise ValueError(f"FireFlow: {family.name} conditioning with '{key}' adds image tokens the "
                                     f"{family.name} adapter cannot place; attention features cannot be used with it")
    lengths = {e["cross_attn"].shape[1] for items in branches.values() for e in items}
    text = next(iter(lengths)) if len(lengths) == 1 else None
    return {b: family.layout(shape, reference_latents(items[0]), text, lead_latents(items[0], family))
            for b, items in branches.items()}


def references_fingerprint(items, family):
    """Fingerprint of the reference latents and image conditioning the model receives (processed conditioning)."""
    if not items:
        return ""
    parts = [tensor_fingerprint(r) for r in reference_latents(items[0])]
    parts += [f"{k}:{tensor_fingerprint(t)}" for k, t in sorted(image_conditioning(items[0], family).items())]
    return "+".join(parts)


def _processed(conds):
    return any(isinstance(e, dict) for e in conds.get("positive") or ())


class RecordingGuard(Guard):
    """On the Inverter's recording clone: the source conditioning must give the features a single, plain home; the
    pass publishes where the image tokens are."""
    node = "FireFlow Inverter"

    def __init__(self, family, store):
        self.family, self.store = family, store

    def before(self, ctx, sigmas, solver, shape, conds):
        if ctx.pass_name != "invert" or conds is None:
            return
        branches = check_feature_conditioning(conds, self.node, recording=True)
        if 1 in self.store.plan.branches and (ctx.cfg == 1 or 1 not in branches):
            raise ValueError(f"{self.node}: the plan records the negative branch, but this pass runs without CFG")
        ctx.layouts = token_layouts(self.family, shape, branches)
        if _processed(conds):
            self.store.references = references_fingerprint(branches.get(0), self.family)


class InjectionGuard(Guard):
    """On a V-Injection clone: before the edit, the pass must match the inversion (grid, solver, latent, CFG, reference
    latents, prompt lengths when whole sequences are replaced) and the conditioning must be plain; after it, every
    planned injection must have happened."""
    node = "FireFlow edit (V-Injection model)"

    def __init__(self, inversion, plan_map, family, expert="both", wanted=None, region="all"):
        self.inversion, self.family, self.region = inversion, family, region
        store = inversion.features
        self.planned = {(s, c, kind, i) for s, c in plan_map for kind, i in store.plan.blocks}
        self.expert = expert  # which expert of a two-expert inversion this clone is ('both': a one-model inversion)
        self.wanted = set(wanted) if wanted is not None else {s for s, _ in plan_map}  # edit steps the edit injects

    def check_record(self, record):
        """The sampler's INVERSION input must be the one whose features this clone carries."""
        if record is not None and record.latent_fingerprint != self.inversion.latent_fingerprint:
            raise ValueError(f"{self.node}: the V-Injection model carries features of another inversion than the one "
                             "connected to the sampler: connect the same Inverter output to both")

    def before(self, ctx, sigmas, solver, shape, conds):
        if ctx.pass_name != "sample":
            return
        inv, store = self.inversion, self.inversion.features
        with node_errors(self.node):
            inv.check_grid(sigmas.detach().to("cpu", torch.float32).tolist(), solver)
            if tuple(shape[1:]) != tuple(inv.latent_shape[1:]) or shape[0] % inv.latent_shape[0]:
                inv.check_latent(shape)
            if self.region != "all":
                if ctx.mask is None:
                    raise ValueError(f"{self.node}: inject_region {self.region} needs a mask: connect one to the "
                                     "FireFlow Sampler's mask input (or give the latent a noise mask), or set "
                                     "inject_region all")
                ctx.token_mask = token_weights(ctx.mask, self.family.patch, self.family.tpatch)
            if conds is None:
                return
            branches = check_feature_conditioning(conds, self.node, recording=False)
            if 1 in store.plan.branches and (ctx.cfg == 1 or 1 not in branches):
                raise ValueError(f"{self.node}: the inversion ran with CFG {inv.cfg:g} and recorded the negative "
                                 "prompt's features too, but this edit runs without CFG (cfg 1 or no negative): "
                                 "edit with cfg > 1 and a negative, or invert again with cfg 1")
            if store.plan.spec.text_tokens == "full" and self.family.text_exact:
                for e in branches.get(0, ()):
                    tokens = e["cross_attn"].shape[1]
                    if tokens != store.text_tokens.get(0):
                        raise TextLengthError(store.text_tokens.get(0), tokens)
            if _processed(conds) and references_fingerprint(branches.get(0), self.family) != store.references:
                raise ValueError(f"{self.node}: the reference latents or image conditioning (ReferenceLatent, the "
                                 "edit model's image input, a video model's start image or CLIP vision output) "
                                 "differ from the ones the inversion saw; features are only valid with the same "
                                 "ones. Connect the same image conditioning to both passes")
            ctx.layouts = token_layouts(self.family, shape, branches)

    def after(self, ctx):
        if ctx.pass_name != "sample":
            return
        planned = {p for p in self.planned if ctx.span is None or p[0] in ctx.span}  # this run's segment of the pass
        missed = planned - ctx.stats.get("hits", set())
        if missed:
            raise RuntimeError(f"{self.node}: {len(missed)} of {len(planned)} planned feature injections did "
                               f"not happen (first missed (step, call, kind, block): {sorted(missed)[0]}): another "
                               "patch on these blocks may bypass them. The result would be an unedited sample")

"""Helpers for the per-family host tests (issue 11): a spy that sees every attention call in order, and the passes.

The spy is a model-level `optimized_attention_override` installed before the pack's hooks, so it sees q, k, v as the
attention function receives them (after any replacement). Calls are numbered in the order the model makes them within
one evaluation; the tests map numbers to blocks from the model's own structure, written out per family.
"""
import torch

from hostlib import comfy_nodes


def N(node_id):
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


class SeqSpy:
    """Records q, k, v of each attention call, keyed (pass, step, call, n, branches): n numbers the calls of one
    forward (one evaluation of the branches in `branches`, ComfyUI's cond_or_uncond: 0 prompt, 1 negative)."""

    def __init__(self):
        self.seen, self._key, self._n = {}, None, 0

    def __deepcopy__(self, memo):
        return self

    def __call__(self, func, *args, **kwargs):
        topts = kwargs.get("transformer_options") or {}
        ctx = topts.get("fireflow")
        if ctx is not None:
            branches = tuple(topts.get("cond_or_uncond") or [0])
            key = (ctx.pass_name, ctx.step, ctx.call, branches)
            if key != self._key:
                self._key, self._n = key, 0
            q, k, v = args[:3]
            heads = args[3] if len(args) > 3 else kwargs.get("heads")
            self.seen[key[:3] + (self._n, branches)] = dict(q=q.clone(), k=k.clone(), v=v.clone(), heads=heads,
                                                              skip=bool(kwargs.get("skip_reshape", False)))
            self._n += 1
        return func(*args, **kwargs)

    def branch(self, key, branch=0, feature="v"):
        """[B, heads, S, head_dim] of one CFG branch at key (pass, step, call, n), whichever forward carried it."""
        for (p, s, c, n, branches), entry in self.seen.items():
            if (p, s, c, n) == tuple(key) and branch in branches:
                t = _bhsd(entry, feature)
                size = t.shape[0] // len(branches)
                i = branches.index(branch)
                return t[i * size:(i + 1) * size]
        raise KeyError((key, branch))

    def bhsd(self, key, feature="v"):
        return self.branch(key, 0, feature)

    def forwards(self, key):
        """The branch groups evaluated together at key (pass, step, call, n)."""
        return [b for (p, s, c, n, b) in self.seen if (p, s, c, n) == tuple(key)]

    def keys(self):
        return {k[:4] for k in self.seen}


def _bhsd(entry, feature):
    t = entry[feature]
    if t.ndim == 4:
        return t if entry["skip"] else t.transpose(1, 2)
    b, s, hd = t.shape
    return t.view(b, s, entry["heads"], hd // entry["heads"]).transpose(1, 2)


def with_spy(model):
    m = model.clone()
    spy = SeqSpy()
    m.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = spy
    return m, spy


def cache(single="auto", double="auto", inject=1, text="auto", dtype="model"):
    return N("FireFlowFeatureCache").make(True, False, False, single, double, inject, "reference", text, "auto",
                                          dtype)[0]


def invert(model, cond, lat, spec=None, steps=4, negative=None, cfg=1.0, guidance=1.0):
    with torch.inference_mode():
        return N("FireFlowInverter").invert(model, cond, {"samples": lat}, steps, "fireflow", guidance,
                                            feature_cache=spec, negative=negative, cfg=cfg)["result"]


def edit(model, inv, rec, cond, negative=None, cfg=-1.0, guidance=2.0):
    with torch.inference_mode():
        r = N("FireFlowSampler").sample(model, cond, inv, guidance, inversion=rec, negative=negative, cfg=cfg)
    return r["result"][0]["samples"], r["ui"]["text"][0]


def edit_plain_and_patched(base, spy, inv, rec, target):
    """The same edit without the V-Injection Patch (on a spy of its own, returned) and then with it (on `spy`, cleared
    first): (plain spy, the patched edit's summary), for comparing every attention call of the two."""
    plain_model, plain = with_spy(base)
    edit(plain_model, inv, rec, target, cfg=1.0)
    spy.seen.clear()
    _, summary = edit(patch(base, rec), inv, rec, target, cfg=1.0)
    return plain, summary


def patch(model, rec, inject=-1):
    return N("FireFlowVInjection").patch(model, rec, inject, "replace", "keep", "keep", 1.0, 1.0, 1.0)["result"][0]

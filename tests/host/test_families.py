"""Every family adapter in the real host (issue 11): inversion and reconstruction, recorded entries, injection hits,
and the exact tokens recorded and replaced, on tiny models built through ComfyUI's own classes.

Each case writes out, from the model's own code, where the target image sits in its joint attention sequence (text
tokens T, image tokens L, reference tokens R, order) and which attention call of an evaluation belongs to which
hooked block; the assertions slice the spy's tensors with those constants, never with the pack's layout code.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import pytest
import torch

import fixtures
from familylib import cache, edit, invert, patch, with_spy
from hostlib import counting_clone

DOUBLE, SINGLE = 0, 1
FIRST, MID = 0, 1
STEPS = 4
SOURCE = (STEPS - 1, MID)  # FireFlow, 1 injected step, reference calls: inversion step 3's midpoint feeds edit (0, MID)


@dataclass
class Case:
    build: Callable
    cond: Callable  # (seed, tokens) -> node conditioning
    latent: Callable  # () -> samples
    T: int  # text tokens in the attention sequence
    L: int  # target image tokens
    blocks: Tuple[Tuple[int, int, int], ...]  # (kind, block index, attention call number within one evaluation)
    R: int = 0
    text_first: bool = True
    reference: Optional[Callable] = None  # () -> reference latent
    cfg: float = 1.0


def _sd3_cond(seed, tokens=5):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, 32, generator=g), {"pooled_output": torch.randn(1, 16, generator=g)}]]


CASES = {
    # comfy/ldm/modules/diffusionmodules/mmdit.py: one joint block, attention over cat(context, x): [T | L]
    "sd3": Case(build=lambda: fixtures.tiny_sd3(0), cond=_sd3_cond,
                latent=lambda: torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)),
                T=5, L=16, blocks=((DOUBLE, 0, 0),)),
}


def image_slice(c):
    return slice(c.T, c.T + c.L) if c.text_first else slice(0, c.L)


def text_slice(c):
    return slice(0, c.T) if c.text_first else slice(c.L + c.R, c.L + c.R + c.T)


def with_refs(c, cond):
    if c.reference is None:
        return cond
    return [[t, {**d, "reference_latents": [c.reference()]}] for t, d in cond]


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    c = CASES[request.param]
    c.model = c.build()
    return c


def test_inverts_and_reconstructs(case):
    src = with_refs(case, case.cond(1, case.T))
    x0 = case.latent()
    inv, rec = invert(case.model, src, x0, steps=8)
    out, _ = edit(case.model, inv, rec, src, cfg=1.0, guidance=1.0)
    assert out.shape == x0.shape and torch.isfinite(out).all()
    assert (out - x0).abs().mean() < 0.5 * x0.abs().mean()  # a random-weight model still round-trips closely


def test_records_the_planned_entries_and_tokens(case):
    base, spy = with_spy(case.model)
    src = with_refs(case, case.cond(1, case.T))
    inv, rec = invert(base, src, case.latent(), cache())
    store = rec.features
    assert store.plan.entries == len(case.blocks) and store.image_tokens == case.L
    for kind, index, n in case.blocks:
        seen = spy.bhsd(("invert",) + SOURCE + (n,))
        assert seen.shape[2] == case.T + case.L + case.R
        want = torch.cat([seen[:, :, text_slice(case)], seen[:, :, image_slice(case)]], dim=2)
        assert torch.equal(store.get(*SOURCE, kind, index)["v"], want)


def test_edit_replaces_exactly_the_target_tokens(case):
    base, spy = with_spy(case.model)
    src = with_refs(case, case.cond(1, case.T))
    inv, rec = invert(base, src, case.latent(), cache(text="image_only"))
    target = with_refs(case, case.cond(2, case.T))
    plain_model, plain = with_spy(case.model)
    edit(plain_model, inv, rec, target, cfg=1.0)
    spy.seen.clear()
    _, summary = edit(patch(base, rec), inv, rec, target, cfg=1.0)
    assert f"{STEPS + 1} evaluations" in summary
    assert f"injected {len(case.blocks)} block calls at (step, call) [(0, 1)]" in summary
    first = min(case.blocks, key=lambda b: b[2])
    for kind, index, n in case.blocks:
        store_v = rec.features.get(*SOURCE, kind, index)["v"]
        got = spy.bhsd(("sample", 0, MID, n))
        assert torch.equal(got[:, :, image_slice(case)], store_v)
        if (kind, index, n) == first:  # nothing before it was injected: text and references are the plain run's
            ref = plain.bhsd(("sample", 0, MID, n))
            keep = torch.ones(got.shape[2], dtype=torch.bool)
            keep[image_slice(case)] = False
            assert torch.equal(got[:, :, keep], ref[:, :, keep]) and not torch.equal(got, ref)
    for key in spy.keys():  # the evaluation before the injected one is untouched
        if key[:3] == ("sample", 0, FIRST):
            assert torch.equal(spy.bhsd(key), plain.bhsd(key))


# --- CFG passes (SD3 runs with CFG) ----------------------------------------------------------------------------------

def test_cfg_edit_injects_both_branches_from_a_cfg1_inversion():
    c = CASES["sd3"]
    base, spy = with_spy(fixtures.tiny_sd3(0))
    inv, rec = invert(base, c.cond(1, c.T), c.latent(), cache(text="image_only"))
    assert rec.features.plan.branches == (0,) and rec.cfg == 1.0
    spy.seen.clear()
    negative = c.cond(9, 3)
    _, summary = edit(patch(base, rec), inv, rec, c.cond(2, c.T), negative=negative)  # cfg -1: SD3's usual 4.5
    assert "x 2 CFG branches (cfg 4.5)" in summary and "5 evaluations" in summary
    stored = rec.features.get(*SOURCE, DOUBLE, 0)["v"]
    for branch, text in ((0, c.T), (1, 3)):  # each branch has its own prompt length; the image is at [T, T + L)
        got = spy.branch(("sample", 0, MID, 0), branch)
        assert got.shape[2] == text + c.L and torch.equal(got[:, :, text:text + c.L], stored)


def test_cfg_inversion_records_each_branch_and_refuses_an_edit_without_cfg():
    c = CASES["sd3"]
    base, spy = with_spy(fixtures.tiny_sd3(0))
    negative = c.cond(9, c.T)
    inv, rec = invert(base, c.cond(1, c.T), c.latent(), cache(), negative=negative, cfg=3.0)
    store = rec.features
    assert store.plan.branches == (0, 1) and store.plan.entries == 2 and rec.cfg == 3.0
    plain_model, plain = with_spy(fixtures.tiny_sd3(0))  # the same inversion without the pack's hooks: the truth
    invert(plain_model, c.cond(1, c.T), c.latent(), negative=negative, cfg=3.0)
    key = ("invert",) + SOURCE + (0,)
    assert plain.forwards(key) in ([(0, 1)], [(1, 0)])  # equal prompt lengths: ComfyUI batches both branches
    assert not torch.equal(plain.branch(key, 0), plain.branch(key, 1))
    for branch in (0, 1):
        assert torch.equal(store.get(*SOURCE, DOUBLE, 0, branch)["v"], plain.branch(key, branch))
    model, calls = counting_clone(patch(base, rec))
    with pytest.raises(ValueError, match="ran with CFG 3 .* without CFG"):
        edit(model, inv, rec, c.cond(2, c.T), cfg=1.0)
    spy.seen.clear()
    edit(patch(base, rec), inv, rec, c.cond(2, c.T), negative=negative, cfg=3.0)
    for branch in (0, 1):  # text lengths agree: each branch's whole sequence is its own recorded one
        assert torch.equal(spy.branch(("sample", 0, MID, 0), branch), store.get(*SOURCE, DOUBLE, 0, branch)["v"])


def test_cfg_without_negative_is_refused_before_work():
    c = CASES["sd3"]
    with pytest.raises(ValueError, match="cfg 3 needs a negative conditioning"):
        invert(fixtures.tiny_sd3(0), c.cond(1, c.T), c.latent(), cfg=3.0)

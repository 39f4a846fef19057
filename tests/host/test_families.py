"""Every family adapter in the real host (issue 11): inversion and reconstruction, recorded entries, injection hits,
and the exact tokens recorded and replaced, on tiny models built through ComfyUI's own classes.

Each case writes out, from the model's own code, where the target image sits in its joint attention sequence (text
tokens T, image tokens L, reference tokens R, order) and which attention call of an evaluation belongs to which
hooked block; the assertions slice the spy's tensors with those constants, never with the pack's layout code.
"""
import inspect
from dataclasses import dataclass
from typing import Tuple

import pytest
import torch

import family_fixtures as ff
import fixtures
from familylib import cache, edit, edit_plain_and_patched, invert, patch, with_spy
from hostlib import counting_clone

DOUBLE, SINGLE = 0, 1
FIRST, MID = 0, 1
STEPS = 4
SOURCE = (STEPS - 1, MID)  # FireFlow, 1 injected step, reference calls: inversion step 3's midpoint feeds edit (0, MID)


@dataclass
class Case:
    name: str  # family_fixtures name ("sd3": fixtures.tiny_sd3)
    T: int  # text tokens in the attention sequence (after the model's own padding)
    L: int  # target image tokens
    blocks: Tuple[Tuple[int, int, int], ...]  # (kind, block index, attention call number within one evaluation)
    R: int = 0  # reference tokens, right after the image
    P: int = 0  # padding tokens right after the image (Z-Image)
    text_first: bool = True
    px: int = 64  # image size in pixels
    tokens: int = 7  # prompt tokens in the conditioning
    steps: int = 8  # round-trip steps (random NextDiT weights are stiff in t: 8 steps leave ~90 % error, 32 ~10 %)

    def build(self):
        return fixtures.tiny_sd3(0) if self.name == "sd3" else ff.build(self.name)

    def cond(self, seed, tokens=None):
        tokens = tokens or self.tokens
        if self.name == "sd3":
            g = torch.Generator().manual_seed(seed)
            return [[torch.randn(1, tokens, 32, generator=g), {"pooled_output": torch.randn(1, 16, generator=g)}]]
        return ff.conditioning(self.name, tokens, seed)

    def latent(self):
        return ff.latent("sd3" if self.name == "sd3" else self.name, self.px, self.px)

    def reference(self):
        return ff.reference(self.name, self.px, self.px) if self.R else None


def _hunyuan_text_first():
    """HunyuanImage 2.1's blocks concatenate [image | text] where ComfyUI builds them with flipped_img_txt (0.3.75)."""
    import comfy.ldm.hunyuan_video.model as hv
    return "flipped_img_txt=True" not in inspect.getsource(hv.HunyuanVideo.__init__)


S0, S1 = (SINGLE, 0), (SINGLE, 1)
# Token counts and call numbers, each read from the family's ComfyUI code (comments) and checked on both hosts:
CASES = {
    # mmdit.py: one joint call per joint block over cat(context, x)
    "sd3": Case("sd3", T=7, L=16, blocks=((DOUBLE, 0, 0),)),
    # SD3.5-Medium: block 0 makes a second, image-only call (n=1) right after its joint call; it is never hooked
    "sd35_medium": Case("sd35_medium", T=7, L=16, blocks=((DOUBLE, 0, 0), (DOUBLE, 1, 2))),
    # model_base.Flux2 zero-pads the prompt in front to 512 tokens; patch 1 on a 1/16 latent; reference after image
    "flux2": Case("flux2", T=512, L=16, R=16, blocks=(S0 + (1,), S1 + (2,))),
    "flux2_klein": Case("flux2_klein", T=512, L=16, blocks=(S0 + (1,), S1 + (2,))),
    # chroma/model.py: FLUX.1 order [txt | img]; 1 double block (n=0), then single blocks
    "chroma": Case("chroma", T=7, L=16, blocks=(S0 + (1,), S1 + (2,))),
    # chroma_radiance: pixels in, one token per 16 x 16 pixel patch
    "chroma_radiance": Case("chroma_radiance", T=7, L=16, blocks=(S0 + (1,), S1 + (2,))),
    # FLUX.1 Fill: mask and masked image are extra channels, not tokens
    "flux_fill": Case("flux_fill", T=7, L=16, blocks=(S0 + (1,), S1 + (2,))),
    # hunyuan_video/model.py: two text-refiner calls (n=0, 1) before the blocks; 64-channel 1/32 latent, patch 1
    "hunyuan_image21": Case("hunyuan_image21", T=7, L=16, px=128, text_first=_hunyuan_text_first(),
                            blocks=(S0 + (3,), S1 + (4,))),
    # qwen_image/model.py: [txt | img | refs]; the default recipe hooks every transformer (joint) block
    "qwen_image": Case("qwen_image", T=7, L=16, R=16, blocks=((DOUBLE, 0, 0), (DOUBLE, 1, 1))),
    # lumina/model.py: context refiner (n=0, 1) and noise refiner (n=2, 3) first, then the main layers
    "lumina2": Case("lumina2", T=7, L=16, blocks=(S0 + (4,), S1 + (5,)), steps=32),
    # Z-Image pads text and image to multiples of 32: [txt 7 + 25 pad | img 16 | 16 pad]
    "z_image": Case("z_image", T=32, L=16, P=16, blocks=(S0 + (4,), S1 + (5,)), steps=32),
    # hidream/model.py: image first [img | t5 7 | llama 7 | llama 7]; double block (n=0), then single block (n=1)
    "hidream": Case("hidream", T=21, L=16, text_first=False, blocks=(S0 + (1,),)),
}


def image_slice(c):
    return slice(c.T, c.T + c.L) if c.text_first else slice(0, c.L)


def text_slice(c):
    return slice(0, c.T) if c.text_first else slice(c.L + c.P + c.R, c.L + c.P + c.R + c.T)


def with_refs(c, cond):
    if not c.R:
        return cond
    return [[t, {**d, "reference_latents": [c.reference()]}] for t, d in cond]


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    c = CASES[request.param]
    c.model = c.build()
    return c


def test_inverts_and_reconstructs(case):
    src = with_refs(case, case.cond(1))
    x0 = case.latent()
    inv, rec = invert(case.model, src, x0, steps=case.steps)
    out, _ = edit(case.model, inv, rec, src, cfg=1.0, guidance=1.0)
    assert out.shape == x0.shape and torch.isfinite(out).all()
    assert (out - x0).abs().mean() < 0.5 * x0.abs().mean()  # a random-weight model still round-trips closely


def test_records_the_planned_entries_and_tokens(case):
    base, spy = with_spy(case.model)
    src = with_refs(case, case.cond(1))
    inv, rec = invert(base, src, case.latent(), cache())
    store = rec.features
    assert store.plan.entries == len(case.blocks) and store.image_tokens == case.L
    for kind, index, n in case.blocks:
        seen = spy.bhsd(("invert",) + SOURCE + (n,))
        assert seen.shape[2] == case.T + case.L + case.P + case.R
        want = torch.cat([seen[:, :, text_slice(case)], seen[:, :, image_slice(case)]], dim=2)
        assert torch.equal(store.get(*SOURCE, kind, index)["v"], want)


def test_edit_replaces_exactly_the_target_tokens(case):
    base, spy = with_spy(case.model)
    src = with_refs(case, case.cond(1))
    inv, rec = invert(base, src, case.latent(), cache(text="image_only"))
    target = with_refs(case, case.cond(2))
    plain, summary = edit_plain_and_patched(base, spy, inv, rec, target)
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

@pytest.mark.parametrize("name, cfg, negative_tokens", [("sd3", "4.5", 3), ("qwen_image", "4", 3), ("lumina2", "4", 3),
                                                        ("hidream", "5", 3), ("lumina2", "4", 7)])
def test_cfg_edit_injects_both_branches_from_a_cfg1_inversion(name, cfg, negative_tokens):
    """Negative prompts of another length run as a second forward, of the same length batched with the prompt
    (cond_or_uncond [1, 0]); either way each branch's own image tokens receive the cfg-1 recording."""
    c = CASES[name]
    base, spy = with_spy(c.build())
    inv, rec = invert(base, with_refs(c, c.cond(1)), c.latent(), cache(text="image_only"))
    assert rec.features.plan.branches == (0,) and rec.cfg == 1.0
    spy.seen.clear()
    negative = with_refs(c, c.cond(9, negative_tokens))
    _, summary = edit(patch(base, rec), inv, rec, with_refs(c, c.cond(2)), negative=negative)  # cfg -1: family's own
    assert f"x 2 CFG branches (cfg {cfg})" in summary and "5 evaluations" in summary
    scale = 3 if name == "hidream" else 1  # HiDream's text: T5 and two Llama slices of the prompt's length
    for kind, index, n in c.blocks:
        stored = rec.features.get(*SOURCE, kind, index)["v"]
        for branch, tokens in ((0, c.tokens), (1, negative_tokens)):
            b = Case(name, T=scale * tokens, L=c.L, R=c.R, text_first=c.text_first, blocks=c.blocks)
            got = spy.branch(("sample", 0, MID, n), branch)
            assert got.shape[2] == b.T + c.L + c.R and torch.equal(got[:, :, image_slice(b)], stored)
    forwards = spy.forwards(("sample", 0, MID, c.blocks[0][2]))
    assert forwards == ([(1, 0)] if negative_tokens == c.tokens else [(0,), (1,)])


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


# --- prompts of another length, references that differ, inversions of another family --------------------------------

@pytest.mark.parametrize("name", ["qwen_image", "chroma", "hidream", "lumina2"])
def test_target_prompt_of_another_length_gets_the_image_tokens_only(name):
    """With text_tokens auto and a longer target prompt, the recorded image tokens land where the target's image tokens
    are in its own (longer) sequence; the text stays the target's."""
    c = CASES[name]
    base, spy = with_spy(ff.build(name))
    inv, rec = invert(base, with_refs(c, c.cond(1)), c.latent(), cache())
    spy.seen.clear()
    extra = 4 * (3 if name == "hidream" else 1)  # HiDream's text is T5 + two Llama slices of the prompt's length
    _, summary = edit(patch(base, rec), inv, rec, with_refs(c, c.cond(2, c.tokens + 4)), cfg=1.0)
    assert "text tokens kept (the prompts have other lengths)" in summary
    longer = Case(name, T=c.T + extra, L=c.L, R=c.R, P=c.P, text_first=c.text_first, blocks=c.blocks)
    for kind, index, n in c.blocks:
        got = spy.bhsd(("sample", 0, MID, n))
        assert got.shape[2] == longer.T + c.L + c.P + c.R
        assert torch.equal(got[:, :, image_slice(longer)], rec.features.get(*SOURCE, kind, index)["v"][:, :, -c.L:])


def test_qwen_image_edit_with_another_reference_is_refused_before_work():
    c = CASES["qwen_image"]
    base = ff.build("qwen_image")
    inv, rec = invert(base, with_refs(c, c.cond(1)), c.latent(), cache())
    other = [[t, {**d, "reference_latents": [ff.latent("qwen_image", seed=8)]}] for t, d in c.cond(2)]
    model, calls = counting_clone(patch(base, rec))
    with pytest.raises(ValueError, match="reference latents .* differ"):
        edit(model, inv, rec, other, cfg=1.0)
    assert calls == []


def test_inversion_of_another_family_is_refused_before_work():
    c = CASES["chroma"]
    inv, rec = invert(ff.build("chroma"), c.cond(1), c.latent(), cache())
    for other, name in (("flux_fill", "FLUX.1"), ("lumina2", "Lumina 2 / Z-Image")):
        with pytest.raises(ValueError, match=f"recorded with a Chroma model; this model is {name}"):
            patch(ff.build(other), rec)


def test_numbered_calls_restart_after_an_interrupted_forward():
    """Lumina 2's calls are numbered per forward: a run cancelled in the middle of a forward (here: an exception from an
    attention override further down the chain) must not shift the numbering of the next run on the same patched model."""
    c = CASES["lumina2"]
    model = c.build()
    inv, rec = invert(model, c.cond(1), c.latent(), cache())
    clean, _ = edit(patch(model, rec), inv, rec, c.cond(2), cfg=1.0)

    calls = [0]

    def cancel_once(func, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:  # inside the first forward, after two of its six calls
            raise InterruptedError("cancelled")
        return func(*args, **kwargs)
    flaky = model.clone()
    flaky.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = cancel_once
    patched = patch(flaky, rec)
    with pytest.raises(InterruptedError):
        edit(patched, inv, rec, c.cond(2), cfg=1.0)
    again, summary = edit(patched, inv, rec, c.cond(2), cfg=1.0)
    assert torch.equal(again, clean) and "injected 2 block calls" in summary

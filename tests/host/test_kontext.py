"""FLUX.1 Kontext in the real host (issue 11): reference latents are present in both passes and their tokens are never
recorded or replaced. The sequence is [text T | image L | reference R] (comfy/ldm/flux/model.py appends the reference
tokens after the image's); the expected slices below are written from that order, not from the pack's layout code."""
import pytest
import torch

from hostlib import conditioning, counting_clone, latent
from test_editing import MID, SINGLE, FIRST, cache, invert, patch, sample, with_spy

T, L, R = 7, 16, 16  # 7 prompt tokens, an 8x8 latent (2x2 patches: 16 tokens), an 8x8 reference (16 tokens)


def kontext(cond, ref_seed=7):
    return [[c[0], {**c[1], "reference_latents": [latent(ref_seed)["samples"]]}] for c in cond]


def test_records_text_and_target_image_only(tiny):
    base, spy = with_spy(tiny)
    _, rec = invert(base, cache(), cond=kontext(conditioning(1, tokens=T)))
    assert rec.features.text_tokens == {0: T} and rec.features.image_tokens == L
    for i in range(4):
        seen = spy.seen[("invert", 7, MID, SINGLE, i)]
        assert seen.shape[2] == T + L + R
        assert torch.equal(rec.features.get(7, MID, SINGLE, i)["v"], seen[:, :, :T + L])


@pytest.mark.parametrize("text", ["auto", "image_only"])
def test_edit_replaces_exactly_the_target_image_tokens(tiny, text):
    base, spy = with_spy(tiny)
    inv, rec = invert(base, cache(text=text), cond=kontext(conditioning(1, tokens=T)))
    target = kontext(conditioning(2, tokens=T))
    plain_model, plain = with_spy(tiny)
    sample(plain_model, inv, rec, cond=target)
    spy.seen.clear()
    _, summary = sample(patch(base, rec), inv, rec, cond=target)
    assert "injected 4 block calls" in summary
    for i in range(4):
        stored = rec.features.get(7, MID, SINGLE, i)["v"]
        got = spy.seen[("sample", 0, MID, SINGLE, i)]
        assert torch.equal(got[:, :, T:T + L], stored[:, :, -L:])        # target image: the recorded V
        if text == "auto":
            assert torch.equal(got[:, :, :T], stored[:, :, :T])          # same prompt length: text too
        else:
            assert torch.equal(got[:, :, :T], plain.seen[("sample", 0, MID, SINGLE, i)][:, :, :T]) if i == 0 else True
        assert not torch.equal(got[:, :, T + L:], stored[:, :, -L:])     # the reference tokens are not replaced
    # block 0 sees the same hidden states as an uninjected edit: its reference tokens are exactly the plain ones
    assert torch.equal(spy.seen[("sample", 0, MID, SINGLE, 0)][:, :, T + L:],
                       plain.seen[("sample", 0, MID, SINGLE, 0)][:, :, T + L:])
    assert torch.equal(spy.seen[("sample", 0, FIRST, SINGLE, 0)], plain.seen[("sample", 0, FIRST, SINGLE, 0)])


@pytest.mark.parametrize("case", ["other reference", "no reference"])
def test_edit_with_other_references_is_refused_before_work(tiny, case):
    inv, rec = invert(tiny, cache(), cond=kontext(conditioning(1, tokens=T)))
    target = kontext(conditioning(2, tokens=T), ref_seed=8) if case == "other reference" else conditioning(2, tokens=T)
    model, calls = counting_clone(patch(tiny, rec))
    with pytest.raises(ValueError, match="reference latents .* differ"):
        sample(model, inv, rec, cond=target)
    assert calls == []


def test_references_take_part_in_both_passes(tiny):
    """Without features, Kontext inverts and reconstructs like the plain model (random weights: same order of error),
    and the reference changes the result (it is really in the sequence)."""
    errors, inverted = [], []
    for src in (conditioning(1, tokens=T), kontext(conditioning(1, tokens=T))):
        inv, rec = invert(tiny, None, cond=src)
        out, _ = sample(tiny, inv, rec, cond=src, guidance=1.0)
        errors.append((out - latent(0)["samples"]).abs().max().item())
        inverted.append(inv["samples"])
    assert not torch.equal(*inverted)
    assert errors[1] < 2 * errors[0]  # measured 0.39 with the reference, 0.48 without

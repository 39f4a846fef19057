"""Token layouts: which tokens of a joint-attention sequence are the target image, for every family's order.

Expected slices are written out by hand from the families' sequence orders (text first with references after the
image: FLUX.1 Kontext, FLUX.2, Qwen-Image-Edit; image first: HiDream), not computed by the code under test.
"""
import pytest
import torch

from fireflow.errors import TokenLayoutError
from fireflow.features import SINGLE, CacheSpec, FeatureStore
from fireflow.injection import Strategy, apply_strategy, canonical, combine
from fireflow.solvers import MID
from fireflow.tokens import TokenLayout


def seq(*values):
    return torch.tensor(values, dtype=torch.float32).view(1, 1, -1, 1)


def flat(t):
    return t.flatten().tolist()


# 2 text tokens (1, 2), 3 image tokens (10, 11, 12), 2 reference tokens (90, 91)
KONTEXT = TokenLayout(image=3, reference=2)
HIDREAM = TokenLayout(image=3, reference=0, text_first=False)


def test_split_text_first_with_references_after_the_image():
    text, image = KONTEXT.split(7)
    assert (text, image) == (slice(0, 2), slice(2, 5))
    assert flat(canonical(seq(1, 2, 10, 11, 12, 90, 91), KONTEXT, True)) == [1, 2, 10, 11, 12]
    assert flat(canonical(seq(1, 2, 10, 11, 12, 90, 91), KONTEXT, False)) == [10, 11, 12]


def test_split_image_first():
    assert HIDREAM.split(5) == (slice(3, 5), slice(0, 3))
    assert flat(canonical(seq(10, 11, 12, 1, 2), HIDREAM, True)) == [1, 2, 10, 11, 12]  # canonical: text, then image


def test_padding_after_the_image_is_neither_text_nor_image():
    z = TokenLayout(image=3, padding=2)                 # Z-Image: [text | image | pad to the multiple]
    assert z.split(7) == (slice(0, 2), slice(2, 5)) and not z.canonical
    cur = seq(1, 2, 10, 11, 12, 0, 0)
    assert flat(canonical(cur, z, True)) == [1, 2, 10, 11, 12]
    assert flat(combine(cur, seq(5, 6, 70, 71, 72), "replace", 1.0, True, z)) == [5, 6, 70, 71, 72, 0, 0]
    assert TokenLayout(image=3, padding=1, reference=2, text_first=False).split(8) == (slice(6, 8), slice(0, 3))


def test_replace_never_touches_reference_tokens():
    cur = seq(1, 2, 10, 11, 12, 90, 91)
    rec = seq(5, 6, 70, 71, 72)                       # canonical [text | image] from inversion
    assert flat(combine(cur, rec, "replace", 1.0, True, KONTEXT)) == [5, 6, 70, 71, 72, 90, 91]
    assert flat(combine(cur, rec, "replace", 1.0, False, KONTEXT)) == [1, 2, 70, 71, 72, 90, 91]
    assert flat(combine(cur, rec, "add", 1.0, False, KONTEXT)) == [1, 2, 80, 82, 84, 90, 91]
    assert flat(cur) == [1, 2, 10, 11, 12, 90, 91]


def test_replace_image_first_puts_text_and_image_back_in_place():
    cur = seq(10, 11, 12, 1, 2)
    rec = seq(5, 6, 70, 71, 72)
    assert flat(combine(cur, rec, "replace", 1.0, True, HIDREAM)) == [70, 71, 72, 5, 6]
    assert flat(combine(cur, rec[:, :, 2:], "replace", 1.0, False, HIDREAM)) == [70, 71, 72, 1, 2]


def test_other_prompt_length_keeps_text_and_references():
    cur = seq(1, 2, 3, 10, 11, 12, 90, 91)            # 3 text tokens now, 2 recorded
    rec = seq(5, 6, 70, 71, 72)
    out = apply_strategy(Strategy(), cur, cur, cur, {"v": rec}, KONTEXT, "auto")
    assert flat(out[2]) == [1, 2, 3, 70, 71, 72, 90, 91] and out[3] is False


def test_layout_refuses_sequences_it_cannot_explain():
    with pytest.raises(TokenLayoutError):
        KONTEXT.split(4)                               # fewer tokens than image + references
    with pytest.raises(TokenLayoutError):
        TokenLayout(image=3, text=4).split(8)          # text length known exactly: 4 + 3 != 8
    assert TokenLayout(image=3, text=4).split(7) == (slice(0, 4), slice(4, 7))


def test_store_records_canonical_tokens_per_branch():
    plan = CacheSpec(single_blocks="0", inject_steps=1).resolve((0, 1), 2, "fireflow", branches=(0, 1))
    assert plan.entries == 2                           # one source evaluation x one block x V x two branches
    store = FeatureStore(plan, image_tokens=3, device="cpu", model_dtype=torch.float32)
    (src,) = plan.sources
    cond, uncond = seq(1, 2, 10, 11, 12, 90, 91), seq(3, 20, 21, 22, 90, 91)
    store.put(*src, SINGLE, 0, cond, cond, cond, KONTEXT, branch=0)
    store.put(*src, SINGLE, 0, uncond, uncond, uncond, KONTEXT, branch=1)
    store.freeze()
    assert flat(store.get(*src, SINGLE, 0, branch=0)["v"]) == [1, 2, 10, 11, 12]
    assert flat(store.get(*src, SINGLE, 0, branch=1)["v"]) == [3, 20, 21, 22]
    assert store.text_tokens == {0: 2, 1: 1}


def test_uncond_branch_reads_the_prompt_branch_when_only_that_was_recorded():
    plan = CacheSpec(single_blocks="0").resolve((0, 1), 2, "fireflow")
    store = FeatureStore(plan, image_tokens=3, device="cpu", model_dtype=torch.float32)
    (src,) = plan.sources
    cond = seq(1, 2, 10, 11, 12, 90, 91)
    store.put(*src, SINGLE, 0, cond, cond, cond, KONTEXT, branch=0)
    store.put(*src, SINGLE, 0, cond * 0, cond * 0, cond * 0, KONTEXT, branch=1)   # not planned: ignored
    store.freeze()
    assert flat(store.get(*src, SINGLE, 0, branch=1)["v"]) == [1, 2, 10, 11, 12]
    assert MID in (src[1],)

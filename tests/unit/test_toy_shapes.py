"""The toy shapes task (issue 12) is only evidence if its parts are exact: the pixel projection is invertible, the
classifier reads every clean render right, and the text encoder refuses words it does not know."""
import random

import pytest
import torch

import toy_shapes as toy


def test_projection_is_exactly_invertible():
    imgs = torch.stack([toy.render(toy.sample(random.Random(i))) for i in range(8)])
    lat = toy.to_latent(imgs)
    assert lat.shape == (8, 16, toy.SIZE // 2, toy.SIZE // 2)
    assert torch.allclose(toy.from_latent(lat), imgs, atol=1e-5)


def test_classifier_reads_every_clean_render():
    rng = random.Random(0)
    for _ in range(300):
        s = toy.sample(rng)
        r = toy.classify(toy.render(s), s.bg)
        assert (r.colour, r.shape) == (s.colour, s.shape), s
        assert toy.iou(r.mask, toy.object_mask(s)) > 0.85  # the median filter rounds corners


def test_classifier_reads_an_empty_scene_as_nothing():
    s = toy.sample(random.Random(3))
    assert toy.classify(toy.background_image(s.bg) * 2 - 1, s.bg).shape is None


def test_edit_pairs_change_exactly_one_thing():
    rng = random.Random(1)
    s = toy.sample(rng)
    for kind, field in (("colour", "colour"), ("shape", "shape"), ("background", "bg")):
        t = toy.edit_of(s, kind, rng)
        assert getattr(t, field) != getattr(s, field)
        assert {k for k in s.__dataclass_fields__ if getattr(s, k) != getattr(t, k)} == {field}


def test_text_encoder():
    tokens, pooled = toy.encode_text(["a red circle", "a blue ring on a black and white background", ""])
    assert tokens.shape == (3, toy.TOKENS, toy.CONTEXT) and pooled.shape == (3, toy.POOLED)
    assert tokens[2].abs().sum() == 0  # the empty caption: the unconditional prompt
    with pytest.raises(ValueError, match="outside the vocabulary"):
        toy.encode_text(["a red dog"])
    assert toy.scene_of("a red circle on a white background", 3).bg == ("white",)

"""Masked edits, FlowEdit and RF-Inversion beyond FLUX.1 (issue 14: any rectified-flow family): on tiny models of
other families built by ComfyUI's own classes, image (SD3, Chroma), one-frame (Qwen-Image) and video (Wan) latents,
CFG families with a negative prompt."""
import pytest
import torch

import family_fixtures as ff
from fireflow.control import ControlSpec
from hostlib import comfy_nodes

FAMILIES = ["sd3", "chroma", "qwen_image", "wan21"]


def N(node_id):
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


@pytest.fixture(scope="module")
def models():
    return {name: ff.build(name) for name in FAMILIES}


def square_mask(lat):
    """A pixel mask over the centre of the image the latent stands for (8 pixels per latent pixel)."""
    h, w = lat.shape[-2] * 8, lat.shape[-1] * 8
    m = torch.zeros(1, h, w)
    m[:, h // 4:3 * h // 4, w // 4:3 * w // 4] = 1
    return m


def kept(lat):
    """Latent pixels well outside the mask (beyond the feather and the bilinear resize)."""
    h, w = lat.shape[-2:]
    keep = torch.ones(h, w, dtype=torch.bool)
    keep[h // 4 - 2:3 * h // 4 + 2, w // 4 - 2:3 * w // 4 + 2] = False
    return keep


@pytest.mark.parametrize("name", FAMILIES)
def test_flowedit_edits_and_the_same_prompt_edits_nothing(models, name):
    model, lat = models[name], {"samples": ff.latent(name)}
    src, tgt, neg = ff.conditioning(name, seed=1), ff.conditioning(name, seed=2), ff.conditioning(name, seed=3)
    run = lambda a, b, **kw: N("FireFlowFlowEdit").edit(model, a, b, lat, 8, 6, 0, 1, "fireflow", 0, 2.0, 2.0,  # noqa
                                                       negative=neg, **kw)["result"][0]["samples"]
    with torch.inference_mode():
        same = run(src, src, source_cfg=3.0, target_cfg=3.0)
        edited = run(src, tgt, source_cfg=3.0, target_cfg=5.0)
    assert (same - lat["samples"]).abs().max() < 1e-4
    assert torch.isfinite(edited).all() and (edited - lat["samples"]).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["qwen_image", "wan21"])
def test_a_masked_edit_keeps_the_source_outside_on_5d_latents(models, name):
    model, lat = models[name], {"samples": ff.latent(name, 128, 128)}  # 16 x 16 latent pixels
    with torch.inference_mode():
        inv, rec = N("FireFlowInverter").invert(model, ff.conditioning(name, seed=1), lat, 6, "fireflow",
                                                1.0)["result"]
        out = N("FireFlowSampler").sample(model, ff.conditioning(name, seed=2), inv, 1.0, inversion=rec,
                                          mask=square_mask(lat["samples"]), mask_feather=4)["result"][0]["samples"]
    err = (out - lat["samples"]).abs()
    keep = kept(lat["samples"]).expand_as(err)
    assert err[keep].max() <= 1e-3 and err[~keep].max() > 1e-2


@pytest.mark.parametrize("name", ["sd3", "wan21"])
def test_rf_inversion_gamma_one_lands_on_its_noise(models, name):
    model, lat = models[name], {"samples": ff.latent(name)}
    with torch.inference_mode():
        inv, _ = N("FireFlowInverter").invert(model, ff.conditioning(name, seed=1), lat, 6, "fireflow", 1.0,
                                              control=N("FireFlowForwardControl").make(1.0, 0, -1, 4)[0])["result"]
    y1 = ControlSpec("forward", 1.0, seed=4).noise(lat["samples"].shape)
    assert (inv["samples"] - model.model.process_latent_out(y1)).abs().max() < 1e-4

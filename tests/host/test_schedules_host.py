"""`schedule = auto` in the real host (issue 11): the model's own sampling, a shift set by ComfyUI's ModelSampling
nodes, FLUX.2's scheduler, and FLUX.1's reference grid unchanged. Expected grids are computed here from the published
formulas or by ComfyUI's own scheduler nodes, not by the pack."""
import math

import pytest
import torch

import fixtures
from hostlib import comfy_nodes, conditioning, latent
from test_editing import invert

STEPS = 4


def stock(node_id, *args, **kwargs):
    obj = comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()
    fn = getattr(obj, "execute", None) or getattr(obj, obj.FUNCTION)
    return fn(*args, **kwargs)


def grid_of(model, lat=None, cond=None, schedule="auto"):
    with torch.inference_mode():
        r = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowInverter"]().invert(
            model, cond or conditioning(1), lat or latent(0), STEPS, "euler", 1.0, schedule=schedule)
    return list(r["result"][1].grid)


def shifted(mu, t):
    return 0.0 if t == 0 else math.exp(mu) / (math.exp(mu) + (1 / t - 1))


def test_flux1_default_is_still_the_reference_grid(tiny):
    # 8x8 latent -> 16 tokens; mu = 0.5 + (16 - 256) * 0.65 / 3840 (ALGORITHM.md section 2)
    mu = 0.5 + (16 - 256) * 0.65 / 3840
    want = [shifted(mu, 1 - i / STEPS) for i in range(STEPS + 1)]
    assert grid_of(tiny) == pytest.approx(want, abs=1e-7)


def test_a_shift_set_with_model_sampling_flux_is_followed(tiny):
    patched = stock("ModelSamplingFlux", tiny, 1.5, 0.5, 128, 128)[0]  # max_shift, base_shift, width, height
    model_sampling = patched.get_model_object("model_sampling")
    want = [1.0] + [model_sampling.percent_to_sigma(i / STEPS) for i in range(1, STEPS)] + [0.0]
    got = grid_of(patched)
    assert got == pytest.approx(want, abs=1e-6) and got != pytest.approx(grid_of(tiny), abs=1e-4)
    assert grid_of(patched, schedule="flux_shift") == pytest.approx(grid_of(tiny), abs=1e-7)  # still on offer


def test_sd3_auto_is_its_own_shift_and_model_sampling_sd3_changes_it():
    sd3 = fixtures.tiny_sd3(0)
    cond = [[torch.randn(1, 5, 32), {"pooled_output": torch.randn(1, 16)}]]
    shift = sd3.get_model_object("model_sampling").shift
    want = [shift * t / (1 + (shift - 1) * t) for t in (1 - i / STEPS for i in range(STEPS + 1))]
    assert grid_of(sd3, cond=cond) == pytest.approx(want, abs=1e-6)
    patched = stock("ModelSamplingSD3", sd3, 6.0)[0]
    want6 = [6 * t / (1 + 5 * t) for t in (1 - i / STEPS for i in range(STEPS + 1))]
    assert grid_of(patched, cond=cond) == pytest.approx(want6, abs=1e-6)


def test_schedule_choices_name_the_model_option():
    spec = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowInverter"].INPUT_TYPES()["optional"]["schedule"]
    assert tuple(spec[0]) == ("auto", "flux_shift", "linear", "model")

"""Defects found in review (issue 10), each checked in the real ComfyUI on the tiny FLUX."""
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import fixtures
import folder_paths
from hostlib import PACK, comfy_nodes, counting_clone
from test_editing import SINGLE, cache, invert, patch, sample

FIRST, MID = 0, 1


def N(node_id):
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


def test_injection_that_never_happens_is_an_error_not_a_plain_sample(tiny):
    """Another patch registered on the same blocks after the V-Injection Patch bypasses it: the edit would be a plain
    sample; the sampler must say so instead of reporting success."""
    inv, rec = invert(tiny, cache())
    bypassed = patch(tiny, rec).clone()
    for i in range(4):
        bypassed.set_model_patch_replace(lambda args, extra: extra["original_block"](args), "dit", "single_block", i)
    with pytest.raises(RuntimeError, match="4 of 4 planned feature injections did not happen"):
        sample(bypassed, inv, rec)


def test_fine_tune_of_late_blocks_has_another_fingerprint():
    fingerprint = PACK.nodes.passes.model_fingerprint
    base, tuned = fixtures.tiny_flux(0), fixtures.tiny_flux(0)
    assert fingerprint(base) == fingerprint(tuned)
    with torch.no_grad():
        last = tuned.model.diffusion_model.single_blocks[-1]
        last.linear2.weight.add_(1e-3)
        last.linear2.bias.add_(1e-3)
    assert fingerprint(base) != fingerprint(tuned)


def test_fp8_scales_stay_on_the_device_and_are_applied_on_read(tiny):
    inv, rec = invert(tiny, cache(dtype="fp8"))
    ref_inv, ref = invert(tiny, cache())
    store = rec.features
    assert store._scales and all(isinstance(s, torch.Tensor) and s.dim() == 0 for s in store._scales.values())
    for i in range(4):
        got, want = store.get(7, MID, SINGLE, i)["v"], ref.features.get(7, MID, SINGLE, i)["v"]
        # e4m3 keeps 3 mantissa bits: relative error <= 2^-4 for normal values, plus the subnormal floor
        assert ((got - want).abs() <= want.abs() / 16 + want.abs().max() * 2 ** -9).all()


@pytest.fixture
def saved_file(tiny):
    inv, rec = invert(tiny, cache(inject=2))
    text = N("FireFlowSaveInversion").save(inv, rec, "fireflow/plan_check")["ui"]["text"][0]
    name = text.split("saved ")[1].split(" [output]")[0]
    return os.path.join(folder_paths.get_output_directory(), name), name + " [output]"


@pytest.mark.parametrize("field, value", [("injection", [[[0, 1], [6, 1]], [[1, 1], [7, 1]]]),
                                          ("blocks", [[1, 0], [1, 1]]), ("block_counts", [2, 8])])
def test_loaded_plan_must_be_what_its_settings_give(saved_file, field, value):
    path, name = saved_file
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    plan = json.loads(meta["plan"])
    plan[field] = value
    save_file(tensors, path, metadata={**meta, "plan": json.dumps(plan)})
    with pytest.raises(ValueError, match="not what its settings give|damaged"):
        N("FireFlowLoadInversion").load(name, 16.0)


def test_load_listing_is_not_rescanned_when_nothing_changed(saved_file, monkeypatch):
    path, name = saved_file
    listing = lambda: N("FireFlowLoadInversion").INPUT_TYPES()["required"]["inversion_file"][0]  # noqa: E731
    assert name in listing()
    scans = []
    real_scandir, real_walk = os.scandir, os.walk
    monkeypatch.setattr(os, "scandir", lambda *a: scans.append(a) or real_scandir(*a))
    monkeypatch.setattr(os, "walk", lambda *a, **k: scans.append(a) or real_walk(*a, **k))
    for _ in range(3):
        assert name in listing()
    assert scans == []
    new = os.path.join(os.path.dirname(path), "added_later.safetensors")
    with open(path, "rb") as src, open(new, "wb") as dst:
        dst.write(src.read())
    assert os.path.relpath(new, folder_paths.get_output_directory()) + " [output]" in listing()
    assert scans


def test_budget_advice_in_node_words_prices_what_it_prints(tiny):
    model, calls = counting_clone(tiny)
    spec = cache(double="all", q=True, k=True, inject=3)
    spec = type(spec)(**{**spec.__dict__, "max_gb": 1e-5})
    with pytest.raises(ValueError) as e:
        invert(model, spec)
    msg = str(e.value)
    assert "single_blocks 2-3, double_blocks none" in msg and "max_cache_gb" in msg and "max_gb" not in \
        msg.replace("max_cache_gb", "")
    assert calls == []


def test_fireflow_one_step_reference_injects_both_calls(tiny):
    inv, rec = invert(tiny, cache(), steps=1)
    assert sorted(k[:2] for k, _ in rec.features.items()) == [(0, FIRST)] * 4 + [(0, MID)] * 4
    _, text = sample(patch(tiny, rec), inv, rec)
    assert "injected 8 block calls at (step, call) [(0, 0), (0, 1)]" in text


@pytest.mark.parametrize("text, tokens, says", [("image_only", 7, "text tokens kept (text_tokens image_only)"),
                                                ("auto", 9, "text tokens kept (the prompts have other lengths)"),
                                                ("auto", 7, "text tokens replaced")])
def test_sampler_says_why_text_tokens_were_kept(tiny, text, tokens, says):
    from hostlib import conditioning
    inv, rec = invert(tiny, cache(text=text))
    _, summary = sample(patch(tiny, rec), inv, rec, cond=conditioning(2, tokens=tokens))
    assert says in summary

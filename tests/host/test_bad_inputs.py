"""Inputs found by probing the real nodes (issue 10): each is refused with a clear message before any model
evaluation, or works. Every case runs through ComfyUI's own nodes and samplers on the tiny FLUX."""
import pytest
import torch

import comfy_extras.nodes_custom_sampler as custom_sampler
from hostlib import comfy_nodes, conditioning, counting_clone, latent
from test_editing import cache, invert, patch, sample
from test_errors import eps_model


def stock(node_id, *args):
    """Run a stock node whichever API it uses (classic method or V3 execute); returns its outputs tuple."""
    obj = comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()
    fn = getattr(obj, "execute", None) or getattr(obj, obj.FUNCTION)
    return fn(*args)


def area(cond):
    return stock("ConditioningSetArea", cond, 64, 64, 0, 0, 1.0)[0]


def with_reference(cond):
    cond = [[c[0], {**c[1], "reference_latents": [latent(7)["samples"]]}] for c in cond]
    return cond


def sampler_custom(model, cond, sigmas, lat, solver="fireflow", cfg=1.0):
    sampler = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowSolverSampler"]().get_sampler(solver)[0]
    sc = custom_sampler.SamplerCustom()
    run = sc.execute if hasattr(sc, "execute") else sc.sample
    with torch.inference_mode():
        return run(model, False, 0, cfg, cond, cond, sampler, sigmas, lat)[0]["samples"]


SOURCE_CASES = {
    "area": (area, "area or mask conditioning"),
    "combine": (lambda c: stock("ConditioningCombine", c, conditioning(4, tokens=5))[0], "2 entries"),
}
TARGET_CASES = {"area": SOURCE_CASES["area"],
                # the inversion saw none: features are only valid with the same references (issue 11)
                "reference latents": (with_reference, "reference latents .* differ")}


@pytest.mark.parametrize("case", sorted(SOURCE_CASES))
def test_recording_refuses_source_conditioning_before_work(tiny, case):
    make, needle = SOURCE_CASES[case]
    model, calls = counting_clone(tiny)
    with pytest.raises(ValueError, match=needle):
        invert(model, cache(), cond=make(conditioning(1)))
    assert calls == []


@pytest.mark.parametrize("case", sorted(TARGET_CASES))
def test_injection_refuses_target_conditioning_before_work(tiny, case):
    make, needle = TARGET_CASES[case]
    inv, rec = invert(tiny, cache())
    model, calls = counting_clone(patch(tiny, rec))
    with pytest.raises(ValueError, match=needle):
        sample(model, inv, rec, cond=make(conditioning(2, tokens=9)))
    assert calls == []


def test_sampler_path_runs_the_same_injection_checks(tiny):
    """The V-Injection model through stock SamplerCustom + FireFlow SAMPLER: same refusals, no evaluation."""
    inv, rec = invert(tiny, cache(text="full"))
    model, calls = counting_clone(patch(tiny, rec))
    sigmas = rec.grid_tensor().float()
    with pytest.raises(ValueError, match="area or mask"):
        sampler_custom(model, area(conditioning(2, tokens=7)), sigmas, inv)
    with pytest.raises(ValueError, match="text_tokens = full needs equal prompt lengths: recorded 7, now 9"):
        sampler_custom(model, conditioning(2, tokens=9), sigmas, inv)
    assert calls == []
    out = sampler_custom(model, conditioning(2, tokens=7), sigmas, inv)  # and the plain case edits
    assert torch.isfinite(out).all() and len(calls) == 9


def test_full_text_policy_refuses_different_lengths_before_work(tiny):
    inv, rec = invert(tiny, cache(text="full"))
    model, calls = counting_clone(patch(tiny, rec))
    with pytest.raises(ValueError, match="recorded 7, now 9 tokens"):
        sample(model, inv, rec, cond=conditioning(2, tokens=9))
    assert calls == []


def test_fp16_latent_gives_the_fp32_result_and_fp32_timesteps(tiny):
    """An fp16 LATENT must not make the timesteps fp16 (t = 0.26646 reached the model as 0.26636)."""
    seen, values = [], []

    def spy(executor, *args, **kwargs):
        seen.append(args[1].dtype)
        values.append(args[1][0].item())
        return executor(*args, **kwargs)
    import comfy.patcher_extension as pe
    m = tiny.clone()
    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "fireflow-test-t", spy)
    half = {"samples": latent(0)["samples"].half()}
    full = {"samples": half["samples"].float()}
    inv16, rec16 = invert(m, cache(), lat=half)
    inv32, rec32 = invert(m, cache(), lat=full)
    assert set(seen) == {torch.float32}
    assert torch.equal(inv16["samples"], inv32["samples"])
    assert torch.equal(sample(patch(m, rec16), inv16, rec16)[0], sample(patch(m, rec32), inv32, rec32)[0])
    values.clear()  # the SAMPLER path gets the latent as ComfyUI hands it over (fp16 here): t is not rounded to fp16
    sigmas = torch.tensor([1.0, 0.7, 0.26646, 0.0])
    sampler_custom(m, conditioning(2), sigmas, {"samples": inv16["samples"].half()}, solver="euler")
    assert values == sigmas[:3].tolist()


def nan_cond(where):
    c = conditioning(1)
    if where == "tokens":
        c[0][0][0, 0, 0] = float("nan")
    elif where == "pooled":
        c[0][1]["pooled_output"][0, 0] = float("inf")
    else:
        c[0][1]["guidance"] = float("nan")
    return c


@pytest.mark.parametrize("where, needle", [("tokens", "token embeddings contain NaN"),
                                           ("pooled", "pooled vector contain NaN"), ("guidance", "guidance is nan")])
def test_non_finite_conditioning_refused_before_work(node, tiny, where, needle):
    model, calls = counting_clone(tiny)
    with pytest.raises(ValueError, match=needle), torch.inference_mode():
        node("FireFlowInverter").invert(model, nan_cond(where), latent(0), 4, "fireflow", -1.0)
    assert calls == []


def test_non_finite_guidance_widget_refused(node, tiny):
    model, calls = counting_clone(tiny)
    with pytest.raises(ValueError, match="guidance is nan"):
        node("FireFlowInverter").invert(model, conditioning(1), latent(0), 4, "fireflow", float("nan"))
    with pytest.raises(ValueError, match="guidance is inf"):
        node("FireFlowSampler").sample(model, conditioning(1), latent(0), float("inf"))
    assert calls == []


def divide_by_sigma(args):
    """A sampler CFG patch written for noise-prediction models: it divides by sigma, which is 0 where inversion
    starts (ComfyUI 0.3.75's RescaleCFG does this for every model)."""
    return args["input"] - (args["cond_denoised"] * args["sigma"].view(-1, 1, 1, 1)) / args["sigma"].view(-1, 1, 1, 1)


def test_patch_that_divides_by_sigma_is_named_when_output_goes_nan(node, tiny):
    m = tiny.clone()
    m.set_model_sampler_cfg_function(divide_by_sigma)
    with pytest.raises(ValueError) as e, torch.inference_mode():
        node("FireFlowInverter").invert(m, conditioning(1), latent(0), 4, "fireflow", 1.0)
    msg = str(e.value)
    assert "NaN or infinite" in msg and "inversion step 1, t = 0" in msg and "divide_by_sigma (sampler_cfg_function)" in msg


def test_rescale_cfg_is_named_or_works(node, tiny):
    """Stock RescaleCFG: 0.3.75 divides by sigma (NaN at t = 0, and the error must name it); newer ComfyUI rescales
    flow models in x0 space (then the inversion must simply work)."""
    rescaled = stock("RescaleCFG", tiny, 0.7)[0]
    try:
        with torch.inference_mode():
            out = node("FireFlowInverter").invert(rescaled, conditioning(1), latent(0), 4, "fireflow", 1.0)
    except ValueError as e:
        assert "RescaleCFG (sampler_cfg_function)" in str(e)
    else:
        assert torch.isfinite(out["result"][0]["samples"]).all()


def test_solver_sampler_refuses_sigma_zero_start_before_work(tiny):
    model, calls = counting_clone(tiny)
    with pytest.raises(ValueError, match="start at 0.*FlipSigmas"):
        sampler_custom(model, conditioning(0), torch.tensor([0.0, 0.5, 1.0]), latent(0), solver="euler")
    assert calls == []


def test_solver_sampler_names_the_model_not_the_sigmas(tiny):
    model, calls = counting_clone(eps_model(tiny))
    with pytest.raises(ValueError, match="not a rectified flow") as e:
        sampler_custom(model, conditioning(0), torch.tensor([1.0, 0.5, 0.0]), latent(0))
    assert "sigma" not in str(e.value).lower() and calls == []

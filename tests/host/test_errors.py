"""Bad input is refused with a message that says what to change, before any model evaluation (issue 3, item 6)."""
import pytest
import torch

from hostlib import comfy_nodes, conditioning, counting_clone, latent


def eps_model(tiny):
    """The tiny FLUX behind stock ModelSamplingDiscrete(eps): what an SD1.5-style epsilon model looks like."""
    msd = comfy_nodes.NODE_CLASS_MAPPINGS["ModelSamplingDiscrete"]()
    run = msd.execute if hasattr(msd, "execute") else msd.patch
    return run(tiny, "eps", False)[0]


def invert(node, model, **kw):
    args = dict(conditioning=conditioning(0), latent=latent(0), steps=4, solver="fireflow", guidance=1.0)
    args.update(kw)
    return node("FireFlowInverter").invert(model, **args)


CASES = {
    "zero steps": (dict(steps=0), "steps must be at least 1"),
    "nan latent": (dict(latent={"samples": torch.full((1, 16, 8, 8), float("nan"))}), "NaN or infinite"),
    "wrong channels": (dict(latent=latent(0, channels=4)), "expects 16"),
    "video latent": (dict(latent={"samples": torch.zeros(1, 16, 2, 8, 8)}), "image latent"),
    "empty conditioning": (dict(conditioning=[]), "conditioning is empty"),
    "zero tokens": (dict(conditioning=conditioning(0, tokens=0)), "at least one token"),
    "batch mismatch": (dict(conditioning=conditioning(0, batch=3), latent=latent(0, batch=2)), "does not match"),
    "unknown solver": (dict(solver="heun"), "choose one of"),
    "sigmas not monotonic": (dict(sigmas=torch.tensor([1.0, 0.5, 0.7, 0.0])), "strictly"),
    "sigmas ascending": (dict(sigmas=torch.tensor([0.0, 0.5, 1.0])), "must be descending"),
    "sigmas too short": (dict(sigmas=torch.tensor([1.0])), "at least 2"),
    "sigmas not ending at 0": (dict(sigmas=torch.tensor([1.0, 0.5, 0.1])), "must end at 0"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_inverter_refuses_before_work(node, tiny, case):
    kw, needle = CASES[case]
    model, calls = counting_clone(tiny)
    with pytest.raises(ValueError, match=None) as e:
        invert(node, model, **kw)
    assert needle in str(e.value) and calls == []


def test_epsilon_model_is_refused(node, tiny):
    with pytest.raises(ValueError) as e:
        invert(node, eps_model(tiny))
    assert "not a rectified flow" in str(e.value) and "FLUX" in str(e.value)


def test_cosmos_parametrisation_is_refused_with_the_reason(node, tiny):
    """Cosmos-Predict2's model_sampling (as model_base builds it for ModelType.FLOW_COSMOS) is a rectified flow in EDM's
    parametrisation: refused, saying so, rather than called 'not a flow'."""
    import comfy.model_base as mb
    cosmos = tiny.clone()
    cosmos.add_object_patch("model_sampling", mb.model_sampling(tiny.model.model_config, mb.ModelType.FLOW_COSMOS))
    model, calls = counting_clone(cosmos)
    with pytest.raises(ValueError, match="Cosmos-Predict2 is a rectified flow, but ComfyUI runs it in EDM's"):
        invert(node, model)
    assert calls == []


def test_sampler_refuses_latent_of_another_shape(node, tiny):
    with torch.inference_mode():
        _, rec = invert(node, tiny)["result"]
    model, calls = counting_clone(tiny)
    with pytest.raises(ValueError) as e:
        node("FireFlowSampler").sample(model, conditioning(0), latent(0, size=16), 2.0, inversion=rec)
    assert "inversion was made for [1, 16, 8, 8]" in str(e.value) and calls == []


def test_sampler_refuses_empty_latent_without_inversion(node, tiny):
    with pytest.raises(ValueError) as e:
        node("FireFlowSampler").sample(tiny, conditioning(0), {"samples": torch.zeros(1, 16, 8, 8)}, 2.0)
    assert "all zeros" in str(e.value) and "SamplerCustomAdvanced" in str(e.value)


def test_sampler_refuses_epsilon_model(node, tiny):
    with pytest.raises(ValueError, match="not a rectified flow"):
        node("FireFlowSampler").sample(eps_model(tiny), conditioning(0), latent(0), 2.0)


def test_solver_sampler_refuses_sigma_zero_start_without_raw_velocity(tiny):
    import comfy_extras.nodes_custom_sampler as cs
    sampler = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowSolverSampler"]().get_sampler("euler")[0]
    sc = cs.SamplerCustom()
    run = sc.execute if hasattr(sc, "execute") else sc.sample
    with pytest.raises(ValueError, match="FlipSigmas"):
        with torch.inference_mode():
            run(tiny, False, 0, 1.0, conditioning(0), conditioning(0), sampler, torch.tensor([0.0, 0.5, 1.0]),
                latent(0))


def test_sampler_refuses_latent_batch_other_than_inverted(node, tiny):
    with torch.inference_mode():
        _, rec = invert(node, tiny)["result"]
    with pytest.raises(ValueError, match=r"inversion was made for \[1, 16, 8, 8\]"):
        node("FireFlowSampler").sample(tiny, conditioning(0), latent(0, batch=2), 2.0, inversion=rec)


def test_sampler_refuses_latent_channels_other_than_model(node, tiny):
    with pytest.raises(ValueError, match="expects 16"):
        node("FireFlowSampler").sample(tiny, conditioning(0), latent(0, channels=4), 2.0)


def test_wrong_object_on_inversion_input(node, tiny):
    with pytest.raises(ValueError, match="not a FireFlow inversion record"):
        node("FireFlowSampler").sample(tiny, conditioning(0), latent(0), 2.0, inversion={"grid": [1, 0]})


def test_wrong_object_on_feature_cache_input(node, tiny):
    with pytest.raises(ValueError, match="must come from an Attention Feature Cache"):
        invert(node, tiny, feature_cache={"single_blocks": "all"})


def test_missing_inversion_file(node):
    with pytest.raises(ValueError, match="does not exist"):
        node("FireFlowLoadInversion").load("no_such_file.safetensors", 16.0)

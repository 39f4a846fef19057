"""Attention Feature Cache + V-Injection Patch in the real ComfyUI on the tiny FLUX (issue 4 acceptance)."""
import pytest
import torch

from hostlib import comfy_nodes, conditioning, counting_clone, latent

FIRST, MID = 0, 1
SINGLE, DOUBLE = 1, 0


def N(node_id):
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


def cache(v=True, q=False, k=False, single="all", double="none", inject=1, calls="reference", text="auto",
          device="auto", dtype="model"):
    return N("FireFlowFeatureCache").make(v, q, k, single, double, inject, calls, text, device, dtype)[0]


def invert(model, spec=None, lat=None, cond=None, steps=8, solver="fireflow"):
    with torch.inference_mode():
        return N("FireFlowInverter").invert(model, cond or conditioning(1), lat or latent(0), steps, solver, 1.0,
                                            feature_cache=spec)["result"]


def patch(model, rec, inject=-1, v="replace", q="keep", k="keep", ratios=(1.0, 1.0, 1.0)):
    return N("FireFlowVInjection").patch(model, rec, inject, v, q, k, *ratios)["result"][0]


def sample(model, inv, rec, cond=None, guidance=2.0):
    with torch.inference_mode():
        r = N("FireFlowSampler").sample(model, cond or conditioning(2, tokens=9), inv, guidance, inversion=rec)
    return r["result"][0]["samples"], r["ui"]["text"][0]


class Spy:
    """Another pack's attention override, installed first: records the v each attention call receives."""

    def __init__(self):
        self.seen = {}

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options
        return self

    def __call__(self, func, *args, **kwargs):
        topts = kwargs["transformer_options"]
        ctx = topts.get("fireflow")
        kind = SINGLE if topts.get("block_type") == "single" else DOUBLE
        if ctx is not None:
            self.seen[(ctx.pass_name, ctx.step, ctx.call, kind, topts["block_index"])] = args[2].clone()
        return func(*args, **kwargs)


def with_spy(model):
    m = model.clone()
    spy = Spy()
    m.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = spy
    return m, spy


def test_reference_default_alters_exactly_step0_midpoint_with_the_recorded_v(tiny):
    base, spy = with_spy(tiny)
    inv, rec = invert(base, cache())
    store = rec.features
    keys = sorted(k for k, _ in store.items())
    assert keys == [(7, MID, SINGLE, i, 2, 0) for i in range(4)]  # inversion step 7's midpoint, V, blocks 0-3
    for i in range(4):  # recorded V is exactly what the inversion's attention received
        assert torch.equal(store.get(7, MID, SINGLE, i)["v"], spy.seen[("invert", 7, MID, SINGLE, i)])

    plain_spy_model, plain_spy = with_spy(tiny)
    plain, _ = sample(plain_spy_model, inv, rec)
    spy.seen.clear()
    edited, text = sample(patch(base, rec), inv, rec)
    L = 16  # image tokens of an 8x8 latent
    for i in range(4):
        got = spy.seen[("sample", 0, MID, SINGLE, i)]
        assert torch.equal(got[:, :, -L:], store.get(7, MID, SINGLE, i)["v"][:, :, -L:])
        assert torch.equal(spy.seen[("sample", 0, FIRST, SINGLE, i)], plain_spy.seen[("sample", 0, FIRST, SINGLE, i)])
    assert "(0, 1)]" in text and "injected 4 block calls" in text  # 4 blocks x 1 evaluation
    assert not torch.equal(edited, plain)
    assert len(spy.seen) == 9 * 6  # the other override ran at every evaluation in all 6 blocks


def test_text_tokens_replaced_when_lengths_agree(tiny):
    base, spy = with_spy(tiny)
    inv, rec = invert(base, cache())
    _, text = sample(patch(base, rec), inv, rec, cond=conditioning(5, tokens=7))
    assert "text tokens replaced" in text
    assert torch.equal(spy.seen[("sample", 0, MID, SINGLE, 0)], rec.features.get(7, MID, SINGLE, 0)["v"])


def test_full_text_policy_refuses_different_lengths(tiny):
    inv, rec = invert(tiny, cache(text="full"))
    with pytest.raises(ValueError, match="needs equal prompt lengths"):
        sample(patch(tiny, rec), inv, rec, cond=conditioning(2, tokens=9))


def test_edit_costs_18_evaluations(tiny):
    counted, calls = counting_clone(tiny)
    inv, rec = invert(counted, cache())
    sample(patch(counted, rec), inv, rec)
    assert len(calls) == 18


def test_inject_zero_equals_plain_sampler(tiny):
    inv, rec = invert(tiny, cache())
    a, _ = sample(patch(tiny, rec, inject=0), inv, rec)
    b, _ = sample(tiny, inv, rec)
    assert torch.equal(a, b)


@pytest.mark.parametrize("inject", [1, 4, 8])
def test_same_prompt_replace_v_reconstructs_at_least_as_well(tiny, inject):
    """Same prompt, guidance 1: the injected V is the inversion's own at the same interval, which pulls the edit back
    onto the inversion's trajectory. So injection must change the result, and not for the worse."""
    lat, src = latent(0), conditioning(1)
    inv, rec = invert(tiny, cache(double="all", inject=inject), lat=lat, cond=src)
    with_inj, _ = sample(patch(tiny, rec), inv, rec, cond=src, guidance=1.0)
    without, _ = sample(tiny, inv, rec, cond=src, guidance=1.0)
    err = lambda x: (x - lat["samples"]).pow(2).mean().sqrt().item()  # noqa: E731
    assert not torch.equal(with_inj, without)
    assert err(with_inj) < err(without)


@pytest.mark.parametrize("opts", [dict(), dict(dtype="bf16"), dict(dtype="fp8"), dict(text="image_only"),
                                  dict(double="all", q=True, k=True, inject=3, calls="both"), dict(device="cpu")])
def test_held_bytes_equal_the_formula(tiny, opts):
    spec = cache(**opts)
    inv, rec = invert(tiny, spec)
    store, plan = rec.features, rec.features.plan
    elem = {"model": 4, "bf16": 2, "fp16": 2, "fp8": 1}[spec.dtype]
    tokens = 16 + (0 if spec.text_tokens == "image_only" else 7)
    assert store.nbytes == plan.entries * 1 * 2 * tokens * 32 * elem  # entries x B x heads x tokens x head_dim
    assert store.nbytes == plan.estimate_bytes(1, 2, 32, 7, 16, torch.float32)
    assert len(list(store.items())) == plan.entries


def test_fp8_storage_still_edits(tiny):
    """fp8 features edit like full-precision ones: the fp8 edit stays far closer to the fp32-feature edit than either
    is to the plain (uninjected) sample."""
    inv, rec = invert(tiny, cache(dtype="fp8"))
    out, text = sample(patch(tiny, rec), inv, rec)
    _, rec32 = invert(tiny, cache())
    full, _ = sample(patch(tiny, rec32), inv, rec32)
    plain, _ = sample(tiny, inv, rec)
    effect = (full - plain).abs().max().item()
    assert "injected 4 block calls" in text and effect > 0
    assert (out - full).abs().max().item() < 0.25 * effect


@pytest.mark.parametrize("mode", [dict(v="add"), dict(v="keep", q="add"), dict(v="keep", k="replace"),
                                  dict(v="replace", q="add")])
def test_strategy_variants_run(tiny, mode):
    inv, rec = invert(tiny, cache(q=True, k=True))
    out, text = sample(patch(tiny, rec, **mode), inv, rec)
    plain, _ = sample(tiny, inv, rec)
    assert torch.isfinite(out).all() and not torch.equal(out, plain)


def test_prompt_batch_edits_in_one_pass(tiny):
    inv, rec = invert(tiny, cache())
    pm = patch(tiny, rec)
    batch = conditioning(2, tokens=9, batch=3)
    together, _ = sample(pm, inv, rec, cond=batch)
    assert together.shape[0] == 3
    plain, _ = sample(tiny, inv, rec, cond=batch)
    assert all(not torch.equal(together[i], plain[i]) for i in range(3))  # every prompt of the batch is edited
    for i in range(3):
        one = [[batch[0][0][i:i + 1], {"pooled_output": batch[0][1]["pooled_output"][i:i + 1], "guidance": 3.5}]]
        single, _ = sample(pm, inv, rec, cond=one)
        assert torch.allclose(together[i:i + 1], single, atol=1e-5)


def test_source_model_untouched_and_other_override_survives(tiny):
    options = repr(tiny.model_options)
    ks = lambda m: comfy_nodes.KSampler().sample(m, 7, 3, 1.0, "euler", "simple", conditioning(1),  # noqa: E731
                                                 conditioning(2), latent(3))[0]["samples"]
    with torch.inference_mode():
        before = ks(tiny)
    inv, rec = invert(tiny, cache(double="all"))
    sample(patch(tiny, rec), inv, rec)
    with torch.inference_mode():
        after = ks(tiny)
    assert torch.equal(before, after) and repr(tiny.model_options) == options


def test_existing_block_replace_patch_is_chained(tiny):
    m = tiny.clone()
    ran = []

    def other(args, extra):
        ran.append(1)
        return extra["original_block"](args)
    m.set_model_patch_replace(other, "dit", "single_block", 2)
    inv, rec = invert(m, cache())
    _, text = sample(patch(m, rec), inv, rec)
    assert len(ran) == 18 and "injected 4 block calls" in text


ERRORS = {
    "no features": (lambda t: (invert(t), {}), "connect an Attention Feature Cache"),
    "inject larger than recorded": (lambda t: (invert(t, cache(inject=2)), dict(inject=3)), "larger than the recorded"),
    "q not recorded": (lambda t: (invert(t, cache()), dict(q="add")), "Q, which were not recorded.*record_q"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_patch_errors(tiny, case):
    make, needle = ERRORS[case]
    (inv, rec), kw = make(tiny)
    with pytest.raises(ValueError, match=needle):
        patch(tiny, rec, **kw)


def test_features_from_another_model_are_refused(tiny):
    import fixtures
    inv, rec = invert(tiny, cache())
    with pytest.raises(ValueError, match="recorded with another model"):
        patch(fixtures.tiny_flux(1), rec)


def test_inject_steps_beyond_grid_refused(tiny):
    with pytest.raises(ValueError, match=r"inject_steps \(9\) is larger than the inverted steps \(8\)"):
        invert(tiny, cache(inject=9))


@pytest.mark.parametrize("spec, needle", [("40", "has 4 single-stream blocks"), ("3-1", "runs backwards"),
                                          ("a-b", "is not an index"), ("none", "no blocks selected")])
def test_block_selection_errors(tiny, spec, needle):
    with pytest.raises(ValueError, match=needle):
        invert(tiny, cache(single=spec))


def test_sampler_grid_or_latent_mismatch_refused_before_work(tiny):
    inv, rec = invert(tiny, cache())
    pm = patch(tiny, rec)
    counted, calls = counting_clone(pm)
    with torch.inference_mode(), pytest.raises(ValueError, match="another grid"):
        N("FireFlowSampler").sample(counted, conditioning(2), inv, 2.0, steps=6)
    other_inv, other_rec = invert(tiny, cache(), lat=latent(5))
    with torch.inference_mode(), pytest.raises(ValueError, match="another inversion"):
        N("FireFlowSampler").sample(counted, conditioning(2), other_inv, 2.0, inversion=other_rec)
    assert calls == []


def EDIT_PROMPT(target):
    """API-format edit graph on the tiny FLUX (test nodes stand in for the text encoder and VAE)."""
    return {
        "model": {"class_type": "FFTestTinyFlux", "inputs": {"seed": 0, "schnell": False}},
        "src": {"class_type": "FFTestConditioning", "inputs": {"seed": 1, "tokens": 7, "dim": 32,
                                                               "pooled_dim": 16, "guidance": 3.5, "batch": 1}},
        "tgt": {"class_type": "FFTestConditioning", "inputs": {"seed": target, "tokens": 9, "dim": 32,
                                                               "pooled_dim": 16, "guidance": 3.5, "batch": 1}},
        "lat": {"class_type": "FFTestLatent", "inputs": {"seed": 2, "width": 8, "height": 8, "channels": 16,
                                                         "batch": 1}},
        "cache": {"class_type": "FireFlowFeatureCache", "inputs": {
            "record_v": True, "record_q": False, "record_k": False, "single_blocks": "all",
            "double_blocks": "none", "inject_steps": 1, "calls": "reference", "text_tokens": "auto",
            "device": "auto", "dtype": "model"}},
        "inv": {"class_type": "FireFlowInverter", "inputs": {
            "model": ["model", 0], "conditioning": ["src", 0], "latent": ["lat", 0], "steps": 8,
            "solver": "fireflow", "guidance": 1.0, "feature_cache": ["cache", 0]}},
        "patch": {"class_type": "FireFlowVInjection", "inputs": {
            "model": ["model", 0], "inversion": ["inv", 1], "inject_steps": -1, "v_mode": "replace",
            "q_mode": "keep", "k_mode": "keep", "v_ratio": 1.0, "q_ratio": 1.0, "k_ratio": 1.0}},
        "smp": {"class_type": "FireFlowSampler", "inputs": {
            "model": ["patch", 0], "conditioning": ["tgt", 0], "latent": ["inv", 0], "inversion": ["inv", 1],
            "guidance": 2.0}},
        "cap": {"class_type": "FFTestCapture", "inputs": {"latent": ["smp", 0], "label": "edit"}},
    }

def test_graph_new_target_prompt_reuses_inversion_and_patch(graph):
    prompt = EDIT_PROMPT
    ok, hist, errors = graph.run(prompt(3))
    assert ok and not errors, errors
    assert "injected" in hist["outputs"]["smp"]["text"][0]
    ok, _, errors = graph.run(prompt(4))
    assert ok and not errors, errors
    ran = graph.executed_nodes()
    assert {"inv", "patch", "cache"}.isdisjoint(ran) and {"tgt", "smp"} <= ran


def test_unsupported_flow_family_inverts_but_refuses_features_by_name():
    """A tiny AuraFlow is a rectified flow without a family adapter: plain inversion works, the feature cache names
    the family and lists the supported ones; FLUX features are refused on another family."""
    import fixtures
    aura = fixtures.tiny_auraflow(0)
    cond = [[torch.randn(1, 5, 32), {}]]
    lat = {"samples": torch.randn(1, 4, 8, 8)}
    inv, rec = invert(aura, None, cond=cond, lat=lat, steps=3)
    assert torch.isfinite(inv["samples"]).all() and rec.family == "AuraFlow"
    with pytest.raises(ValueError, match=r"not supported for this model family \(AuraFlow\); supported: FLUX.1, "):
        invert(aura, cache(), cond=cond, lat=lat, steps=3)
    flux_rec = invert(fixtures.tiny_flux(0), cache())[1]
    with pytest.raises(ValueError, match="recorded with a FLUX.1 model; this model is SD3"):
        patch(fixtures.tiny_sd3(0), flux_rec)


def test_reference_latents_refused_with_injection(tiny):
    inv, rec = invert(tiny, cache())
    cond = conditioning(2)
    cond[0][1]["reference_latents"] = [latent(7)["samples"]]
    with pytest.raises(ValueError, match="reference latents .* differ"):
        sample(patch(tiny, rec), inv, rec, cond=cond)


def test_inject_until_sigma_is_inject_steps_on_this_grid(tiny):
    """A noise-level window records and injects exactly what the equivalent step count does, and the summary says at
    which sigmas the edit was injected."""
    spec = N("FireFlowFeatureCache").make(True, False, False, "all", "none", 1, "reference", "auto", "auto", "model",
                                          inject_until_sigma=0.5)[0]
    inv, rec = invert(tiny, spec)
    grid = rec.grid
    want = sum(1 for t in grid[:-1] if t >= 0.5)
    assert 1 < want < 8 and rec.features.plan.spec.inject_steps == want
    inv2, rec2 = invert(tiny, cache(inject=want))
    assert rec2.features.plan.keys() == rec.features.plan.keys()
    out, text = sample(patch(tiny, rec), inv, rec)
    out2, _ = sample(patch(tiny, rec2), inv2, rec2)
    assert torch.equal(out, out2)
    mids = ", ".join(f"{(grid[j] + grid[j + 1]) / 2:.3g}" for j in range(want))
    assert f"(sigma {mids})" in text

"""Wan 2.2 A14B's two experts in the real host (issue 13): the high-noise expert walks the steps that start at
sigma >= the boundary, the low-noise expert the rest, in both passes.

The tiny experts are two seeded Wan 2.1-architecture models (A14B is that architecture; ComfyUI loads each expert as
WAN21). Wan's own schedule (shift 8) on 8 steps is 1, .982, .960, .930, .889, .828, .727, .533, 0, so the published
text-to-video boundary 0.875 gives the first 5 edit steps to the high-noise expert (from theory: the count of
t_0..t_7 >= 0.875), the last 3 to the low-noise one; the inversion walks the mirror image (its first 3 steps low).
"""
import pytest
import torch

import family_fixtures as ff
from familylib import N, patch, with_spy
from hostlib import PACK, counting_clone

STEPS, SPLIT = 8, 5
GRID = [8 * t / (1 + 7 * t) for t in (1 - i / STEPS for i in range(STEPS + 1))]  # ComfyUI's shift 8


@pytest.fixture(scope="module")
def experts():
    return ff.build("wan21", seed=0), ff.build("wan21", seed=1)


def timestep_log(model):
    """A clone that logs the timestep of each diffusion-model forward (a keyed wrapper, clone-scoped)."""
    import comfy.patcher_extension as pe
    seen = []

    def wrapper(executor, *args, **kwargs):
        seen.append(round(float(args[1].flatten()[0]) / 1000, 3))  # Wan feeds 1000 t
        return executor(*args, **kwargs)
    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "fireflow-test-t", wrapper)
    return m, seen


def cache(inject=1, until=0.0, dtype="model"):  # model dtype: stored values compare exactly (video's auto is fp8)
    return N("FireFlowFeatureCache").make(True, False, False, "auto", "auto", inject, "reference", "auto", "auto",
                                          dtype, 8.0, until)[0]


def invert(high, low, spec=None, boundary=-1.0, cond_seed=1):
    with torch.inference_mode():
        return N("FireFlowInverter").invert(high, ff.conditioning("wan21", 7, cond_seed), {"samples": ff.latent("wan21")},
                                            STEPS, "fireflow", 1.0, feature_cache=spec, model_low_noise=low,
                                            expert_boundary=boundary)["result"]


def sample(high, low, inv, rec, cond_seed=1, **kw):
    with torch.inference_mode():
        r = N("FireFlowSampler").sample(high, ff.conditioning("wan21", 7, cond_seed), inv, 1.0, inversion=rec,
                                        cfg=1.0, model_low_noise=low, **kw)
    return r["result"][0]["samples"], r["ui"]["text"][0]


def test_each_expert_walks_its_own_steps_in_both_passes(experts):
    high, seen_high = timestep_log(experts[0])
    low, seen_low = timestep_log(experts[1])
    inv, rec = invert(high, low)
    assert rec.grid == pytest.approx(GRID, abs=1e-3) and rec.expert_boundary == 0.875 and rec.expert_steps == SPLIT
    assert rec.nfe == STEPS + 2  # FireFlow restarts its carried velocity at the switch: one extra evaluation
    # inversion: low-noise expert on 0 -> .828 (3 steps: FIRST at 0, then one midpoint each), high-noise on to 1
    assert len(seen_low) == 4 and max(seen_low) < 0.828 and len(seen_high) == 6 and min(seen_high) >= 0.828
    seen_high.clear(), seen_low.clear()
    out, summary = sample(high, low, inv, rec)
    assert "10 evaluations" in summary and "high-noise expert for steps 0-4, low-noise from step 5" in summary
    assert len(seen_high) == 6 and min(seen_high) >= 0.828 and len(seen_low) == 4 and max(seen_low) <= 0.828
    assert (out - ff.latent("wan21")).abs().mean() < 0.5 * ff.latent("wan21").abs().mean()


def test_the_edit_equals_two_chained_samplers_as_a_comfyui_workflow_runs_them(experts):
    """Independent computation: the stock two-sampler split (SamplerCustom with the FireFlow SAMPLER and no added
    noise, the high-noise expert on sigmas[:6], the low-noise one on sigmas[5:]) gives the two-expert Sampler's latent."""
    import comfy_extras.nodes_custom_sampler as cs
    high, low = experts
    inv, rec = invert(high, low)
    out, _ = sample(high, low, inv, rec)
    grid = torch.tensor(rec.grid, dtype=torch.float32)
    sampler = N("FireFlowSolverSampler").get_sampler("fireflow")[0]
    sc = cs.SamplerCustom()
    run = sc.execute if hasattr(sc, "execute") else sc.sample
    cond = ff.conditioning("wan21", 7, 1)
    with torch.inference_mode():
        a = run(high, False, 0, 1.0, cond, cond, sampler, grid[:SPLIT + 1], inv)[0]
        b = run(low, False, 0, 1.0, cond, cond, sampler, grid[SPLIT:], a)[0]["samples"]
    assert torch.allclose(out, b, atol=1e-5, rtol=0), (out - b).abs().max()


def test_features_are_recorded_by_the_expert_that_walks_the_step(experts):
    """inject_until_sigma 0.8 injects edit steps 0-5 (start >= .8): steps 0-4 on the high-noise expert, step 5 on the
    low-noise one, whose source is inversion step 8 - 1 - 5 = 2, walked by the low-noise expert."""
    high, spy_high = with_spy(experts[0])
    low, spy_low = with_spy(experts[1])
    inv, rec = invert(high, low, cache(until=0.8))
    store = rec.features
    assert rec.experts == tuple(ff_fp(m) for m in experts)
    inversion_steps_high = {k[1] for k in spy_high.keys() if k[0] == "invert"}
    inversion_steps_low = {k[1] for k in spy_low.keys() if k[0] == "invert"}
    assert inversion_steps_low == {0, 1, 2} and inversion_steps_high == {3, 4, 5, 6, 7}
    block, n = 3, 6  # the last Wan block's self-attention: attention call 6 of each evaluation (test_video.py)
    assert torch.equal(store.get(2, 1, 1, block)["v"], spy_low.bhsd(("invert", 2, 1, n)))
    assert torch.equal(store.get(7, 1, 1, block)["v"], spy_high.bhsd(("invert", 7, 1, n)))

    p_high, p_low = patch(high, rec), patch(low, rec)
    spy_high.seen.clear(), spy_low.seen.clear()
    out, summary = sample(p_high, p_low, inv, rec, cond_seed=2)
    assert "(5, 1)" in summary and "(5, 0)" not in summary  # the restart evaluation at the switch is not planned
    assert torch.equal(spy_low.bhsd(("sample", 5, 1, n)), store.get(2, 1, 1, block)["v"])
    assert torch.equal(spy_high.bhsd(("sample", 0, 1, n)), store.get(7, 1, 1, block)["v"])


def ff_fp(model):
    return PACK.nodes.passes.model_fingerprint(model)


def test_missing_swapped_or_unpatched_experts_are_refused_before_work(experts):
    high, low = experts
    inv, rec = invert(high, low, cache(until=0.8))
    p_high, p_low = patch(high, rec), patch(low, rec)
    counted_high, calls_high = counting_clone(p_high)
    counted_low, calls_low = counting_clone(p_low)
    with pytest.raises(ValueError, match="connect the low-noise expert to model_low_noise"):
        sample(counted_high, None, inv, rec)
    with pytest.raises(ValueError, match="model is the low-noise expert"):
        sample(counted_low, counted_high, inv, rec)
    with pytest.raises(ValueError, match=r"edit steps \[5\].*model_low_noise has no V-Injection Patch"):
        sample(counted_high, low, inv, rec)
    with pytest.raises(ValueError, match="not a model this inversion used"):
        sample(counted_high, ff.build("wan21", seed=2), inv, rec)
    one_inv, one_rec = invert(high, None)
    with pytest.raises(ValueError, match="made with one model; disconnect model_low_noise"):
        sample(high, low, one_inv, one_rec)
    assert calls_high == [] and calls_low == []


def test_an_injection_window_inside_the_high_noise_steps_needs_no_low_noise_patch(experts):
    high, low = experts
    inv, rec = invert(high, low, cache(inject=1))
    summary_low = N("FireFlowVInjection").patch(low, rec, -1, "replace", "keep", "keep", 1, 1, 1)["ui"]["text"][0]
    assert "0 evaluation(s)" in summary_low and "low-noise expert (edit steps 5-7" in summary_low
    _, summary = sample(patch(high, rec), low, inv, rec, cond_seed=2)
    assert "injected 2 block calls at (step, call) [(0, 1)] (sigma 0.991), self-attention over the image" in summary


def test_default_boundary_is_the_published_one_per_task():
    t2v, i2v = ff.build("wan21"), ff.build("wan21_i2v")
    experts = PACK.nodes.experts
    assert experts.auto_boundary(t2v, -1) == 0.875 and experts.auto_boundary(i2v, -1) == 0.9
    assert experts.auto_boundary(t2v, 0.5) == 0.5


def test_a_saved_two_expert_inversion_keeps_its_experts(experts, tmp_path):
    high, low = experts
    inv, rec = invert(high, low, cache(inject=1))
    storage = PACK.fireflow.storage
    storage.save_inversion(tmp_path / "a14b.safetensors", inv["samples"], rec)
    _, again = storage.load_inversion(tmp_path / "a14b.safetensors")
    assert (again.experts, again.expert_boundary, again.expert_steps) == (rec.experts, 0.875, SPLIT)
    out, _ = sample(patch(high, again), patch(low, again), inv, again, cond_seed=2)
    assert torch.isfinite(out).all()


def test_a_boundary_below_every_step_needs_no_low_noise_expert(experts):
    """Boundary 0.5: all 8 edit steps start at sigma >= 0.533, so the high-noise expert walks the whole pass and the
    edit runs without model_low_noise (one segment, 9 evaluations)."""
    high, low = experts
    inv, rec = invert(high, low, cache(inject=1), boundary=0.5)
    assert rec.expert_steps == STEPS
    out, summary = sample(patch(high, rec), None, inv, rec, cond_seed=2)
    assert "9 evaluations" in summary and torch.isfinite(out).all()

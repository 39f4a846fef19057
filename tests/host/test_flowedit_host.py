"""FlowEdit in the real ComfyUI on the tiny FLUX (issue 14, item 2): the one node, the GUIDER + SAMPLER pair in stock
SamplerCustomAdvanced, and an independent run of the published loop on ComfyUI's own guiders."""
import pytest
import torch

from fireflow.flowedit import nfe, seeded_noise
from hostlib import comfy_nodes, conditioning, counting_clone, latent

SIZE = 8


def N(node_id):
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


def flowedit(model, lat, src=None, tgt=None, steps=8, n_max=6, n_min=0, n_avg=1, solver="euler", seed=0,
             guidance=(1.5, 5.5), **kw):
    with torch.inference_mode():
        r = N("FireFlowFlowEdit").edit(model, src or conditioning(1), tgt or conditioning(2, tokens=9), lat, steps,
                                       n_max, n_min, n_avg, solver, seed, *guidance, **kw)
    return r["result"][0]["samples"], r["ui"]["text"][0]


def test_the_same_prompt_and_guidance_on_both_sides_edits_nothing(tiny):
    lat = latent(0)
    out, text = flowedit(tiny, lat, conditioning(1), conditioning(1), guidance=(2.0, 2.0))
    assert (out - lat["samples"]).abs().max() < 1e-5
    edited, _ = flowedit(tiny, lat)
    assert (edited - lat["samples"]).abs().max() > 0.05
    assert "steps 2-7 of 8" in text and "12 evaluations" in text


@pytest.mark.parametrize("solver,n_min,n_avg", [("euler", 0, 1), ("fireflow", 0, 1), ("midpoint", 2, 1),
                                                ("euler", 2, 2)])
def test_model_evaluations_are_counted_and_match_the_formula(tiny, solver, n_min, n_avg):
    counted, calls = counting_clone(tiny)
    flowedit(counted, latent(0), solver=solver, n_min=n_min, n_avg=n_avg)
    assert len(calls) == nfe(8, 6, n_min, n_avg, solver)


def stock_velocity(model, cond, guidance):
    """v from ComfyUI's own BasicGuider (denoised x0 -> (x - x0) / t), guidance set the stock way."""
    import comfy.sampler_helpers
    import comfy.samplers
    import node_helpers
    g = comfy.samplers.CFGGuider(model)
    g.inner_set_conds({"positive": node_helpers.conditioning_set_values(cond, {"guidance": guidance})})
    g.set_cfg(1.0)
    return g


def published_loop(model, src, tgt, x_src, grid, n_max, seed, guidance):
    """The published FlowEdit loop (Euler, n_min 0, n_avg 1) on two stock guiders, in ComfyUI's latent space."""
    import comfy.sampler_helpers
    import comfy.samplers
    guiders = [stock_velocity(model, c, gd) for c, gd in ((src, guidance[0]), (tgt, guidance[1]))]
    noise = seeded_noise(seed, x_src.shape)
    T = len(grid) - 1
    inner, conds, loaded = comfy.sampler_helpers.prepare_sampling(model, x_src.shape, guiders[0].original_conds,
                                                                  model.model_options)
    model.pre_run()  # what CFGGuider.outer_sample does before sampling
    x = inner.process_latent_in(x_src)
    for g in guiders:
        g.inner_model = inner
        g.conds = comfy.samplers.process_conds(inner, x, {k: list(v) for k, v in g.original_conds.items()},
                                               x.device, x, None, 0)

    def v(g, z, t):
        x0 = g(z, torch.full((z.shape[0],), t), {}, 0)
        return (z - x0) / t
    z = x.clone()
    for i in range(T - n_max, T):
        t, t_next = grid[i], grid[i + 1]
        n = noise(i, 0)
        z_src = (1 - t) * x + t * n
        z_tar = z + z_src - x
        z = z + (t_next - t) * (v(guiders[1], z_tar, t) - v(guiders[0], z_src, t))
    model.cleanup()
    comfy.sampler_helpers.cleanup_models(conds, loaded)
    return inner.process_latent_out(z)


def test_the_node_equals_the_published_loop_on_stock_guiders(tiny):
    lat = latent(0)
    src, tgt = conditioning(1), conditioning(2, tokens=9)
    out, _ = flowedit(tiny, lat, src, tgt, seed=7, schedule="linear")
    grid = torch.linspace(1, 0, 9, dtype=torch.float64).tolist()
    with torch.inference_mode():
        want = published_loop(tiny, src, tgt, lat["samples"], grid, 6, 7, (1.5, 5.5))
    assert (out - want).abs().max() < 1e-4


def test_the_guider_and_sampler_in_samplercustomadvanced_equal_the_node(tiny):
    import comfy_extras.nodes_custom_sampler as cs
    lat = latent(0)
    src, tgt = conditioning(1), conditioning(2, tokens=9)
    want, _ = flowedit(tiny, lat, src, tgt, solver="fireflow", seed=3, schedule="linear")
    guider = N("FireFlowFlowEditGuider").get_guider(tiny, src, tgt, 1.5, 5.5)[0]
    sampler = N("FireFlowFlowEditSampler").get_sampler(6, 0, 1, "fireflow")[0]
    adv = cs.SamplerCustomAdvanced()
    with torch.inference_mode():
        got = (adv.execute if hasattr(adv, "execute") else adv.sample)(cs.Noise_RandomNoise(3), guider, sampler,
                                                                       torch.linspace(1, 0, 9), lat)[0]
    assert (got["samples"] - want).abs().max() < 1e-4


def test_a_mask_keeps_the_source_outside_exactly(tiny):
    lat = latent(0, size=16)
    mask = torch.zeros(1, 128, 128)
    mask[:, 32:96, 32:96] = 1
    out, text = flowedit(tiny, lat, mask=mask, mask_feather=0)
    keep = torch.ones(16, 16, dtype=torch.bool)
    keep[3:13, 3:13] = False
    err = (out - lat["samples"]).abs()
    assert err[keep.expand_as(err)].max() <= 1e-5 and err[~keep.expand_as(err)].max() > 0.05
    assert "the rest is the source" in text


def test_cfg_sides_evaluate_both_branches(tiny):
    counted, calls = counting_clone(tiny)
    flowedit(counted, latent(0), tgt=conditioning(2), negative=conditioning(9), source_cfg=2.0, target_cfg=4.0)
    assert len(calls) == 12 and set(calls) == {2}  # each side's prompt and negative in one batch (equal lengths)


def test_bad_settings_are_refused_before_work(tiny):
    counted, calls = counting_clone(tiny)
    with pytest.raises(ValueError, match="n_max"):
        flowedit(counted, latent(0), n_max=9)
    with pytest.raises(ValueError, match="n_min"):
        flowedit(counted, latent(0), n_max=3, n_min=4)
    with pytest.raises(ValueError, match="all zeros"):
        flowedit(counted, {"samples": torch.zeros(1, 16, 8, 8)})
    assert calls == []


def test_the_sampler_needs_the_flowedit_guider(tiny):
    import comfy_extras.nodes_custom_sampler as cs
    guider = cs.BasicGuider()
    guider = (guider.execute if hasattr(guider, "execute") else guider.get_guider)(tiny, conditioning(1))[0]
    sampler = N("FireFlowFlowEditSampler").get_sampler(6, 0, 1, "euler")[0]
    adv = cs.SamplerCustomAdvanced()
    with pytest.raises(ValueError, match="FlowEdit Guider"):
        (adv.execute if hasattr(adv, "execute") else adv.sample)(cs.Noise_RandomNoise(0), guider, sampler,
                                                                 torch.linspace(1, 0, 9), latent(0))

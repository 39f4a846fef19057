"""RF-Inversion's controlled passes in the real ComfyUI on the tiny FLUX (issue 14, item 3): the Inverter's forward
control and the Sampler's reverse control, the SAMPLER path, and the limits that make them checkable by hand
(strength 1 lands on the target, strength 0 is the plain pass)."""
import pytest
import torch

from fireflow.control import ControlSpec
from hostlib import comfy_nodes, conditioning, counting_clone, latent


def N(node_id):
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]()


def forward(gamma=0.5, start=0, stop=-1, seed=0):
    return N("FireFlowForwardControl").make(gamma, start, stop, seed)[0]


def reverse(eta=0.9, start=0, stop=3, trend="constant", source=None):
    return N("FireFlowReverseControl").make(eta, start, stop, trend, source_latent=source)[0]


def invert(model, lat, control=None, solver="fireflow", steps=8):
    with torch.inference_mode():
        r = N("FireFlowInverter").invert(model, conditioning(1), lat, steps, solver, 1.0, control=control)
    return r["result"], r["ui"]["text"][0]


def edit(model, inv, rec, control=None):
    with torch.inference_mode():
        r = N("FireFlowSampler").sample(model, conditioning(2, tokens=9), inv, 2.0, inversion=rec, control=control)
    return r["result"][0]["samples"], r["ui"]["text"][0]


def test_gamma_one_inverts_onto_the_seeded_noise(tiny):
    lat = latent(0)
    (inv, rec), text = invert(tiny, lat, forward(1.0, seed=11))
    y1 = ControlSpec("forward", 1.0, seed=11).noise(lat["samples"].shape)  # N(0, I) in the model's latent space
    assert (inv["samples"] - tiny.model.process_latent_out(y1)).abs().max() < 1e-5
    assert "RF-Inversion forward control, gamma 1 on steps 0-7" in text


@pytest.mark.parametrize("solver", ["fireflow", "euler", "rf_solver"])
def test_eta_one_brings_the_edit_back_to_the_source(tiny, solver):
    """The reverse target comes from the inversion's trajectory, or from source_latent; both are the source."""
    lat = latent(0)
    (inv, rec), _ = invert(tiny, lat, forward(0.5), solver=solver)
    via_record, text = edit(tiny, inv, rec, reverse(1.0, 0, -1))
    via_source, _ = edit(tiny, inv, rec, reverse(1.0, 0, -1, source=lat))
    assert (via_record - lat["samples"]).abs().max() < 1e-5
    assert (via_source - lat["samples"]).abs().max() < 1e-5
    assert "RF-Inversion reverse control, eta 1 on steps 0-7" in text


def test_zero_strength_is_the_plain_pass_and_costs_nothing_extra(tiny):
    lat = latent(0)
    (inv0, rec0), _ = invert(tiny, lat)
    counted, calls = counting_clone(tiny)
    (inv, rec), _ = invert(counted, lat, forward(0.0))
    assert torch.equal(inv["samples"], inv0["samples"])
    a, _ = edit(counted, inv, rec, reverse(0.0))
    b, _ = edit(tiny, inv0, rec0)
    assert torch.equal(a, b) and len(calls) == 18


def test_controls_steer_only_their_window(tiny):
    lat = latent(0)
    (inv, rec), _ = invert(tiny, lat, forward(0.5))
    (plain, _), _ = invert(tiny, lat)
    assert (inv["samples"] - plain["samples"]).abs().max() > 0.05
    steered, _ = edit(tiny, inv, rec, reverse(0.9, 0, 3))
    free, _ = edit(tiny, inv, rec)
    err = lambda x: (x - lat["samples"]).pow(2).mean().sqrt().item()  # noqa: E731
    assert err(steered) < err(free)  # pulled towards the source


def test_the_solver_sampler_takes_either_control(tiny):
    """SamplerCustom with FlipSigmas: the forward control with gamma 1 on the last step lands on its noise; back with
    eta 1 and the source latent lands on the source."""
    import comfy_extras.nodes_custom_sampler as cs
    lat, cond = latent(4), conditioning(4, guidance=1.0)
    sigmas = torch.linspace(1, 0, 9)
    flipped = cs.FlipSigmas().execute(sigmas)[0] if hasattr(cs.FlipSigmas, "execute") else \
        cs.FlipSigmas().get_sigmas(sigmas)[0]
    sc = cs.SamplerCustom()
    run = sc.execute if hasattr(sc, "execute") else sc.sample
    up = N("FireFlowSolverSampler").get_sampler("fireflow", forward(1.0, 7, 8, seed=2))[0]
    down = N("FireFlowSolverSampler").get_sampler("fireflow", reverse(1.0, 7, 8, source=lat))[0]
    with torch.inference_mode():
        inv = run(tiny, False, 0, 1.0, cond, cond, up, flipped, lat)[0]
        back = run(tiny, False, 0, 1.0, cond, cond, down, sigmas, inv)[0]
    y1 = ControlSpec("forward", 1.0, seed=2).noise(lat["samples"].shape)
    assert (inv["samples"] - tiny.model.process_latent_out(y1)).abs().max() < 1e-4
    assert (back["samples"] - lat["samples"]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="forward control steers the Inverter"):
        run(tiny, False, 0, 1.0, cond, cond, up, sigmas, inv)


def test_a_control_in_the_wrong_place_is_refused_before_work(tiny):
    lat = latent(0)
    counted, calls = counting_clone(tiny)
    with pytest.raises(ValueError, match="reverse control steers the FireFlow Sampler"):
        invert(counted, lat, reverse())
    (inv, rec), _ = invert(tiny, lat)
    with pytest.raises(ValueError, match="forward control steers the Inverter"):
        edit(counted, inv, rec, forward())
    with pytest.raises(ValueError, match="needs the source image"):
        with torch.inference_mode():
            N("FireFlowSampler").sample(counted, conditioning(2), inv, 2.0, control=reverse())
    assert calls == []

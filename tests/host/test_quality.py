"""Editing quality on the toy shapes FLUX (issue 12): what random weights cannot show.

The model is trained once per machine by scripts/toy_model.py (minutes on 2 cores; reused afterwards, keyed by its
recipe) and must pass its own gate. The edit tests run seeded colour-change pairs (bench/quality.py's pairs) through
the pack's nodes and read the pixels with the task's classifier. Each threshold sits between the values measured with
and without V injection (`python -m bench quality`, README: "Editing quality"), as each constant says; a no-op
injection must fail them (scripts/break_check.py). A wrong step or mirrored tokens do not move these numbers enough
(measured +5.8 and +3.0 dB background gain against +4.7); the exact injection tests catch those.
"""
import dataclasses

import pytest

import toy_model
from bench import quality

N = 30  # colour edits: the first 30 of the bench's pairs with kind "colour"
# Measured on these 30 pairs (bench quality, seed 0, README "Editing quality"), in two trainings of the toy (it is
# retrained on every machine, and training is not bitwise reproducible across machines): V injection raises the
# background PSNR outside both objects by 4.7 dB on average over editing without it (both trainings; paired, sd 6.3-6.6,
# standard error 1.1-1.2); a no-op injection gives exactly 0. Injecting 2 steps instead of 1 adds 3.6 and 1.9 dB more
# (standard error 0.9). 63 and 67 % of the injected edits read as the target (no injection: 97 and 93 %: V carries the
# source's appearance, the papers' editability trade-off).
BACKGROUND_GAIN_DB = 2.0  # about two standard errors below the measured 4.7
MORE_STEPS_GAIN_DB = 0.5  # measured 3.6 and 1.9; a no-op injection gives 0
SUCCESS_INJECTED = 0.4  # measured 0.63 and 0.67
# The other editors (issue 14), measured on the same 30 pairs: FlowEdit (Euler, 24 of 28 steps) reads as the target in
# 100 % (a no-op edit returns the source: 0 %); a masked edit without injection in 97 %, with the kept pixels equal to
# the source to 1.2e-7; RF-Inversion's reverse control (eta 0.9 on 3 of 8 steps, after gamma 0.5) keeps 9.4 dB more
# background than the same inversion edited without it (paired, standard error 1.6), and edits less (53 % vs 97 %).
FLOWEDIT_SUCCESS = 0.7
MASKED_SUCCESS = 0.7
KEPT_MAX_ERROR = 1e-4
ETA_GAIN_DB = 4.0


@pytest.fixture(scope="module")
def toy():
    return toy_model.load()


@pytest.fixture(scope="module")
def colour_pairs():
    return [p for p in quality.edit_pairs(3 * N) if p[2] == "colour"][:N]


def _scores(toy, pairs, method):
    sources, targets, kinds = [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]
    edited, recon, nfe, _ = quality.run_method(toy, method, sources, targets, kinds)
    masks = quality.masks(sources, targets, kinds) if method.masked else [None] * len(pairs)
    recon = recon if recon is not None else [None] * len(pairs)
    return [quality.score(s, t, k, e, r, m) for (s, t, k), e, r, m in zip(pairs, edited, recon, masks)], nfe


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values)


def _gain(a, b, key="background_psnr"):
    return _mean([x[key] - y[key] for x, y in zip(a, b)])


def test_trained_model_passes_its_gate(toy):
    """At least 90 % of seeded captions come out with the requested colour and shape (the issue's gate; measured
    95 % on this seed, 95 % over three seeds)."""
    g = toy_model.gate(toy)
    assert g["both"] >= 0.9, g


@pytest.fixture(scope="module")
def runs(toy, colour_pairs):
    m = quality.METHODS
    return {name: _scores(toy, colour_pairs, m[name]) for name in
            ("FireFlow 8, V injection", "FireFlow 8, no injection", "FireFlow 8, inject 2 steps")}


def test_v_injection_keeps_the_background_that_plain_editing_loses(runs):
    (inj, nfe), (plain, nfe_plain) = runs["FireFlow 8, V injection"], runs["FireFlow 8, no injection"]
    assert nfe == nfe_plain == 27  # 9 for the inversion at CFG 1, 9 x 2 CFG branches for the edit
    assert _gain(inj, plain) >= BACKGROUND_GAIN_DB, _gain(inj, plain)


def test_more_injected_steps_keep_more_of_the_source(runs):
    two, one = runs["FireFlow 8, inject 2 steps"][0], runs["FireFlow 8, V injection"][0]
    assert _gain(two, one) >= MORE_STEPS_GAIN_DB, _gain(two, one)


def test_v_injection_still_edits(runs):
    inj, _ = runs["FireFlow 8, V injection"]
    assert _mean([r["success"] for r in inj]) >= SUCCESS_INJECTED


@pytest.fixture(scope="module")
def method_runs(toy, colour_pairs):
    m = quality.METHODS
    rf = m["RF-Inversion (FireFlow 8, gamma 0.5, eta 0.9 on 3 steps)"]
    return {"flowedit": _scores(toy, colour_pairs, m["FlowEdit (Euler 28, n_max 24)"]),
            "masked": _scores(toy, colour_pairs, m["FireFlow 8, no injection, masked"]),
            "rf": _scores(toy, colour_pairs, rf), "rf, eta 0": _scores(toy, colour_pairs, dataclasses.replace(rf, eta=0))}


def test_flowedit_edits_without_an_inversion(method_runs):
    rows, nfe = method_runs["flowedit"]
    assert nfe == 72  # 24 steps x (source + target) with the target's CFG branches: 24 x (1 + 2)
    assert _mean([r["success"] for r in rows]) >= FLOWEDIT_SUCCESS


def test_a_masked_edit_keeps_the_unmasked_pixels_and_edits_inside(method_runs):
    rows, _ = method_runs["masked"]
    assert max(r["kept_max_error"] for r in rows) <= KEPT_MAX_ERROR
    assert _mean([r["success"] for r in rows]) >= MASKED_SUCCESS


def test_rf_inversion_reverse_control_trades_editability_for_faithfulness(method_runs):
    steered, free = method_runs["rf"][0], method_runs["rf, eta 0"][0]
    assert _gain(steered, free) >= ETA_GAIN_DB, _gain(steered, free)
    assert _mean([r["success"] for r in free]) > _mean([r["success"] for r in steered])

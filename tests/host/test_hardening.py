"""Hardening (issue 7): interruption mid-run, memory budget, bounded caches across runs, isolation, bad ratios."""
import gc
import os

import psutil
import pytest
import torch

import comfy.model_management as mm
import comfy.patcher_extension as pe
from hostlib import PACK, TESTNODES, comfy_nodes
from test_editing import EDIT_PROMPT, cache, invert, patch, sample

FeatureStore = PACK.fireflow.features.FeatureStore


def interrupting(model, after):
    """A clone that asks ComfyUI to interrupt after `after` diffusion-model calls (as the Cancel button does)."""
    calls = []

    def wrapper(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == after:
            mm.interrupt_current_processing(True)
        return executor(*args, **kwargs)
    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "fireflow-test-interrupt", wrapper)
    return m


def edit(model, spec=True):
    inv, rec = invert(model, cache() if spec else None)
    pm = patch(model, rec) if spec else model
    return sample(pm, inv, rec)[0]


@pytest.mark.parametrize("stage, after", [("inversion", 3), ("recording", 8), ("injected sampling", 11)])
def test_interrupt_leaves_nothing_behind(tiny, stage, after):
    reference = edit(tiny)
    options = repr(tiny.model_options)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            edit(interrupting(tiny, after))
    finally:
        mm.interrupt_current_processing(False)
    assert repr(tiny.model_options) == options
    assert torch.equal(edit(tiny), reference)  # the same graph again
    plain, _ = sample(tiny, *invert(tiny))  # and a different one
    assert torch.isfinite(plain).all()


def test_budget_refuses_before_work_and_names_settings_that_fit(tiny):
    import hostlib
    model, calls = hostlib.counting_clone(tiny)
    spec = cache(double="all", q=True, k=True)
    spec = type(spec)(**{**spec.__dict__, "max_gb": 1e-5})
    with pytest.raises(ValueError) as e:
        invert(model, spec)
    msg = str(e.value)
    assert "over max_cache_gb" in msg and "dtype fp8" in msg and "raise max_cache_gb" in msg and calls == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_ratios_refused(tiny, bad):
    inv, rec = invert(tiny, cache())
    with pytest.raises(ValueError, match="must be a finite number"):
        patch(tiny, rec, v="add", ratios=(bad, 1.0, 1.0))


def test_non_positive_budget_refused():
    with pytest.raises(ValueError, match="max_cache_gb must be a positive number"):
        comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowFeatureCache"]().make(True, False, False, "all", "none", 1,
                                                                       "reference", "auto", "auto", "model", 0.0)


def test_back_to_back_edits_do_not_contaminate(graph):
    results = []
    for target in (3, 5, 3):
        ok, _, errors = graph.run(EDIT_PROMPT(target))
        assert ok and not errors
        results.append(TESTNODES.CAPTURED["edit"])
    assert torch.equal(results[0], results[2]) and not torch.equal(results[0], results[1])


def test_caches_are_freed_across_20_runs(graph, capsys):
    """ComfyUI keeps the latest outputs; stores of older inversions must go with them (no growth)."""
    process = psutil.Process(os.getpid())
    rss, alive = [], []
    for i in range(20):
        prompt = EDIT_PROMPT(3)
        prompt["lat"]["inputs"]["seed"] = 100 + i  # a new image each run: a new inversion and feature store
        ok, _, errors = graph.run(prompt)
        assert ok and not errors
        gc.collect()
        alive.append(sum(type(o) is FeatureStore for o in gc.get_objects()))
        rss.append(process.memory_info().rss)
    with capsys.disabled():
        print(f"\n[measured] live feature stores per run: {alive}; RSS growth runs 5->20: "
              f"{(rss[-1] - rss[4]) / 2 ** 20:.1f} MiB")
    assert max(alive[2:]) <= 2 and max(alive) <= 3
    assert rss[-1] - rss[4] < 64 * 2 ** 20

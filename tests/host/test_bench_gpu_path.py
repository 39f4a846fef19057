"""The GPU bench's code path, run on CPU with the tiny config (the real run needs CUDA and skips without it)."""

import pytest
import torch

import fixtures
import hostlib

from bench import gpu  # found by name (host_env.expose_core); the repository root is never on sys.path


def test_gpu_bench_path_on_cpu():
    cfg = dict(fixtures.TINY_FLUX)
    protocols = dict(gpu.PROTOCOLS)
    protocols["rf_solver_15+15"] = ("rf_solver", 15, dict(single="all", inject=5))  # the tiny model has 4 blocks
    out = gpu.run(hostlib, config=cfg, resolutions=(64,), device="cpu", dtype=torch.float32, text_tokens=7,
                  protocols=protocols)
    runs = out["runs"]
    assert runs["64px_fireflow_8+8"]["nfe"] == 18 and runs["64px_euler_28+28"]["nfe"] == 56
    assert runs["64px_rf_solver_15+15"]["nfe"] == 60
    assert runs["64px_fireflow_8+8"]["cache_bytes"] > 0 and runs["64px_euler_28+28"]["cache_bytes"] == 0
    assert all(r["speedup_vs_euler_28+28"] > 0 for r in runs.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: the GPU bench runs instead of skipping")
def test_gpu_bench_skips_cleanly_without_cuda():
    out = gpu.run(hostlib)
    assert set(out) == {"skipped"} and "no CUDA" in out["skipped"]

"""The feature store on a CUDA device (skipped without one): fp8 recording must not synchronise with the host, and
reading dequantises with the scale that stayed on the device."""
import pytest
import torch

from fireflow.features import SINGLE, CacheSpec, FeatureStore
from fireflow.solvers import MID
from fireflow.tokens import TokenLayout

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def store(dtype, device):
    plan = CacheSpec(dtype=dtype, device=device).resolve((0, 2), 8, "fireflow")
    return FeatureStore(plan, image_tokens=64, device="cuda" if device != "cpu" else "cpu", model_dtype=torch.bfloat16)


@cuda
@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_fp8_recording_never_synchronises_and_reads_back(device):
    s = store("fp8", device)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(1, 24, 80, 128, device="cuda", dtype=torch.bfloat16, generator=g) * 3 for _ in range(3))
    torch.cuda.synchronize()
    if device == "gpu":  # a host copy (pinned, device cpu) is a transfer the caller asked for; the scale must not be
        torch.cuda.set_sync_debug_mode("error")
    try:
        for block in range(2):
            s.put(7, MID, SINGLE, block, q, k, v, TokenLayout(image=64))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    s.freeze()
    assert all(t.device.type == "cuda" for t in s._scales.values())
    got = s.get(7, MID, SINGLE, 1)["v"].to(v.device, torch.float32)
    want = v.float()
    assert ((got - want).abs() <= want.abs() / 16 + want.abs().max() * 2 ** -9).all()

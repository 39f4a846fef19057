"""Fuzzing the inversion-file loader: random and mutated files give the pack's clear error or load, never anything
else, and nothing is written anywhere. FIREFLOW_FUZZ_ITERATIONS sets the count (CI: 150; longer on demand)."""
import os
import random

import pytest
import torch

from hostlib import PACK
from test_editing import cache, invert

storage = PACK.fireflow.storage
ITERATIONS = int(os.environ.get("FIREFLOW_FUZZ_ITERATIONS", "150"))


@pytest.fixture(scope="module")
def valid_bytes(tiny, tmp_path_factory):
    inv, rec = invert(tiny, cache(dtype="fp8"))
    path = tmp_path_factory.mktemp("fuzz-src") / "valid.safetensors"
    storage.save_inversion(path, inv["samples"], rec)
    return path.read_bytes()


def mutate(data, rng):
    data = bytearray(data)
    kind = rng.choice(("flip", "truncate", "append", "header", "random", "length"))
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data))]
    elif kind == "append":
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "header":  # change digits inside the JSON header (shapes, offsets, versions)
        end = 8 + int.from_bytes(data[:8], "little")
        digits = [i for i in range(8, min(end, len(data))) if chr(data[i]).isdigit()]
        for i in rng.sample(digits, min(len(digits), rng.randint(1, 4))):
            data[i] = ord(str(rng.randrange(10)))
    elif kind == "length":
        data[:8] = rng.randrange(2 ** 63).to_bytes(8, "little")
    else:
        data = bytearray(rng.randrange(256) for _ in range(rng.randint(0, 512)))
    return bytes(data), kind


def test_fuzz_loader(valid_bytes, tmp_path):
    rng = random.Random(1234)
    target = tmp_path / "fuzzed.safetensors"
    outcomes = {}
    for _i in range(ITERATIONS):
        data, kind = mutate(valid_bytes, rng)
        target.write_bytes(data)
        try:
            latent, rec = storage.load_inversion(target, max_bytes=64 * 2 ** 20)
            assert torch.isfinite(latent).all()
            result = "loaded"
        except ValueError as e:
            assert "fuzzed.safetensors" in str(e)
            result = "refused"
        outcomes[(kind, result)] = outcomes.get((kind, result), 0) + 1
    assert sorted(os.listdir(tmp_path)) == ["fuzzed.safetensors"]
    assert sum(v for (k, r), v in outcomes.items() if r == "refused") > ITERATIONS // 2, outcomes

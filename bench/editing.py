"""Feature-cache bytes for FLUX-dev geometry, and the wall-time overhead of recording and injecting."""
import statistics
import time

import torch

from fireflow.features import CacheSpec
from fireflow.schedules import image_tokens

FLUX_DEV = {"double": 19, "single": 38, "heads": 24, "head_dim": 128, "text_tokens": 512}
SETTINGS = {
    "fireflow_default": (CacheSpec(), "fireflow", 8),
    "rf_edit": (CacheSpec(single_blocks="20-37", inject_steps=5), "rf_solver", 15),
}


def store_everything_bytes(steps, solver, batch, tokens, elem):
    """A keep-every-step bank (both calls, all 38 single blocks, full sequence), as a peer pack stores it."""
    from fireflow.solvers import get_solver
    evals = get_solver(solver).nfe(steps)
    return evals * FLUX_DEV["single"] * batch * FLUX_DEV["heads"] * tokens * FLUX_DEV["head_dim"] * elem


def cache_bytes():
    out = {}
    for res in (512, 1024):
        L = image_tokens(res // 8, res // 8)
        for batch in (1, 4):
            for name, (spec, solver, steps) in SETTINGS.items():
                plan = spec.resolve((FLUX_DEV["double"], FLUX_DEV["single"]), steps, solver)
                held = plan.estimate_bytes(batch, FLUX_DEV["heads"], FLUX_DEV["head_dim"], FLUX_DEV["text_tokens"], L,
                                           torch.bfloat16)
                every = store_everything_bytes(steps, solver, batch, FLUX_DEV["text_tokens"] + L, 2)
                out[f"{res}px_b{batch}_{name}"] = {"steps": steps, "solver": solver, "blocks": len(plan.blocks),
                                                   "inject_steps": spec.inject_steps, "held_bytes": held,
                                                   "held_gib": held / 2 ** 30, "store_everything_bytes": every,
                                                   "store_everything_gib": every / 2 ** 30}
    return out


def overhead(hostlib, repeats=7, size=64):
    """Wall time of inversion with vs without recording, and of sampling with vs without injection (same NFE)."""
    import fixtures
    import nodes as comfy_nodes
    node = lambda k: comfy_nodes.NODE_CLASS_MAPPINGS[k]()  # noqa: E731
    model = fixtures.tiny_flux(0)
    lat, cond = hostlib.latent(1, size=size), hostlib.conditioning(0)
    spec = node("FireFlowFeatureCache").make(True, False, False, "all", "all", 1, "reference", "auto", "auto", "model")[0]

    def paired(base, variant):
        """Median of variant/base wall-time ratios over interleaved runs after one warm-up of each."""
        base(), variant()
        ratios, times = [], {"base": [], "variant": []}
        for _ in range(repeats):
            for key, fn in (("base", base), ("variant", variant)):
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
            ratios.append(times["variant"][-1] / times["base"][-1])
        return statistics.median(times["base"]), statistics.median(times["variant"]), ratios

    with torch.inference_mode():
        inverter, sampler = node("FireFlowInverter"), node("FireFlowSampler")
        inv, rec = inverter.invert(model, cond, lat, 8, "fireflow", 1.0, feature_cache=spec)["result"]
        patched = node("FireFlowVInjection").patch(model, rec, -1, "replace", "keep", "keep", 1, 1, 1)["result"][0]
        t_inv, t_rec, r_rec = paired(lambda: inverter.invert(model, cond, lat, 8, "fireflow", 1.0),
                                     lambda: inverter.invert(model, cond, lat, 8, "fireflow", 1.0, feature_cache=spec))
        t_smp, t_inj, r_inj = paired(lambda: sampler.sample(model, cond, inv, 2.0, inversion=rec),
                                     lambda: sampler.sample(patched, cond, inv, 2.0, inversion=rec))
    stats = lambda r: {"min": min(r), "median": statistics.median(r), "max": max(r)}  # noqa: E731
    return {"latent": [1, 16, size, size], "blocks": "all double + single", "nfe_per_pass": 9,
            "inversion_s": t_inv, "inversion_recording_s": t_rec, "recording_overhead": stats(r_rec),
            "sampling_s": t_smp, "sampling_injecting_s": t_inj, "injection_overhead": stats(r_inj),
            "held_bytes_tiny": rec.features.nbytes}

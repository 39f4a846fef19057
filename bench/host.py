"""Measurements inside the real ComfyUI on the tiny FLUX: NFE per pass, round-trip error, overhead ratio."""
import statistics
import sys
import time

import torch

ROOT_SCRIPTS = None


def boot():
    import pathlib
    scripts = pathlib.Path(__file__).resolve().parents[1] / "scripts"
    sys.path.insert(0, str(scripts))
    import host_env
    host_env.boot()
    sys.path.insert(0, str(scripts.parent / "tests" / "host"))
    import hostlib  # loads the pack through ComfyUI's own custom-node loader
    return hostlib


def _bare_forward_seconds(model, cond, x, repeats):
    """Median wall time of one direct apply_model call on the loaded model (what one NFE costs at least)."""
    import comfy.model_management
    comfy.model_management.load_models_gpu([model])
    bm = model.model
    opts = model.model_options.get("transformer_options", {})
    c, pooled = cond[0][0], cond[0][1]["pooled_output"]
    t = torch.full((x.shape[0],), 0.5)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bm.apply_model(x, t, c_crossattn=c, y=pooled, guidance=torch.ones(x.shape[0]), transformer_options=opts)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(repeats=5, size=64):
    hostlib = boot()
    import fixtures
    import nodes as comfy_nodes
    inverter = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowInverter"]()
    sampler = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowSampler"]()
    model = fixtures.tiny_flux(0)
    lat, cond = hostlib.latent(0), hostlib.conditioning(0)
    out = {"model": "tiny FLUX (width 64, 2 double + 4 single blocks), fp32, CPU", "round_trip_rms": {},
           "nfe_inversion_plus_reconstruction": {}}
    with torch.inference_mode():
        for solver in ("fireflow", "rf_solver", "midpoint", "rf_solver_3", "euler"):
            errs = {}
            for n in (4, 8, 16):
                counted, calls = hostlib.counting_clone(model)
                inv, rec = inverter.invert(counted, cond, lat, n, solver, 1.0)["result"]
                back = sampler.sample(counted, cond, inv, 1.0, inversion=rec)["result"][0]["samples"]
                errs[n] = (back - lat["samples"]).pow(2).mean().sqrt().item()
                out["nfe_inversion_plus_reconstruction"].setdefault(solver, {})[n] = len(calls)
            out["round_trip_rms"][solver] = errs
        big = hostlib.latent(1, size=size)
        bare = _bare_forward_seconds(model, cond, big["samples"], repeats * 4)
        ratios = []
        for _ in range(repeats):
            start = time.perf_counter()
            inverter.invert(model, cond, big, 8, "fireflow", 1.0)
            ratios.append((time.perf_counter() - start) / (9 * bare))
        out["overhead"] = {"latent": [1, 16, size, size], "bare_forward_s": bare, "pass": "inversion, fireflow, 8 steps",
                           "nfe": 9, "ratio_min": min(ratios), "ratio_median": statistics.median(ratios),
                           "ratio_max": max(ratios)}
    return out

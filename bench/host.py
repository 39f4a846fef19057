"""Measurements inside the real ComfyUI on the tiny FLUX: NFE per pass, round-trip error, overhead ratio."""
import statistics
import sys
import time

import torch



def boot():
    import pathlib
    scripts = pathlib.Path(__file__).resolve().parents[1] / "scripts"
    sys.path.insert(0, str(scripts))
    import host_env
    host_env.boot(cpu=not torch.cuda.is_available())
    import hostlib  # loads the pack through ComfyUI's own custom-node loader; `fireflow` is then the pack's core
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


def _stock_euler(model, cond, lat):
    """ComfyUI's own SamplerCustom + stock euler sampler, 9 steps: what the host itself costs per evaluation."""
    import comfy.samplers
    import comfy_extras.nodes_custom_sampler as cs
    node = cs.SamplerCustom()
    run = node.execute if hasattr(node, "execute") else node.sample
    run(model, True, 0, 1.0, cond, cond, comfy.samplers.sampler_object("euler"), torch.linspace(1, 0, 10), lat)


def timed_clone(model):
    """A clone with an APPLY_MODEL wrapper that adds the wall time spent inside ComfyUI's BaseModel.apply_model to
    `inside[0]` (the model forward, its casts and the model_sampling conversions; everything else is host and pack)."""
    import comfy.patcher_extension as pe
    inside = [0.0]

    def wrapper(executor, *args, **kwargs):
        start = time.perf_counter()
        try:
            return executor(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - start
    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, "fireflow-bench-timer", wrapper)
    return m, inside


def _apply_model_share(fn, inside, repeats):
    """Share of a pass's wall time spent inside apply_model, over `repeats` runs after one warm-up."""
    fn()
    shares = []
    for _ in range(repeats):
        inside[0] = 0.0
        start = time.perf_counter()
        fn()
        shares.append(inside[0] / (time.perf_counter() - start))
    return {"min": min(shares), "median": statistics.median(shares), "max": max(shares)}


def _ratios(fn, nfe, bare, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) / (nfe * bare))
    return {"nfe": nfe, "min": min(out), "median": statistics.median(out), "max": max(out)}


def run(repeats=5, size=64, plots_dir=None):
    hostlib = boot()
    import fixtures
    import nodes as comfy_nodes
    node = lambda k: comfy_nodes.NODE_CLASS_MAPPINGS[k]()  # noqa: E731
    inverter, sampler = node("FireFlowInverter"), node("FireFlowSampler")
    model = fixtures.tiny_flux(0)
    lat, cond = hostlib.latent(0), hostlib.conditioning(0)
    out = {"model": "tiny FLUX (width 64, 2 double + 4 single blocks), fp32, CPU", "round_trip_rms": {},
           "nfe_inversion_plus_reconstruction": {}}
    with torch.inference_mode():
        for solver in ("fireflow", "rf_solver", "midpoint", "rf_solver_3", "euler"):
            errs = {}
            for n in (4, 8, 16, 32):
                counted, calls = hostlib.counting_clone(model)
                inv, rec = inverter.invert(counted, cond, lat, n, solver, 1.0)["result"]
                back = sampler.sample(counted, cond, inv, 1.0, inversion=rec)["result"][0]["samples"]
                errs[n] = (back - lat["samples"]).pow(2).mean().sqrt().item()
                out["nfe_inversion_plus_reconstruction"].setdefault(solver, {})[n] = len(calls)
            out["round_trip_rms"][solver] = errs
        counted, calls = hostlib.counting_clone(model)
        spec = node("FireFlowFeatureCache").make(True, False, False, "all", "none", 1, "reference", "auto", "auto",
                                                 "model")[0]
        inv, rec = inverter.invert(counted, cond, lat, 8, "fireflow", 1.0, feature_cache=spec)["result"]
        patched = node("FireFlowVInjection").patch(counted, rec, -1, "replace", "keep", "keep", 1, 1, 1)["result"][0]
        sampler.sample(patched, hostlib.conditioning(1), inv, 2.0, inversion=rec)
        out["nfe_full_edit_fireflow_8"] = len(calls)

        big = hostlib.latent(1, size=size)
        bare = _bare_forward_seconds(model, cond, big["samples"], repeats * 4)
        inv, rec = inverter.invert(model, cond, big, 8, "fireflow", 1.0, feature_cache=spec)["result"]
        patched = node("FireFlowVInjection").patch(model, rec, -1, "replace", "keep", "keep", 1, 1, 1)["result"][0]
        out["overhead"] = {
            "latent": [1, 16, size, size], "bare_forward_s": bare,
            "definition": "pack wall time / (NFE x median bare apply_model time), same process",
            "inversion_fireflow_8": _ratios(lambda: inverter.invert(model, cond, big, 8, "fireflow", 1.0), 9, bare,
                                            repeats),
            "sampling_fireflow_8": _ratios(lambda: sampler.sample(model, cond, inv, 2.0, inversion=rec), 9, bare,
                                           repeats),
            "edit_with_injection_fireflow_8": _ratios(lambda: sampler.sample(patched, cond, inv, 2.0, inversion=rec),
                                                      9, bare, repeats),
            "reference_stock_samplercustom_euler_9": _ratios(lambda: _stock_euler(model, cond, big), 9, bare, repeats)}
        timed, inside = timed_clone(model)
        timed_patched = node("FireFlowVInjection").patch(timed, rec, -1, "replace", "keep", "keep", 1, 1, 1)["result"][0]
        out["apply_model_share"] = {
            "definition": "wall time inside ComfyUI's BaseModel.apply_model (APPLY_MODEL wrapper timers) / pass wall "
                          "time, same latent as the overhead rows (the V-injection hooks run inside apply_model)",
            "inversion_fireflow_8": _apply_model_share(
                lambda: inverter.invert(timed, cond, big, 8, "fireflow", 1.0), inside, repeats),
            "sampling_fireflow_8": _apply_model_share(
                lambda: sampler.sample(timed, cond, inv, 2.0, inversion=rec), inside, repeats),
            "edit_with_injection_fireflow_8": _apply_model_share(
                lambda: sampler.sample(timed_patched, cond, inv, 2.0, inversion=rec), inside, repeats),
            "reference_stock_samplercustom_euler_9": _apply_model_share(
                lambda: _stock_euler(timed, cond, big), inside, repeats)}
    if plots_dir is not None:
        plot(out, plots_dir)
    return out


def plot(out, plots_dir):
    from .plots import loglog
    loglog({s: ([out["nfe_inversion_plus_reconstruction"][s][n] for n in errs], list(errs.values()))
            for s, errs in out["round_trip_rms"].items()},
           "model evaluations, inversion + reconstruction", "round-trip RMS error",
           "Round trip inside ComfyUI (tiny FLUX, random weights)", plots_dir / "host_round_trip_vs_nfe.png")

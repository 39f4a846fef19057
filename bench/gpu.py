"""GPU mode (paper Table 5 protocol): seconds per edit on a FLUX-dev-architecture model with random weights.

19 double + 38 single blocks, width 3072, bf16; 512^2 and 1024^2; T5 length 512. FireFlow 8+8 steps with the default
feature cache, Euler 28+28 (vanilla ReFlow), RF-Solver 15+15 with RF-Edit settings. Runs only where CUDA is present;
the same code runs on CPU with a tiny config as a smoke test.
"""
import time

import torch

PROTOCOLS = {  # name: (solver, steps, cache settings or None)
    "fireflow_8+8": ("fireflow", 8, dict(single="all", inject=1)),
    "euler_28+28": ("euler", 28, None),
    "rf_solver_15+15": ("rf_solver", 15, dict(single="20-37", inject=5)),
}


def edit(node, model, cond, lat, solver, steps, cache):
    """One inversion + edit; with `cache`, V is recorded and injected (FireFlow / RF-Edit settings)."""
    spec = None
    if cache:
        spec = node("FireFlowFeatureCache").make(True, False, False, cache["single"], "none", cache["inject"],
                                                 "reference", "auto", "auto", "model")[0]
    with torch.inference_mode():
        inv, rec = node("FireFlowInverter").invert(model, cond, lat, steps, solver, 1.0, feature_cache=spec)["result"]
        patched = model
        if cache:
            patched = node("FireFlowVInjection").patch(model, rec, -1, "replace", "keep", "keep", 1, 1, 1)["result"][0]
        node("FireFlowSampler").sample(patched, cond, inv, 2.0, inversion=rec)
    return rec


def run(hostlib, config=None, resolutions=(512, 1024), device=None, dtype=torch.bfloat16, text_tokens=512,
        protocols=PROTOCOLS):
    import fixtures
    import nodes as comfy_nodes
    if device is None:
        if not torch.cuda.is_available():
            return {"skipped": "no CUDA device here: GPU mode runs only where CUDA is present"}
        device = "cuda"
    config = config or fixtures.FLUX_DEV
    node = lambda k: comfy_nodes.NODE_CLASS_MAPPINGS[k]()  # noqa: E731
    model = fixtures.random_flux(config, device, dtype)
    out = {"device": torch.cuda.get_device_name() if device == "cuda" else device, "dtype": str(dtype),
           "blocks": [config["depth"], config["depth_single_blocks"]], "width": config["hidden_size"], "runs": {}}
    gen = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, text_tokens, config["context_in_dim"], generator=gen),
             {"pooled_output": torch.randn(1, config["vec_in_dim"], generator=gen), "guidance": 3.5}]]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for res in resolutions:
        lat = {"samples": torch.randn(1, config["in_channels"], res // 8, res // 8, generator=gen)}
        for name, (solver, steps, cache) in protocols.items():
            counted, calls = hostlib.counting_clone(model)

            edit(node, counted, cond, lat, solver, steps, cache)  # warm-up (loading, kernels)
            calls.clear()
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            sync()
            start = time.perf_counter()
            rec = edit(node, counted, cond, lat, solver, steps, cache)
            sync()
            seconds = time.perf_counter() - start
            out["runs"][f"{res}px_{name}"] = {
                "seconds": seconds, "nfe": len(calls),
                "cache_bytes": rec.features.nbytes if rec.features is not None else 0,
                "peak_gpu_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None}
        base = out["runs"].get(f"{res}px_euler_28+28")
        if base:
            for name in protocols:
                r = out["runs"][f"{res}px_{name}"]
                r["speedup_vs_euler_28+28"] = base["seconds"] / r["seconds"]
    return out

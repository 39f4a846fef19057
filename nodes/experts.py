"""Two-expert models (Wan 2.2 A14B): a high-noise and a low-noise expert share one pass and switch at a noise level.

A pass is walked in segments, one per expert (`fireflow.schedules.expert_segments`): each segment is its own run of
ComfyUI's sampler on that expert's clone, numbered with the steps of the whole pass, so the feature store (keyed by
step) holds each expert's features under the steps that expert walks. The inversion walks the mirror image of the
edit's split, so an interval is evaluated by the same expert in both passes. FireFlow's carried velocity restarts at
the switch (one extra evaluation), as it would in a two-sampler ComfyUI workflow.
"""
from ..fireflow.schedules import expert_segments
from .attention import InjectionGuard
from .checks import guards
from .passes import model_fingerprint, run_pass

T2V_BOUNDARY, I2V_BOUNDARY = 0.875, 0.9  # Wan 2.2 A14B's published switch points (text- and image-to-video)
BOUNDARY_TIP = ("Noise level (sigma) where the high-noise expert hands over to model_low_noise, for both passes "
                "(only with model_low_noise). -1: Wan 2.2 A14B's published value, 0.875 (text-to-video) or 0.9 "
                "(image-to-video). An inversion's edit always switches where the inversion did.")
LOW_TIP = ("Wan 2.2 A14B: the low-noise expert (the wan2.2_*_low_noise_14B model); `model` is then the high-noise "
           "one. Leave unconnected for one-model families.")


def auto_boundary(model, boundary):
    if boundary >= 0:
        return float(boundary)
    return I2V_BOUNDARY if getattr(model.model, "image_to_video", False) else T2V_BOUNDARY


def check_pair(high, low, node):
    """The two experts must be one architecture (same family class and configuration)."""
    a, b = high.model, low.model
    if type(a) is not type(b) or a.model_config.unet_config != b.model_config.unet_config:
        raise ValueError(f"{node}: model ({type(a).__name__}) and model_low_noise ({type(b).__name__}) are not two "
                         "experts of one model: connect Wan 2.2 A14B's high-noise model to `model` and its "
                         "low-noise model to `model_low_noise`")


def walk(models, conditioning, samples, grid, split, solver, node, install=None, negative=None, cfg=1.0, hooks=(),
         mask=None):
    """Walk `grid` (in walking order) with models {'high'[, 'low']} split after `split` edit steps (a one-model pass:
    {'high': model} and split = steps, one segment); returns (samples, nfe, context of the last segment with every
    segment's stats merged)."""
    steps = len(grid) - 1
    inverting = float(grid[0]) < float(grid[-1])
    x, nfe, stats, layouts, ctx = samples, 0, {}, {}, None
    for expert, a, b in expert_segments(steps, split, inverting):
        x, n, ctx = run_pass(models[expert], conditioning, x, grid[a:b + 1], solver, node, install=install,
                             negative=negative, cfg=cfg, offset=a, whole=grid, hooks=hooks, mask=mask)
        nfe += n
        for key, value in ctx.stats.items():
            stats[key] = stats.get(key, set()) | set(value)
        layouts = layouts or ctx.layouts  # published by a guard, in the segments that have one
    ctx.stats, ctx.layouts = stats, layouts
    return x, nfe, ctx


def check_experts(record, model, model_low, node):
    """Before work: the models are the inversion's experts in the right places, each carries only its own expert's
    V-Injection, and every planned injection falls in a segment whose model injects. Returns {expert: model} of the
    experts the pass walks (one, when the boundary puts every step on one of them)."""
    segments = expert_segments(record.steps, record.expert_steps, False)
    models = {"high": model, "low": model_low}
    if model_low is None and any(e == "low" for e, _, _ in segments):
        raise ValueError(f"{node}: this inversion ran Wan 2.2's two experts (switching at sigma "
                         f"{record.expert_boundary:g}): connect the low-noise expert to model_low_noise too")
    used = {e: models[e] for e, _, _ in segments}
    for expert, m in used.items():
        seen = record.expert_of(model_fingerprint(m))
        if seen not in (expert, "both"):
            other = "low" if expert == "high" else "high"
            what = f"the {other}-noise expert" if seen == other else "not a model this inversion used"
            raise ValueError(f"{node}: {'model' if expert == 'high' else 'model_low_noise'} is {what}: connect the "
                             f"{expert}-noise expert the inversion used there")
    wanted, covered = set(), set()
    for expert, m in used.items():
        for g in guards(m.model_options):
            if not isinstance(g, InjectionGuard):
                continue
            if g.expert not in (expert, "both"):
                raise ValueError(f"{node}: the V-Injection Patch on the {expert}-noise input was made from the "
                                 f"{g.expert}-noise expert: patch each expert with its own V-Injection Patch")
            wanted |= g.wanted
            covered |= set(record.expert_span(expert))
    for expert, a, b in segments:
        lost = sorted(s for s in wanted if a <= s < b and s not in covered)
        if lost:
            name = "model" if expert == "high" else "model_low_noise"
            raise ValueError(f"{node}: injections are planned at edit steps {lost}, which the {expert}-noise expert "
                             f"walks, but {name} has no V-Injection Patch: patch it too (same inversion) or lower "
                             "inject_steps / inject_until_sigma")
    return used

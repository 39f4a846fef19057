"""A tiny FLUX trained on the toy shapes task (issue 12), with ComfyUI's own Flux classes.

    .host/venv/bin/python scripts/toy_model.py          # train if missing (about 10 min on 2 cores), then gate
    .host/venv/bin/python scripts/toy_model.py --force  # train again

The model is `comfy.supported_models.Flux` (double and single blocks, RoPE, guidance embedding) with a small config,
trained by rectified flow in the model's own latent space (what it sees after ComfyUI's Flux latent format):
x_t = (1 - t) x_0 + t e, target velocity e - x_0, t logit-normal. Guidance is drawn at random during training and
carries no signal (the task has no CFG distillation); the pack's guidance inputs therefore do nothing to this model.
Seeded end to end; the weights go to <host base>/models/fireflow_toy/ (never committed) and are reused when present.
`gate()` samples seeded captions through ComfyUI's sampler with the FireFlow solver and classifies the pixels.
"""
import argparse
import math
import pathlib
import random
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import host_env  # noqa: E402
import toy_shapes as toy  # noqa: E402

CONFIG = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=toy.POOLED, context_in_dim=toy.CONTEXT,
              hidden_size=96, mlp_ratio=4.0, num_heads=3, depth=2, depth_single_blocks=4, axes_dim=[8, 12, 12],
              theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True)
STEPS, BATCH, LR, EMA, DROP, SEED = 10000, 32, 2e-3, 0.999, 0.1, 0
CFG = 5.0  # generation (the gate): CFG with the empty prompt as the negative (measured: 5 beats 3 and 7)
EDIT_CFG = 2.0  # edits from an inverted latent (measured: FireFlow + V injection succeeds most at 2; 5 overshoots)


def recipe():
    """What the weights depend on: model, training and task. A change gives another file name, so stale weights
    trained for another recipe are never reused."""
    import hashlib
    import inspect
    task = (toy.SIZE, toy.RADIUS, toy.SHAPES, tuple(toy.COLOURS.items()), tuple(toy.BACKGROUNDS.items()), toy.VOCAB,
            toy.RING_HOLE, toy.TOKENS, toy.CONTEXT, toy.POOLED, inspect.getsource(toy.sample),
            inspect.getsource(toy.template), inspect.getsource(toy.encode_text), inspect.getsource(batch),
            inspect.getsource(train))
    text = repr((sorted(CONFIG.items()), STEPS, BATCH, LR, EMA, DROP, SEED, task))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def path(base=None):
    return pathlib.Path(base or host_env.BASE) / "models" / "fireflow_toy" / f"toy_flux_shapes_{recipe()}.safetensors"


def build(state_dict=None, seed=0):
    """A ModelPatcher around the toy FLUX (seeded init, or the given weights)."""
    host_env.boot()
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models
    import fixtures
    model_config = comfy.supported_models.Flux(fixtures.host_flux_config(CONFIG))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, device="cpu")
    dm = model.diffusion_model
    if state_dict is None:  # ComfyUI's ops skip torch's init: seeded N(0, 1/fan_in) weights, norms 1
        state_dict = fixtures.seeded_state_dict(dm, seed)
    dm.load_state_dict(host_names(state_dict, dm), strict=True)
    dm.to(torch.float32)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=torch.device("cpu"))


def host_names(state_dict, dm):
    """The weights under this host's parameter names: ComfyUI renamed FLUX's QK-norm weights (`*_norm.scale` ->
    `*_norm.weight`), so weights trained on one release load on the other."""
    own = set(dm.state_dict())
    swap = {".scale": ".weight", ".weight": ".scale"}
    out = {}
    for k, v in state_dict.items():
        if k not in own and "_norm." in k:
            for a, b in swap.items():
                if k.endswith(a) and k[: -len(a)] + b in own:
                    k = k[: -len(a)] + b
                    break
        out[k] = v
    return out


def batch(rng, n, drop=0.0):
    """Latents and conditioning of n seeded scenes; a share `drop` of the captions is left empty (all padding), so
    the model also learns the unconditional flow and CFG (an empty prompt as the negative) sharpens it."""
    scenes = [toy.sample(rng) for _ in range(n)]
    imgs = torch.stack([toy.render(s) for s in scenes])
    tokens, pooled = toy.encode_text(["" if rng.random() < drop else toy.caption(s) for s in scenes])
    return toy.to_latent(imgs), tokens, pooled


class _OutOfPlaceAdd(torch.overrides.TorchFunctionMode):
    """ComfyUI's Flux blocks add their residuals in place (`img += ...`), which autograd cannot differentiate through.
    While training, `+=` on tensors returns a new tensor instead (Python rebinds the name); the weights and every
    line of the model code are still ComfyUI's own."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.add_:  # what `x += y` dispatches to; explicit add_ calls do not occur in Flux
            return torch.add(*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


def _sdpa(func, *args, **kwargs):
    """Training only: ComfyUI's own PyTorch-SDPA attention instead of the CPU default (sub-quadratic chunks)."""
    import comfy.ldm.modules.attention as attention
    return attention.attention_pytorch(*args, **kwargs)


def train(steps=STEPS, batch_size=BATCH, lr=LR, seed=SEED, log=print):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    mp = build(seed=seed)
    dm = mp.model.diffusion_model
    dm.train().requires_grad_(True)
    opt = torch.optim.AdamW(dm.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    warm = max(1, steps // 20)  # linear warm-up, then cosine decay to 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, i / steps))))
    g = torch.Generator().manual_seed(seed)
    start, ema = time.perf_counter(), None
    average = {k: v.detach().clone() for k, v in dm.state_dict().items()}  # EMA of the weights: cleaner samples
    for step in range(steps):
        x0, ctx, pooled = batch(rng, batch_size, DROP)
        t = torch.where(torch.rand(batch_size, generator=g) < 0.5, torch.rand(batch_size, generator=g),
                        torch.sigmoid(0.5 + torch.randn(batch_size, generator=g)))  # uniform, and logit-normal
        # leaning to high noise, where the shape is decided
        e = torch.randn(x0.shape, generator=g)
        xt = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * e
        guidance = 1 + 4 * torch.rand(batch_size, generator=g)
        with _OutOfPlaceAdd():
            v = dm(xt, t, ctx, y=pooled, guidance=guidance,
                   transformer_options={"optimized_attention_override": _sdpa})
        loss = torch.nn.functional.mse_loss(v, e - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dm.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(EMA, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in dm.state_dict().items():
                average[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 250 == 0 or step == steps - 1:
            log(f"[toy] step {step:5d}/{steps}  loss {ema:.4f}  {time.perf_counter() - start:.0f} s")
    dm.eval().requires_grad_(False)
    return {k: v.contiguous() for k, v in average.items()}


def ensure(base=None, force=False, log=print):
    """Path of the trained weights, training them first when missing (atomic write)."""
    from safetensors.torch import save_file
    p = path(base)
    if force or not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        sd = train(log=log)
        tmp = p.with_suffix(".partial")
        save_file(sd, str(tmp), metadata={"fireflow_fixture": f"toy shapes FLUX, {STEPS} steps, seed {SEED}"})
        tmp.replace(p)
    return p


def load(base=None):
    from safetensors.torch import load_file
    return build(load_file(str(ensure(base))))


def generate(model, captions, seed=0, steps=16, solver="fireflow"):
    """Images [B, 3, H, W] in [-1, 1] sampled from seeded noise with the pack's FireFlow Sampler (no inversion)."""
    import nodes as comfy_nodes
    sampler = comfy_nodes.NODE_CLASS_MAPPINGS["FireFlowSampler"]()
    cond, negative = conditioning(captions), conditioning([""] * len(captions))
    noise = torch.randn(len(captions), 16, toy.SIZE // 2, toy.SIZE // 2, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        out = sampler.sample(model, cond, {"samples": from_model_space(noise)}, -1.0, steps=steps, solver=solver,
                             negative=negative, cfg=CFG)
    return toy.from_latent(to_model_space(out["result"][0]["samples"]))


def conditioning(captions):
    """ComfyUI conditioning of the toy text encoder (the empty caption is the unconditional prompt)."""
    tokens, pooled = toy.encode_text(captions)
    return [[tokens, {"pooled_output": pooled, "guidance": 1.0}]]


def to_model_space(latent):
    import comfy.latent_formats
    return comfy.latent_formats.Flux().process_in(latent)


def from_model_space(z):
    import comfy.latent_formats
    return comfy.latent_formats.Flux().process_out(z)


def gate(model, n=96, seed=1):
    """Share of seeded captions whose generated image shows the requested colour and shape (pixel classifier)."""
    rng = random.Random(seed)
    scenes = [toy.sample(rng) for _ in range(n)]
    imgs = generate(model, [toy.caption(s) for s in scenes], seed=seed)
    hits = [(r.colour == s.colour, r.shape == s.shape) for s, r in
             ((s, toy.classify(img, s.bg)) for s, img in zip(scenes, imgs))]
    return {"n": n, "colour": sum(c for c, _ in hits) / n, "shape": sum(s for _, s in hits) / n,
            "both": sum(c and s for c, s in hits) / n}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--base", default=None)
    ap.add_argument("--no-gate", action="store_true", help="only make sure the weights exist")
    a = ap.parse_args()
    print(ensure(a.base, a.force))
    if not a.no_gate:
        import hostlib  # noqa: F401  (loads the pack into the host)
        print(gate(load(a.base)))

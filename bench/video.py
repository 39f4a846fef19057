"""Feature-store memory of video edits, from the real geometry (issue 13): `python -m bench video`.

Each model is built by ComfyUI's own supported_models class from the configuration ComfyUI's model detection gives
the released checkpoint, on the `meta` device (no weights, no memory). The pack's adapter then reads its blocks,
attention width and token count exactly as the Inverter does, and the pack's planner prices the default recipe
(the later half of the blocks, fp8, one injection step) with the same `estimate_bytes` that refuses over-budget plans.
Latent frames are (frames - 1) / 4 + 1 for every model here (their VAEs compress time 4x). HunyuanVideo's text
tokens in the joint attention are taken as 128 (a one-sentence prompt; Wan's text enters by cross-attention: 0).
"""
import torch

_WAN = dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, freq_dim=256,
            text_dim=4096, out_dim=16, qk_norm=True, cross_attn_norm=True, eps=1e-6)
_HYV = dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
            hidden_size=3072, mlp_ratio=4.0, num_heads=24, depth=20, depth_single_blocks=40, axes_dim=[16, 56, 56],
            theta=256, patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False, meanflow=False,
            use_cond_type_embedding=False, vision_in_dim=None)
# label: (supported_models class, config, latent channels, pixels per latent cell, text tokens in the hooked attention)
MODELS = {
    "Wan 2.1 T2V 1.3B": ("WAN21_T2V", dict(_WAN, dim=1536, ffn_dim=8960, num_heads=12, num_layers=30), 16, 8, 0),
    "Wan 2.1 14B / Wan 2.2 A14B (each expert)": ("WAN21_T2V", dict(_WAN, dim=5120, ffn_dim=13824, num_heads=40,
                                                                   num_layers=40), 16, 8, 0),
    "Wan 2.2 TI2V 5B": ("WAN22_T2V", dict(_WAN, in_dim=48, out_dim=48, dim=3072, ffn_dim=14336, num_heads=24,
                                          num_layers=30), 48, 16, 0),
    "HunyuanVideo": ("HunyuanVideo", _HYV, 16, 8, 128),
    "HunyuanVideo 1.5": ("HunyuanVideo15", dict(_HYV, in_channels=65, out_channels=32, vec_in_dim=None,
                                                context_in_dim=3584, hidden_size=2048, num_heads=16, depth=54,
                                                depth_single_blocks=0, patch_size=[1, 1, 1], guidance_embed=False,
                                                byt5=True, use_cond_type_embedding=True, vision_in_dim=1152),
                         32, 16, 128),
}
SIZES = {"480p": (832, 480), "720p": (1280, 720)}
FRAMES = (33, 81)
STEPS = 8


def _model(pack, cls, config):
    import comfy.model_patcher
    import comfy.supported_models
    mc = getattr(comfy.supported_models, cls)(dict(config))
    mc.set_inference_dtype(torch.bfloat16, None)
    model = mc.get_model({}, device="meta")
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def run(pack):
    """{model: {size: {frames: row}}} with token counts and GiB per store, plus a markdown table."""
    from fireflow.features import CacheSpec  # the pack's core, as hostlib loaded it
    families = pack.nodes.families
    gib = 2 ** 30
    rows, table = {}, ["| model | frames | size | tokens | V of every block, one evaluation, bf16 | store everything "
                       f"({STEPS} steps, bf16) | pack default: recorded blocks, fp8, host memory |",
                       "|---|---|---|---|---|---|---|"]
    for label, (cls, config, channels, cell, text) in MODELS.items():
        mp = _model(pack, cls, config)
        fam = families.family_of(mp)
        dm = mp.model.diffusion_model
        counts, width = fam.block_counts(dm), fam.attention_width(dm)
        blocks = counts[0] + counts[1]
        spec = fam.with_recipe(CacheSpec(single_blocks="auto", double_blocks="auto"), counts)  # the node defaults
        plan = spec.resolve(counts, STEPS, "fireflow")
        for size, (w, h) in SIZES.items():
            for frames in FRAMES:
                shape = (1, channels, (frames - 1) // 4 + 1, h // cell, w // cell)
                L = fam.image_tokens(shape)
                one = blocks * (L + text) * width * 2
                everything = one * STEPS
                default = plan.estimate_bytes(1, 1, width, text, L, torch.bfloat16)
                rows.setdefault(label, {}).setdefault(size, {})[frames] = {
                    "latent": list(shape), "image_tokens": L, "blocks": blocks, "recorded": plan.describe_blocks(),
                    "width": width, "one_evaluation_bf16_gib": one / gib, "store_everything_gib": everything / gib,
                    "pack_default_gib": default / gib, "pack_default": f"{spec.dtype}, {spec.device}"}
                table.append(f"| {label} | {frames} | {size} ({w}x{h}) | {L:,} | {one / gib:.2f} GiB | "
                             f"{everything / gib:.1f} GiB | {default / gib:.2f} GiB ({plan.describe_blocks()}) |")
    return {"models": rows, "markdown": "\n".join(table)}

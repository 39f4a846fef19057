"""Tiny seeded models of every rectified-flow image family the pack knows, built through ComfyUI's own classes.

Same recipe as `fixtures.tiny_flux`: an explicit config goes through the family's `comfy.supported_models` class and
its `get_model` (so the family's own model_base and diffusion-model code, patch hooks included); weights come from
`fixtures.seeded_state_dict` with every norm gain 1 and the time embeddings smoothed; CPU, fp32, never written to
disk. Width 64-256, 2 heads, 1-2 blocks of each kind: a few milliseconds to build.

    build(name, seed=0)                               -> ModelPatcher
    conditioning(name, tokens=7, seed=0)              -> node-style [[cross_attn, {extras}]]
    latent(name, height_px=64, width_px=64, seed=0)   -> a seeded N(0, 1) latent of the family's shape
    reference(name, height_px=64, width_px=64, seed=1)-> a reference latent ("reference_latents") or None

Fields newer ComfyUI requires are added only where this host's params dataclass has them, so the same weights load
on 0.3.75 and newer releases. Norm weights are drawn under a canonical `.scale` name for the same reason.
"""
import dataclasses
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import fixtures  # noqa: E402
import host_env  # noqa: E402

CONTEXT = 32  # text feature width of every tiny family
POOLED = 16

_FLUX2 = dict(image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=CONTEXT,
              hidden_size=64, mlp_ratio=3.0, num_heads=2, depth=1, depth_single_blocks=2, axes_dim=[8, 8, 8, 8],
              theta=2000, patch_size=1, qkv_bias=False, guidance_embed=True, global_modulation=True,
              mlp_silu_act=True, ops_bias=False, default_ref_method="index", ref_index_scale=10.0)
_CHROMA = dict(image_model="chroma", in_channels=64, out_channels=64, context_in_dim=CONTEXT, hidden_size=64,
               mlp_ratio=4.0, num_heads=2, depth=1, depth_single_blocks=2, axes_dim=[8, 12, 12], theta=10000,
               patch_size=2, qkv_bias=True, in_dim=64, out_dim=64, hidden_dim=64, n_layers=1)
_SD3 = dict(in_channels=16, out_channels=16, pos_embed_scaling_factor=None, patch_size=2, adm_in_channels=POOLED,
            pos_embed_max_size=16, num_patches=256, depth=2,  # MMDiT: width 64 x depth, heads = depth
            context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": CONTEXT, "out_features": 128}})
_NEXTDIT = dict(image_model="lumina2", patch_size=2, in_channels=16, n_layers=2, n_refiner_layers=2, qk_norm=True,
                cap_feat_dim=CONTEXT, rope_theta=10000.0)
_WAN = dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=64,
            ffn_dim=128, freq_dim=64, text_dim=CONTEXT, out_dim=16, num_heads=2, num_layers=4, qk_norm=True,
            cross_attn_norm=True, eps=1e-6)
_HYV = dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=POOLED, context_in_dim=CONTEXT,
            hidden_size=64, mlp_ratio=4.0, num_heads=2, depth=1, depth_single_blocks=2, axes_dim=[8, 12, 12],
            theta=256, patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False, meanflow=False,
            use_cond_type_embedding=False, vision_in_dim=None)

# name: (supported_models class, config, fields only newer hosts know, (latent channels, downscale, 5-D), guidance)
SPECS = {
    "flux2": ("Flux2", _FLUX2, dict(txt_ids_dims=[3]), (128, 16, False), 4.0),
    "flux2_klein": ("Flux2", dict(_FLUX2, guidance_embed=False), dict(txt_ids_dims=[3]), (128, 16, False), None),
    "chroma": ("Chroma", _CHROMA, dict(txt_ids_dims=[], vec_in_dim=None), (16, 8, False), 0.0),
    "chroma_radiance": ("ChromaRadiance", dict(_CHROMA, image_model="chroma_radiance", in_channels=3, out_channels=3,
                                               patch_size=16, nerf_hidden_size=16, nerf_mlp_ratio=4, nerf_depth=2,
                                               nerf_max_freqs=8, nerf_tile_size=512, nerf_final_head_type="conv",
                                               nerf_embedder_dtype=torch.float32),
                        dict(txt_ids_dims=[], vec_in_dim=None, use_x0=False, use_sequential_txt_ids=False),
                        (3, 1, False), 0.0),
    "flux_fill": ("FluxInpaint", dict(fixtures.TINY_FLUX, in_channels=96, depth=1, depth_single_blocks=2),
                  dict(txt_ids_dims=[]), (16, 8, False), 30.0),
    "hunyuan_image21": ("HunyuanImage21", dict(image_model="hunyuan_video", in_channels=64, out_channels=64,
                                               vec_in_dim=None, context_in_dim=CONTEXT, hidden_size=64, mlp_ratio=4.0,
                                               num_heads=2, depth=1, depth_single_blocks=2, axes_dim=[16, 16],
                                               theta=256, patch_size=[1, 1], qkv_bias=True, guidance_embed=False,
                                               byt5=False, meanflow=False, use_cond_type_embedding=False,
                                               vision_in_dim=None),
                        dict(meanflow_sum=False), (64, 32, False), None),
    "qwen_image": ("QwenImage", dict(image_model="qwen_image", patch_size=2, in_channels=64, out_channels=16,
                                     num_layers=2, attention_head_dim=32, num_attention_heads=2,
                                     joint_attention_dim=CONTEXT, axes_dims_rope=(8, 12, 12)),
                   {}, (16, 8, True), None),
    "sd3": ("SD3", _SD3, {}, (16, 8, False), None),
    # SD3.5 Medium: RMS qk-norm and a second, image-only attention in the listed blocks
    "sd35_medium": ("SD3", dict(_SD3, qk_norm="rms", x_block_self_attn_layers=[0]), {}, (16, 8, False), None),
    # Lumina 2 with grouped-query attention like the real one (2 query heads, 1 key/value head)
    "lumina2": ("Lumina2", dict(_NEXTDIT, dim=64, n_heads=2, n_kv_heads=1, axes_dims=[8, 12, 12],
                                axes_lens=[300, 512, 512], ffn_dim_multiplier=4.0), {}, (16, 8, False), None),
    # Z-Image: its modulation reads a 256-wide time embedding, so dim >= 256; tokens padded to multiples of 32
    "z_image": ("ZImage", dict(_NEXTDIT, dim=256, n_heads=2, n_kv_heads=2, axes_dims=[32, 48, 48],
                               axes_lens=[1536, 512, 512], rope_theta=256.0, ffn_dim_multiplier=8.0 / 3.0,
                               z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32),
                {}, (16, 8, False), None),
    # HiDream-I1: mixture-of-experts feed-forward like the real one; two Llama layers feed the blocks
    "hidream": ("HiDream", dict(image_model="hidream", patch_size=2, in_channels=16, out_channels=16, num_layers=1,
                                num_single_layers=1, attention_head_dim=32, num_attention_heads=2,
                                caption_channels=[CONTEXT, CONTEXT], text_emb_dim=POOLED, num_routed_experts=4,
                                num_activated_experts=2, axes_dims_rope=[16, 8, 8], max_resolution=[128, 128],
                                llama_layers=[0, 1]), {}, (16, 8, False), None),
    # video: 5 latent frames; Wan's blocks are self-attention + text cross-attention (+ CLIP-vision for I2V)
    "wan21": ("WAN21_T2V", _WAN, {}, (16, 8, 5), None),
    "wan21_i2v": ("WAN21_I2V", dict(_WAN, model_type="i2v", in_dim=36), {}, (16, 8, 5), None),
    "wan22_5b": ("WAN22_T2V", dict(_WAN, in_dim=48, out_dim=48), {}, (48, 16, 5), None),
    "hunyuan_video": ("HunyuanVideo", _HYV, dict(meanflow_sum=False), (16, 8, 5), 6.0),
    "hunyuan_video15": ("HunyuanVideo15", dict(_HYV, in_channels=65, out_channels=32, vec_in_dim=None,
                                               guidance_embed=False, use_cond_type_embedding=True, vision_in_dim=16,
                                               patch_size=[1, 1, 1]),
                        dict(meanflow_sum=False), (32, 16, 5), None),
    "hunyuan_video15_meanflow": ("HunyuanVideo15", dict(_HYV, in_channels=65, out_channels=32, vec_in_dim=None,
                                                        guidance_embed=False, use_cond_type_embedding=True,
                                                        vision_in_dim=16, patch_size=[1, 1, 1], meanflow=True),
                                 dict(meanflow_sum=False), (32, 16, 5), None),
}
REFERENCES = ("flux2", "flux2_klein", "qwen_image")


def _params_fields(name):
    import comfy.ldm.chroma.model
    import comfy.ldm.chroma_radiance.model
    import comfy.ldm.flux.model
    import comfy.ldm.hunyuan_video.model
    params = {"Flux2": comfy.ldm.flux.model.FluxParams, "FluxInpaint": comfy.ldm.flux.model.FluxParams,
              "Chroma": comfy.ldm.chroma.model.ChromaParams,
              "ChromaRadiance": comfy.ldm.chroma_radiance.model.ChromaRadianceParams,
              "HunyuanImage21": comfy.ldm.hunyuan_video.model.HunyuanVideoParams,
              "HunyuanVideo": comfy.ldm.hunyuan_video.model.HunyuanVideoParams,
              "HunyuanVideo15": comfy.ldm.hunyuan_video.model.HunyuanVideoParams}.get(SPECS[name][0])
    return {f.name for f in dataclasses.fields(params)} if params else set()


def host_config(name):
    cls, config, newer, _, _ = SPECS[name]
    config = dict(config)
    fields = _params_fields(name)
    config.update({k: v for k, v in newer.items() if k in fields and k not in config})
    return config


class _Named:
    def __init__(self, sd):
        self._sd = sd

    def state_dict(self):
        return self._sd


def _seeded(module, seed):
    """fixtures.seeded_state_dict with every norm gain 1, drawn under a canonical name, and time embeddings smooth."""
    norms = set()
    for mname, m in module.named_modules():
        if "norm" in type(m).__name__.lower():
            norms.update(f"{mname}.{p}" if mname else p for p, _ in m.named_parameters(recurse=False))
    canon = {k: (k.rsplit(".", 1)[0] + ".scale" if k in norms and k.endswith(".weight") else k)
             for k in module.state_dict()}
    back = {v: k for k, v in canon.items()}
    drawn = fixtures.seeded_state_dict(_Named({canon[k]: v for k, v in module.state_dict().items()}), seed)
    sd = fixtures.smooth_in_time({back[k]: v for k, v in drawn.items()})
    for key, dim in (("txt_in.t_embedder.in_layer.weight", None), ("distilled_guidance_layer.in_proj.weight", 16)):
        if key in sd:
            sd[key] = fixtures.smooth_columns(sd[key], 0, dim)
    for k in norms:  # gains to 1, biases to 0 (seeded_state_dict only knows FLUX's names)
        if k in sd and sd[k].ndim == 1:
            sd[k] = torch.ones_like(sd[k]) if not k.endswith("bias") else torch.zeros_like(sd[k])
    return sd


def build(name, seed=0):
    """A ModelPatcher around the tiny `name` model, built by the family's supported_models class and get_model."""
    host_env.boot()
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models
    model_config = getattr(comfy.supported_models, SPECS[name][0])(host_config(name))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, device="cpu")
    dm = model.diffusion_model
    dm.load_state_dict(_seeded(dm, seed), strict=True)
    dm.to(torch.float32).requires_grad_(False)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=torch.device("cpu"))


def conditioning(name, tokens=7, seed=0):
    """[[cross_attn [1, tokens, 32], extras]] as the family's text encoder and usual nodes make it."""
    g = torch.Generator().manual_seed(seed)
    cross = torch.randn(1, tokens, CONTEXT, generator=g)
    extra = {}
    if name in ("flux2", "flux2_klein", "chroma", "chroma_radiance", "hunyuan_video15", "hunyuan_video15_meanflow"):
        extra["pooled_output"] = None  # 0.3.75's Flux.encode_adm reads the key
    elif name in ("flux_fill", "sd3", "sd35_medium", "hidream"):
        extra["pooled_output"] = torch.randn(1, POOLED, generator=g)
    if name == "flux_fill":  # InpaintModelConditioning: masked-image latent and a pixel mask (centre box repainted)
        extra["concat_latent_image"] = torch.randn(1, 16, 8, 8, generator=g)
        mask = torch.zeros(1, 1, 64, 64)
        mask[:, :, 16:48, 16:48] = 1.0
        extra["concat_mask"] = mask
    elif name in ("lumina2", "z_image"):
        extra["attention_mask"] = torch.ones(1, tokens, dtype=torch.long)
    elif name == "hidream":
        extra["conditioning_llama3"] = torch.randn(1, 2, tokens, CONTEXT, generator=g)
    elif name == "hunyuan_video":
        extra["pooled_output"] = torch.randn(1, POOLED, generator=g)
    elif name in ("wan21_i2v", "hunyuan_video15", "hunyuan_video15_meanflow"):  # image-to-video: a start image
        lat = latent(name, seed=100)  # the same start image whatever the prompt
        extra["concat_latent_image"] = lat
        mask = torch.ones(1, 1, *lat.shape[2:])
        mask[:, :, :1] = 0.0  # the first frame is given (WanImageToVideo / HunyuanVideo15ImageToVideo)
        extra["concat_mask"] = mask
    if SPECS[name][4] is not None:
        extra["guidance"] = SPECS[name][4]
    return [[cross, extra]]


def latent(name, height_px=64, width_px=64, seed=0):
    channels, down, frames = SPECS[name][3]
    shape = (1, channels) + ((int(frames),) if frames else ()) + (height_px // down, width_px // down)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def reference(name, height_px=64, width_px=64, seed=1):
    return latent(name, height_px, width_px, seed) if name in REFERENCES else None


if __name__ == "__main__":
    for fam in SPECS:
        m = build(fam)
        print(f"{fam:16s} {type(m.model).__name__:14s} {sum(p.numel() for p in m.model.diffusion_model.parameters()):>9,d}"
              f" latent {tuple(latent(fam).shape)}")

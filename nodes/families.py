"""Family adapters: what the pack needs to know about each rectified-flow model family, in one table.

An adapter is looked up from the model's concrete class (`type(model.model).__name__`, never isinstance: FLUX.2 and
Chroma subclass FLUX.1's class with other geometry). It says which blocks exist and how they are hooked, where the
target image sits in the joint attention sequence (fireflow/tokens.py), the latent's patch size, the guidance mode,
the default schedule and CFG, and the paper-equivalent default recipe. The core only ever sees counts and slices.

A model whose class is not in the table can still be inverted and sampled without features when it is a true
rectified flow; attention features are refused by name, with the supported families listed.
"""
import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..fireflow.features import DOUBLE, SINGLE
from ..fireflow.tokens import TokenLayout


@dataclass(frozen=True)
class Family:
    name: str
    classes: Tuple[str, ...]
    # (kind, diffusion_model attribute holding the blocks, patches_replace["dit"] name)
    blocks: Tuple[Tuple[int, str, Optional[str]], ...] = ((DOUBLE, "double_blocks", "double_block"),
                                                          (SINGLE, "single_blocks", "single_block"))
    # how a block is found at attention time: "dit" wraps each block with patches_replace["dit"]; "calls" numbers the
    # attention calls of one forward (for models without dit patches or block ids): `lead` modules' calls come first
    # and are never touched, then one call per block in table order
    hook: str = "dit"
    lead: Tuple[str, ...] = ()
    patch: int = 2  # latent pixels per token side
    text_first: bool = True
    text_exact: bool = True  # the attention's text length equals the conditioning's token count
    attn_call: int = 0  # which attention call inside a hooked block is the joint self-attention
    guidance: str = "embedded"  # "embedded" (distilled guidance input), "cfg", or "auto" (embedded when configured)
    default_cfg: float = 1.0
    schedule: str = "model"  # "flux1": FLUX.1's resolution shift; "flux2": FLUX.2's scheduler; "model": its own
    recipe: Tuple[str, str] = ("none", "all")  # paper-equivalent (double_blocks, single_blocks)
    frames: bool = False  # the image latent is a one-frame video latent [B, C, 1, H, W] (Qwen-Image)
    video: bool = False  # a video model: latents [B, C, T, H, W] with any number of frames
    tpatch: int = 1  # latent frames per token (temporal patch size)
    joint_text: bool = True  # False: the hooked attention is self-attention over the image alone (Wan)
    lead_latents: Tuple[Tuple[str, str], ...] = ()  # (conditioning key, model_conds key): latents before the image
    same_conds: Tuple[str, ...] = ()  # model_conds keys (image conditioning) that must match between both passes
    storage: Tuple[str, str] = ("model", "auto")  # what dtype / device 'auto' mean: video keeps fp8 in host memory
    references: bool = False  # reference latents (Kontext, FLUX.2, Qwen-Image-Edit) are appended after the image
    padding: int = 0  # image tokens are padded to a multiple of this (set from the model by `resolve`)
    flip_probe: bool = False  # the order depends on the host: image first where the blocks have `flipped_img_txt`
    unplaced: Tuple[str, ...] = ()  # conditioning keys that add image tokens the adapter cannot place
    refuse: Optional[str] = None  # why attention features cannot be used with this family
    no_flow: Optional[str] = None  # why this model cannot be inverted or sampled by the pack at all
    notes: str = field(default="", compare=False)

    def block_counts(self, diffusion_model):
        counts = [0, 0]
        for kind, attr, _ in self.blocks:
            counts[kind] = len(getattr(diffusion_model, attr))
        return tuple(counts)

    def guidance_mode(self, model_patcher):
        if self.guidance != "auto":
            return self.guidance
        unet = getattr(model_patcher.model, "model_config", None)
        return "embedded" if getattr(unet, "unet_config", {}).get("guidance_embed", False) else "cfg"

    def with_recipe(self, spec, counts=None):
        """The cache spec with 'auto' block selections replaced by this family's paper-equivalent recipe ('later'
        is the later half of the blocks, given the (double, single) `counts`), and 'auto' storage by the family's."""
        import dataclasses

        def blocks(choice, n):
            if choice != "later":
                return choice
            return f"{n // 2}-{n - 1}" if n and n > 1 else "all"
        double, single = self.recipe
        counts = counts or (0, 0)
        if (double, single) == ("none", "later") and counts[1] == 0 and counts[0] > 0:  # HunyuanVideo 1.5: double only
            double, single = "later", "none"
        changes = {}
        if (spec.double_blocks or "").strip().lower() == "auto":
            changes["double_blocks"] = blocks(double, counts[0])
        if (spec.single_blocks or "").strip().lower() == "auto":
            changes["single_blocks"] = blocks(single, counts[1])
        if spec.dtype == "auto":
            changes["dtype"] = self.storage[0]
        if spec.device == "auto" and self.storage[1] != "auto":
            changes["device"] = self.storage[1]
        return dataclasses.replace(spec, **changes) if changes else spec

    def attention_width(self, dm):
        """heads x head_dim of the hooked attention (for the memory estimate)."""
        for attr in ("hidden_size", "inner_dim", "dim"):
            value = getattr(dm, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        raise ValueError(f"FireFlow: cannot tell the attention width of this {self.name} model")

    def resolve(self, dm):
        """This adapter with what only the loaded model knows: patch size, padding multiple, host-dependent order."""
        import dataclasses
        changes = {}
        patch = getattr(dm, "patch_size", None)  # the model's own patch size wins over the family's usual one
        if isinstance(patch, (list, tuple)) and len(patch) == 3 and self.video and patch[0] != self.tpatch:
            changes["tpatch"] = int(patch[0])
        patch = patch[-1] if isinstance(patch, (list, tuple)) and patch else patch
        if isinstance(patch, int) and patch > 0 and patch != self.patch:
            changes["patch"] = patch
        if any(k == "reference_latent" for _, k in self.lead_latents) and getattr(dm, "ref_conv", None) is None:
            changes["lead_latents"] = tuple(p for p in self.lead_latents if p[1] != "reference_latent")  # no ref_conv
        pad = getattr(dm, "pad_tokens_multiple", None)
        if pad:
            changes.update(padding=int(pad), text_exact=False)
        if getattr(dm, "time_r_in", None) is not None:
            changes["refuse"] = changes["no_flow"] = (
                "this is a MeanFlow-distilled model: it predicts the average velocity over an interval, not the "
                "velocity field inversion follows; use the base (non-distilled) model, or ComfyUI's own sampler")
        if self.flip_probe:
            first = next(iter(getattr(dm, self.blocks[0][1])), None)
            changes["text_first"] = not getattr(first, "flipped_img_txt", False)
        return dataclasses.replace(self, **changes) if changes else self

    def call_order(self, dm):
        """"calls" hook: (kind, block index) of each attention call of one forward, None for calls left alone."""
        order = [None] * sum(len(getattr(dm, attr)) for attr in self.lead)
        for kind, attr, _ in self.blocks:
            order += [(kind, i) for i in range(len(getattr(dm, attr)))]
        return order

    def patch_name(self, kind):
        return next(name for k, _, name in self.blocks if k == kind)

    def image_tokens(self, shape):
        """Tokens of one latent [B, C, H, W] or [B, C, T, H, W] (ComfyUI pads to the patch size)."""
        frames = math.ceil(shape[-3] / self.tpatch) if len(shape) == 5 else 1
        return frames * math.ceil(shape[-2] / self.patch) * math.ceil(shape[-1] / self.patch)

    def layout(self, latent_shape, references=(), text=None, lead=()):
        """TokenLayout of one CFG branch: the latent's tokens, its reference latents' tokens (appended, and `lead`
        ones placed before the image), and its text length."""
        refs = sum(self.image_tokens(tuple(r.shape)) for r in references) if self.references else 0
        image = self.image_tokens(latent_shape)
        before = sum(self.image_tokens(tuple(r.shape)) for r in lead)
        text = 0 if not self.joint_text else text if self.text_exact else None
        return TokenLayout(image=image, reference=refs, text_first=self.text_first, text=text,
                           padding=(-image) % self.padding if self.padding else 0, lead=before)


MMDIT = ((DOUBLE, "joint_blocks", "double_block"),)

FLUX1 = Family("FLUX.1", ("Flux", "FluxInpaint"), schedule="flux1", references=True,
               notes="dev, schnell, Krea, Fill and Kontext (reference latents follow the image tokens)")
FLUX2 = Family("FLUX.2", ("Flux2",), patch=1, text_exact=False, guidance="auto", default_cfg=4.0, schedule="flux2",
               references=True, notes="dev and klein: 128-channel latent at 1/16, one token per latent pixel, text "
                                      "zero-padded in front to 512 tokens, references after the image")
CHROMA = Family("Chroma", ("Chroma",), guidance="cfg", default_cfg=4.0,
                notes="FLUX.1 layout without guidance embedding; CFG")
CHROMA_RADIANCE = Family("Chroma Radiance", ("ChromaRadiance",), patch=16, guidance="cfg", default_cfg=4.0,
                         notes="pixel space: the 'latent' is the 3-channel image, one token per 16 x 16 pixels")
HUNYUAN_IMAGE = Family("HunyuanImage 2.1", ("HunyuanImage21",), patch=1, text_exact=False, guidance="auto",
                       default_cfg=3.5, flip_probe=True,
                       notes="64-channel latent at 1/32; the text refiner's attention runs outside the blocks and is "
                             "not touched; image-first on ComfyUI 0.3.75, text-first on newer releases (read from "
                             "the model); ByT5 glyph tokens count as text")
QWEN = Family("Qwen-Image", ("QwenImage",), blocks=((DOUBLE, "transformer_blocks", "double_block"),),
              guidance="cfg", default_cfg=4.0, recipe=("all", "none"), frames=True, references=True,
              notes="joint (double-stream) blocks only; [B, 16, 1, H, W] latent; Qwen-Image-Edit references after "
                    "the image")
SD3 = Family("SD3", ("SD3",), blocks=MMDIT, guidance="cfg", default_cfg=4.5, recipe=("all", "none"),
             notes="SD3 / SD3.5 MMDiT joint blocks; q, k, v as [B, L, heads x dim]; SD3.5-Medium's extra "
                   "image-only attention (the block's second call) is left alone")
LUMINA = Family("Lumina 2 / Z-Image", ("Lumina2",), blocks=((SINGLE, "layers", None),), hook="calls",
                lead=("context_refiner", "noise_refiner"), guidance="cfg", default_cfg=4.0,
                notes="no block hooks in ComfyUI: attention calls are numbered; the context and noise refiners' "
                      "calls come first and are skipped; Z-Image pads text and image to multiples of 32")
HIDREAM = Family("HiDream-I1", ("HiDream",), blocks=((DOUBLE, "double_stream_blocks", None),
                                                    (SINGLE, "single_stream_blocks", None)),
                 hook="calls", text_first=False, text_exact=False, guidance="cfg", default_cfg=5.0,
                 unplaced=("concat_latent_image",),
                 notes="image-first [image | T5 | Llama layers]; no block hooks in ComfyUI, attention calls are "
                       "numbered; HiDream-E1's side-by-side input image is refused")
VIDEO_STORAGE = ("fp8", "cpu")  # a 33-frame 480p Wan-14B evaluation of V in all blocks is about 5 GiB in bf16
WAN = Family("Wan 2.1 / 2.2", ("WAN21", "WAN22"), blocks=((SINGLE, "blocks", "double_block"),), video=True,
             joint_text=False, text_exact=False, guidance="cfg", default_cfg=5.0, recipe=("none", "later"),
             lead_latents=(("reference_latents", "reference_latent"),), unplaced=("time_dim_concat",),
             same_conds=("c_concat", "clip_fea", "reference_latent"), storage=VIDEO_STORAGE,
             notes="T2V, I2V, FLF2V, 2.2 TI2V-5B and both A14B experts; [B, C, T, H, W] latents, one token per 2 x 2 "
                   "latent pixels per frame; only each block's self-attention (image tokens alone) is touched, never "
                   "its text or CLIP-vision cross-attention; its blocks count as single-stream blocks")
HUNYUAN_VIDEO = Family("HunyuanVideo", ("HunyuanVideo", "HunyuanVideoI2V", "HunyuanVideoSkyreelsI2V", "HunyuanVideo15"),
                       text_exact=False, guidance="auto", default_cfg=6.0, flip_probe=True, video=True,
                       recipe=("none", "later"), lead_latents=(("ref_latent", "ref_latent"),),
                       same_conds=("c_concat", "clip_fea", "ref_latent", "guiding_frame_index"),
                       storage=VIDEO_STORAGE,
                       notes="1 (embedded guidance) and 1.5 (CFG); FLUX-like double and single blocks; the text "
                             "refiner's attention runs outside the blocks and is not touched; ref_latent frames come "
                             "before the image and are never recorded or replaced")
HUNYUAN_VIDEO_SR = Family("HunyuanVideo 1.5 super-resolution", ("HunyuanVideo15_SR_Distilled",), video=True,
                          refuse="a distilled super-resolution model conditioned on a low-resolution video",
                          no_flow="a distilled super-resolution model conditioned on a low-resolution video, not a "
                                  "velocity field from noise; invert and edit with the base HunyuanVideo 1.5 model and "
                                  "upscale the result with this one")
FAMILIES = (FLUX1, FLUX2, CHROMA, CHROMA_RADIANCE, QWEN, SD3, LUMINA, HIDREAM, HUNYUAN_IMAGE, WAN, HUNYUAN_VIDEO,
            HUNYUAN_VIDEO_SR)

_BY_CLASS = {c: f for f in FAMILIES for c in f.classes}


def family_of(model_patcher) -> Optional[Family]:
    fam = _BY_CLASS.get(type(model_patcher.model).__name__)
    dm = getattr(model_patcher.model, "diffusion_model", None)
    if fam is None or dm is None or not all(hasattr(dm, attr) for _, attr, _ in fam.blocks):
        return fam
    return fam.resolve(dm)


def supported_names():
    return ", ".join(f.name for f in FAMILIES if f.refuse is None)


def require_family(model_patcher, node):
    """The adapter of a model whose attention features the pack can record and inject; a clear error otherwise."""
    fam = family_of(model_patcher)
    cls = type(model_patcher.model).__name__
    if fam is None:
        raise ValueError(f"{node}: attention features are not supported for this model family ({cls}); supported: "
                         f"{supported_names()}. Inversion and sampling without the feature cache still work.")
    if fam.refuse:
        raise ValueError(f"{node}: attention features are not supported for {fam.name} ({cls}): {fam.refuse}. "
                         "Inversion and sampling without the feature cache still work.")
    dm = getattr(model_patcher.model, "diffusion_model", None)
    if dm is None or not all(hasattr(dm, attr) for _, attr, _ in fam.blocks):
        raise ValueError(f"{node}: this {fam.name} model ({cls}) does not have the blocks the {fam.name} adapter "
                         "expects; it may come from a newer or modified ComfyUI")
    return fam

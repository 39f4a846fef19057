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
    blocks: Tuple[Tuple[int, str, str], ...] = ((DOUBLE, "double_blocks", "double_block"),
                                                (SINGLE, "single_blocks", "single_block"))
    patch: int = 2  # latent pixels per token side
    text_first: bool = True
    text_exact: bool = True  # the attention's text length equals the conditioning's token count
    attn_call: int = 0  # which attention call inside a hooked block is the joint self-attention
    guidance: str = "embedded"  # "embedded" (distilled guidance input), "cfg", or "auto" (embedded when configured)
    default_cfg: float = 1.0
    schedule: str = "model"  # "flux1": FLUX.1's resolution shift; "flux2": FLUX.2's scheduler; "model": its own
    recipe: Tuple[str, str] = ("none", "all")  # paper-equivalent (double_blocks, single_blocks)
    frames: bool = False  # the image latent is a one-frame video latent [B, C, 1, H, W] (Qwen-Image)
    references: bool = False  # reference latents (Kontext, FLUX.2, Qwen-Image-Edit) are appended after the image
    refuse: Optional[str] = None  # why attention features cannot be used with this family
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

    def with_recipe(self, spec):
        """The cache spec with 'auto' block selections replaced by this family's paper-equivalent recipe."""
        import dataclasses
        double, single = self.recipe
        changes = {}
        if (spec.double_blocks or "").strip().lower() == "auto":
            changes["double_blocks"] = double
        if (spec.single_blocks or "").strip().lower() == "auto":
            changes["single_blocks"] = single
        return dataclasses.replace(spec, **changes) if changes else spec

    def attention_width(self, dm):
        """heads x head_dim of the hooked attention (for the memory estimate)."""
        for attr in ("hidden_size", "inner_dim", "dim"):
            value = getattr(dm, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        raise ValueError(f"FireFlow: cannot tell the attention width of this {self.name} model")

    def patch_name(self, kind):
        return next(name for k, _, name in self.blocks if k == kind)

    def image_tokens(self, shape):
        """Tokens of one latent [B, C, H, W] or [B, C, T, H, W] (ComfyUI pads to the patch size)."""
        frames = shape[-3] if len(shape) == 5 else 1
        return frames * math.ceil(shape[-2] / self.patch) * math.ceil(shape[-1] / self.patch)

    def layout(self, latent_shape, references=(), text=None):
        """TokenLayout of one CFG branch: the latent's tokens, its reference latents' tokens, and its text length."""
        refs = sum(self.image_tokens(tuple(r.shape)) for r in references)
        return TokenLayout(image=self.image_tokens(latent_shape), reference=refs, text_first=self.text_first,
                           text=text if self.text_exact else None)


MMDIT = ((DOUBLE, "joint_blocks", "double_block"),)

FLUX1 = Family("FLUX.1", ("Flux", "FluxInpaint"), schedule="flux1", references=True,
               notes="dev, schnell, Krea, Fill and Kontext (reference latents follow the image tokens)")
FLUX2 = Family("FLUX.2", ("Flux2",), patch=1, guidance="auto", default_cfg=4.0, schedule="flux2", references=True,
               notes="dev and klein: 128-channel latent, one token per latent pixel, references after the image")
CHROMA = Family("Chroma", ("Chroma",), guidance="cfg", default_cfg=4.0,
                notes="FLUX.1 layout without guidance embedding; CFG")
QWEN = Family("Qwen-Image", ("QwenImage",), blocks=((DOUBLE, "transformer_blocks", "double_block"),),
              guidance="cfg", default_cfg=4.0, recipe=("all", "none"), frames=True, references=True,
              notes="joint (double-stream) blocks only; [B, 16, 1, H, W] latent; Qwen-Image-Edit references after "
                    "the image")
SD3 = Family("SD3", ("SD3",), blocks=MMDIT, guidance="cfg", default_cfg=4.5, recipe=("all", "none"),
             notes="SD3 / SD3.5 MMDiT joint blocks; q, k, v as [B, L, heads x dim]; SD3.5-Medium's extra "
                   "image-only attention (the block's second call) is left alone")
FAMILIES = (FLUX1, FLUX2, CHROMA, QWEN, SD3)

_BY_CLASS = {c: f for f in FAMILIES for c in f.classes}


def family_of(model_patcher) -> Optional[Family]:
    return _BY_CLASS.get(type(model_patcher.model).__name__)


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

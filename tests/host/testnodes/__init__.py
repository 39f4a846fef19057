"""Test-only ComfyUI nodes (loaded by the host tests and the demo; never part of the pack's registry).

FLUX conditioning needs the 4.7B-parameter T5, which cannot be downloaded here: this node emits seeded tensors of
the right shapes instead, which is what a text encoder hands the sampler (HOST.md).
"""
import torch


class FFTestConditioning:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "make"
    RETURN_TYPES = ("CONDITIONING",)
    DESCRIPTION = "Seeded stand-in for a FLUX text encoder: randn(batch, tokens, dim) plus a pooled vector."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31}),
            "tokens": ("INT", {"default": 7, "min": 0, "max": 4096}),
            "dim": ("INT", {"default": 4096, "min": 1, "max": 8192}),
            "pooled_dim": ("INT", {"default": 768, "min": 1, "max": 8192}),
            "guidance": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0}),
            "batch": ("INT", {"default": 1, "min": 1, "max": 64}),
        }}

    def make(self, seed, tokens, dim, pooled_dim, guidance, batch=1):
        g = torch.Generator().manual_seed(seed)
        cond = torch.randn(batch, tokens, dim, generator=g)
        pooled = torch.randn(batch, pooled_dim, generator=g)
        return ([[cond, {"pooled_output": pooled, "guidance": guidance}]],)


class FFTestLatent:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "make"
    RETURN_TYPES = ("LATENT",)
    DESCRIPTION = "Seeded image-like latent (stands in for VAEEncode of a photo)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31}),
            "width": ("INT", {"default": 8, "min": 1, "max": 1024}),
            "height": ("INT", {"default": 8, "min": 1, "max": 1024}),
            "channels": ("INT", {"default": 16, "min": 1, "max": 128}),
            "batch": ("INT", {"default": 1, "min": 1, "max": 64}),
        }}

    def make(self, seed, width, height, channels, batch=1):
        g = torch.Generator().manual_seed(seed)
        return ({"samples": torch.randn(batch, channels, height, width, generator=g)},)


class FFTestTinyFlux:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "A truly tiny FLUX (width 64) built by ComfyUI's own Flux classes from an explicit config."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31}),
                             "schnell": ("BOOLEAN", {"default": False})}}

    def load(self, seed, schnell):
        import fixtures  # scripts/ is on sys.path wherever these test nodes are loaded
        return (fixtures.tiny_flux(seed, schnell=schnell),)


CAPTURED = {}


class FFTestCapture:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "capture"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    DESCRIPTION = "Keeps a copy of a latent in this process (CAPTURED[label]) so tests can compare tensors."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT",), "label": ("STRING", {"default": "out"})}}

    def capture(self, latent, label):
        CAPTURED[label] = latent["samples"].detach().clone()
        return {"ui": {"text": [f"{label}: {list(latent['samples'].shape)}"]}}


NODE_CLASS_MAPPINGS = {"FFTestCapture": FFTestCapture, "FFTestConditioning": FFTestConditioning, "FFTestLatent": FFTestLatent,
                       "FFTestTinyFlux": FFTestTinyFlux}

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


class FFTestTinyFamily:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "A tiny model of another family (scripts/family_fixtures.py), built by ComfyUI's own classes."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": ("STRING", {"default": "flux2"}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31})}}

    def load(self, family, seed):
        import family_fixtures
        return (family_fixtures.build(family, seed),)


class FFTestFamilyConditioning:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "make"
    RETURN_TYPES = ("CONDITIONING",)
    DESCRIPTION = "Seeded stand-in for a family's text encoder (and, with reference, Qwen-Image-Edit's image input)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": ("STRING", {"default": "flux2"}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31}),
                             "tokens": ("INT", {"default": 7, "min": 1, "max": 4096}),
                             "reference": ("BOOLEAN", {"default": False})}}

    def make(self, family, seed, tokens, reference):
        import family_fixtures
        cond = family_fixtures.conditioning(family, tokens, seed)
        if reference:
            cond = [[t, {**d, "reference_latents": [family_fixtures.reference(family)]}] for t, d in cond]
        return (cond,)


class FFTestFamilyLatent:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "make"
    RETURN_TYPES = ("LATENT",)
    DESCRIPTION = "Seeded latent of a family's shape (stands in for VAEEncode with that family's VAE)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": ("STRING", {"default": "flux2"}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31}),
                             "size": ("INT", {"default": 64, "min": 16, "max": 1024})}}

    def make(self, family, seed, size):
        import family_fixtures
        return ({"samples": family_fixtures.latent(family, size, size, seed)},)


class FFTestLatentImage:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "show"
    RETURN_TYPES = ("IMAGE",)
    DESCRIPTION = "A latent's first three channels as an image (stands in for VAEDecode with a family's VAE)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def show(self, samples):
        x = samples["samples"]
        x = x[:, :, 0] if x.ndim == 5 else x
        x = x[:, :3] if x.shape[1] >= 3 else x[:, :1].expand(-1, 3, -1, -1)
        return (torch.sigmoid(x.float()).movedim(1, -1).contiguous(),)


NODE_CLASS_MAPPINGS.update(FFTestTinyFamily=FFTestTinyFamily, FFTestFamilyConditioning=FFTestFamilyConditioning,
                           FFTestFamilyLatent=FFTestFamilyLatent, FFTestLatentImage=FFTestLatentImage)


class FFToyModel:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "The tiny FLUX trained on the toy shapes task (scripts/toy_model.py; trained on first use)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def load(self):
        import toy_model
        return (toy_model.load(),)


class FFToyText:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)
    DESCRIPTION = "The toy task's text encoder (fixed vocabulary: 'a red circle on a black background', ...)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "a red circle"})}}

    def encode(self, text):
        import toy_shapes
        tokens, pooled = toy_shapes.encode_text([text])
        return ([[tokens, {"pooled_output": pooled, "guidance": 1.0}]],)


class FFToyScene:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "paint"
    RETURN_TYPES = ("IMAGE",)
    DESCRIPTION = "A toy scene painted from its caption (position and size from the seed): the 'photo' to edit."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "a red circle"}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31})}}

    def paint(self, text, seed):
        import toy_shapes
        return (toy_shapes.to_comfy_image(toy_shapes.render(toy_shapes.scene_of(text, seed))[None]),)


class FFToyEncode:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "encode"
    RETURN_TYPES = ("LATENT",)
    DESCRIPTION = "The toy task's exact pixel projection (stands in for VAEEncode)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pixels": ("IMAGE",)}}

    def encode(self, pixels):
        import toy_model
        import toy_shapes
        return ({"samples": toy_model.from_model_space(toy_shapes.to_latent(toy_shapes.from_comfy_image(pixels)))},)


class FFToyDecode:
    CATEGORY = "FireFlow/testing"
    FUNCTION = "decode"
    RETURN_TYPES = ("IMAGE",)
    DESCRIPTION = "Inverse of FFToyEncode (stands in for VAEDecode)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def decode(self, samples):
        import toy_model
        import toy_shapes
        return (toy_shapes.to_comfy_image(toy_shapes.from_latent(toy_model.to_model_space(samples["samples"]))),)


NODE_CLASS_MAPPINGS.update(FFToyModel=FFToyModel, FFToyText=FFToyText, FFToyScene=FFToyScene,
                           FFToyEncode=FFToyEncode, FFToyDecode=FFToyDecode)

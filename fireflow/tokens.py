"""Where the target image sits in a joint-attention sequence (host-free: counts, never model classes).

A joint attention call sees one sequence per batch row, made of text tokens (prompt, registers, padding), the target
image's L tokens and, for reference-conditioned models (FLUX.1 Kontext, FLUX.2, Qwen-Image-Edit), R reference-image
tokens. Families order them differently:
- text first: [text | image | reference] (FLUX, Chroma, Qwen-Image, SD3, Lumina 2 / Z-Image);
- image first: [image | reference | text] (HiDream, HunyuanImage 2.1 on ComfyUI 0.3.75);
- self-attention only: [image] (Wan, whose text enters through a separate cross-attention).
Some video models put a reference frame's tokens right before the image (HunyuanVideo's ref_latent, Wan's
reference_latent): `lead` tokens, context like the appended references. Some families pad the image tokens to a multiple (Z-Image): `padding` tokens follow the image and are neither text nor
image.
Reference tokens are context, not the picture being edited: they are never recorded or replaced.

Recorded features are kept in one canonical order, [text | image] (or [image] alone), whatever the family's order.
"""
from dataclasses import dataclass
from typing import Optional

from .errors import TokenLayoutError


@dataclass(frozen=True)
class TokenLayout:
    """Counts for one batch branch of one pass: image tokens L, reference tokens R after the image (and `lead`
    reference tokens right before it), padding tokens P right after the image, and the text tokens T when the
    family's text length is known exactly (None: whatever remains)."""
    image: int
    reference: int = 0
    text_first: bool = True
    text: Optional[int] = None
    padding: int = 0
    lead: int = 0

    def describe(self):
        parts = [f"{'?' if self.text is None else self.text} text"]
        if self.lead:
            parts.append(f"{self.lead} reference")
        parts.append(f"{self.image} image")
        if self.padding:
            parts.append(f"{self.padding} padding")
        if self.reference:
            parts.append(f"{self.reference} reference")
        if not self.text_first:
            parts = parts[1:] + parts[:1]
        return " + ".join(parts)

    def split(self, total):
        """(text slice, image slice) of a sequence of `total` tokens; refuses a length the layout cannot explain."""
        text = total - self.lead - self.image - self.padding - self.reference
        if text < 0:
            raise TokenLayoutError(total, self, "needs more tokens than that")
        if self.text is not None and text != self.text:
            raise TokenLayoutError(total, self, f"leaves {text} text tokens")
        if self.text_first:
            return slice(0, text), slice(text + self.lead, text + self.lead + self.image)
        return slice(total - text, total), slice(self.lead, self.lead + self.image)

    def text_tokens(self, total):
        text = self.split(total)[0]
        return text.stop - text.start

    @property
    def canonical(self):
        """True when [text | image] is the whole sequence in canonical order (text first, nothing else)."""
        return self.text_first and self.reference == 0 and self.padding == 0 and self.lead == 0

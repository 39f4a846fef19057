"""The one mapping from a user's FLUX workflow to the test host's parts (used by the e2e tests and the demo).

| in workflows/              | on the test host                                                          |
|----------------------------|---------------------------------------------------------------------------|
| UNETLoader flux1-dev       | fireflow-tiny-flux-dev.safetensors (stock-detectable FLUX-dev, 1+1 blocks) |
| VAELoader ae.safetensors   | fireflow-tiny-taef1.safetensors (16-channel TAESD, stock VAELoader)      |
| DualCLIPLoader             | removed (T5-XXL cannot be downloaded here)                                |
| CLIPTextEncode(text)       | FFTestConditioning: seeded [1, 4 + words, 4096] + pooled [1, 768]         |
| LoadImage example.png      | a seeded 64x64 PNG written into the server's input folder                 |
| EmptySD3LatentImage        | 64 x 64                                                                   |
| FireFlowFeatureCache blocks| a block range is kept when it exists on the tiny checkpoint, else "all"   |
| FluxKontextImageScale      | ImageScale to 64 x 64 (the tiny parts run at 64 px)                       |

Workflows of other families (workflows/families/) load a model file listed in FAMILY_FILES; there the model loader
becomes FFTestTinyFamily (scripts/family_fixtures.py), every text encoder node FFTestFamilyConditioning of that
family (Qwen-Image-Edit's with its reference image), VAEEncode FFTestFamilyLatent and VAEDecode FFTestLatentImage;
the other loaders are removed. Stock nodes between them (ReferenceLatent, ModelSampling*) run as they are.

Video workflows (workflows/video/) go the same way (Wan 2.1 and each Wan 2.2 A14B expert: the tiny "wan21"; the two
experts are two models, the low-noise one drawn with seed 1). Their stock video nodes run for real: LoadVideo opens a
seeded 5-frame 64x64 MP4 written into the input folder (write_test_video), GetVideoComponents hands its frame rate to
CreateVideo, and SaveVideo writes the MP4 of the decoded frames (FFTestLatentImage shows the first latent frame, so
one frame).
"""
import copy
import pathlib
import zlib

from fixtures import DETECTABLE_NAME, VAE_NAME

TEST_IMAGE = "fireflow_test.png"
TEST_VIDEO = "fireflow_test.mp4"
TEST_FPS = 16  # Wan's frame rate; the saved edit must keep it
SIZE = 64


def write_test_image(input_dir, seed=0):
    """A seeded 64x64 RGBA PNG: its alpha is 0 on the central 32x32 square, which ComfyUI's LoadImage turns into a
    mask of 1 there (the area a masked edit changes); the RGB channels are what every other workflow sees."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([x * 4, y * 4, (x + y) * 2], -1) + rng.integers(0, 32, (SIZE, SIZE, 3))
    alpha = np.full((SIZE, SIZE, 1), 255)
    alpha[SIZE // 4:3 * SIZE // 4, SIZE // 4:3 * SIZE // 4] = 0
    rgba = np.concatenate([np.clip(img, 0, 255), alpha], -1).astype("uint8")
    Image.fromarray(rgba, "RGBA").save(pathlib.Path(input_dir) / TEST_IMAGE)
    return TEST_IMAGE


def write_test_video(input_dir, seed=0, frames=5):
    """A seeded 64x64 H.264 MP4 of `frames` frames at TEST_FPS in the server's input folder (for LoadVideo)."""
    import av
    import numpy as np
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    with av.open(str(pathlib.Path(input_dir) / TEST_VIDEO), mode="w") as container:
        stream = container.add_stream("h264", rate=TEST_FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        for t in range(frames):
            img = np.stack([(x + 4 * t) * 4, y * 4, (x + y) * 2], -1) + rng.integers(0, 32, (SIZE, SIZE, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype("uint8"), format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return TEST_VIDEO


FAMILY_FILES = {"flux2_dev_fp8mixed.safetensors": "flux2", "Chroma1-HD.safetensors": "chroma",
                "qwen_image_fp8_e4m3fn.safetensors": "qwen_image", "qwen_image_edit_fp8_e4m3fn.safetensors": "qwen_image",
                "sd3.5_large_fp8_scaled.safetensors": "sd3", "z_image_turbo_bf16.safetensors": "z_image",
                "hidream_i1_full_fp16.safetensors": "hidream", "hunyuanimage2.1_bf16.safetensors": "hunyuan_image21",
                # video: ComfyUI loads each Wan 2.2 A14B expert as a Wan 2.1 T2V 14B
                "wan2.1_t2v_14B_fp16.safetensors": "wan21",
                "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors": "wan21",
                "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors": "wan21",
                "hunyuan_video_t2v_720p_bf16.safetensors": "hunyuan_video"}
MODEL_SEEDS = {"wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors": 1}  # weights seed of the tiny model (default 0):
# the two A14B experts must be two different models of one architecture
CLIP_LOADERS = ("CLIPLoader", "DualCLIPLoader", "TripleCLIPLoader", "QuadrupleCLIPLoader")


def _seed(text):
    return zlib.crc32(text.encode()) % 2 ** 31


def family_of(api):
    """The family_fixtures name a workflow's model file maps to (None: FLUX.1, the detectable tiny checkpoint)."""
    files = [n["inputs"].get("unet_name") or n["inputs"].get("ckpt_name") for n in api.values()
             if n["class_type"] in ("UNETLoader", "CheckpointLoaderSimple")]
    return next((FAMILY_FILES[f] for f in files if f in FAMILY_FILES), None)


def _substitute_family(out, family):
    size = 128 if family == "hunyuan_image21" else SIZE  # its 1/32 latent needs 128 px for 4 x 4 tokens
    for nid, node in list(out.items()):
        kind, inputs, meta = node["class_type"], node["inputs"], node.get("_meta", {})
        if kind in ("UNETLoader", "CheckpointLoaderSimple"):
            seed = MODEL_SEEDS.get(inputs.get("unet_name") or inputs.get("ckpt_name"), 0)
            out[nid] = {"class_type": "FFTestTinyFamily", "_meta": meta, "inputs": {"family": family, "seed": seed}}
        elif kind in CLIP_LOADERS or kind in ("VAELoader", "LoadImage", "FluxKontextImageScale"):
            del out[nid]
        elif kind in ("CLIPTextEncode", "TextEncodeQwenImageEdit"):
            text = inputs.get("text", inputs.get("prompt"))
            out[nid] = {"class_type": "FFTestFamilyConditioning", "_meta": meta, "inputs": {
                "family": family, "seed": _seed(text), "tokens": 4 + len(text.split()),
                "reference": kind == "TextEncodeQwenImageEdit"}}
        elif kind == "VAEEncode":
            out[nid] = {"class_type": "FFTestFamilyLatent", "_meta": meta,
                        "inputs": {"family": family, "seed": 0, "size": size}}
        elif kind == "VAEDecode":
            out[nid] = {"class_type": "FFTestLatentImage", "_meta": meta, "inputs": {"samples": inputs["samples"]}}
        elif kind == "LoadVideo":
            inputs["file"] = TEST_VIDEO
    return out


def substitute(api):
    """A copy of an API-format workflow that runs on the tiny parts."""
    out = copy.deepcopy(api)
    family = family_of(out)
    if family is not None:
        return _substitute_family(out, family)
    for nid, node in list(out.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "FluxKontextImageScale":
            out[nid] = {"class_type": "ImageScale", "_meta": node.get("_meta", {}), "inputs": {
                "image": inputs["image"], "upscale_method": "bilinear", "width": SIZE, "height": SIZE, "crop": "center"}}
        elif kind == "UNETLoader":
            inputs["unet_name"] = DETECTABLE_NAME
        elif kind == "VAELoader":
            inputs["vae_name"] = VAE_NAME
        elif kind == "DualCLIPLoader":
            del out[nid]
        elif kind == "CLIPTextEncode":
            text = inputs["text"]
            out[nid] = {"class_type": "FFTestConditioning", "_meta": node.get("_meta", {}), "inputs": {
                "seed": _seed(text), "tokens": 4 + len(text.split()), "dim": 4096, "pooled_dim": 768,
                "guidance": 3.5, "batch": 1}}
        elif kind == "LoadImage":
            inputs["image"] = TEST_IMAGE
        elif kind == "EmptySD3LatentImage":
            inputs["width"] = inputs["height"] = SIZE
        elif kind == "FireFlowFeatureCache":
            for key in ("single_blocks", "double_blocks"):  # the tiny checkpoint has 1 block of each kind
                if inputs[key] not in ("all", "none", "", "0"):
                    inputs[key] = "all"
    return out


def substitute_toy(api, captions, seed=0, cfg=None):
    """A copy of a FLUX.1 workflow that runs on the toy shapes FLUX (scripts/toy_model.py): prompts become toy captions
    through `captions` ({workflow prompt: caption}), the source photo a toy scene painted from the source caption.
    With `cfg`, every FireFlow Sampler edits at that CFG with the empty caption as its negative, and FlowEdit's target
    side too (the toy model has no distilled guidance, so FLUX's guidance widget does nothing to it)."""
    out = copy.deepcopy(api)
    if cfg is not None:
        empty = str(max(int(k) for k in out) + 1)
        out[empty] = {"class_type": "CLIPTextEncode", "_meta": {"title": "Negative (empty caption)"},
                      "inputs": {"text": "", "clip": None}}
        captions = {**captions, "": ""}
        for node in out.values():
            if node["class_type"] == "FireFlowSampler":
                node["inputs"].update(negative=[empty, 0], cfg=float(cfg))
            elif node["class_type"] == "FireFlowFlowEdit":  # the source side at cfg 1, the target at the edit's
                node["inputs"].update(negative=[empty, 0], source_cfg=1.0, target_cfg=float(cfg))
    source = None
    for nid, node in list(out.items()):
        kind, inputs, meta = node["class_type"], node["inputs"], node.get("_meta", {})
        if kind == "UNETLoader":
            out[nid] = {"class_type": "FFToyModel", "_meta": meta, "inputs": {}}
        elif kind in CLIP_LOADERS or kind == "VAELoader":
            del out[nid]
        elif kind == "CLIPTextEncode":
            out[nid] = {"class_type": "FFToyText", "_meta": meta, "inputs": {"text": captions[inputs["text"]]}}
            if meta.get("title", "").startswith("Source"):
                source = captions[inputs["text"]]
        elif kind == "VAEEncode":
            out[nid] = {"class_type": "FFToyEncode", "_meta": meta, "inputs": {"pixels": inputs["pixels"]}}
        elif kind == "VAEDecode":
            out[nid] = {"class_type": "FFToyDecode", "_meta": meta, "inputs": {"samples": inputs["samples"]}}
    if source is None:  # one prompt for both passes (the reconstruction workflow)
        source = next(n["inputs"]["text"] for n in out.values() if n["class_type"] == "FFToyText" and n["inputs"]["text"])
    for nid, node in out.items():
        if node["class_type"] == "LoadImage":
            out[nid] = {"class_type": "FFToyScene", "_meta": node.get("_meta", {}),
                        "inputs": {"text": source, "seed": seed}}
    return out

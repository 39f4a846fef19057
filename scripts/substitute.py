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
"""
import copy
import pathlib
import zlib

from fixtures import DETECTABLE_NAME, VAE_NAME

TEST_IMAGE = "fireflow_test.png"
SIZE = 64


def write_test_image(input_dir, seed=0):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([x * 4, y * 4, (x + y) * 2], -1) + rng.integers(0, 32, (SIZE, SIZE, 3))
    Image.fromarray(np.clip(img, 0, 255).astype("uint8")).save(pathlib.Path(input_dir) / TEST_IMAGE)
    return TEST_IMAGE


def substitute(api):
    """A copy of an API-format workflow that runs on the tiny parts."""
    out = copy.deepcopy(api)
    for nid, node in list(out.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "UNETLoader":
            inputs["unet_name"] = DETECTABLE_NAME
        elif kind == "VAELoader":
            inputs["vae_name"] = VAE_NAME
        elif kind == "DualCLIPLoader":
            del out[nid]
        elif kind == "CLIPTextEncode":
            text = inputs["text"]
            out[nid] = {"class_type": "FFTestConditioning", "_meta": node.get("_meta", {}), "inputs": {
                "seed": zlib.crc32(text.encode()) % 2 ** 31, "tokens": 4 + len(text.split()), "dim": 4096, "pooled_dim": 768,
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

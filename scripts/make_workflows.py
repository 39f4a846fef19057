"""Write workflows/: each example graph in API format (for /prompt) and UI format (drag and drop).

The API graphs below are the source of truth. The UI format is derived from the real server's /object_info (the same
node definitions the frontend uses), so widget order and sockets match ComfyUI exactly; the nodes are laid out left to
right in labelled groups (load, invert, edit, save). Run after changing a node's inputs or the layout:
`.host/venv/bin/python scripts/make_workflows.py` (a test checks the files are current; the browser test checks the
layout in the real frontend). Then refresh the previews: `bash scripts/update_previews.sh`.
"""
import json
import pathlib
import sys
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "workflows"

SOURCE = "a photo of a cat sitting on a wooden bench in a park"
TARGET = "a photo of a tiger sitting on a wooden bench in a park"


def _loaders():
    return {
        "unet": ("UNETLoader", "Load FLUX.1-dev", {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}),
        "clip": ("DualCLIPLoader", "Load text encoders", {"clip_name1": "t5xxl_fp16.safetensors",
                                                          "clip_name2": "clip_l.safetensors", "type": "flux"}),
        "vae": ("VAELoader", "Load FLUX VAE", {"vae_name": "ae.safetensors"}),
    }


def _source_image():
    return {
        "image": ("LoadImage", "Source image", {"image": "example.png"}),
        "encode": ("VAEEncode", "Encode", {"pixels": ["image", 0], "vae": ["vae", 0]}),
    }


def _text(key, title, text):
    return {key: ("CLIPTextEncode", title, {"text": text, "clip": ["clip", 0]})}


def _decode(key, latent_ref, prefix):
    return {f"decode_{key}": ("VAEDecode", "Decode", {"samples": latent_ref, "vae": ["vae", 0]}),
            f"save_{key}": ("SaveImage", "Save", {"images": [f"decode_{key}", 0], "filename_prefix": prefix})}


def _cache(title, **kw):
    inputs = {"record_v": True, "record_q": False, "record_k": False, "single_blocks": "auto", "double_blocks": "auto",
              "inject_steps": 1, "calls": "reference", "text_tokens": "auto", "device": "auto", "dtype": "model",
              "max_cache_gb": 8.0}
    inputs.update(kw)
    return ("FireFlowFeatureCache", title, inputs)


def _inverter(steps, solver, cache=True, model="unet", guidance=1.0):
    inputs = {"model": [model, 0], "conditioning": ["source", 0], "latent": ["encode", 0], "steps": steps,
              "solver": solver, "guidance": guidance, "schedule": "auto"}
    if cache:
        inputs["feature_cache"] = ["cache", 0]
    return ("FireFlowInverter", "FireFlow Inverter", inputs)


def _patch(model="unet"):
    return ("FireFlowVInjection", "V-Injection Patch", {
        "model": [model, 0], "inversion": ["invert", 1], "inject_steps": -1, "v_mode": "replace", "q_mode": "keep",
        "k_mode": "keep", "v_ratio": 1.0, "q_ratio": 1.0, "k_ratio": 1.0})


def _sampler(target_key, guidance, model_ref=("patch", 0)):
    return ("FireFlowSampler", "FireFlow Sampler", {
        "model": list(model_ref), "conditioning": [target_key, 0], "latent": ["invert", 0],
        "inversion": ["invert", 1], "guidance": guidance, "steps": 8, "solver": "fireflow", "schedule": "auto"})


def workflows():
    edit = {**_loaders(), **_source_image(), **_text("source", "Source prompt", SOURCE),
            **_text("target", "Target prompt", TARGET), "cache": _cache("Attention Feature Cache"),
            "invert": _inverter(8, "fireflow"), "patch": _patch(), "edit": _sampler("target", 2.0),
            **_decode("edit", ["edit", 0], "fireflow/edit")}
    recon = {**_loaders(), **_source_image(), **_text("source", "Prompt describing the image", SOURCE),
             "invert": _inverter(8, "fireflow", cache=False),
             "edit": _sampler("source", 1.0, model_ref=("unet", 0)), **_decode("edit", ["edit", 0],
                                                                              "fireflow/reconstruction")}
    rfedit = {**_loaders(), **_source_image(), **_text("source", "Source prompt", SOURCE),
              **_text("target", "Target prompt", TARGET),
              "cache": _cache("Attention Feature Cache (RF-Edit)", single_blocks="20-37", inject_steps=5),
              "invert": _inverter(15, "rf_solver"), "patch": _patch(), "edit": _sampler("target", 2.0),
              **_decode("edit", ["edit", 0], "fireflow/rf_edit")}
    many = {**_loaders(), **_source_image(), **_text("source", "Source prompt", SOURCE),
            "cache": _cache("Attention Feature Cache"), "invert": _inverter(8, "fireflow"), "patch": _patch()}
    for i, animal in enumerate(("tiger", "fox", "robot"), 1):
        many.update(_text(f"target{i}", f"Target prompt {i}", SOURCE.replace("cat", animal)))
        many[f"edit{i}"] = _sampler(f"target{i}", 2.0)
        many.update(_decode(str(i), [f"edit{i}", 0], f"fireflow/edit_{animal}"))
    t2i = {"unet": _loaders()["unet"], "clip": _loaders()["clip"], "vae": _loaders()["vae"],
           **_text("prompt", "Prompt", SOURCE),
           "guidance": ("FluxGuidance", "FLUX guidance", {"conditioning": ["prompt", 0], "guidance": 3.5}),
           "guider": ("BasicGuider", "Guider", {"model": ["unet", 0], "conditioning": ["guidance", 0]}),
           "noise": ("RandomNoise", "Noise", {"noise_seed": 42}),
           "sampler": ("FireFlowSolverSampler", "FireFlow solver", {"solver": "fireflow"}),
           "sigmas": ("BasicScheduler", "Schedule (10 steps = 11 evaluations)",
                      {"model": ["unet", 0], "scheduler": "simple", "steps": 10, "denoise": 1.0}),
           "empty": ("EmptySD3LatentImage", "Empty latent", {"width": 1024, "height": 1024, "batch_size": 1}),
           "run": ("SamplerCustomAdvanced", "SamplerCustomAdvanced", {
               "noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["sampler", 0], "sigmas": ["sigmas", 0],
               "latent_image": ["empty", 0]}),
           **_decode("t2i", ["run", 0], "fireflow/t2i")}
    return {"fireflow_edit": edit, "fireflow_reconstruction": recon, "fireflow_rf_edit": rfedit,
            "fireflow_one_inversion_many_prompts": many, "fireflow_text_to_image": t2i}


def _unet(title, name):
    return ("UNETLoader", title, {"unet_name": name, "weight_dtype": "default"})


def _clip(title, name, kind):
    return ("CLIPLoader", title, {"clip_name": name, "type": kind})


def _vae(name):
    return ("VAELoader", "Load VAE", {"vae_name": name})


# One FireFlow edit per family, with the model files, loaders and model-sampling nodes of ComfyUI's own templates for
# that family. reference: "latent" (ReferenceLatent on both prompts: FLUX.1 Kontext, FLUX.2) or "qwen" (Qwen-Image-Edit's
# text encoder node); negative: a negative prompt and the family's usual CFG for the edit; guidance: distilled guidance.
FAMILY_WORKFLOWS = {
    "fireflow_edit_flux1_kontext": dict(
        loaders={"unet": _unet("Load FLUX.1 Kontext", "flux1-dev-kontext_fp8_scaled.safetensors"),
                 "clip": _loaders()["clip"], "vae": _loaders()["vae"]},
        scale=True, reference="latent", guidance=2.5),
    "fireflow_edit_flux2": dict(
        loaders={"unet": _unet("Load FLUX.2 dev", "flux2_dev_fp8mixed.safetensors"),
                 "clip": _clip("Load Mistral text encoder", "mistral_3_small_flux2_fp8.safetensors", "flux2"),
                 "vae": _vae("flux2-vae.safetensors")},
        reference="latent", guidance=4.0),
    "fireflow_edit_chroma": dict(
        loaders={"unet": _unet("Load Chroma", "Chroma1-HD.safetensors"),
                 "clip": _clip("Load T5 text encoder", "t5xxl_fp8_e4m3fn_scaled.safetensors", "chroma"),
                 "vae": _vae("ae.safetensors")},
        negative=True),
    "fireflow_edit_qwen_image": dict(
        loaders={"unet": _unet("Load Qwen-Image", "qwen_image_fp8_e4m3fn.safetensors"),
                 "clip": _clip("Load Qwen2.5-VL text encoder", "qwen_2.5_vl_7b_fp8_scaled.safetensors", "qwen_image"),
                 "vae": _vae("qwen_image_vae.safetensors")},
        sampling=("ModelSamplingAuraFlow", {"shift": 3.1}), negative=True),
    "fireflow_edit_qwen_image_edit": dict(
        loaders={"unet": _unet("Load Qwen-Image-Edit", "qwen_image_edit_fp8_e4m3fn.safetensors"),
                 "clip": _clip("Load Qwen2.5-VL text encoder", "qwen_2.5_vl_7b_fp8_scaled.safetensors", "qwen_image"),
                 "vae": _vae("qwen_image_vae.safetensors")},
        sampling=("ModelSamplingAuraFlow", {"shift": 3.1}), scale=True, reference="qwen", negative=True),
    "fireflow_edit_sd35": dict(
        loaders={"unet": ("CheckpointLoaderSimple", "Load SD3.5 (text encoders and VAE included)",
                          {"ckpt_name": "sd3.5_large_fp8_scaled.safetensors"})},
        clip=("unet", 1), vae=("unet", 2), negative=True),
    "fireflow_edit_z_image": dict(
        loaders={"unet": _unet("Load Z-Image Turbo", "z_image_turbo_bf16.safetensors"),
                 "clip": _clip("Load Qwen3 text encoder", "qwen_3_4b.safetensors", "lumina2"),
                 "vae": _vae("ae.safetensors")},
        sampling=("ModelSamplingAuraFlow", {"shift": 3.0})),
    "fireflow_edit_hidream": dict(
        loaders={"unet": _unet("Load HiDream-I1", "hidream_i1_full_fp16.safetensors"),
                 "clip": ("QuadrupleCLIPLoader", "Load text encoders", {
                     "clip_name1": "clip_l_hidream.safetensors", "clip_name2": "clip_g_hidream.safetensors",
                     "clip_name3": "t5xxl_fp8_e4m3fn_scaled.safetensors",
                     "clip_name4": "llama_3.1_8b_instruct_fp8_scaled.safetensors"}),
                 "vae": _vae("ae.safetensors")},
        sampling=("ModelSamplingSD3", {"shift": 3.0}), negative=True),
    "fireflow_edit_hunyuan_image21": dict(
        loaders={"unet": _unet("Load HunyuanImage 2.1", "hunyuanimage2.1_bf16.safetensors"),
                 "clip": ("DualCLIPLoader", "Load text encoders", {
                     "clip_name1": "qwen_2.5_vl_7b.safetensors", "clip_name2": "byt5_small_glyphxl_fp16.safetensors",
                     "type": "hunyuan_image"}),
                 "vae": _vae("hunyuan_image_2.1_vae_fp16.safetensors")},
        negative=True),
}


def family_workflow(spec):
    """The FireFlow edit graph for one family: invert with the source prompt (CFG 1), edit with the target prompt."""
    clip, vae = list(spec.get("clip", ("clip", 0))), list(spec.get("vae", ("vae", 0)))
    g = dict(spec["loaders"])
    model = "unet"
    if "sampling" in spec:
        cls, inputs = spec["sampling"]
        g["sampling"] = (cls, "Model sampling shift (as the family's template)", {"model": ["unet", 0], **inputs})
        model = "sampling"
    g["image"] = ("LoadImage", "Source image", {"image": "example.png"})
    pixels = ["image", 0]
    if spec.get("scale"):
        g["scale"] = ("FluxKontextImageScale", "Scale to a trained size", {"image": ["image", 0]})
        pixels = ["scale", 0]
    g["encode"] = ("VAEEncode", "Encode", {"pixels": pixels, "vae": vae})

    def prompt(key, title, text):
        if spec.get("reference") == "qwen":
            return {key: ("TextEncodeQwenImageEdit", title, {"clip": clip, "prompt": text, "vae": vae,
                                                              "image": pixels})}
        out = {key: ("CLIPTextEncode", title, {"text": text, "clip": clip})}
        if spec.get("reference") == "latent":
            out[f"{key}_ref"] = ("ReferenceLatent", "Reference image", {"conditioning": [key, 0],
                                                                        "latent": ["encode", 0]})
        return out
    g.update(prompt("source", "Source prompt", SOURCE))
    g["cache"] = _cache("Attention Feature Cache")
    inv = _inverter(8, "fireflow", model=model, guidance=spec.get("guidance", 1.0))
    if spec.get("reference") == "latent":
        inv[2]["conditioning"] = ["source_ref", 0]
    g["invert"] = inv
    g.update(prompt("target", "Target prompt", TARGET))
    if spec.get("negative"):
        g.update(prompt("negative", "Negative prompt", ""))
    g["patch"] = _patch(model)
    edit = _sampler("target_ref" if spec.get("reference") == "latent" else "target", spec.get("guidance", 1.0))
    if spec.get("negative"):
        edit[2].update(negative=["negative", 0], cfg=-1.0)
    g["edit"] = edit
    g.update(_decode("edit", ["edit", 0], "fireflow/edit"))
    g["decode_edit"][2]["vae"] = vae
    return g


VIDEO_SOURCE = "a video of a cat walking along a wooden bench in a park"
VIDEO_TARGET = "a video of a tiger walking along a wooden bench in a park"
_WAN_TEXT = _clip("Load umT5 text encoder", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan")
_WAN_VAE = _vae("wan_2.1_vae.safetensors")
_WAN_SHIFT = ("ModelSamplingSD3", {"shift": 8.0})

# One FireFlow video edit per video family, with the model files, loaders and model-sampling nodes of ComfyUI's own
# templates for that family (workflows/video/). negative: a negative prompt and the family's usual CFG (cfg -1);
# guidance: distilled guidance of the edit (the inversion uses 1); experts: Wan 2.2 A14B, where `unet` is the
# high-noise expert and `unet_low` the low-noise one, each with its own model sampling and V-Injection Patch.
VIDEO_WORKFLOWS = {
    "fireflow_edit_wan21_t2v": dict(
        loaders={"unet": _unet("Load Wan 2.1 T2V 14B", "wan2.1_t2v_14B_fp16.safetensors"),
                 "clip": _WAN_TEXT, "vae": _WAN_VAE},
        sampling=_WAN_SHIFT, negative=True),
    "fireflow_edit_wan22_a14b": dict(
        loaders={"unet": _unet("Load Wan 2.2 T2V A14B high-noise expert",
                               "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"),
                 "unet_low": _unet("Load Wan 2.2 T2V A14B low-noise expert",
                                   "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"),
                 "clip": _WAN_TEXT, "vae": _WAN_VAE},
        sampling=_WAN_SHIFT, negative=True, experts=True),
    "fireflow_edit_hunyuan_video": dict(
        loaders={"unet": _unet("Load HunyuanVideo T2V", "hunyuan_video_t2v_720p_bf16.safetensors"),
                 "clip": ("DualCLIPLoader", "Load text encoders", {
                     "clip_name1": "clip_l.safetensors", "clip_name2": "llava_llama3_fp8_scaled.safetensors",
                     "type": "hunyuan_video"}),
                 "vae": _vae("hunyuan_video_vae_bf16.safetensors")},
        guidance=6.0),  # the template's FluxGuidance
}


def video_workflow(spec):
    """The FireFlow edit of a video: stock LoadVideo and GetVideoComponents, VAEEncode of every frame, invert with
    the source prompt (CFG 1, guidance 1), edit with the target prompt, VAEDecode, CreateVideo at the source's frame
    rate and SaveVideo (as ComfyUI's video templates save)."""
    g = dict(spec["loaders"])
    experts = ("unet", "unet_low") if spec.get("experts") else ("unet",)
    model = {u: u for u in experts}
    which = {"unet": "high-noise expert", "unet_low": "low-noise expert"} if spec.get("experts") else {}
    if "sampling" in spec:
        cls, inputs = spec["sampling"]
        for u in experts:
            key = u.replace("unet", "sampling")
            title = f"Model sampling shift{', ' + which[u] if u in which else ''} (as the family's template)"
            g[key] = (cls, title, {"model": [u, 0], **inputs})
            model[u] = key
    g["video"] = ("LoadVideo", "Source video", {"file": "example.mp4"})
    g["components"] = ("GetVideoComponents", "Frames and frame rate", {"video": ["video", 0]})
    g["encode"] = ("VAEEncode", "Encode", {"pixels": ["components", 0], "vae": ["vae", 0]})
    g.update(_text("source", "Source prompt", VIDEO_SOURCE))
    g["cache"] = _cache("Attention Feature Cache", dtype="auto")  # the node's defaults: the video recipe
    inv = _inverter(8, "fireflow", model=model["unet"])
    if spec.get("experts"):
        inv[2]["model_low_noise"] = [model["unet_low"], 0]
    g["invert"] = inv
    g.update(_text("target", "Target prompt", VIDEO_TARGET))
    if spec.get("negative"):
        g.update(_text("negative", "Negative prompt", ""))
    for u in experts:
        cls, title, inputs = _patch(model[u])
        g[u.replace("unet", "patch")] = (cls, f"{title}{' (' + which[u] + ')' if u in which else ''}", inputs)
    edit = _sampler("target", spec.get("guidance", 1.0))
    if spec.get("negative"):
        edit[2].update(negative=["negative", 0], cfg=-1.0)
    if spec.get("experts"):
        edit[2]["model_low_noise"] = ["patch_low", 0]
    g["edit"] = edit
    g["decode_edit"] = ("VAEDecode", "Decode", {"samples": ["edit", 0], "vae": ["vae", 0]})
    g["create_edit"] = ("CreateVideo", "Create video (source frame rate)", {"images": ["decode_edit", 0],
                                                                            "fps": ["components", 2]})
    g["save_edit"] = ("SaveVideo", "Save video", {"video": ["create_edit", 0], "filename_prefix": "fireflow/video_edit",
                                                  "format": "auto", "codec": "auto"})
    return g


def _ids(graph):
    """Node key -> API id ("1", "2", ...), in the graph's order."""
    return {key: str(i) for i, key in enumerate(graph, 1)}


def to_api(graph):
    """Numbered API format: {"1": {"class_type", "inputs", "_meta": {"title"}}}; links become [id, slot]."""
    ids = _ids(graph)
    out = {}
    for key, (cls, title, inputs) in graph.items():
        fixed = {k: ([ids[v[0]], v[1]] if isinstance(v, list) else v) for k, v in inputs.items()}
        out[ids[key]] = {"class_type": cls, "inputs": fixed, "_meta": {"title": title}}
    return out


def _widget_default(spec):
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if "default" in opts:
        return opts["default"]
    choices = kind if isinstance(kind, list) else opts.get("options")
    return choices[0] if choices else None


def _sockets(info, linked=()):
    """Names of an object_info node's socket inputs, in the order the frontend creates them: the non-widget inputs and
    the widgets in `linked` (widget inputs a link feeds, such as CreateVideo's fps from GetVideoComponents)."""
    spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    order = info.get("input_order", {})
    return [n for n in order.get("required", []) + order.get("optional", []) if not _is_widget(spec[n]) or n in linked]


def _upload(opts):
    """Whether a combo gets the frontend's upload button (one more widget row and one more saved value)."""
    return bool(opts.get("image_upload") or opts.get("video_upload"))


def widget_names(info):
    """Names of an object_info node's widget inputs, in the order the frontend saves their values (seed controls and
    upload buttons add a value after theirs)."""
    spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    order = info.get("input_order", {})
    return [n for n in order.get("required", []) + order.get("optional", []) if _is_widget(spec[n])]


def _is_widget(spec):
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 else {}
    if opts.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


# Layout: one labelled group per stage, left to right (as ComfyUI's own templates do); inside a group, columns by
# dependency depth; inside a column, nodes top to bottom in the order ROWS gives, chosen so few wires cross.
STAGES = ("load", "prompt", "invert", "edit", "sample", "save")  # left to right
STAGE_OF = {"unet": "load", "clip": "load", "vae": "load", "image": "load", "sampling": "load", "scale": "load",
            "video": "load", "components": "load", "negative": "edit", "create": "save",
            "encode": "invert", "source": "invert", "cache": "invert", "invert": "invert",
            "target": "edit", "patch": "edit", "edit": "edit",
            "prompt": "prompt", "guidance": "prompt",
            "guider": "sample", "noise": "sample", "sampler": "sample", "sigmas": "sample", "empty": "sample",
            "run": "sample", "decode": "save", "save": "save"}
GROUP_TITLES = {"load": "1 · Load models and image", "prompt": "2 · Prompt",
                "invert": "2 · Invert the source image (source prompt, record features)",
                "edit": "3 · Edit (target prompt, inject features)", "sample": "3 · Sample with the FireFlow solver",
                "save": "4 · Decode and save"}
GROUP_TITLES_FOR = {
    "fireflow_reconstruction": {"invert": "2 · Invert the source image", "edit": "3 · Reconstruct (same prompt)"},
    "fireflow_one_inversion_many_prompts": {"edit": "3 · Edit: one sampler per target prompt"},
    "fireflow_text_to_image": {"load": "1 · Load models"},
    **{f"video/{name}": {"load": "1 · Load models and video",
                         "invert": "2 · Invert the source video (source prompt, record features)",
                         "save": "4 · Decode and save the video",
                         **({"edit": "3 · Edit (target prompt, inject features: one patch per expert)"}
                            if spec.get("experts") else {})} for name, spec in VIDEO_WORKFLOWS.items()}}
ROWS = {  # top-to-bottom order of the nodes that share a column (the rest follow in the graph's order)
    "fireflow_edit": ("unet", "clip", "image", "vae", "source", "encode", "cache", "patch", "target"),
    "fireflow_rf_edit": ("unet", "clip", "image", "vae", "source", "encode", "cache", "patch", "target"),
    "fireflow_reconstruction": ("unet", "clip", "image", "vae", "source", "encode"),
    "fireflow_one_inversion_many_prompts": ("unet", "clip", "image", "vae", "source", "encode", "cache", "patch"),
    "fireflow_text_to_image": ("clip", "unet", "vae", "noise", "guider", "sampler", "sigmas", "empty"),
    **{f"video/{name}": ("unet", "unet_low", "clip", "video", "vae", "sampling", "sampling_low", "components", "source",
                         "encode", "cache", "patch", "patch_low", "target", "negative") for name in VIDEO_WORKFLOWS}}
GROUP_COLORS = {"load": "#3f789e", "prompt": "#8A8", "invert": "#8A8", "edit": "#b58b2a", "sample": "#b58b2a",
                "save": "#88A"}  # colours of LiteGraph's group palette

# Node sizes: at least what the frontend's computeSize gives (1.32.9: 20 per socket row, 24 per widget, 14 padding;
# the canvas draws the 30-unit title bar above pos), plus room for what appears later (images, run summaries).
SLOT_H, WIDGET_H, NODE_PAD, TITLE_H = 20, 24, 14, 30
TEXT_H = 96  # a multiline prompt box showing a few lines
WIDTH = {"CLIPTextEncode": 400, "VAEEncode": 200, "VAEDecode": 200}
NODE_WIDTH = 300
ROOM = {"LoadImage": 240, "SaveImage": 150, "LoadVideo": 240, "SaveVideo": 240,  # image and video previews
        "FireFlowFeatureCache": WIDGET_H,  # the preset picker the js extension adds
        "FireFlowInverter": 84, "FireFlowSampler": 84, "FireFlowVInjection": 84}  # summary shown after a run
COL_GAP, GROUP_GAP, ROW_GAP, GROUP_PAD, GROUP_TITLE_H = 70, 70, 60, 24, 44


def _node_size(cls, n_slots, widget_specs):
    """[w, h] for a node with n_slots socket rows and these widget specs (image upload and seed control count)."""
    h = SLOT_H * max(n_slots, 1) + NODE_PAD
    for s in widget_specs:
        opts = s[1] if len(s) > 1 else {}
        h += TEXT_H if opts.get("multiline") else WIDGET_H * (1 + bool(opts.get("control_after_generate"))
                                                             + _upload(opts))
    return [WIDTH.get(cls, NODE_WIDTH), h + ROOM.get(cls, 0)]


def _stage(key):
    return STAGE_OF[key.split("_")[0].rstrip("0123456789")]


def _layout(api, links, sizes, stages, rank):
    """{id: [x, y]}: stages left to right, columns by depth inside a stage, nodes in a column ordered by rank; each
    node then sits level with the sockets it connects to (longer wires weigh more, as they bend less gracefully)
    where its column leaves room, so most wires run straight to the right."""
    inputs_of, local = defaultdict(list), {}
    for _, src, _, dst, _, _ in links:
        inputs_of[str(dst)].append(str(src))

    def depth(nid):
        if nid not in local:
            local[nid] = 1 + max((depth(u) for u in inputs_of[nid] if stages[u] == stages[nid]), default=-1)
        return local[nid]
    col, x, xs = {}, 0, []  # column of each node; left edge of each column
    for stage in [s for s in STAGES if s in stages.values()]:
        members = [nid for nid in api if stages[nid] == stage]
        first = len(xs)
        col.update({nid: first + depth(nid) for nid in members})
        x += GROUP_PAD
        for c in range(first, max(col.values()) + 1):
            xs.append(x)
            x += max(sizes[nid][0] for nid in members if col[nid] == c) + COL_GAP
        x += GROUP_PAD - COL_GAP + GROUP_GAP
    ups, downs = defaultdict(list), defaultdict(list)  # id -> [(other id, its socket row, own socket row, weight)]
    for _, src, src_slot, dst, dst_slot, _ in links:
        src, dst = str(src), str(dst)
        ups[dst].append((src, src_slot, dst_slot, col[dst] - col[src]))
        downs[src].append((dst, dst_slot, src_slot, col[dst] - col[src]))
    columns = [sorted((nid for nid in api if col[nid] == c), key=rank.get) for c in range(len(xs))]
    y = {}

    def stack(column, neighbours):  # in order: each node level with its neighbours' sockets (weighted mean), or
        bottom = None  # just below the node above it
        for nid in column:
            wires = neighbours.get(nid)
            if wires:
                top = sum(w * (y[m] + SLOT_H * (theirs - own)) for m, theirs, own, w in wires) / sum(
                    w[3] for w in wires)
            else:
                top = y.get(nid, 0) if bottom is None else bottom
            if bottom is not None:
                top = max(top, bottom + ROW_GAP + TITLE_H)
            y[nid], bottom = top, top + sizes[nid][1]

    for column in columns:
        stack(column, {})
    for _ in range(4):
        for column in columns:
            stack(column, ups)
        for column in columns[::-1]:
            stack(column, downs)
    for column in columns:  # last: level with the inputs
        stack(column, ups)
    top = min(y.values()) - TITLE_H - GROUP_TITLE_H - GROUP_PAD
    return {nid: [round(xs[col[nid]]), round(y[nid] - top)] for nid in api}


def _groups(pos, sizes, stages, titles):
    """LiteGraph groups: one per stage, side by side with one top and bottom, each around its nodes (title bars
    included) with a strip for its title."""
    used = [s for s in STAGES if s in stages.values()]
    y0 = min(p[1] for p in pos.values()) - TITLE_H - GROUP_TITLE_H
    y1 = max(pos[n][1] + sizes[n][1] for n in pos) + GROUP_PAD
    groups = []
    for stage in used:
        members = [nid for nid in pos if stages[nid] == stage]
        x0 = min(pos[n][0] for n in members) - GROUP_PAD
        x1 = max(pos[n][0] + sizes[n][0] for n in members) + GROUP_PAD
        groups.append({"id": len(groups) + 1, "title": titles[stage], "bounding": [x0, y0, x1 - x0, y1 - y0],
                       "color": GROUP_COLORS[stage], "font_size": 24, "flags": {}})
    return groups


def to_ui(api, object_info, stages, titles, rank):
    """LiteGraph (UI) format from an API graph and /object_info: sockets, links, widgets_values, and a layout in
    labelled groups (stages: {id: stage}; titles: {stage: group title}; rank: {id: order inside a column})."""
    nodes, links, consumers, sizes = [], [], defaultdict(list), {}
    for nid, node in api.items():
        for name, v in node["inputs"].items():
            if isinstance(v, list):
                consumers[(v[0], v[1])].append((nid, name))
    link_ids = {}
    for key in sorted(consumers):
        for target in consumers[key]:
            link_ids[(key, target)] = len(link_ids) + 1
    for order, (nid, node) in enumerate(api.items()):
        info = object_info[node["class_type"]]
        spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        order_names = info.get("input_order", {})
        names = order_names.get("required", []) + order_names.get("optional", [])
        inputs, widgets, widget_specs = [], [], []
        for name in names:
            s = spec[name]
            value = node["inputs"].get(name)
            if _is_widget(s):
                widget_specs.append(s)
                opts = s[1] if len(s) > 1 else {}
                if isinstance(value, list):  # a link feeds the widget: a socket naming it; the widget keeps its default
                    inputs.append({"name": name, "type": s[0], "widget": {"name": name},
                                   "link": link_ids[((value[0], value[1]), (nid, name))]})
                    value = None
                widgets.append(value if value is not None else _widget_default(s))
                if opts.get("control_after_generate"):
                    widgets.append("fixed")
                if _upload(opts):
                    widgets.append("image")
            else:
                link = link_ids[((value[0], value[1]), (nid, name))] if isinstance(value, list) else None
                inputs.append({"name": name, "type": s[0], "link": link})
        outputs = []
        for slot, (otype, oname) in enumerate(zip(info["output"], info["output_name"])):
            ls = [link_ids[((nid, slot), t)] for t in consumers.get((nid, slot), [])]
            outputs.append({"name": oname, "type": otype, "links": ls, "slot_index": slot})
            for t, lid in zip(consumers.get((nid, slot), []), ls):
                linked = {k for k, v in api[t[0]]["inputs"].items() if isinstance(v, list)}
                target_slot = _sockets(object_info[api[t[0]]["class_type"]], linked).index(t[1])
                links.append([lid, int(nid), slot, int(t[0]), target_slot, otype])
        sizes[nid] = _node_size(node["class_type"], max(len(inputs), len(outputs)), widget_specs)
        nodes.append({"id": int(nid), "type": node["class_type"], "pos": None, "size": sizes[nid],
                      "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
                      "title": node["_meta"]["title"], "properties": {"Node name for S&R": node["class_type"]},
                      "widgets_values": widgets})
    links.sort()
    pos = _layout(api, links, sizes, stages, rank)
    for n in nodes:
        n["pos"] = pos[str(n["id"])]
    groups = _groups(pos, sizes, stages, titles)
    width = max(g["bounding"][0] + g["bounding"][2] for g in groups)
    height = max(g["bounding"][1] + g["bounding"][3] for g in groups)
    scale = round(min(1.0, 1500 / width, 800 / height), 2)  # the whole graph in view on a laptop screen
    return {"last_node_id": max(int(n) for n in api), "last_link_id": len(link_ids), "nodes": nodes, "links": links,
            "groups": groups, "config": {}, "extra": {"ds": {"scale": scale, "offset": [40, 80]}}, "version": 0.4}


def fetch_object_info():
    import tempfile
    from comfy_server import ComfyServer
    with tempfile.TemporaryDirectory() as base, ComfyServer(base, test_nodes=False) as srv:
        return srv.get("/object_info")


def render(object_info):
    """{relative path: JSON text} for every workflow in both formats (family edits under families/, video edits under
    video/)."""
    files = {}
    family = {f"families/{n}": family_workflow(spec) for n, spec in FAMILY_WORKFLOWS.items()}
    video = {f"video/{n}": video_workflow(spec) for n, spec in VIDEO_WORKFLOWS.items()}
    for name, graph in {**workflows(), **family, **video}.items():
        api = to_api(graph)
        ids = _ids(graph)
        stages = {nid: _stage(key) for key, nid in ids.items()}
        titles = {**GROUP_TITLES, **GROUP_TITLES_FOR.get(name, {})}
        rows = ROWS.get(name, ROWS["fireflow_edit"] + ("negative",))
        rank = {nid: (rows.index(key) if key in rows else len(rows), int(nid)) for key, nid in ids.items()}
        folder, _, stem = name.rpartition("/")
        files[f"{folder + '/' if folder else ''}api/{stem}.json"] = json.dumps(api, indent=1) + "\n"
        files[f"{name}.json"] = json.dumps(to_ui(api, object_info, stages, titles, rank), indent=1) + "\n"
    return files


def main():
    info = fetch_object_info()
    for rel, text in render(info).items():
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        (OUT / rel).write_text(text)
        print(OUT / rel)


if __name__ == "__main__":
    main()

"""Write workflows/: each example graph in API format (for /prompt) and UI format (drag and drop).

The API graphs below are the source of truth. The UI format is derived from the real server's /object_info (the same
node definitions the frontend uses), so widget order and sockets match ComfyUI exactly; the nodes are laid out left to
right in labelled groups (load, invert, edit, save). Run after changing a node's inputs or the layout:
`.host/venv/bin/python scripts/make_workflows.py` (a test checks the files are current; the browser test checks the
layout in the real frontend). Then refresh the previews: `bash scripts/update_previews.sh`.
"""
import json
import pathlib

from workflow_ui import to_ui, widget_names  # noqa: F401  (widget_names: used by the browser test)

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
            "fireflow_one_inversion_many_prompts": many, "fireflow_text_to_image": t2i, **method_workflows()}


def method_workflows():
    """The other editors on the same core: a masked FireFlow edit (the mask painted on the source image), FlowEdit
    (no inversion) and RF-Inversion (controlled forward and reverse passes, the paper's empty source prompt)."""
    masked = {**_loaders(), **_source_image(), **_text("source", "Source prompt", SOURCE),
              **_text("target", "Target prompt", TARGET), "cache": _cache("Attention Feature Cache"),
              "invert": _inverter(8, "fireflow"), "patch": _patch(), "edit": _sampler("target", 2.0),
              **_decode("edit", ["edit", 0], "fireflow/masked_edit")}
    masked["image"] = ("LoadImage", "Source image (paint the mask)",
                       {"image": "example.png"})
    masked["edit"][2].update(mask=["image", 1], mask_feather=8)
    flowedit = {**_loaders(), **_source_image(), **_text("source", "Source prompt", SOURCE),
                **_text("target", "Target prompt", TARGET),
                "edit": ("FireFlowFlowEdit", "FlowEdit (48 evaluations)", {
                    "model": ["unet", 0], "source": ["source", 0], "target": ["target", 0], "latent": ["encode", 0],
                    "steps": 28, "n_max": 24, "n_min": 0, "n_avg": 1, "solver": "euler", "seed": 0,
                    "source_guidance": 1.5, "target_guidance": 5.5}),
                **_decode("edit", ["edit", 0], "fireflow/flowedit")}
    rfinv = {**_loaders(), **_source_image(), **_text("source", "Source prompt (empty, as the paper inverts)", ""),
             "forward": ("FireFlowForwardControl", "RF-Inversion forward control",
                         {"gamma": 0.5, "start_step": 0, "stop_step": -1, "seed": 0}),
             "invert": _inverter(8, "fireflow", cache=False), **_text("target", "Target prompt", TARGET),
             "reverse": ("FireFlowReverseControl", "RF-Inversion reverse control",
                         {"eta": 0.9, "start_step": 0, "stop_step": 3, "eta_trend": "constant"}),
             "edit": _sampler("target", 2.0, model_ref=("unet", 0)),
             **_decode("edit", ["edit", 0], "fireflow/rf_inversion")}
    rfinv["invert"][2]["control"] = ["forward", 0]
    rfinv["edit"][2]["control"] = ["reverse", 0]
    return {"fireflow_masked_edit": masked, "fireflow_flowedit": flowedit, "fireflow_rf_inversion": rfinv}


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


# Layout: one labelled group per stage, left to right (as ComfyUI's own templates do); inside a group, columns by
# dependency depth; inside a column, nodes top to bottom in the order ROWS gives, chosen so few wires cross.
STAGE_OF = {"unet": "load", "clip": "load", "vae": "load", "image": "load", "sampling": "load", "scale": "load",
            "video": "load", "components": "load", "negative": "edit", "create": "save",
            "encode": "invert", "source": "invert", "cache": "invert", "invert": "invert",
            "target": "edit", "patch": "edit", "edit": "edit", "forward": "invert", "reverse": "edit",
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
    "fireflow_masked_edit": {"load": "1 · Load models, image, mask",
                             "edit": "3 · Edit inside the mask (target prompt, inject features)"},
    "fireflow_flowedit": {"invert": "2 · Source image and prompt", "edit": "3 · FlowEdit (target prompt, no inversion)"},
    "fireflow_rf_inversion": {"invert": "2 · Controlled inversion (empty prompt, gamma)",
                              "edit": "3 · Controlled edit (target prompt, eta)"},
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
    "fireflow_flowedit": ("unet", "clip", "image", "vae", "source", "target", "encode"),
    "fireflow_rf_inversion": ("unet", "clip", "image", "vae", "source", "encode", "forward", "reverse", "target"),
    **{f"video/{name}": ("unet", "unet_low", "clip", "video", "vae", "sampling", "sampling_low", "components", "source",
                         "encode", "cache", "patch", "patch_low", "target", "negative") for name in VIDEO_WORKFLOWS}}

def _stage(key):
    return STAGE_OF[key.split("_")[0].rstrip("0123456789")]


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

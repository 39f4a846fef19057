"""Write workflows/: each example graph in API format (for /prompt) and UI format (drag and drop).

The API graphs below are the source of truth. The UI format is derived from the real server's /object_info (the same
node definitions the frontend uses), so widget order and sockets match ComfyUI exactly. Run after changing a node's
inputs: `.host/venv/bin/python scripts/make_workflows.py` (a test checks the files are current).
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
    inputs = {"record_v": True, "record_q": False, "record_k": False, "single_blocks": "all", "double_blocks": "none",
              "inject_steps": 1, "calls": "reference", "text_tokens": "auto", "device": "auto", "dtype": "model",
              "max_cache_gb": 8.0}
    inputs.update(kw)
    return ("FireFlowFeatureCache", title, inputs)


def _inverter(steps, solver, cache=True):
    inputs = {"model": ["unet", 0], "conditioning": ["source", 0], "latent": ["encode", 0], "steps": steps,
              "solver": solver, "guidance": 1.0, "schedule": "auto"}
    if cache:
        inputs["feature_cache"] = ["cache", 0]
    return ("FireFlowInverter", "FireFlow Inverter", inputs)


def _patch():
    return ("FireFlowVInjection", "V-Injection Patch", {
        "model": ["unet", 0], "inversion": ["invert", 1], "inject_steps": -1, "v_mode": "replace", "q_mode": "keep",
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


def to_api(graph):
    """Numbered API format: {"1": {"class_type", "inputs", "_meta": {"title"}}}; links become [id, slot]."""
    ids = {key: str(i) for i, key in enumerate(graph, 1)}
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


def _sockets(info):
    """Names of an object_info node's socket (non-widget) inputs, in the order the frontend creates them."""
    spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    order = info.get("input_order", {})
    return [n for n in order.get("required", []) + order.get("optional", []) if not _is_widget(spec[n])]


def _is_widget(spec):
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 else {}
    if opts.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def to_ui(api, object_info):
    """LiteGraph (UI) format from an API graph and /object_info: sockets, links, widgets_values, a layered layout."""
    depth = {}

    def level(nid):
        if nid not in depth:
            ups = [v[0] for v in api[nid]["inputs"].values() if isinstance(v, list)]
            depth[nid] = 1 + max((level(u) for u in ups), default=-1)
        return depth[nid]
    for nid in api:
        level(nid)
    rows = defaultdict(int)
    nodes, links, consumers = [], [], defaultdict(list)
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
        inputs, widgets = [], []
        for name in names:
            s = spec[name]
            value = node["inputs"].get(name)
            if _is_widget(s):
                opts = s[1] if len(s) > 1 else {}
                widgets.append(value if value is not None else _widget_default(s))
                if opts.get("control_after_generate"):
                    widgets.append("fixed")
                if opts.get("image_upload"):
                    widgets.append("image")
            else:
                link = link_ids[((value[0], value[1]), (nid, name))] if isinstance(value, list) else None
                inputs.append({"name": name, "type": s[0], "link": link})
        outputs = []
        for slot, (otype, oname) in enumerate(zip(info["output"], info["output_name"])):
            ls = [link_ids[((nid, slot), t)] for t in consumers.get((nid, slot), [])]
            outputs.append({"name": oname, "type": otype, "links": ls, "slot_index": slot})
            for t, lid in zip(consumers.get((nid, slot), []), ls):
                target_slot = _sockets(object_info[api[t[0]]["class_type"]]).index(t[1])
                links.append([lid, int(nid), slot, int(t[0]), target_slot, otype])
        col = depth[nid]
        pos = [40 + col * 360, 40 + rows[col] * 250]
        rows[col] += 1
        nodes.append({"id": int(nid), "type": node["class_type"], "pos": pos,
                      "size": [340, 110 + 26 * (len(widgets) + max(len(inputs), len(outputs)))],
                      "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
                      "title": node["_meta"]["title"], "properties": {"Node name for S&R": node["class_type"]},
                      "widgets_values": widgets})
    links.sort()
    return {"last_node_id": max(int(n) for n in api), "last_link_id": len(link_ids), "nodes": nodes, "links": links,
            "groups": [], "config": {}, "extra": {"ds": {"scale": 0.6, "offset": [0, 0]}}, "version": 0.4}


def fetch_object_info():
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import tempfile
    from server import ComfyServer
    with tempfile.TemporaryDirectory() as base, ComfyServer(base, test_nodes=False) as srv:
        return srv.get("/object_info")


def render(object_info):
    """{relative path: JSON text} for every workflow in both formats."""
    files = {}
    for name, graph in workflows().items():
        api = to_api(graph)
        files[f"api/{name}.json"] = json.dumps(api, indent=1) + "\n"
        files[f"{name}.json"] = json.dumps(to_ui(api, object_info), indent=1) + "\n"
    return files


def main():
    info = fetch_object_info()
    (OUT / "api").mkdir(parents=True, exist_ok=True)
    for rel, text in render(info).items():
        (OUT / rel).write_text(text)
        print(OUT / rel)


if __name__ == "__main__":
    main()

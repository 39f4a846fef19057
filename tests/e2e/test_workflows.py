"""Every workflow in workflows/ runs through the real ComfyUI server (tiny parts substituted; see substitute.py)."""
import json
import re

import pytest
from PIL import Image

from comfy_server import ROOT, ComfyServer
from substitute import TEST_FPS, substitute, write_test_image, write_test_video

import make_workflows  # noqa: E402

API = sorted((ROOT / "workflows" / "api").glob("*.json"))
FAMILIES = sorted((ROOT / "workflows" / "families" / "api").glob("*.json"))  # one FireFlow edit per model family
VIDEOS = sorted((ROOT / "workflows" / "video" / "api").glob("*.json"))  # one FireFlow video edit per video family
EVALS = {"fireflow_edit": 9, "fireflow_reconstruction": 9, "fireflow_rf_edit": 30,
         "fireflow_one_inversion_many_prompts": 9, **{p.stem: 9 for p in FAMILIES},
         "fireflow_masked_edit": 9, "fireflow_rf_inversion": 9, "fireflow_flowedit": 48,  # FlowEdit: 2 x 24 steps
         # 8 FireFlow steps: 9; Wan 2.2 A14B restarts FireFlow's carried velocity at the expert switch: 10
         "fireflow_edit_wan21_t2v": 9, "fireflow_edit_wan22_a14b": 10, "fireflow_edit_hunyuan_video": 9}
SAVES = ("SaveImage", "SaveVideo")  # output nodes whose files the runs check


@pytest.fixture(scope="module")
def server(tmp_path_factory, detectable_files):
    srv = ComfyServer(tmp_path_factory.mktemp("comfy-wf"))
    try:
        srv.start()
        write_test_image(srv.base / "input")
        write_test_video(srv.base / "input")
        yield srv
    finally:
        srv.stop()


def user_view(name, text):
    """What a user gets from a workflow file, without one host's serialisation details.

    API format: every node's class and every input the file sets (links and values); inputs a newer host adds with
    defaults are not the file's business. UI format: node ids, types and titles, the wires, the group titles, and the
    widget values of the pack's own nodes (stock nodes' values are compared in the API format; their widget lists and
    the sizes and positions derived from them depend on the host release).
    """
    wf = json.loads(text)
    if name.split("/")[-2:-1] == ["api"]:
        return {nid: (n["class_type"], n["inputs"]) for nid, n in wf.items()}
    nodes = {n["id"]: (n["type"], n.get("title"), n.get("widgets_values") if n["type"].startswith("FireFlow") else None)
             for n in wf["nodes"]}
    return {"nodes": nodes, "links": sorted(map(tuple, wf["links"])), "groups": [g["title"] for g in wf["groups"]]}


def test_workflow_files_are_current(server):
    rendered = make_workflows.render(server.get("/object_info"))
    on_disk = {str(p.relative_to(ROOT / "workflows")): p.read_text() for p in (ROOT / "workflows").rglob("*.json")}
    assert sorted(rendered) == sorted(on_disk), "run scripts/make_workflows.py"
    for name in on_disk:
        want, got = user_view(name, rendered[name]), user_view(name, on_disk[name])
        if name.split("/")[-2:-1] == ["api"]:  # the file's inputs must be the generator's; inputs a newer host adds are not
            assert {n: c for n, (c, _) in got.items()} == {n: c for n, (c, _) in want.items()}, name
            stale = [(n, k) for n, (_, inputs) in got.items() for k, v in inputs.items() if want[n][1].get(k, ...) != v]
            assert not stale, f"{name}: {stale}: run scripts/make_workflows.py"
        else:
            assert got == want, f"{name}: run scripts/make_workflows.py"


def test_ui_and_api_formats_agree():
    for api_path in API + FAMILIES + VIDEOS:
        ui = json.loads((api_path.parent.parent / api_path.name).read_text())
        api = json.loads(api_path.read_text())
        assert sorted(int(k) for k in api) == sorted(n["id"] for n in ui["nodes"])
        assert all(n["type"] == api[str(n["id"])]["class_type"] for n in ui["nodes"])
        if api_path in API:
            assert (ROOT / "workflows" / f"{api_path.stem}.jpg").is_file(), "preview: scripts/update_previews.sh"


@pytest.mark.parametrize("path", API + FAMILIES + VIDEOS, ids=[p.stem for p in API + FAMILIES + VIDEOS])
def test_workflow_runs(server, path):
    api = json.loads(path.read_text())
    result = server.run(substitute(api), timeout=600)
    assert result["status"]["status_str"] == "success", result["status"]
    saves = [nid for nid, n in api.items() if n["class_type"] in SAVES]
    assert saves
    for nid in saves:
        files = [server.base / "output" / i["subfolder"] / i["filename"] for i in result["outputs"][nid]["images"]]
        assert files and all(f.is_file() for f in files)
        if api[nid]["class_type"] == "SaveVideo":
            for f in files:
                check_video(f)
    # nodes served from ComfyUI's cache (an identical edit in an earlier workflow) report no UI output again; no
    # earlier workflow has a video edit's models, so those always report
    samplers = [nid for nid, n in api.items() if n["class_type"] in ("FireFlowSampler", "FireFlowFlowEdit")
                and nid in result["outputs"]]
    assert samplers or not any(n["class_type"] in ("FireFlowSampler", "FireFlowFlowEdit") for n in api.values())
    assert samplers or path not in VIDEOS
    for nid in samplers:
        text = result["outputs"][nid]["text"][0]
        assert re.search(rf"(?<!\d){EVALS[path.stem]} evaluations", text), text
        if injects(api, nid):
            assert "injected" in text
        if "mask" in api[nid]["inputs"]:
            assert "mask over" in text, text
        if "control" in api[nid]["inputs"]:
            assert "RF-Inversion reverse control" in text, text
        if "model_low_noise" in api[nid]["inputs"]:  # both experts walked their part of the pass
            assert re.search(r"high-noise expert for steps 0-\d+, low-noise from step \d+", text), text


def check_video(path):
    """An MP4 that SaveVideo wrote from the decoded frames, at the source video's frame rate (CreateVideo's fps comes
    from GetVideoComponents). With the tiny parts the decode is FFTestLatentImage: the first latent frame, 8 x 8."""
    import av
    assert path.suffix == ".mp4"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert frames and frames[0].width > 0 and frames[0].height > 0
        assert float(stream.average_rate or stream.base_rate) == TEST_FPS, (stream.average_rate, stream.base_rate)


def injects(api, sampler_id):
    """Whether a FireFlow Sampler's model comes from a V-Injection Patch whose inversion recorded features."""
    model = api[sampler_id]["inputs"]["model"]
    patch = api.get(model[0]) if isinstance(model, list) else None
    if patch is None or patch["class_type"] != "FireFlowVInjection":
        return False
    inverter = api[patch["inputs"]["inversion"][0]]
    return "feature_cache" in inverter["inputs"] and patch["inputs"].get("inject_steps", -1) != 0


def test_edit_rerun_from_empty_cache_is_bit_identical(server):
    api = substitute(json.loads((ROOT / "workflows" / "api" / "fireflow_edit.json").read_text()))
    save = next(nid for nid, n in api.items() if n["class_type"] == "SaveImage")
    files = []
    for prefix in ("fireflow/determinism_a", "fireflow/determinism_b"):
        server.post("/free", {"unload_models": True, "free_memory": True})
        api[save]["inputs"]["filename_prefix"] = prefix
        result = server.run(api)
        assert result["status"]["status_str"] == "success"
        image = result["outputs"][save]["images"][0]
        with Image.open(server.base / "output" / image["subfolder"] / image["filename"]) as im:
            files.append(im.tobytes())  # pixels; the PNG text chunks embed the prompt, prefix included
    assert files[0] == files[1]

"""The pack inside the real ComfyUI server: /object_info lists it, /prompt runs an edit (stopped by PID, always)."""

import pytest

from comfy_server import ComfyServer
from test_editing import EDIT_PROMPT


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ComfyServer(tmp_path_factory.mktemp("comfy-base"))
    try:
        yield srv.start()
    finally:
        srv.stop()


def test_object_info_lists_the_pack(server):
    info = server.get("/object_info")
    ours = {k: v for k, v in info.items() if k.startswith("FireFlow")}
    assert {"FireFlowInverter", "FireFlowSampler", "FireFlowSolverSampler", "FireFlowFeatureCache",
            "FireFlowVInjection", "FireFlowSaveInversion", "FireFlowLoadInversion"} <= set(ours)
    assert all(v["python_module"] == "custom_nodes.fireflow" for v in ours.values())
    failed = [line for line in server.log.read_text().splitlines()
              if ("IMPORT FAILED" in line or "Cannot import" in line) and "fireflow" in line]
    assert not failed


def test_edit_prompt_runs_through_the_server(server):
    first = server.run(EDIT_PROMPT(3))
    assert first["status"]["status_str"] == "success", first["status"]
    assert "injected" in first["outputs"]["smp"]["text"][0]
    again = server.run(EDIT_PROMPT(4))
    assert again["status"]["status_str"] == "success"


def test_bad_prompt_reports_the_pack_error(server):
    prompt = EDIT_PROMPT(3)
    prompt["cache"]["inputs"]["single_blocks"] = "99"
    out = server.run(prompt)
    assert out["status"]["status_str"] == "error"
    messages = str(out["status"]["messages"])
    assert "has 4 single-stream blocks" in messages

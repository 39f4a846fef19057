"""The real ComfyUI frontend (the version 0.3.75 names) in Debian's chromium: the pack loads, is searchable, every
workflow loads with all nodes known and laid out in labelled groups, and the extension shows results after a run
without shrinking nodes the user resized. Screenshots and layout figures: results/browser/."""
import json
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
from comfy_server import ComfyServer  # noqa: E402
from substitute import substitute, write_test_image  # noqa: E402

SHOTS = ROOT / "results" / "browser"
PLAYWRIGHT = ROOT / ".host" / "node" / "node_modules" / "playwright-core" / "index.mjs"


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory):
    for tool, hint in ((shutil.which("chromium"), "chromium"), (PLAYWRIGHT.exists(), "playwright-core"),
                       (shutil.which("node"), "node")):
        assert tool, f"{hint} is missing: run scripts/setup_browser.sh"
    import fixtures
    fixtures.ensure_files()
    SHOTS.mkdir(parents=True, exist_ok=True)
    workflows = sorted((ROOT / "workflows").glob("*.json"))
    edit_api = json.loads((ROOT / "workflows" / "api" / "fireflow_edit.json").read_text())
    last = next(int(k) for k, v in edit_api.items() if v["class_type"] == "FireFlowSampler")
    patch = next(int(k) for k, v in edit_api.items() if v["class_type"] == "FireFlowVInjection")
    srv = ComfyServer(tmp_path_factory.mktemp("comfy-ui"), frontend=True)
    try:
        srv.start()
        write_test_image(srv.base / "input")
        srv.post("/settings/Comfy.TutorialCompleted", True)  # no first-run Templates dialog over the screenshots
        cfg = {"url": srv.url, "playwright": PLAYWRIGHT.as_uri(), "shots": str(SHOTS),
               "workflows": [{"name": p.stem, "ui": json.loads(p.read_text())} for p in workflows],
               "run": {"ui": json.loads((ROOT / "workflows" / "fireflow_edit.json").read_text()),
                       "api": substitute(edit_api), "summaryNode": last, "smallNode": patch}}
        cfg_path = tmp_path_factory.mktemp("drive") / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        proc = subprocess.run(["node", str(ROOT / "tests" / "browser" / "drive.mjs"), str(cfg_path)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        (SHOTS / "console.json").write_text(json.dumps(out["console"], indent=1))
        (SHOTS / "layout.json").write_text(json.dumps({k: v.get("layout") for k, v in out["workflows"].items()},
                                                      indent=1))
        import make_workflows
        cache = "FireFlowFeatureCache"
        out["cache_widgets"] = make_workflows.widget_names(srv.get(f"/object_info/{cache}")[cache])
        yield out
    finally:
        srv.stop()


def test_driver_had_no_errors(browser_run):
    assert not browser_run["errors"], browser_run["errors"]


def from_the_pack(message):
    """Errors raised by the pack's js, or requests for the pack's files (extension, workflow templates)."""
    where = message["url"] + " " + message["text"]
    if "api.comfy.org" in where:  # the frontend asks the node registry about custom node IDs; CSP blocks it
        return False
    return ("/extensions/fireflow" in where or "/workflow_templates/fireflow" in where or "[FireFlow]" in where
            or "fireflow.js" in where)


def test_no_console_errors_from_the_pack(browser_run):
    ours = [m for m in browser_run["console"] if m["type"] in ("error", "pageerror") and from_the_pack(m)]
    assert not ours
    assert any("[FireFlow] frontend extension loaded" in m["text"] for m in browser_run["console"])


def test_pack_nodes_registered_and_searchable(browser_run):
    assert {"FireFlowInverter", "FireFlowSampler", "FireFlowFeatureCache", "FireFlowVInjection"} <= \
        set(browser_run["registered"])
    assert "fireflow.nodes" in browser_run["extensions"]
    assert any("FireFlow Inverter" in t for t in browser_run["search"]), browser_run["search"]


def test_every_workflow_loads_with_all_nodes_known(browser_run):
    names = {p.stem for p in (ROOT / "workflows").glob("*.json")}
    assert set(browser_run["workflows"]) == names
    for name, info in browser_run["workflows"].items():
        ui = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
        assert info["unknown"] == [] and info["count"] == len(ui["nodes"]) and info["links"] == len(ui["links"]), name


def test_workflows_are_laid_out_in_labelled_groups(browser_run):
    """Left to right in groups (load, invert, edit, save); sizes as the frontend lays the nodes out after loading."""
    for name, info in browser_run["workflows"].items():
        layout = info["layout"]
        assert len(layout["groups"]) >= 3 and all(layout["groups"]), (name, layout["groups"])
        assert layout["ungrouped"] == [], (name, layout["ungrouped"])
        assert layout["overlaps"] == [], (name, layout["overlaps"])
        assert layout["tooSmall"] == [], (name, "nodes smaller than the frontend's minimum", layout["tooSmall"])
        assert layout["backwards"] == [], (name, "wires running right to left", layout["backwards"])


def test_extension_shows_results_after_a_run(browser_run):
    summaries = browser_run["summaries"]
    assert "evaluations" in summaries["FireFlowInverter"] and "injected" in summaries["FireFlowSampler"]
    assert "held" in summaries["FireFlowVInjection"]
    assert (SHOTS / "after_run.png").is_file()


def test_a_node_the_user_enlarged_keeps_its_size_after_a_run(browser_run):
    r = browser_run["resize"]
    assert r["dragged"][0] >= r["loaded"][0] + 100 and r["dragged"][1] >= r["loaded"][1] + 80, r  # the drag worked
    assert r["afterRun"] == r["dragged"], r


def test_nodes_at_their_saved_sizes_are_never_shrunk_by_a_run(browser_run):
    u = browser_run["untouched"]
    assert u["loaded"].keys() == u["afterRun"].keys()
    for node, (w, h) in u["loaded"].items():
        assert u["afterRun"][node][0] >= w and u["afterRun"][node][1] >= h, (node, (w, h), u["afterRun"][node])


def test_a_small_node_grows_to_show_its_whole_summary(browser_run):
    g = browser_run["grow"]
    assert g["afterRun"][0] >= g["before"][0] and g["afterRun"][1] > g["before"][1], g
    for fit in browser_run["summaryFit"].values():
        assert fit["scrollHeight"] <= fit["clientHeight"] + 1, fit


def test_preset_picker_fills_widgets_and_is_not_serialized(browser_run):
    p = browser_run["presetWidget"]
    assert p and p["single"] == "20-37" and p["inject"] == 5
    names = browser_run["cache_widgets"]  # the node's widget inputs, from the server's /object_info
    assert "custom" in p["values"] and len(p["serialized"]) == len(names)  # the preset is UI-only
    saved = dict(zip(names, p["serialized"]))
    assert saved["single_blocks"] == "20-37" and saved["inject_steps"] == 5

"""Packaging facts: the pack imports without ComfyUI, and its two dependency lists agree."""
import ast
import pathlib
import re
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_root_init_registers_nothing_without_comfyui():
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('ffpack', r'{ROOT / '__init__.py'}'); "
            "m = importlib.util.module_from_spec(spec); sys.modules['ffpack'] = m; spec.loader.exec_module(m); "
            "assert m.NODE_CLASS_MAPPINGS == {} and m.WEB_DIRECTORY == './js'; "
            "assert not any(k.split('.')[0] in ('comfy', 'folder_paths', 'server', 'nodes') for k in sys.modules); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _names(lines):
    return sorted(re.split(r"[<>=!~ ;\[]", line.strip(), maxsplit=1)[0].lower() for line in lines
                  if line.strip() and not line.strip().startswith("#"))


HOST = {"comfy", "comfy_extras", "comfy_api", "folder_paths", "node_helpers", "latent_preview", "nodes", "server",
        "execution"}


def imported_packages():
    """Third-party packages the pack's runtime code (core and nodes) imports; torch's .numpy() needs numpy."""
    found = set()
    for path in [*(ROOT / "fireflow").rglob("*.py"), *(ROOT / "nodes").rglob("*.py"), ROOT / "__init__.py"]:
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
        if ".numpy()" in source:
            found.add("numpy")
    return sorted(found - set(sys.stdlib_module_names) - HOST)


def test_declared_dependencies_are_the_imported_ones():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    req = (ROOT / "requirements.txt").read_text().splitlines()
    assert _names(project["dependencies"]) == _names(req) == imported_packages() == ["numpy", "safetensors", "torch"]


def test_registry_metadata():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not data["project"]["name"].lower().startswith("comfyui")
    assert data["project"]["license"] == {"file": "LICENSE"}
    assert {"PublisherId", "DisplayName", "Icon"} <= set(data["tool"]["comfy"])
    assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text()[:200]

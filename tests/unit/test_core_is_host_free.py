"""The core package must never import the host (STYLE.md guideline 1): no ComfyUI module, by absolute name or by a
relative import that climbs out of the core (into the pack's nodes/, which is ComfyUI glue)."""
import ast
import pathlib

import pytest

CORE = pathlib.Path(__file__).resolve().parents[2] / "fireflow"
# ComfyUI's top-level modules and packages (0.3.75 and newer): anything a custom node could import from the host.
HOST_MODULES = {"comfy", "comfy_extras", "comfy_api", "comfy_api_nodes", "comfy_execution", "comfy_config", "app",
                "folder_paths", "nodes", "node_helpers", "latent_preview", "server", "execution", "main",
                "comfyui_version", "cuda_malloc", "hook_breaker_ac10a0", "protocol", "new_updater", "utils", "api_server",
                "middleware"}


def host_imports(source, package_depth=1):
    """Names of host modules a module's source imports; relative imports leaving the core count as host imports."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.split(".")[0] in HOST_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if node.level > package_depth:
                bad.append("." * node.level + (node.module or ""))
            elif node.level == 0 and node.module and node.module.split(".")[0] in HOST_MODULES:
                bad.append(node.module)
    return bad


@pytest.mark.parametrize("source", ["import latent_preview", "import node_helpers", "from comfy import utils",
                                    "import comfy.model_management as mm", "from ..nodes import host",
                                    "from .. import nodes", "def f():\n    import folder_paths"])
def test_guard_catches(source):
    assert host_imports(source)


def test_guard_allows_core_and_libraries():
    assert not host_imports("from .solvers import integrate\nimport torch\nfrom safetensors import safe_open")


def test_no_core_module_imports_the_host():
    files = sorted(CORE.rglob("*.py"))
    assert files
    bad = {str(f.relative_to(CORE)): host_imports(f.read_text(), len(f.relative_to(CORE).parts)) for f in files}
    assert not {k: v for k, v in bad.items() if v}

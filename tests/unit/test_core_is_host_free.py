"""The core package must never import the host (STYLE.md guideline 1)."""
import ast
import pathlib

CORE = pathlib.Path(__file__).resolve().parents[2] / "fireflow"
FORBIDDEN = {"comfy", "comfy_extras", "comfy_api", "folder_paths", "nodes", "server", "execution"}


def imported_roots(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_no_core_module_imports_the_host():
    files = sorted(CORE.rglob("*.py"))
    assert files
    bad = {str(f.name): sorted(set(imported_roots(f)) & FORBIDDEN) for f in files}
    assert not {k: v for k, v in bad.items() if v}

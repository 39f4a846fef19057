"""Make the registry's CUDA-linked torchvision import on CPU torch (HOST.md, install step 3).

torchvision's fake-op registrations need its C++ ops, which never load on a CPU torch; ComfyUI's core does not use
them. Guard the decorator so it only applies when the ops are present. Idempotent.
"""
import importlib.util
import pathlib

MARK = "# fireflow: guarded for CPU torch"


def patch_torchvision():
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        return
    path = pathlib.Path(spec.origin).parent / "_meta_registrations.py"
    text = path.read_text()
    if MARK in text:
        return
    if "@torch.library.register_fake" not in text:
        return
    lines = text.splitlines(keepends=True)
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("@torch.library.register_fake("):
            indent = line[: len(line) - len(stripped)]
            inner = stripped[len("@"):].rstrip("\n")
            out.append(f"{indent}@(({inner}) if _fireflow_has_ops() else (lambda fn: fn))  {MARK}\n")
        else:
            out.append(line)
    header = (
        f"\n\ndef _fireflow_has_ops():  {MARK}\n"
        "    try:\n        import torchvision.extension as _e\n        return _e._has_ops()\n"
        "    except Exception:\n        return False\n\n"
    )
    # insert the helper after the imports (before the first decorator)
    text2 = "".join(out)
    first = text2.find("@((")
    cut = text2.rfind("\n", 0, first)
    path.write_text(text2[:cut] + header + text2[cut:])


if __name__ == "__main__":
    patch_torchvision()

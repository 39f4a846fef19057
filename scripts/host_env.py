"""Put the local ComfyUI on sys.path and import it headless (CPU), the way tests, demo and bench need it.

Usage: `import host_env; host_env.boot()` from a script or test. Order matters (HOST.md): `args.cpu` before
anything imports comfy.model_management, and `utils.extra_config` before `nodes`.
"""
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOST = ROOT / ".host"
BASE = pathlib.Path(os.environ.get("FIREFLOW_BASE_DIR", HOST / "base"))
_booted = False


def comfy_dir():
    sys.path.insert(0, str(ROOT / "scripts"))
    from comfy_path import comfy_path
    return comfy_path()


def boot(cpu=True):
    """Import ComfyUI in-process; returns its directory. Idempotent."""
    global _booted
    path = comfy_dir()
    if _booted:
        return path
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    import comfy.options
    comfy.options.enable_args_parsing(False) if hasattr(comfy.options, "enable_args_parsing") else None
    from comfy.cli_args import args
    args.cpu = cpu
    import utils.extra_config  # noqa: F401  (before `nodes`, which puts comfy/ first on sys.path)
    import folder_paths
    folder_paths.set_output_directory(str(BASE / "output"))
    folder_paths.set_input_directory(str(BASE / "input"))
    folder_paths.set_temp_directory(str(BASE / "temp"))
    for kind in ("diffusion_models", "vae", "checkpoints"):
        folder_paths.add_model_folder_path(kind, str(BASE / "models" / kind), is_default=True)
    _booted = True
    return path

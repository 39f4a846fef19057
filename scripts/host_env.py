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
    from comfy_path import comfy_path
    return comfy_path()


TOOLING_PACKAGES = ("fireflow", "bench")  # the host-free core and the benchmarks, importable by name


class _RootPackages:
    """Finds the repository's top-level packages by name without putting the repository root on sys.path, where the
    pack's `nodes/` would shadow ComfyUI's `nodes` module."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in TOOLING_PACKAGES:
            return None
        import importlib.util
        return importlib.util.spec_from_file_location(
            name, ROOT / name / "__init__.py", submodule_search_locations=[str(ROOT / name)])


def expose_core():
    """Make `import fireflow` and `import bench` work for tooling without the repository root on sys.path."""
    if not any(isinstance(f, _RootPackages) for f in sys.meta_path):
        sys.meta_path.append(_RootPackages())


def share_core(pack):
    """After ComfyUI loaded the pack: `import fireflow` (and its submodules) give the pack's own modules from now on, so
    objects made by tooling pass the pack's isinstance checks. (Host-free code that imported the core earlier, such as
    unit tests collected first, keeps its names; it never hands objects to the pack.)"""
    import importlib
    import pkgutil
    for info in pkgutil.iter_modules(pack.fireflow.__path__):
        importlib.import_module(f"{pack.fireflow.__name__}.{info.name}")
    names = {"fireflow": pack.fireflow.__name__}
    prefix = pack.fireflow.__name__ + "."
    names.update({"fireflow." + n[len(prefix):]: n for n in sys.modules if n.startswith(prefix)})
    for alias, real in names.items():
        sys.modules[alias] = sys.modules[real]


def boot(cpu=True):
    """Import ComfyUI in-process; returns its directory. Idempotent."""
    global _booted
    expose_core()
    path = comfy_dir()
    if _booted:
        return path
    if "folder_paths" in sys.modules and "server" in sys.modules:  # inside a running ComfyUI (test nodes): its folders
        _booted = True
        return path
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
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

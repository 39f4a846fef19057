"""Save / Load an inversion (inverted latent + record + attention features) as safetensors in ComfyUI's folders.

Names are relative to ComfyUI's output (save) or input / output (load) folders; absolute paths, '..' and links that
lead outside those folders are refused.
"""
import os

import folder_paths

from ..fireflow.record import InversionRecord
from ..fireflow.storage import DEFAULT_MAX_BYTES, load_inversion, save_inversion
from .editing_nodes import ADVANCED, human_bytes
from .errors import node_errors

CATEGORY = "FireFlow"
INVERSION = "FIREFLOW_INVERSION"
SUFFIX = ".safetensors"
SUBFOLDER = "fireflow"


def contained(base, relative, what):
    """The real path of `relative` inside `base`; refuses absolute names, '..' and links leading outside."""
    if not relative or os.path.isabs(relative) or "\\" in relative or relative.startswith("~"):
        raise ValueError(f"{what} {relative!r} must be a relative name inside ComfyUI's {os.path.basename(base)} folder")
    if any(part == ".." for part in relative.replace("\\", "/").split("/")):
        raise ValueError(f"{what} {relative!r} may not contain '..'")
    root = os.path.realpath(base)
    full = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, full]) != root:
        raise ValueError(f"{what} {relative!r} leads outside ComfyUI's {os.path.basename(base)} folder")
    return full


_LISTING = {}  # {"dirs": ((folder, mtime or None), ...), "names": [...]}: /object_info lists on every page load


def _roots():
    """(folder, base, tag, recursive): input's top level, input/fireflow/ and output/fireflow/ with subfolders."""
    inp, out = folder_paths.get_input_directory(), folder_paths.get_output_directory()
    return ((inp, inp, "", False), (os.path.join(inp, SUBFOLDER), inp, "", True),
            (os.path.join(out, SUBFOLDER), out, " [output]", True))


def _mtime(folder):
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def _scan(folder, base, tag, recursive, dirs, names):
    """Add the folder's .safetensors names to `names`, and (folder, mtime) of each folder looked at to `dirs`."""
    dirs.append((folder, _mtime(folder)))
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.is_file() and e.name.endswith(SUFFIX):
                    names.append(os.path.relpath(e.path, base).replace(os.sep, "/") + tag)
                elif recursive and e.is_dir(follow_symlinks=False):
                    _scan(e.path, base, tag, True, dirs, names)
    except OSError:
        pass


def _listing():
    """Saved inversions. Re-read only when a folder looked at last time changed its mtime (adding, removing or
    renaming a file or subfolder does) or the folders themselves moved; otherwise a few stat calls."""
    dirs = _LISTING.get("dirs")
    if dirs and all(_mtime(d) == m for d, m in dirs) and \
            {d for d, _ in dirs} >= {r[0] for r in _roots()}:
        return _LISTING["names"]
    dirs, names = [], []
    for folder, base, tag, recursive in _roots():
        _scan(folder, base, tag, recursive, dirs, names)
    _LISTING.update(dirs=tuple(dirs), names=sorted(set(names)))
    return _LISTING["names"]


def resolve_load_name(name):
    """'sub/file.safetensors' (input folder) or 'fireflow/file.safetensors [output]' -> a contained real path."""
    base = folder_paths.get_input_directory()
    if name.endswith(" [output]"):
        name, base = name[: -len(" [output]")], folder_paths.get_output_directory()
    elif name.endswith(" [input]"):
        name = name[: -len(" [input]")]
    path = contained(base, name, "inversion_file")
    if not os.path.isfile(path):
        raise ValueError(f"inversion_file {name!r} does not exist in {base}")
    return path


class FireFlowSaveInversion:
    DESCRIPTION = ("Saves an inversion (inverted latent, record and recorded attention features) as one safetensors "
                   "file in ComfyUI's output folder, so later sessions can edit without inverting again. No pickle.")
    CATEGORY = CATEGORY + "/io"
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "inverted_latent": ("LATENT", {"tooltip": "The Inverter's inverted_latent."}),
            "inversion": (INVERSION, {"tooltip": "The Inverter's inversion record (with its features)."}),
            "filename_prefix": ("STRING", {"default": f"{SUBFOLDER}/inversion", "tooltip": "Name inside the output "
                                "folder; a counter and .safetensors are appended. Subfolders allowed, '..' not."}),
        }}

    def save(self, inverted_latent, inversion, filename_prefix):
        if not isinstance(inversion, InversionRecord):
            raise ValueError("Save Inversion: the inversion input is not a FireFlow inversion record")
        samples = inverted_latent["samples"]
        if tuple(samples.shape) != tuple(inversion.latent_shape):
            raise ValueError(f"Save Inversion: the latent {list(samples.shape)} is not the one this inversion made "
                             f"{list(inversion.latent_shape)}: connect the same Inverter's two outputs")
        out_dir = folder_paths.get_output_directory()
        contained(out_dir, filename_prefix, "filename_prefix")
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, out_dir)
        path = os.path.join(folder, f"{name}_{counter:05}_{SUFFIX}")
        contained(out_dir, os.path.relpath(path, out_dir), "filename_prefix")
        os.makedirs(folder, exist_ok=True)
        save_inversion(path, samples, inversion)
        rel = os.path.relpath(path, out_dir).replace(os.sep, "/")
        size = human_bytes(os.path.getsize(path))
        return {"ui": {"text": [f"saved {rel} [output] ({size})"]}}


class FireFlowLoadInversion:
    DESCRIPTION = ("Loads an inversion saved by Save Inversion (from the input folder, or the output folder's "
                   "fireflow/ subfolder). Files from another format version are refused; features recorded with "
                   "another model are refused by the V-Injection Patch.")
    CATEGORY = CATEGORY + "/io"
    FUNCTION = "load"
    RETURN_TYPES = ("LATENT", INVERSION)
    RETURN_NAMES = ("inverted_latent", "inversion")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "inversion_file": (_listing() or ["(no inversions saved yet)"], {"tooltip": "A .safetensors file saved by "
                               "Save Inversion, in the input folder or in output/fireflow (marked [output])."}),
            "max_size_gb": ("FLOAT", {**ADVANCED, "default": DEFAULT_MAX_BYTES / 2 ** 30, "min": 0.001, "max": 1024.0,
                                      "tooltip": "Refuse files larger than this (GiB)."}),
        }}

    @classmethod
    def IS_CHANGED(cls, inversion_file, max_size_gb):
        try:
            st = os.stat(resolve_load_name(inversion_file))
            return f"{st.st_mtime_ns}-{st.st_size}"
        except (OSError, ValueError):
            return float("nan")

    def load(self, inversion_file, max_size_gb):
        path = resolve_load_name(inversion_file)
        with node_errors("Load Inversion"):
            latent, record = load_inversion(path, device="cpu", max_bytes=int(max_size_gb * 2 ** 30))
        text = f"loaded {inversion_file}: {record.describe()}"
        if record.features is not None:
            text += f"; features {human_bytes(record.features.nbytes)}"
        return {"ui": {"text": [text]}, "result": ({"samples": latent}, record)}

"""The core's typed errors in the words of ComfyUI users: node names, widget names, and what to change.

Nodes run core calls inside `node_errors(node)`; any FireFlowError leaving it becomes a ValueError whose message
starts with the node's name and says which widget or connection to change. Other errors pass through unchanged.
"""
from contextlib import contextmanager

from ..fireflow.errors import (BlockSelectionError, BudgetError, ChoiceError, FireFlowError, IncompleteRecording,
                               InversionFileError, MissingFeatureError, RecordMismatch, SettingError, StepsError,
                               TextLengthError, describe_changes)

CACHE_NODE = "Attention Feature Cache"
WIDGETS = {"max_gb": "max_cache_gb", "features": "record_v / record_q / record_k"}


def widget(field):
    return WIDGETS.get(field, field)


def _budget(e):
    d = e.data
    options = [f"{describe_changes(c, WIDGETS)}: {b / 2 ** 30:.2f} GiB" + (" (fits)" if fits else "")
               for c, b, fits in d["options"]]
    return (f"the feature cache would hold {d['estimate'] / 2 ** 30:.2f} GiB, over max_cache_gb "
            f"{d['limit'] / 2 ** 30:.3g}. Settings on the {CACHE_NODE} that hold less: {'; '.join(options) or 'none'};"
            + (" or device cpu keeps it in host RAM instead of VRAM;" if d.get("device") != "cpu" else "")
            + " or raise max_cache_gb; or edit a smaller latent (fewer frames, for video)")


def _steps(e):
    d = e.data
    if d["against"] == "grid":
        return (f"inject_steps ({d['requested']}) is larger than the inverted steps ({d['available']}): lower "
                f"inject_steps on the {CACHE_NODE} or invert with more steps")
    return (f"inject_steps ({d['requested']}) is larger than the recorded steps ({d['available']}): raise inject_steps "
            f"on the {CACHE_NODE} and invert again, or lower it here")


def _mismatch(e):
    what = e.data["what"]
    if what in ("solver", "grid"):
        return f"{e}: connect the Inverter's inversion output to the FireFlow Sampler (or use the same steps, " \
               "schedule, sigmas and solver)"
    if what == "latent":
        return f"{e}: connect the Inverter's inverted_latent (or an inversion of this latent) to the sampler"
    return f"{e}: connect the same Inverter's outputs to the V-Injection Patch and the sampler"


def phrase(e: FireFlowError) -> str:
    """The message a ComfyUI user reads for a core error."""
    d = e.data
    if isinstance(e, BudgetError):
        return _budget(e)
    if isinstance(e, StepsError):
        return _steps(e)
    if isinstance(e, BlockSelectionError) and d["reason"] == "empty":
        return f"no blocks selected: set single_blocks (e.g. 'all') or double_blocks on the {CACHE_NODE}"
    if isinstance(e, MissingFeatureError):
        flags = ", ".join(f"record_{f}" for f in d["needed"])
        return f"{e}: switch on {flags} on the {CACHE_NODE} and invert again"
    if isinstance(e, TextLengthError):
        return (f"text_tokens = full needs equal prompt lengths: recorded {d['recorded']}, now {d['current']} tokens;"
                f" set text_tokens to auto or image_only on the {CACHE_NODE}, or use prompts of equal length")
    if isinstance(e, RecordMismatch):
        return _mismatch(e)
    if isinstance(e, (ChoiceError, SettingError)) and d["field"] in WIDGETS:
        return str(e).replace(d["field"], widget(d["field"]), 1)
    if isinstance(e, IncompleteRecording):
        return f"{e} (is the model a FLUX with the selected blocks?)"
    if isinstance(e, InversionFileError) and d["reason"] == "too_large":
        return f"{e} (raise max_size_gb if you trust the file)"
    return str(e)


@contextmanager
def node_errors(node):
    """Rephrase core errors raised inside the block as `ValueError("<node>: <advice>")`."""
    try:
        yield
    except FireFlowError as e:
        raise ValueError(f"{node}: {phrase(e)}") from e

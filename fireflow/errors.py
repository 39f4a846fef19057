"""Typed errors of the core. Each carries the data a front end needs to phrase advice in its own words.

The core speaks of its own concepts (a plan's `inject_steps`, a spec's `text_tokens`, a grid, a recorded inversion);
it never names a node or a widget. `str(error)` is a complete, host-neutral sentence; ComfyUI's glue (nodes/errors.py)
rephrases each type with node and widget names.
"""


class FireFlowError(ValueError):
    """Base class. `data` holds the facts behind the message (counts, names, bytes)."""

    def __init__(self, message, **data):
        super().__init__(message)
        self.data = data


class GridError(FireFlowError):
    """A time grid or step count that no solver can walk."""


class ChoiceError(FireFlowError):
    """A named setting got a value outside its choices. data: field, value, choices."""

    def __init__(self, field, value, choices):
        super().__init__(f"unknown {field} {value!r}; choose one of: {', '.join(map(str, choices))}",
                         field=field, value=value, choices=tuple(choices))


class SettingError(FireFlowError):
    """A setting has an invalid value. data: field, value, reason."""

    def __init__(self, field, value, reason):
        super().__init__(f"{field} {reason}; got {value!r}", field=field, value=value, reason=reason)


class BlockSelectionError(FireFlowError):
    """A block list could not be used. data: field (single_blocks / double_blocks or None), spec, reason, count.

    reason: 'syntax', 'backwards', 'out_of_range' or 'empty' (no blocks selected at all).
    """

    def __init__(self, message, field, spec, reason, count=None):
        super().__init__(message, field=field, spec=spec, reason=reason, count=count)


class StepsError(FireFlowError):
    """More injected steps than available. data: requested, available, against ('grid' or 'recorded')."""

    def __init__(self, requested, available, against):
        what = "the grid's steps" if against == "grid" else "the recorded steps"
        super().__init__(f"inject_steps ({requested}) is larger than {what} ({available})",
                         requested=requested, available=available, against=against)


class BudgetError(FireFlowError):
    """The planned feature store is over budget. data: estimate, limit (bytes), options: tuple of
    (changes: dict of spec fields, bytes, fits), cheapest first among the ones listed."""

    def __init__(self, estimate, limit, options, device="auto"):
        listed = "; ".join(f"{describe_changes(c)}: {b / 2 ** 30:.2f} GiB{' (fits)' if f else ''}"
                           for c, b, f in options)
        super().__init__(f"the feature store would hold {estimate / 2 ** 30:.2f} GiB, over the limit of "
                         f"{limit / 2 ** 30:.3g} GiB. Options: {listed}",
                         estimate=estimate, limit=limit, options=tuple(options), device=device)


def describe_changes(changes, names=None):
    """'dtype fp8, single_blocks 19-37' from {field: value}; `names` maps field names to other words."""
    names = names or {}
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in changes.items())


class MissingFeatureError(FireFlowError):
    """A strategy needs features that were not recorded. data: needed, recorded (tuples of 'q'/'k'/'v')."""

    def __init__(self, needed, recorded):
        super().__init__(f"the strategy needs {', '.join(f.upper() for f in needed)}, which were not recorded "
                         f"(recorded: {', '.join(f.upper() for f in recorded)})", needed=tuple(needed),
                         recorded=tuple(recorded))


class TextLengthError(FireFlowError):
    """Whole-sequence injection with prompts of different token counts. data: recorded, current."""

    def __init__(self, recorded, current):
        super().__init__(f"whole-sequence injection needs equal prompt lengths: recorded {recorded} text tokens, "
                         f"now {current}", recorded=recorded, current=current)


class TokenLayoutError(FireFlowError):
    """An attention sequence does not have the structure the family adapter predicts. data: total, layout."""

    def __init__(self, total, layout, why):
        super().__init__(f"an attention call has {total} tokens, but the family layout ({layout.describe()}) {why}; "
                         "FireFlow stops rather than record or replace the wrong tokens",
                         total=total, layout=layout.describe())


class RecordMismatch(FireFlowError):
    """A pass does not match the recorded inversion. data: what ('solver', 'grid', 'latent', 'inversion'),
    recorded, got."""

    def __init__(self, message, what, recorded, got):
        super().__init__(message, what=what, recorded=recorded, got=got)


class IncompleteRecording(FireFlowError):
    """Planned feature entries were never recorded (the selected blocks were not reached). data: missing, planned."""

    def __init__(self, missing, planned):
        super().__init__(f"{missing} of {planned} planned feature entries were not recorded: the selected blocks "
                         "were not reached", missing=missing, planned=planned)


class InversionFileError(FireFlowError):
    """A file that is not a valid FireFlow inversion of this format version. data: file, reason, and for
    reason 'too_large' size and limit (bytes)."""

    def __init__(self, file, message, reason="invalid", **data):
        super().__init__(f"{file}: {message}", file=file, reason=reason, **data)

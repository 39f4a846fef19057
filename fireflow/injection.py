"""The editing plan: which inversion evaluations feed which editing evaluations (ALGORITHM.md section 4).

Grid t_0 = 1 > ... > t_N = 0. Denoising step j walks [t_j -> t_{j+1}]; inversion step i = N - 1 - j walks the same
interval upwards. An injected editing evaluation reads what inversion computed on the same interval:
- MID of denoising step j  <- MID of inversion step N-1-j (same time, the interval's midpoint);
- FIRST of denoising step j <- the evaluation inversion used as its step-start velocity on that interval: its own
  FIRST call where it made one (RF-Edit's quirk: computed at the other end of the interval), else, for a solver that
  reuses the midpoint velocity (FireFlow), the previous inversion step's MID (the carried velocity).
Which calls are injected:
- `reference` reproduces the methods' own code, which keys features by (interval, call) and injects an editing
  evaluation exactly when the inversion evaluated the same call on the same interval. FireFlow: midpoint calls only
  for N >= 2 (inversion evaluates FIRST only on its first interval, the edit only on its first, and these are the same
  interval only when N = 1, where both calls of the one step are injected); RF-Solver family: both calls; Euler: its
  only call.
- `mid` and `both` are explicit choices (`both` also injects FIRST where the edit evaluates it and inversion did not,
  reading the carried velocity's source).
"""
import math
from dataclasses import dataclass
from typing import Dict, Tuple

import torch

from .errors import ChoiceError, MissingFeatureError, SettingError, StepsError, TextLengthError
from .masking import repeat_to_batch
from .solvers import FIRST, MID, get_solver

CALL_POLICIES = ("reference", "mid", "both")
FEATURES = ("q", "k", "v")
MODES = ("keep", "replace", "add")
TEXT_POLICIES = ("auto", "image_only", "full")


def _check_policy(solver, policy):
    rule = get_solver(solver)
    if policy not in CALL_POLICIES:
        raise ChoiceError("calls", policy, CALL_POLICIES)
    if policy != "reference" and MID not in rule.calls:
        raise SettingError("calls", policy, f"needs midpoint evaluations, which the {solver} solver does not make "
                                            "(use reference)")
    return rule


def source_of(step, call, steps, solver):
    """(inversion step, call) whose features the editing evaluation (step, call) receives."""
    rule = get_solver(solver)
    i = steps - 1 - step
    if call == MID or rule.evaluates(i, FIRST):
        return (i, call)
    return (i - 1, MID)  # the carried velocity: the previous inversion step's midpoint


def injection_map(steps, inject_steps, solver, policy) -> Dict[Tuple[int, int], Tuple[int, int]]:
    """{(editing step, call): (inversion step, call)} for the first `inject_steps` denoising steps."""
    rule = _check_policy(solver, policy)
    if inject_steps < 0 or inject_steps > steps:
        raise StepsError(inject_steps, steps, "grid")
    out = {}
    for j in range(inject_steps):
        for c in rule.calls:
            if not rule.evaluates(j, c):
                continue  # the edit makes no model call here
            if policy == "mid" and c != MID:
                continue
            if policy == "reference" and not rule.evaluates(steps - 1 - j, c):
                continue  # the reference code finds no feature recorded for this (interval, call)
            out[(j, c)] = source_of(j, c, steps, solver)
    return out


@dataclass(frozen=True)
class Strategy:
    """Per-feature mode (keep / replace / add) and ratio: q_edit = q_edit + ratio * q_inv for `add`."""
    q: str = "keep"
    k: str = "keep"
    v: str = "replace"
    q_ratio: float = 1.0
    k_ratio: float = 1.0
    v_ratio: float = 1.0

    def __post_init__(self):
        for f in FEATURES:
            mode, ratio = getattr(self, f), getattr(self, f + "_ratio")
            if mode not in MODES:
                raise ChoiceError(f"{f}_mode", mode, MODES)
            if not math.isfinite(float(ratio)):
                raise SettingError(f"{f}_ratio", ratio, "must be a finite number")

    @property
    def used(self):
        return tuple(f for f in FEATURES if getattr(self, f) != "keep")

    def describe(self):
        parts = [f"{getattr(self, f)}_{f}" + (f" x{getattr(self, f + '_ratio'):g}" if getattr(self, f) == "add" else "")
                 for f in self.used]
        return " + ".join(parts) or "nothing"


def align(current, stored, layout, text_policy):
    """Bring a recorded tensor to the current batch, device and dtype; decide whether its text tokens apply.

    current: [B, H, S, D], a whole attention sequence laid out as `layout` (a TokenLayout) says; stored: the
    canonical [B_src, H, T_src + L, D] (text, then image) or [B_src, H, L, D] (image tokens only).
    Text tokens apply when the policy allows and both prompts have the same length (T_src == T_cur).
    Returns (stored tensor, include_text).
    """
    if stored.shape[0] != current.shape[0]:
        if current.shape[0] % stored.shape[0]:
            raise SettingError("batch", current.shape[0], f"must be a multiple of the recorded batch {stored.shape[0]}")
        stored = stored.repeat(current.shape[0] // stored.shape[0], 1, 1, 1)
    stored = stored.to(device=current.device, dtype=current.dtype)
    text_now, text_then = layout.text_tokens(current.shape[2]), stored.shape[2] - layout.image
    if text_then == text_now and text_policy != "image_only":
        return stored, True
    if text_policy == "full":
        raise TextLengthError(text_then, text_now)
    return stored, False


def canonical(seq, layout, include_text):
    """[text | image] (or [image]) of one attention sequence [B, H, S, D]; reference tokens are left out."""
    text, image = layout.split(seq.shape[2])
    if not include_text:
        return seq[:, :, image]
    if layout.canonical:
        return seq
    return torch.cat([seq[:, :, text], seq[:, :, image]], dim=2)


def combine(current, stored, mode, ratio, include_text, layout, weights=None):
    """replace: the recorded values; add: current + ratio * recorded; on text and image tokens or on image tokens
    only. Reference tokens are never touched. weights: None, or per image token [B, L] in [0, 1] (a masked edit's
    inject_region): image token i then gets (1 - w_i) current + w_i recorded, or current + ratio w_i recorded."""
    S = current.shape[2]
    if include_text and layout.canonical and weights is None:
        return stored if mode == "replace" else current + ratio * stored
    text, image = layout.split(S)
    out = current.clone()
    parts = [(image, stored[:, :, stored.shape[2] - layout.image:], weights)]
    if include_text:
        parts.append((text, stored[:, :, :stored.shape[2] - layout.image], None))
    for where, rec, w in parts:
        if w is None:
            out[:, :, where] = rec if mode == "replace" else out[:, :, where] + ratio * rec
            continue
        w = repeat_to_batch(w.to(current.device, current.dtype), current.shape[0])[:, None, :, None]
        cur = out[:, :, where]
        out[:, :, where] = (1 - w) * cur + w * rec if mode == "replace" else cur + ratio * w * rec  # exact at 0, 1
    return out


def apply_strategy(strategy, q, k, v, stored, layout, text_policy, weights=None):
    """Return (q, k, v, text_replaced) for one injected attention call (one CFG branch).

    stored: {"q"|"k"|"v": tensor} recorded at the matching inversion evaluation in the same block.
    weights: optional per-image-token weights [B, L] (see `combine`).
    """
    cur = {"q": q, "k": k, "v": v}
    text = True
    missing = [f for f in strategy.used if f not in stored]
    if missing:
        raise MissingFeatureError(missing, tuple(stored))
    for f in strategy.used:
        rec, include_text = align(cur[f], stored[f], layout, text_policy)
        cur[f] = combine(cur[f], rec, getattr(strategy, f), getattr(strategy, f + "_ratio"), include_text, layout,
                         weights)
        text = text and include_text
    return cur["q"], cur["k"], cur["v"], text

"""The editing plan: which inversion evaluations feed which editing evaluations (ALGORITHM.md section 4).

Grid t_0 = 1 > ... > t_N = 0. Denoising step j walks [t_j -> t_{j+1}]; inversion step i = N - 1 - j walks the same
interval upwards. An injected editing evaluation reads what inversion computed on the same interval:
- MID of denoising step j  <- MID of inversion step N-1-j (same time, the interval's midpoint);
- FIRST of denoising step j <- the evaluation inversion used as its step-start velocity on that interval: its own
  FIRST call for RF-Solver-type solvers (RF-Edit's quirk: computed at the other end of the interval), and for
  FireFlow the previous step's MID (the carried velocity; FIRST only on inversion step 0).
Which calls are injected: `reference` reproduces each method's own code (FireFlow: midpoint calls only; RF-Solver
family: both calls; Euler: its only call), `mid` and `both` are explicit choices.
"""
import math
from dataclasses import dataclass
from typing import Dict, Tuple

from .solvers import FIRST, MID, get_solver

CALL_POLICIES = ("reference", "mid", "both")
FEATURES = ("q", "k", "v")
MODES = ("keep", "replace", "add")
TEXT_POLICIES = ("auto", "image_only", "full")


def injected_calls(solver, policy):
    """The calls (FIRST/MID) of each injected denoising step, for a solver and a call policy."""
    rule = get_solver(solver)
    if policy not in CALL_POLICIES:
        raise ValueError(f"unknown call policy {policy!r}; choose one of {', '.join(CALL_POLICIES)}")
    if policy == "reference":
        if solver == "fireflow":
            return (MID,)
        return tuple(rule.calls)
    if MID not in rule.calls:
        raise ValueError(f"the {solver} solver has no midpoint evaluations; use calls = reference")
    return (MID,) if policy == "mid" else (FIRST, MID)


def source_of(step, call, steps, solver):
    """(inversion step, call) whose features the editing evaluation (step, call) receives."""
    i = steps - 1 - step
    if call == MID:
        return (i, MID)
    if solver == "fireflow" and i > 0:
        return (i - 1, MID)
    return (i, FIRST)


def injection_map(steps, inject_steps, solver, policy) -> Dict[Tuple[int, int], Tuple[int, int]]:
    """{(editing step, call): (inversion step, call)} for the first `inject_steps` denoising steps."""
    if inject_steps < 0 or inject_steps > steps:
        raise ValueError(f"inject_steps ({inject_steps}) must be between 0 and the number of steps ({steps})")
    calls = injected_calls(solver, policy)
    out = {}
    for j in range(inject_steps):
        for c in calls:
            if solver == "fireflow" and c == FIRST and j > 0:
                continue  # FireFlow evaluates the model at a step's start only on the pass's first step
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
                raise ValueError(f"{f}_mode must be one of {', '.join(MODES)}; got {mode!r}")
            if not math.isfinite(float(ratio)):
                raise ValueError(f"{f}_ratio must be a finite number; got {ratio}")

    @property
    def used(self):
        return tuple(f for f in FEATURES if getattr(self, f) != "keep")

    def describe(self):
        parts = [f"{getattr(self, f)}_{f}" + (f" x{getattr(self, f + '_ratio'):g}" if getattr(self, f) == "add" else "")
                 for f in self.used]
        return " + ".join(parts) or "nothing"


def align(current, stored, image_tokens, text_policy):
    """Bring a recorded tensor to the current batch, device and dtype; decide whether its text tokens apply.

    current: [B, H, T_cur + L, D]; stored: [B_src, H, T_src + L, D] or [B_src, H, L, D] (image tokens only).
    Text tokens apply when the policy allows and both sequences have the same length (T_src == T_cur).
    Returns (stored tensor, include_text).
    """
    if stored.shape[0] != current.shape[0]:
        if current.shape[0] % stored.shape[0]:
            raise ValueError(f"recorded batch {stored.shape[0]} does not divide the editing batch {current.shape[0]}")
        stored = stored.repeat(current.shape[0] // stored.shape[0], 1, 1, 1)
    stored = stored.to(device=current.device, dtype=current.dtype)
    if stored.shape[2] == current.shape[2] and text_policy != "image_only":
        return stored, True
    if text_policy == "full":
        raise ValueError(f"text_tokens = full needs equal prompt lengths: recorded {stored.shape[2] - image_tokens}, "
                         f"now {current.shape[2] - image_tokens} tokens; use text_tokens = auto or image_only")
    return stored, False


def combine(current, stored, mode, ratio, include_text, image_tokens):
    """replace: the recorded values; add: current + ratio * recorded; on all tokens or on image tokens only."""
    if include_text:
        return stored if mode == "replace" else current + ratio * stored
    out = current.clone()
    img = stored[:, :, -image_tokens:]
    out[:, :, -image_tokens:] = img if mode == "replace" else out[:, :, -image_tokens:] + ratio * img
    return out


def apply_strategy(strategy, q, k, v, stored, image_tokens, text_policy):
    """Return (q, k, v, text_replaced) for one injected attention call.

    stored: {"q"|"k"|"v": tensor} recorded at the matching inversion evaluation in the same block.
    """
    cur = {"q": q, "k": k, "v": v}
    text = True
    for f in strategy.used:
        if f not in stored:
            raise ValueError(f"{strategy.describe()} needs {f.upper()} but it was not recorded: enable it in the "
                             "Attention Feature Cache")
        rec, include_text = align(cur[f], stored[f], image_tokens, text_policy)
        cur[f] = combine(cur[f], rec, getattr(strategy, f), getattr(strategy, f + "_ratio"), include_text,
                         image_tokens)
        text = text and include_text
    return cur["q"], cur["k"], cur["v"], text

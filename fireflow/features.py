"""The attention-feature store: what is recorded during inversion for the edit to consume (ALGORITHM.md 4-5).

Keys are integers (inversion step, call, block kind, block index, feature), never float times. Only entries that the
edit will consume are recorded. Storage dtype and device are chosen up front; the bytes held are counted.
"""
import dataclasses
import itertools
from dataclasses import dataclass
from typing import Dict, Tuple

import torch

from .errors import (BlockSelectionError, BudgetError, ChoiceError, FireFlowError, IncompleteRecording,
                     SettingError, StepsError)
from .injection import CALL_POLICIES, FEATURES, TEXT_POLICIES, canonical, injection_map

DOUBLE, SINGLE = 0, 1
KIND_NAMES = {DOUBLE: "double", SINGLE: "single"}
STORAGE_DTYPES = {"auto": None, "model": None, "fp16": torch.float16, "bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn}
STORAGE_DEVICES = ("auto", "gpu", "cpu")
FP8_MAX = 448.0  # largest finite float8_e4m3fn


def parse_blocks(spec, count, kind):
    """'all', 'none' or '' (no blocks), or comma-separated indices and inclusive ranges: '20-37', '0,2,5-7'."""
    text = (spec or "").strip().lower()
    field = f"{kind}_blocks"
    if text in ("", "none"):
        return ()
    if text == "all":
        return tuple(range(count))
    out = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise BlockSelectionError(f"{field} {spec!r}: '{part}' is not an index or a range like 20-37 (use 'all', "
                                      "'none', or e.g. '0-9, 20-37')", field, spec, "syntax", count)
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b:
            raise BlockSelectionError(f"{field} {spec!r}: the range '{part}' runs backwards; write {b}-{a}",
                                      field, spec, "backwards", count)
        if b >= count:
            raise BlockSelectionError(f"{field} {spec!r}: this model has {count} {kind}-stream blocks "
                                      f"(0-{count - 1})", field, spec, "out_of_range", count)
        out.update(range(a, b + 1))
    return tuple(sorted(out))


@dataclass(frozen=True)
class CacheSpec:
    """What to record for an edit (independent of the model): features, blocks, steps, calls, storage, budget."""
    features: Tuple[str, ...] = ("v",)
    single_blocks: str = "all"
    double_blocks: str = ""
    inject_steps: int = 1
    calls: str = "reference"
    inject_until_sigma: float = 0.0  # > 0: inject the editing steps that start at sigma >= this (set per grid)
    text_tokens: str = "auto"
    device: str = "auto"
    dtype: str = "auto"  # the family's choice: model for images, fp8 for video (nodes/families.py)
    max_gb: float = 8.0

    def __post_init__(self):
        if not self.features or any(f not in FEATURES for f in self.features):
            raise SettingError("features", list(self.features), "must name at least one of q, k, v")
        for name, value, allowed in (("calls", self.calls, CALL_POLICIES), ("text_tokens", self.text_tokens,
                                     TEXT_POLICIES), ("device", self.device, STORAGE_DEVICES),
                                     ("dtype", self.dtype, tuple(STORAGE_DTYPES))):
            if value not in allowed:
                raise ChoiceError(name, value, allowed)
        if int(self.inject_steps) < 1:
            raise SettingError("inject_steps", self.inject_steps, "must be at least 1 to record anything")
        if not (0 <= float(self.inject_until_sigma) < 1):
            raise SettingError("inject_until_sigma", self.inject_until_sigma, "must be in [0, 1); 0 uses inject_steps")
        if not (0 < float(self.max_gb) < float("inf")):
            raise SettingError("max_gb", self.max_gb, "must be a positive number")

    def for_grid(self, sigmas):
        """This spec with inject_steps set from inject_until_sigma on a descending grid (t_0 = 1 > ... > t_N = 0):
        the editing steps that start at sigma >= inject_until_sigma. Unchanged when inject_until_sigma is 0."""
        s = float(self.inject_until_sigma)
        if s <= 0:
            return self
        n = sum(1 for t in list(sigmas)[:-1] if float(t) >= s)
        if n == 0:
            raise SettingError("inject_until_sigma", s, f"is above every editing step of this grid (its first sigma is "
                                                        f"{float(sigmas[0]):.4g}): lower it")
        return dataclasses.replace(self, inject_steps=n)

    def check_budget(self, block_counts, steps, solver, geometry, model_dtype, branches=(0,)):
        """Plan and estimate (bytes); raise BudgetError before recording when over max_gb, with settings that fit.

        block_counts = (double, single) of the model; geometry = (batch, heads, head_dim, text_tokens, image_tokens).
        """
        plan = self.resolve(block_counts, steps, solver, branches)
        estimate = plan.estimate_bytes(*geometry, model_dtype)
        limit = self.max_gb * 2 ** 30
        if estimate <= limit:
            return plan, estimate
        raise BudgetError(estimate, limit, self._cheaper(block_counts, steps, solver, geometry, model_dtype, limit,
                                                         branches), device=self.device)

    def _cheaper(self, block_counts, steps, solver, geometry, model_dtype, limit, branches=(0,)):
        """Each single change that lowers the estimate, and, when none of them fits, the combination of the fewest
        changes that fits (or all of them, the least this spec can get to)."""
        n_single = block_counts[1]
        knobs = [{"dtype": "fp8"}, {"text_tokens": "image_only"}, {"inject_steps": 1}]
        if n_single > 1:  # the later half of the single blocks; when that is the selection already, the last quarter
            half = {"single_blocks": f"{n_single // 2}-{n_single - 1}", "double_blocks": "none"}
            if all(getattr(self, k) == v for k, v in half.items()) and n_single >= 4:
                half = {"single_blocks": f"{n_single - n_single // 4}-{n_single - 1}", "double_blocks": "none"}
            knobs.append(half)
        current = self.resolve(block_counts, steps, solver, branches).estimate_bytes(*geometry, model_dtype)

        def price(changes):
            alt = dataclasses.replace(self, **changes)
            return alt.resolve(block_counts, steps, solver, branches).estimate_bytes(*geometry, model_dtype)

        priced = []
        for r in range(1, len(knobs) + 1):
            for combo in itertools.combinations(knobs, r):
                changes = {k: v for c in combo for k, v in c.items()}
                if all(getattr(self, k) == v for k, v in changes.items()):
                    continue
                cost = price(changes)
                if cost < current:
                    priced.append((r, changes, cost))
        singles = [(c, b, b <= limit) for r, c, b in priced if r == 1]
        if any(f for _, _, f in singles):
            return singles
        fitting = sorted((r, b, i) for i, (r, c, b) in enumerate(priced) if b <= limit)
        if fitting:
            best = priced[fitting[0][2]]
        elif priced:
            best = min(priced, key=lambda p: p[2])
        else:
            return singles
        if best[0] > 1:
            singles.append((best[1], best[2], best[2] <= limit))
        return singles

    def resolve(self, block_counts, steps, solver, branches=(0,)):
        """The concrete plan for a model with these (double, single) block counts, `steps` steps and a solver.

        branches: the CFG branches recorded, (0,) for the prompt alone (cfg 1), (0, 1) with the negative too."""
        if self.inject_steps > steps:
            raise StepsError(self.inject_steps, steps, "grid")
        n_double, n_single = block_counts
        blocks = tuple((DOUBLE, i) for i in parse_blocks(self.double_blocks, n_double, "double")) + \
            tuple((SINGLE, i) for i in parse_blocks(self.single_blocks, n_single, "single"))
        if not blocks:
            raise BlockSelectionError("no blocks selected", None, "", "empty")
        inj = injection_map(steps, self.inject_steps, solver, self.calls)
        branches = tuple(sorted({int(b) for b in branches}))
        if not branches or any(b not in (0, 1) for b in branches):
            raise SettingError("branches", branches, "must be (0,) or (0, 1): the prompt, and the negative with CFG")
        return RecordPlan(spec=self, blocks=blocks, steps=steps, solver=solver,
                          injection=tuple(sorted(inj.items())), block_counts=(int(n_double), int(n_single)),
                          branches=branches)


@dataclass(frozen=True)
class RecordPlan:
    """A CacheSpec resolved against a model and a grid: blocks, and {(edit step, call): (inversion step, call)}."""
    spec: CacheSpec
    blocks: Tuple[Tuple[int, int], ...]
    steps: int
    solver: str
    injection: Tuple[Tuple[Tuple[int, int], Tuple[int, int]], ...]
    block_counts: Tuple[int, int] = (0, 0)
    branches: Tuple[int, ...] = (0,)

    @property
    def sources(self):
        """Inversion evaluations (step, call) whose features are consumed."""
        return frozenset(src for _, src in self.injection)

    def injection_for(self, inject_steps):
        return {dst: src for dst, src in self.injection if dst[0] < inject_steps}

    @property
    def entries(self):
        return len(self.sources) * len(self.blocks) * len(self.spec.features) * len(self.branches)

    def keys(self):
        """Every (inversion step, call, block kind, block, feature index, branch) the store must hold."""
        return {(s, c, k, b, FEATURES.index(f), br) for s, c in self.sources for k, b in self.blocks
                for f in self.spec.features for br in self.branches}

    def element_bytes(self, model_dtype):
        dt = STORAGE_DTYPES[self.spec.dtype] or model_dtype
        return torch.empty((), dtype=dt).element_size()

    def estimate_bytes(self, batch, heads, head_dim, text_tokens, image_tokens, model_dtype):
        tokens = image_tokens + (0 if self.spec.text_tokens == "image_only" else text_tokens)
        return self.entries * batch * heads * tokens * head_dim * self.element_bytes(model_dtype)

    def describe_blocks(self):
        parts = []
        for kind in (DOUBLE, SINGLE):
            idx = [i for k, i in self.blocks if k == kind]
            if idx:
                parts.append(f"{KIND_NAMES[kind]} {_ranges(idx)}")
        return ", ".join(parts)


def _ranges(idx):
    out, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None]):
        if b != a + 1:
            out.append(f"{start}-{a}" if a != start else f"{a}")
            start = b
    return ",".join(out)


class FeatureStore:
    """Recorded tensors keyed (inversion step, call, block kind, block index, feature index, CFG branch); frozen once
    filled.

    Tensors are kept as [B, heads, tokens, head_dim] in the storage dtype, tokens in canonical order ([text | image],
    or [image] alone; fireflow/tokens.py). fp8 tensors carry one scale each, kept as a 0-d float32 tensor on the
    device that computed it (reading it back to the host would synchronise every call).
    """

    def __init__(self, plan: RecordPlan, image_tokens: int, device, model_dtype):
        self.plan = plan
        self.image_tokens = image_tokens
        self.text_tokens: Dict[int, int] = {}  # per branch, as seen in the attention sequence
        self.references = ""  # fingerprint of the reference latents the source pass saw (set by the host)
        self.device = torch.device(device)
        self.model_dtype = model_dtype
        self._tensors: Dict[tuple, torch.Tensor] = {}
        self._scales: Dict[tuple, torch.Tensor] = {}
        self._frozen = False

    def wants(self, step, call):
        return not self._frozen and (step, call) in self.plan.sources

    def put(self, step, call, kind, block, q, k, v, layout, branch=0):
        """Record the features of one attention call of one CFG branch: [B, heads, S, head_dim] laid out as
        `layout` (a TokenLayout) says. Branches the plan does not record are ignored."""
        if self._frozen:
            raise RuntimeError("the feature store is frozen")
        if branch not in self.plan.branches:
            return
        if layout.image != self.image_tokens:
            raise FireFlowError(f"the attention call has {layout.image} image tokens; the store was planned for "
                                f"{self.image_tokens}")
        self.text_tokens[branch] = layout.text_tokens(v.shape[2])
        with_text = self.plan.spec.text_tokens != "image_only"
        for f in self.plan.spec.features:
            t = canonical({"q": q, "k": k, "v": v}[f].detach(), layout, with_text)
            self._store((step, call, kind, block, FEATURES.index(f), branch), t)

    def _store(self, key, t):
        dtype = STORAGE_DTYPES[self.plan.spec.dtype]
        if dtype == torch.float8_e4m3fn:
            scale = t.abs().amax().float().clamp_min(1e-12) / FP8_MAX
            self._scales[key] = scale
            t = (t.float() / scale).to(torch.float8_e4m3fn)
        out = t.to(device=self.device, dtype=dtype or t.dtype, copy=True).contiguous()
        if self.device.type == "cpu" and torch.cuda.is_available():
            out = out.pin_memory()
        self._tensors[key] = out

    def freeze(self):
        missing = self.plan.entries - len(self._tensors)
        if missing:
            raise IncompleteRecording(missing, self.plan.entries)
        self._frozen = True
        return self

    def branch_for(self, branch):
        """The recorded branch an editing branch reads: its own when recorded, else the prompt's (branch 0)."""
        return branch if branch in self.plan.branches else 0

    def get(self, step, call, kind, block, branch=0):
        """{feature name: tensor} for one block at one inversion evaluation (dequantised when stored in fp8)."""
        out = {}
        branch = self.branch_for(branch)
        for f in self.plan.spec.features:
            key = (step, call, kind, block, FEATURES.index(f), branch)
            t = self._tensors[key]
            scale = self._scales.get(key)
            if scale is not None:  # dequantise where the scale lives (the compute device): moves 1 byte per value
                t = t.to(device=scale.device, dtype=self.model_dtype) * scale
            out[f] = t
        return out

    @property
    def nbytes(self):
        return sum(t.numel() * t.element_size() for t in self._tensors.values())

    def items(self):
        return self._tensors.items()

    def __deepcopy__(self, memo):
        return self

    def scales(self):
        """{key: float} fp8 scales (reads them back to the host: for saving, not for the sampling loop)."""
        return {k: float(v) for k, v in self._scales.items()}

    @classmethod
    def restore(cls, plan, image_tokens, text_tokens, device, model_dtype, tensors, scales):
        """A frozen store from saved tensors (see storage.py); refuses missing or unexpected entries."""
        store = cls(plan, image_tokens, device, model_dtype)
        store.text_tokens = {int(b): int(t) for b, t in dict(text_tokens).items()}
        wanted = plan.keys()
        if set(tensors) != wanted:
            raise FireFlowError(f"{len(tensors)} feature tensors where the plan needs {len(wanted)}")
        if set(store.text_tokens) != set(plan.branches):
            raise FireFlowError("the text token counts do not match the recorded branches")
        fp8 = STORAGE_DTYPES[plan.spec.dtype] == torch.float8_e4m3fn
        if set(scales) != (wanted if fp8 else set()) or not all(0 < float(v) < float("inf") for v in scales.values()):
            raise FireFlowError("the fp8 scales do not match the feature tensors")
        for key, t in tensors.items():
            store._tensors[key] = t.to(device)
        store._scales = {k: torch.tensor(float(v), dtype=torch.float32, device=device) for k, v in scales.items()}
        store._frozen = True
        return store

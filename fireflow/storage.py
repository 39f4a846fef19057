"""Saving and loading an inversion (inverted latent + record + features) as safetensors. No pickle anywhere.

Layout: tensor "latent" plus one tensor per feature entry named "f.{step}.{call}.{kind}.{block}.{feature}.{branch}",
and the trajectory a masked edit replays as "trajectory.state.{k}" (k = 0..N) and "trajectory.mid.{k}";
metadata (strings): format, format_version, record (JSON), plan (JSON), fp8 scales (JSON).
Loading validates everything before building objects: format and version, sizes, names, shapes, dtypes.
"""
import json
import os

import torch

from .errors import FireFlowError, InversionFileError
from .features import STORAGE_DTYPES, CacheSpec, FeatureStore, RecordPlan
from .masking import Trajectory
from .record import InversionRecord

FORMAT = "fireflow-inversion"
# 2: the plan records the model's block counts, so a loaded plan can be re-derived and checked
# 3: features keyed per CFG branch; the record names the model family, CFG scale and reference latents
# 4: the trajectory (masked edits) and RF-Inversion's forward control; format 3 files still load, without a trajectory
FORMAT_VERSION = 4
READABLE_VERSIONS = ("3", "4")
DEFAULT_MAX_BYTES = 16 * 2 ** 30
TRAJECTORY = "trajectory"
_DTYPE_NAMES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _key(step, call, kind, block, feat, branch):
    return f"f.{step}.{call}.{kind}.{block}.{feat}.{branch}"


def save_inversion(path, latent, record: InversionRecord):
    """Write the inverted latent, the record and its features (if any) to `path` (safetensors)."""
    from safetensors.torch import save_file
    tensors = {"latent": latent.detach().to("cpu").contiguous()}
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "record": json.dumps({
        "grid": list(record.grid), "solver": record.solver, "latent_shape": list(record.latent_shape),
        "latent_fingerprint": record.latent_fingerprint, "model_fingerprint": record.model_fingerprint,
        "guidance": record.guidance, "nfe": record.nfe, "family": record.family, "cfg": record.cfg,
        "references": record.references, "experts": list(record.experts),
        "expert_boundary": record.expert_boundary, "expert_steps": record.expert_steps, "control": record.control})}
    if record.trajectory is not None:
        for kind, items in (("state", record.trajectory.states), ("mid", record.trajectory.mids)):
            for k, t in enumerate(items):
                if t is not None:
                    tensors[f"{TRAJECTORY}.{kind}.{k}"] = t.detach().to("cpu").contiguous()
    store = record.features
    if store is not None:
        plan = store.plan
        meta["plan"] = json.dumps({
            "spec": {**plan.spec.__dict__, "features": list(plan.spec.features)},
            "blocks": [list(b) for b in plan.blocks], "steps": plan.steps, "solver": plan.solver,
            "injection": [[list(d), list(s)] for d, s in plan.injection], "block_counts": list(plan.block_counts),
            "branches": list(plan.branches), "image_tokens": store.image_tokens,
            "text_tokens": {str(b): t for b, t in sorted(store.text_tokens.items())}, "references": store.references, "model_dtype": str(store.model_dtype).removeprefix("torch.")})
        meta["scales"] = json.dumps({_key(*k): v for k, v in store.scales().items()})
        for key, t in store.items():
            tensors[_key(*key)] = t.to("cpu").contiguous()
    save_file(tensors, str(path), metadata=meta)


def _fail(path, why, reason="invalid", **data):
    raise InversionFileError(os.path.basename(str(path)), why, reason, **data)


def load_inversion(path, device="cpu", max_bytes=DEFAULT_MAX_BYTES):
    """Read and validate a saved inversion; returns (latent tensor, InversionRecord).

    Any problem with the file's contents raises InversionFileError (a ValueError) naming the file and the fault.
    """
    try:
        return _load(path, device, max_bytes)
    except InversionFileError:
        raise
    except (OSError, MemoryError):
        raise
    except Exception as e:  # a malformed file can upset safetensors or torch in many ways; report, never crash
        _fail(path, f"could not be read as a FireFlow inversion ({type(e).__name__}: {e})")


def _load(path, device, max_bytes):
    from safetensors import safe_open
    size = os.path.getsize(path)
    if size > max_bytes:
        _fail(path, f"is {size / 2 ** 30:.2f} GiB, over the {max_bytes / 2 ** 30:.2f} GiB limit", "too_large",
              size=size, limit=max_bytes)
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except Exception as e:  # safetensors raises its own error types for malformed headers
        _fail(path, f"is not a readable safetensors file ({type(e).__name__}: {e})")
    with handle as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            _fail(path, "is not a FireFlow inversion file (no fireflow-inversion metadata)")
        if meta.get("format_version") not in READABLE_VERSIONS:
            _fail(path, f"has format version {meta.get('format_version')!r}; this version reads formats "
                        f"{' and '.join(READABLE_VERSIONS)}: invert the image again", "version")
        try:
            rec = json.loads(meta["record"])
            plan_meta = json.loads(meta["plan"]) if "plan" in meta else None
            scales = json.loads(meta.get("scales", "{}"))
            record = InversionRecord(
                grid=tuple(float(v) for v in rec["grid"]), solver=str(rec["solver"]),
                latent_shape=tuple(int(v) for v in rec["latent_shape"]),
                latent_fingerprint=str(rec["latent_fingerprint"]), model_fingerprint=str(rec["model_fingerprint"]),
                guidance=None if rec["guidance"] is None else float(rec["guidance"]), nfe=int(rec["nfe"]),
                family=str(rec["family"]), cfg=float(rec["cfg"]), references=str(rec["references"]),
                experts=tuple(str(v) for v in rec.get("experts", ())),
                expert_boundary=float(rec.get("expert_boundary", -1.0)), expert_steps=int(rec.get("expert_steps", -1)),
                control=str(rec.get("control", "")))
        except (KeyError, TypeError, ValueError) as e:
            _fail(path, f"has damaged metadata ({type(e).__name__}: {e})")
        names = set(f.keys())
        if "latent" not in names:
            _fail(path, "holds no latent")
        latent = f.get_tensor("latent")
        if tuple(latent.shape) != record.latent_shape or latent.dtype != torch.float32 or not torch.isfinite(latent).all():
            _fail(path, f"latent {list(latent.shape)} {latent.dtype} does not match its record "
                        f"{list(record.latent_shape)} or is not finite")
        path_names = {n for n in names if n.startswith(TRAJECTORY + ".")}
        trajectory = _load_trajectory(path, f, path_names, record) if path_names else None
        names = names - path_names
        features = None
        if plan_meta is not None:
            features = _load_features(path, f, names - {"latent"}, plan_meta, scales, record, device)
        elif names != {"latent"}:
            _fail(path, "holds feature tensors but no plan")
    import dataclasses
    return latent, dataclasses.replace(record, features=features, trajectory=trajectory)


def _load_trajectory(path, f, names, record):
    """The trajectory tensors: a state for every grid position, midpoints only inside the grid, each shaped like the
    latent, fp32 or fp64, finite."""
    states, mids = [None] * (record.steps + 1), [None] * record.steps
    for name in sorted(names):
        parts = name.split(".")
        if len(parts) != 3 or parts[1] not in ("state", "mid") or not parts[2].isdigit():
            _fail(path, f"holds an unexpected tensor {name!r}")
        k, into = int(parts[2]), states if parts[1] == "state" else mids
        if k >= len(into):
            _fail(path, f"holds trajectory tensor {name!r} beyond its {record.steps} steps")
        t = f.get_tensor(name)
        if tuple(t.shape) != record.latent_shape or t.dtype not in (torch.float32, torch.float64) or \
                not torch.isfinite(t).all():
            _fail(path, f"trajectory tensor {name} {list(t.shape)} {t.dtype} does not match its latent "
                        f"{list(record.latent_shape)} or is not finite")
        into[k] = t
    if any(t is None for t in states):
        _fail(path, "holds an incomplete trajectory (a grid state is missing)")
    return Trajectory(tuple(states), tuple(mids))


def _load_features(path, f, names, meta, scales, record, device):
    try:
        spec = CacheSpec(**{**meta["spec"], "features": tuple(meta["spec"]["features"])})
        plan = RecordPlan(spec=spec, blocks=tuple((int(k), int(b)) for k, b in meta["blocks"]),
                          steps=int(meta["steps"]), solver=str(meta["solver"]),
                          injection=tuple(((int(d[0]), int(d[1])), (int(s[0]), int(s[1]))) for d, s in meta["injection"]),
                          block_counts=tuple(int(n) for n in meta["block_counts"]),
                          branches=tuple(int(b) for b in meta["branches"]))
        image_tokens = int(meta["image_tokens"])
        text_tokens = {int(b): int(t) for b, t in dict(meta["text_tokens"]).items()}
        model_dtype = _DTYPE_NAMES[meta["model_dtype"]]
        expected = spec.resolve(plan.block_counts, plan.steps, plan.solver, plan.branches)  # what the spec gives
    except (KeyError, TypeError, ValueError) as e:
        _fail(path, f"has a damaged feature plan ({type(e).__name__}: {e})")
    if plan.steps != record.steps or plan.solver != record.solver:
        _fail(path, "its feature plan does not match its record (steps or solver)")
    if plan != expected:
        _fail(path, "its feature plan (blocks or injected evaluations) is not what its settings give; the file was "
                    "altered or written by another version: invert the image again")
    want_dtype = STORAGE_DTYPES[spec.dtype] or model_dtype
    tensors = {}
    shape0 = None
    for name in sorted(names):
        parts = name.split(".")
        if len(parts) != 7 or parts[0] != "f" or not all(p.isdigit() for p in parts[1:]):
            _fail(path, f"holds an unexpected tensor {name!r}")
        t = f.get_tensor(name)
        text = 0 if spec.text_tokens == "image_only" else text_tokens.get(int(parts[6]), -image_tokens - 1)
        tokens = image_tokens + text
        if t.ndim != 4 or t.shape[0] != record.latent_shape[0] or t.shape[2] != tokens or t.dtype != want_dtype:
            _fail(path, f"tensor {name} has shape {list(t.shape)} {t.dtype}; expected [batch "
                        f"{record.latent_shape[0]}, heads, {tokens} tokens, head_dim] {want_dtype}")
        if shape0 is not None and (t.shape[:2], t.shape[3]) != (shape0[:2], shape0[3]):
            _fail(path, f"tensor {name} has shape {list(t.shape)} unlike the others {list(shape0)}")
        shape0 = t.shape
        tensors[tuple(int(p) for p in parts[1:])] = t
    try:
        scale_map = {tuple(int(p) for p in k.split(".")[1:]): float(v) for k, v in scales.items()}
        store = FeatureStore.restore(plan, image_tokens, text_tokens, device, model_dtype, tensors, scale_map)
        store.references = str(meta.get("references", ""))
        return store
    except (FireFlowError, TypeError, ValueError) as e:
        _fail(path, f"has inconsistent features ({e})")

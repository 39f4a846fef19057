"""The inversion record: what an inversion did, so the edit can walk the same grid with the same solver.

Immutable (ComfyUI caches node outputs and hands the same object to every consumer). Host-free.
"""
import hashlib
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .errors import RecordMismatch


def tensor_fingerprint(t: torch.Tensor) -> str:
    """Short content hash of a tensor (shape, dtype and bytes), for telling latents apart."""
    t = t.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class InversionRecord:
    """Grid (descending, t_0 = start of the edit ... t_N = 0), solver, latent geometry and fingerprints."""
    grid: Tuple[float, ...]
    solver: str
    latent_shape: Tuple[int, ...]
    latent_fingerprint: str
    model_fingerprint: str
    guidance: Optional[float]
    nfe: int
    features: Optional[object] = None  # a frozen FeatureStore when an Attention Feature Cache was connected
    family: str = ""  # the model family's name (family adapters), for messages
    cfg: float = 1.0  # CFG scale of the inversion (1: the prompt alone)
    references: str = ""  # fingerprint of the source conditioning's reference latents ("" when it has none)
    experts: Tuple[str, ...] = ()  # two-expert models (Wan 2.2 A14B): (high-noise, low-noise) model fingerprints
    expert_boundary: float = -1.0  # the noise level where the experts switch
    expert_steps: int = -1  # edit steps (from t_0) on the high-noise expert; the rest run on the low-noise one
    trajectory: Optional[object] = None  # fireflow.masking.Trajectory: the states a masked edit replays
    control: str = ""  # RF-Inversion's forward control, when one steered the inversion (its description)

    @property
    def steps(self) -> int:
        return len(self.grid) - 1

    def grid_tensor(self) -> torch.Tensor:
        return torch.tensor(self.grid, dtype=torch.float64)

    def describe(self) -> str:
        g = ", ".join(f"{v:.4f}" for v in self.grid)
        cfg = f", cfg {self.cfg:g}" if self.cfg != 1 else ""
        family = f"{self.family}, " if self.family else ""
        experts = (f", experts switch at sigma {self.expert_boundary:g} ({self.expert_steps} high-noise + "
                   f"{self.steps - self.expert_steps} low-noise steps)" if self.experts else "")
        control = f", {self.control}" if self.control else ""
        return (f"{family}{self.solver}, {self.steps} steps, {self.nfe} evaluations{cfg}{experts}{control}, latent "
                f"{list(self.latent_shape)}, grid [{g}]")

    def expert_of(self, fingerprint) -> Optional[str]:
        """'high' or 'low' for one expert of a two-expert inversion, 'both' for a one-model inversion (or two equal
        experts), None for a model the inversion did not use."""
        if not self.experts:
            return "both" if fingerprint == self.model_fingerprint else None
        if self.experts[0] == self.experts[1] == fingerprint:
            return "both"
        return {self.experts[0]: "high", self.experts[1]: "low"}.get(fingerprint)

    def expert_span(self, expert) -> range:
        """Edit steps an expert ('high', 'low', 'both') walks."""
        if not self.experts or expert == "both":
            return range(0, self.steps)
        return range(0, self.expert_steps) if expert == "high" else range(self.expert_steps, self.steps)

    def check_grid(self, grid, solver) -> None:
        """Refuse a sampling grid or solver other than the recorded ones (features are keyed by step)."""
        g = tuple(float(v) for v in grid)
        if solver != self.solver:
            raise RecordMismatch(f"the inversion used the {self.solver} solver but this pass uses {solver}; features "
                                 "are keyed by evaluation, so both passes need the same solver", "solver",
                                 self.solver, solver)
        if len(g) != len(self.grid) or max(abs(a - b) for a, b in zip(g, self.grid)) > 1e-6:
            raise RecordMismatch(f"this pass walks {len(g) - 1} steps on another grid than the inversion "
                                 f"({self.steps} steps)", "grid", self.grid, g)

    def check_latent(self, shape) -> None:
        """Refuse a latent whose shape differs from the inverted one (size, batch or channels)."""
        if tuple(shape) != tuple(self.latent_shape):
            raise RecordMismatch(f"the latent has shape {list(shape)} but the inversion was made for "
                                 f"{list(self.latent_shape)}", "latent", tuple(self.latent_shape), tuple(shape))

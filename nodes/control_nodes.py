"""RF-Inversion's controllers as nodes (Rout et al. 2024, arXiv 2410.10792): a forward control for the Inverter (or an
ascending SAMPLER pass) and a reverse control for the Sampler (or a descending SAMPLER pass). The controlled update
itself is the core's (fireflow/control.py); this file only resolves the targets in the model's latent space."""
import torch

from ..fireflow.control import TRENDS, ControlSpec, Controller
from .errors import node_errors

CATEGORY = "FireFlow/RF-Inversion"
CONTROL = "FIREFLOW_CONTROL"
START_TIP = "First step (of the pass, 0 = its first) on which the controller acts."
STOP_TIP = "The controller acts on steps start_step .. stop_step - 1; -1: to the end of the pass."


class FlowControl:
    """FIREFLOW_CONTROL: a ControlSpec plus, for a reverse control, an optional source latent (user space). Immutable
    once returned (ComfyUI caches it)."""

    def __init__(self, spec, source=None):
        self.spec, self.source = spec, source

    def __deepcopy__(self, memo):
        return self

    def describe(self, steps):
        return self.spec.describe(steps)

    def controller(self, inverting, shape, steps, process_in, trajectory, node):
        """The Controller hook for a pass of `steps` steps over latents of `shape` (model space). Reverse target: the
        control's own source latent, else the inversion's source (its trajectory's last state)."""
        want = "forward" if inverting else "reverse"
        if self.spec.direction != want:
            where = "the Inverter (or an inverting SAMPLER pass)" if self.spec.direction == "forward" else \
                "the FireFlow Sampler (or a sampling SAMPLER pass)"
            raise ValueError(f"{node}: an RF-Inversion {self.spec.direction} control steers {where}; this pass "
                             f"{'inverts' if inverting else 'samples'}: use the {want} control here")
        if self.spec.direction == "forward":
            target = self.spec.noise(shape)
        elif self.source is not None:
            target = process_in(self.source.to(torch.float32))
        elif trajectory is not None:
            target = trajectory.states[-1]
        else:
            raise ValueError(f"{node}: the RF-Inversion reverse control needs the source image: connect its "
                             "source_latent (the VAEEncode output), or connect the Inverter's inversion (made with "
                             "keep_trajectory on)")
        if tuple(target.shape[1:]) != tuple(shape[1:]) or shape[0] % target.shape[0]:
            raise ValueError(f"{node}: the RF-Inversion control's source latent has shape {list(target.shape)}, the "
                             f"pass {list(shape)}: connect the latent that was inverted")
        return Controller(self.spec.direction, target, self.spec.per_step(steps))

    def hook(self, ctx, x, steps, model_k, run_guards):
        """The SAMPLER path: the whole pass's steps, the model's own latent transform, a V-Injection model's record."""
        from .attention import InjectionGuard
        trajectory = next((g.inversion.trajectory for g in run_guards if isinstance(g, InjectionGuard)), None)
        process_in = model_k.inner_model.inner_model.process_latent_in
        whole = len(ctx.grid) - 1 if ctx.grid is not None else steps
        return self.controller(ctx.pass_name == "invert", tuple(x.shape), whole, process_in, trajectory,
                               "FireFlow Solver (SAMPLER)")


def _spec(node, **kw):
    with node_errors(node):
        return ControlSpec(**kw)


class FireFlowForwardControl:
    DESCRIPTION = ("RF-Inversion's controlled forward ODE (Rout et al. 2024): during inversion the model's velocity is "
                   "pulled by gamma towards the straight line to a fixed, seeded noise, which makes the inverted "
                   "latent more Gaussian and the edit more editable (less faithful). Connect it to the FireFlow "
                   "Inverter's control input. The paper inverts with an empty prompt and gamma 0.5.")
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (CONTROL,)
    RETURN_NAMES = ("control",)
    OUTPUT_TOOLTIPS = ("Connect to the FireFlow Inverter's control input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "gamma": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip": "Controller "
                      "strength: 0 is the plain inversion; 1 ends exactly on the seeded noise (the image is then "
                      "forgotten). The paper uses 0.5."}),
            "start_step": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip": START_TIP}),
            "stop_step": ("INT", {"default": -1, "min": -1, "max": 1000, "tooltip": STOP_TIP}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                             "tooltip": "Seed of the noise the inversion is steered towards."}),
        }}

    def make(self, gamma, start_step, stop_step, seed):
        node = "RF-Inversion Forward Control"
        return (FlowControl(_spec(node, direction="forward", strength=gamma, start_step=start_step,
                                  stop_step=stop_step, seed=seed)),)


class FireFlowReverseControl:
    DESCRIPTION = ("RF-Inversion's controlled reverse ODE (Rout et al. 2024): during the edit the model's velocity is "
                   "pulled by eta towards the straight line back to the source image, on the first steps only, so "
                   "the edit keeps the source's layout and identity while the prompt changes the rest. Connect it to "
                   "the FireFlow Sampler's control input; the source comes from the inversion, or from source_latent.")
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (CONTROL,)
    RETURN_NAMES = ("control",)
    OUTPUT_TOOLTIPS = ("Connect to the FireFlow Sampler's control input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "eta": ("FLOAT", {"default": 0.9, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip": "Controller "
                    "strength: higher keeps more of the source (faithful), lower lets the prompt change more "
                    "(editable). The paper's FLUX edits use 0.9."}),
            "start_step": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip": START_TIP}),
            "stop_step": ("INT", {"default": 3, "min": -1, "max": 1000, "tooltip": STOP_TIP + " The paper's FLUX "
                          "edits steer about the first 38 % of the steps (3 of 8, 10 of 28)."}),
            "eta_trend": (TRENDS, {"default": "constant", "tooltip": "eta over the window: constant, or a linear ramp "
                          "up from 0 or down to 0."}),
        }, "optional": {
            "source_latent": ("LATENT", {"tooltip": "The image to stay close to (VAEEncode of the source). Default: "
                                                    "the source of the inversion connected to the Sampler."}),
        }}

    def make(self, eta, start_step, stop_step, eta_trend, source_latent=None):
        node = "RF-Inversion Reverse Control"
        source = None
        if source_latent is not None:
            source = source_latent.get("samples") if isinstance(source_latent, dict) else None
            if not isinstance(source, torch.Tensor) or not torch.isfinite(source).all():
                raise ValueError(f"{node}: source_latent carries no finite samples tensor: connect a VAEEncode "
                                 "output")
        return (FlowControl(_spec(node, direction="reverse", strength=eta, start_step=start_step, stop_step=stop_step,
                                  trend=eta_trend), source),)

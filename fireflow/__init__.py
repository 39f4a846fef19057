"""FireFlow core: rectified-flow time grids, solvers and closed-form test fields.

Host-free: this package imports torch (and safetensors where needed), never ComfyUI.
Conventions (FLUX): x_t = (1 - t) x_data + t eps; t = 0 is clean, t = 1 is noise; v(x, t) ~ eps - x_data.
"""

__version__ = "0.5.0"

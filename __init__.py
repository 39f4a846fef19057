"""FireFlow node pack for ComfyUI: fast rectified-flow inversion and editing (FireFlow, RF-Solver).

Registration only. Importing this file without ComfyUI (tests, tools) registers nothing and touches nothing.
"""
import importlib.util

WEB_DIRECTORY = "./js"
NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

if importlib.util.find_spec("comfy") is not None and __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: F811

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

"""Shared helpers for host tests, which run inside the real ComfyUI (scripts/setup_host.sh, or COMFYUI_PATH), in this process.

The pack is loaded through ComfyUI's own custom-node loader from the base directory's custom_nodes/ link.
"""
import asyncio
import pathlib
import sys
import uuid

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import host_env  # noqa: E402

host_env.boot()
import fixtures  # noqa: E402
import nodes as comfy_nodes  # noqa: E402  (ComfyUI's nodes module)

PACK_LINK = host_env.BASE / "custom_nodes" / "fireflow"


def _load(path):
    assert asyncio.run(comfy_nodes.load_custom_node(str(path))), f"ComfyUI could not load {path}"
    return sys.modules[str(path).replace(".", "_x_")]


if not PACK_LINK.exists():
    PACK_LINK.parent.mkdir(parents=True, exist_ok=True)
    PACK_LINK.symlink_to(ROOT)
PACK = _load(PACK_LINK)
_load(ROOT / "tests" / "host" / "testnodes")
asyncio.run(comfy_nodes.init_builtin_extra_nodes())


def conditioning(seed=0, tokens=7, dim=32, pooled=16, guidance=3.5, batch=1):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(batch, tokens, dim, generator=g),
             {"pooled_output": torch.randn(batch, pooled, generator=g), "guidance": guidance}]]


def latent(seed=0, size=8, batch=1, channels=16):
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(batch, channels, size, size, generator=g)}


def counting_clone(model):
    """A clone whose diffusion-model forward calls are counted (list of batch sizes), via a keyed wrapper."""
    import comfy.patcher_extension as pe
    calls = []

    def wrapper(executor, *args, **kwargs):
        calls.append(args[0].shape[0])
        return executor(*args, **kwargs)
    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "fireflow-test-count", wrapper)
    return m, calls


class _Server:
    client_id = None
    last_node_id = None

    def send_sync(self, *args, **kwargs):
        pass

    def queue_updated(self):
        pass


class Graph:
    """Runs API-format prompts through ComfyUI's own validator and PromptExecutor (with its output cache)."""

    def __init__(self):
        import execution
        self.execution = execution
        self.executor = execution.PromptExecutor(_Server(), cache_type=execution.CacheType.CLASSIC)

    def run(self, prompt):
        pid = str(uuid.uuid4())
        valid = asyncio.run(self.execution.validate_prompt(pid, prompt, None))
        assert valid[0], f"invalid prompt: {valid[1]} {valid[3]}"
        self.executor.execute(prompt, pid, {}, valid[2])
        errors = [m for m in self.executor.status_messages if m[0] == "execution_error"]
        return self.executor.success, self.executor.history_result, errors, self.executor.status_messages

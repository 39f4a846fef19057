"""Shared helpers for host tests, which run inside the real ComfyUI (scripts/setup_host.sh, or COMFYUI_PATH), in this process.

The pack is loaded through ComfyUI's own custom-node loader from the base directory's custom_nodes/ link.
"""
import asyncio
import atexit
import pathlib
import shutil
import sys
import tempfile
import uuid

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
import host_env  # noqa: E402

host_env.boot()
import folder_paths  # noqa: E402

# Each test session gets its own input/output/temp folders (removed at exit), so tests never touch a user's files.
SCRATCH = pathlib.Path(tempfile.mkdtemp(prefix="fireflow-tests-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
for _kind in ("input", "output", "temp"):
    (SCRATCH / _kind).mkdir()
folder_paths.set_input_directory(str(SCRATCH / "input"))
folder_paths.set_output_directory(str(SCRATCH / "output"))
folder_paths.set_temp_directory(str(SCRATCH / "temp"))
import nodes as comfy_nodes  # noqa: E402  (ComfyUI's nodes module)

PACK_LINK = host_env.BASE / "custom_nodes" / "fireflow"


def _load(path):
    assert asyncio.run(comfy_nodes.load_custom_node(str(path))), f"ComfyUI could not load {path}"
    return sys.modules[str(path).replace(".", "_x_")]


if not PACK_LINK.exists():
    PACK_LINK.parent.mkdir(parents=True, exist_ok=True)
    PACK_LINK.symlink_to(ROOT)
PACK = _load(PACK_LINK)
host_env.share_core(PACK)  # `import fireflow` is now the pack's own core, one copy in the process
TESTNODES = _load(ROOT / "tests" / "host" / "testnodes")
# The stock extras the tests use (all of them would also import the audio nodes, which need torchaudio).
STOCK_EXTRAS = ("nodes_custom_sampler.py", "nodes_model_advanced.py", "nodes_flux.py", "nodes_sd3.py")
for _name in STOCK_EXTRAS:
    _extra = host_env.comfy_dir() / "comfy_extras" / _name
    assert asyncio.run(comfy_nodes.load_custom_node(str(_extra), module_parent="comfy_extras")), _extra


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
    """Stands in for the websocket side of PromptServer only; records what the executor reports."""
    client_id = "fireflow-tests"
    last_node_id = None

    def __init__(self):
        self.events = []

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data))

    def queue_updated(self):
        pass


class Graph:
    """Runs API-format prompts through ComfyUI's own validator and PromptExecutor (with its output cache)."""

    def __init__(self):
        import execution
        self.execution = execution
        self.server = _Server()
        # What ComfyUI's main.py passes for --cache-classic; newer releases read "ram_inactive" too, 0.3.75 ignores it.
        self.executor = execution.PromptExecutor(self.server, cache_type=execution.CacheType.CLASSIC,
                                                 cache_args={"lru": 0, "ram": 0.0, "ram_inactive": 0.0})

    def executed_nodes(self):
        """Node IDs that ran (not served from cache) in the last run."""
        return {d["node"] for e, d in self.server.events if e == "executing" and d.get("node") is not None}

    def run(self, prompt):
        self.server.events.clear()
        pid = str(uuid.uuid4())
        valid = asyncio.run(self.execution.validate_prompt(pid, prompt, None))
        assert valid[0], f"invalid prompt: {valid[1]} {valid[3]}"
        self.executor.execute(prompt, pid, {"client_id": self.server.client_id}, valid[2])
        errors = [m for m in self.executor.status_messages if m[0] == "execution_error"]
        return self.executor.success, self.executor.history_result, errors

"""All tests: the repository's packages (the core, bench) are importable by name, never via the repository root.

`python -m pytest` puts the working directory (the repository root) on sys.path; it is taken off again here, since the
pack's nodes/ package there would shadow ComfyUI's `nodes` module.
"""
import sys

import host_env

sys.path[:] = [p for p in sys.path if p not in ("", str(host_env.ROOT))]
host_env.expose_core()

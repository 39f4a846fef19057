#!/usr/bin/env bash
# The main job from nothing: install the local ComfyUI host if needed, then run the demo (solvers on closed-form
# flows with plots, then the 8-step FireFlow edit workflow submitted to the real ComfyUI server on a tiny FLUX).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup_host.sh"
cd "$root"
exec "$root/.host/venv/bin/python" scripts/demo.py "$@"

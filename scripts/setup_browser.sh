#!/usr/bin/env bash
# For the real-browser test: Debian's chromium, the ComfyUI frontend package that ComfyUI 0.3.75 names, and
# playwright-core (driving that chromium over the DevTools protocol; no browser download). Idempotent, offline.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
host="$root/.host"
log() { echo "[fireflow setup] $*" >&2; }
if ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian chromium"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
"$host/venv/bin/python" -m pip install --disable-pip-version-check -q --no-deps "comfyui-frontend-package==1.32.9" \
  2>&1 | { grep -v "^WARNING: Location" || true; }
if [ ! -d "$host/node/node_modules/playwright-core" ]; then
  log "installing playwright-core"
  mkdir -p "$host/node"
  (cd "$host/node" && npm install --silent --no-audit --no-fund playwright-core@1.64.1 >/dev/null)
fi

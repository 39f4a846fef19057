#!/usr/bin/env bash
# The whole test suite from nothing: install the local ComfyUI host (and, for the browser test, Debian chromium, the
# frontend package and playwright-core) if needed, write the seeded model fixtures, run every test.
# Idempotent and offline (package registries only). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup_host.sh"
bash "$root/scripts/setup_browser.sh"
py="$root/.host/venv/bin/python"
cd "$root"
"$py" scripts/fixtures.py >/dev/null
exec "$py" -m pytest -q "$@"

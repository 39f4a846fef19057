#!/usr/bin/env bash
# Refresh workflows/<name>.jpg (the thumbnails ComfyUI's Templates dialog shows for this pack's workflows) and
# docs/browser_after_run.png from the real-browser test's screenshots: each workflow loaded in the real frontend with
# only the graph on screen (focus mode), and the edit workflow after a run. Run after scripts/make_workflows.py.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup_host.sh" && bash "$root/scripts/setup_browser.sh"
cd "$root" && .host/venv/bin/python -m pytest -q tests/browser
for f in "$root"/workflows/*.json; do
  name=$(basename "$f" .json)
  cp "$root/results/browser/$name.jpg" "$root/workflows/$name.jpg"
done
cp "$root/results/browser/after_run.png" "$root/docs/browser_after_run.png"

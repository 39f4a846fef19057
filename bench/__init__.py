"""Reproducible measurements: `python -m bench` prints one JSON document and writes plots under results/."""

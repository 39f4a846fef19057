"""`python -m bench [--sections analytic,host] [--out results]`: one JSON document on stdout, plots in --out."""
import argparse
import json
import pathlib
import platform
import sys
import time

import torch

SECTIONS = ("analytic", "host", "editing")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--out", default="results", help="folder for the JSON copy and the plots")
    a = ap.parse_args(argv)
    out_dir = pathlib.Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    doc = {"versions": {"python": platform.python_version(), "torch": torch.__version__,
                        "platform": platform.platform()}, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for section in a.sections.split(","):
        start = time.perf_counter()
        if section == "analytic":
            from . import analytic
            doc["analytic"] = analytic.run(out_dir)
        elif section == "host":
            from . import host
            doc["host"] = host.run()
        elif section == "editing":
            from . import editing, host
            doc["editing"] = {"cache_bytes_flux_dev_bf16": editing.cache_bytes(),
                              "overhead_tiny_flux": editing.overhead(host.boot())}
        else:
            sys.exit(f"unknown section {section!r}; choose from {SECTIONS}")
        doc.setdefault("seconds", {})[section] = round(time.perf_counter() - start, 2)
    text = json.dumps(doc, indent=2)
    (out_dir / "bench.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

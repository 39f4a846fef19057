"""`python -m bench [--sections analytic,host] [--out results]`: one JSON document on stdout, plots in --out."""
import argparse
import json
import os
import pathlib
import platform
import sys
import time

import torch

SECTIONS = ("analytic", "host", "editing", "methods", "families", "video", "quality", "gpu")


def _pack_version():
    import tomllib
    return tomllib.loads((pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["version"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("only", nargs="?", help="one section to run (`python -m bench quality`), as --sections")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--out", default="results", help="folder for the JSON copy and the plots")
    a = ap.parse_args(argv)
    if a.only:
        a.sections = a.only
    out_dir = pathlib.Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    doc = {"versions": {"python": platform.python_version(), "torch": torch.__version__, "pack": _pack_version(),
                        "platform": platform.platform(), "cpu": f"{platform.machine()}, {os.cpu_count()} cores"},
           "seeds": "fixed (fixtures seed 0, samples seeded per measurement)",
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for section in a.sections.split(","):
        start = time.perf_counter()
        if section == "analytic":
            from . import analytic
            doc["analytic"] = analytic.run(out_dir)
        elif section == "host":
            from . import host
            doc["host"] = host.run(plots_dir=out_dir)
        elif section == "editing":
            from . import editing, host
            doc["editing"] = {"cache_bytes_flux_dev_bf16": editing.cache_bytes(),
                              "overhead_tiny_flux": editing.overhead(host.boot())}
        elif section == "methods":
            from . import methods
            doc["methods"] = methods.run()
        elif section == "families":
            from . import families, host
            doc["families"] = families.run(host.boot().PACK)
        elif section == "video":
            from . import host, video
            doc["video"] = video.run(host.boot().PACK)
            print(doc["video"]["markdown"], file=sys.stderr)
        elif section == "quality":
            from . import host, quality
            host.boot()
            doc["quality"] = quality.run(out_dir)
        elif section == "gpu":
            from . import gpu, host
            doc["gpu"] = gpu.run(host.boot())
            if "skipped" in doc["gpu"]:
                print(f"[bench] gpu: {doc['gpu']['skipped']}", file=sys.stderr)
        else:
            sys.exit(f"unknown section {section!r}; choose from {SECTIONS}")
        doc.setdefault("seconds", {})[section] = round(time.perf_counter() - start, 2)
    if "host" in doc or "families" in doc or "quality" in doc or "video" in doc:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
        import host_env
        doc["versions"]["comfyui"] = (host_env.comfy_dir() / "comfyui_version.py").read_text().split('"')[1]
    text = json.dumps(doc, indent=2)
    (out_dir / "bench.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Per-family defaults and feature-cache size at 1024² from each family's real geometry (no weights needed).

The adapter table (nodes/families.py: recipe, patch size, default CFG) is read from the pack as ComfyUI loads it; the
geometry below is what ComfyUI's model detection gives the released checkpoints (comfy/model_detection.py and the
families' supported_models configs). Text tokens are what the family's text encoder typically hands the model for a
one-sentence prompt (FLUX pads T5 to 512; the others pass the prompt's own length; numbers are the assumption stated).
"""
import torch

# label: (adapter class name, width, heads, double/joint blocks, single blocks, pixels per latent cell, text tokens)
GEOMETRY = {
    "FLUX.1 dev / Krea / Fill / Kontext": ("Flux", 3072, 24, 19, 38, 8, 512),
    "FLUX.2 dev": ("Flux2", 6144, 48, 8, 48, 16, 512),
    "Chroma": ("Chroma", 3072, 24, 19, 38, 8, 128),
    "Chroma Radiance": ("ChromaRadiance", 3072, 24, 19, 38, 1, 128),
    "Qwen-Image / Qwen-Image-Edit": ("QwenImage", 3072, 24, 60, 0, 8, 128),
    "SD3.5 Large": ("SD3", 2432, 38, 38, 0, 8, 154),
    "SD3.5 Medium": ("SD3", 1536, 24, 24, 0, 8, 154),
    "Lumina 2": ("Lumina2", 2304, 24, 0, 26, 8, 128),
    "Z-Image": ("Lumina2", 3840, 30, 0, 30, 8, 128),
    "HiDream-I1": ("HiDream", 2560, 20, 16, 32, 8, 384),
    "HunyuanImage 2.1": ("HunyuanImage21", 3584, 28, 20, 40, 32, 256),
}
# tests/host/test_families.py cases that exercise each adapter (FLUX.1 also has test_editing, test_kontext, ...)
CASES = {"Flux": ("flux_fill",), "Flux2": ("flux2", "flux2_klein"), "Chroma": ("chroma",),
         "ChromaRadiance": ("chroma_radiance",), "QwenImage": ("qwen_image",), "SD3": ("sd3", "sd35_medium"),
         "Lumina2": ("lumina2", "z_image"), "HiDream": ("hidream",), "HunyuanImage21": ("hunyuan_image21",)}


def run_family_tests():
    """{case: True when every test of that case passed} from running tests/host/test_families.py on this host."""
    import os
    import pathlib
    import re
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                        "tests/host/test_families.py"], cwd=root, capture_output=True, text=True, env=os.environ)
    status = {}
    for outcome, case in re.findall(r"^(PASSED|FAILED|ERROR) \S+\[(\w+)\]", r.stdout, re.M):
        status[case] = status.get(case, True) and outcome == "PASSED"
    return status


def _describe(plan, double, single):
    kinds = {0: ("double" if single else "joint", double), 1: ("single", single)}
    chosen = {}
    for kind, _ in plan.blocks:
        chosen[kind] = chosen.get(kind, 0) + 1
    return " + ".join(f"V in {n}/{kinds[k][1]} {kinds[k][0]}" for k, n in sorted(chosen.items()))


def run(pack, resolution=1024, steps=8):
    from fireflow.features import CacheSpec
    passed = run_family_tests()
    by_class = {c: f for f in pack.nodes.families.FAMILIES for c in f.classes}
    rows = {}
    for label, (cls, width, heads, double, single, down, text) in GEOMETRY.items():
        fam = by_class[cls]
        side = resolution // down
        image = fam.image_tokens((1, 16, side, side))
        spec = fam.with_recipe(CacheSpec(double_blocks="auto", single_blocks="auto", inject_steps=1), (double, single))
        plan = spec.resolve((double, single), steps, "fireflow")
        held = plan.estimate_bytes(1, heads, width // heads, text, image, torch.bfloat16)
        cfg = fam.guidance != "embedded"
        rows[label] = {"adapter": fam.name, "class": cls, "image_tokens": image, "text_tokens": text,
                       "injected": _describe(plan, double, single), "blocks": len(plan.blocks),
                       "nfe_default_edit": 2 * (steps + 1), "edit_branch_evaluations_with_cfg":
                           (steps + 1) * (2 if cfg else 1) + steps + 1,
                       "guidance": "CFG" if fam.guidance == "cfg" else "distilled guidance" if not cfg else
                       "distilled guidance or CFG", "default_cfg": fam.default_cfg,
                       "cache_bytes_bf16": held, "cache_gib_bf16": held / 2 ** 30,
                       "tests": {c: passed.get(c) for c in CASES[cls]}}
    return {"resolution": resolution, "steps": steps, "families": rows}


def render(sections):
    """Markdown rows from one `families` section per host run: {ComfyUI version: section}."""
    section = next(iter(sections.values()))
    lines = [f"| family | injected by default (FireFlow, {section['steps']} steps, inject 1) | NFE of the default edit "
             f"(inversion + edit) | cache at {section['resolution']}², bf16 | image + text tokens | in-host tests "
             "passed on ComfyUI |", "|---|---|---|---|---|---|"]
    for label, r in section["families"].items():
        ok = [v for v, s in sections.items() if s["families"][label]["tests"] and
              all(s["families"][label]["tests"].values())]
        cases = ", ".join(r["tests"])
        nfe = str(r["nfe_default_edit"])
        if r["guidance"] != "distilled guidance":
            nfe += f" ({r['edit_branch_evaluations_with_cfg']} branch evaluations with CFG {r['default_cfg']:g})"
        lines.append(f"| {label} | {r['injected']} | {nfe} | {r['cache_gib_bf16']:.2f} GiB | "
                     f"{r['image_tokens']} + {r['text_tokens']} | {', '.join(ok) or 'none'} ({cases}) |")
    return lines

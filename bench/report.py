"""`python -m bench.report [results/bench.json [other-host.json ...]]`: write the README's results from bench JSON.

Replaces the text between <!-- bench:start --> and <!-- bench:end --> in README.md (from the first file's analytic,
host, editing and gpu sections) and copies the plots to docs/; the model-family table between <!-- families:start -->
and <!-- families:end --> comes from the `families` sections of every file given (one per ComfyUI host it ran on);
the video memory table between <!-- video:start --> and <!-- video:end --> from the first `video` section, and the
editing methods' costs and RF-Inversion's accuracy between <!-- methods:start --> and <!-- methods:end --> from the
first `methods` section.
"""
import json
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
FAMILIES_START, FAMILIES_END = "<!-- families:start -->", "<!-- families:end -->"
QUALITY_START, QUALITY_END = "<!-- quality:start -->", "<!-- quality:end -->"
VIDEO_START, VIDEO_END = "<!-- video:start -->", "<!-- video:end -->"
METHODS_START, METHODS_END = "<!-- methods:start -->", "<!-- methods:end -->"
SOLVERS = ("euler", "rf_solver", "midpoint", "fireflow", "rf_solver_3")
PLOTS = ("analytic_trajectories_equal_nfe.png", "analytic_round_trip_vs_nfe.png", "analytic_error_vs_nfe.png",
         "host_round_trip_vs_nfe.png")


def _g(v, digits=3):
    return f"{v:.{digits}g}"


def render(doc):
    a, lines = doc["analytic"], []
    v = doc["versions"]
    secs = doc.get("seconds", {})
    took = ", ".join(f"{k} {t:.0f} s" for k, t in secs.items())
    lines += [f"Measured with `python -m bench` ({doc['started']}, Python {v['python']}, torch {v['torch']}, "
              f"{v.get('cpu', 'CPU')}; {sum(secs.values()):.0f} s: {took}); the JSON is `results/bench.json`.", ""]
    rt, orders, eq = a["round_trip_gaussian_flux1024_n8"], a["orders_ring_mixture"], a["equal_nfe_transport_10"]
    pub = a["round_trip_published_setup_n8"]
    ref = pub["published"]
    steps = orders[SOLVERS[0]]["steps"]
    lines += ["| | " + " | ".join(SOLVERS) + " |", "|---" * (len(SOLVERS) + 1) + "|"]
    lines.append("| NFE, inversion + edit, N = 8 | " + " | ".join(str(2 * a["nfe_per_pass_n8"][s]["per_pass"])
                                                            for s in SOLVERS) + " |")
    lines.append("| round trip, N(0, 0.5²) ↔ N(0, 1), 4096 samples, FLUX 1024² grid, N = 8 (max abs) | " +
                 " | ".join(_g(rt[s]["max_abs_error"], 2) for s in SOLVERS) + " |")
    lines.append("| same, σ0/σ1 = 1.5 at \\|x0\\| = 3 (a setup that reproduces the published example) | " +
                 " | ".join(_g(pub[s]["max_abs_error"], 2) for s in SOLVERS) + " |")
    lines.append("| published example (ALGORITHM.md §7; its setup is not stated) | " +
                 " | ".join(_g(ref[s], 2) if s in ref else "" for s in SOLVERS) + " |")
    lines.append(f"| observed order, 2-D mixture (Richardson, fit over N = {steps[0]}…{steps[-1]}) | " +
                 " | ".join(f"{orders[s]['order_fitted']:.2f}" for s in SOLVERS) + " |")
    lines.append("| energy distance to the data at 10 NFE (2-D mixture) | " +
                 " | ".join(f"{eq[s]['energy_distance']:.4f}" for s in SOLVERS) + " |")
    if "host" in doc:
        h = doc["host"]
        lines.append("| round trip RMS in ComfyUI, tiny FLUX, N = 8 | " +
                     " | ".join(_g(h["round_trip_rms"][s]["8"], 2) for s in SOLVERS) + " |")
    lines += ["", f"Energy distance of a 2048-step solve (the sampling-noise floor): {eq['reference_fine_solve']:.4f}. "
              f"At 18 evaluations Euler's round-trip error is "
              f"{rt['equal_nfe']['euler_over_fireflow']:.0f}× FireFlow's.", ""]
    if "host" in doc:
        o = doc["host"]["overhead"]
        share = doc["host"].get("apply_model_share", {})
        lines += [f"Overhead inside ComfyUI (tiny FLUX, latent {o['latent'][2]}×{o['latent'][3]}, "
                  f"bare forward {o['bare_forward_s'] * 1000:.0f} ms): pack wall time ÷ (NFE × bare forward); the last "
                  "column is the share of the pass's wall time spent inside ComfyUI's apply_model (timed by an "
                  "APPLY_MODEL wrapper).", "",
                  "| pass | NFE | min | median | max | inside apply_model (median) |", "|---|---|---|---|---|---|"]
        for k in ("inversion_fireflow_8", "sampling_fireflow_8", "edit_with_injection_fireflow_8",
                  "reference_stock_samplercustom_euler_9"):
            r = o[k]
            inside = f"{share[k]['median'] * 100:.1f} %" if k in share else "not measured"
            lines.append(f"| {k.replace('_', ' ')} | {r['nfe']} | {r['min']:.2f} | {r['median']:.2f} | {r['max']:.2f} "
                         f"| {inside} |")
        lines += ["", "The last row is ComfyUI's own SamplerCustom with its stock euler sampler at the same NFE: the "
                  f"spread between rows is what the host and this machine ({v.get('cpu', 'CPU')}) add, not the pack.",
                  "",
                  f"A full FireFlow edit (8 steps, V injection) counted {doc['host']['nfe_full_edit_fireflow_8']} "
                  "model evaluations.", ""]
    if "editing" in doc:
        c = doc["editing"]["cache_bytes_flux_dev_bf16"]
        d, r = c["1024px_b1_fireflow_default"], c["1024px_b1_rf_edit"]
        label = lambda e: (f"{e['steps']} steps, {e['blocks']} blocks, inject {e['inject_steps']}"  # noqa: E731
                           if "blocks" in e else f"{e['steps']} steps")
        lines += ["Feature cache, FLUX-dev geometry, bf16 (held by this pack vs a keep-everything bank):", "",
                  f"| resolution, batch | FireFlow default ({label(d)}) | RF-Edit ({label(r)}) | keep-everything, "
                  f"FireFlow {d['steps']} steps |", "|---|---|---|---|"]
        for res in (512, 1024):
            for b in (1, 4):
                ff, rf = c[f"{res}px_b{b}_fireflow_default"], c[f"{res}px_b{b}_rf_edit"]
                lines.append(f"| {res}², {b} | {ff['held_gib']:.2f} GiB | {rf['held_gib']:.2f} GiB | "
                             f"{ff['store_everything_gib']:.1f} GiB |")
        ov = doc["editing"]["overhead_tiny_flux"]
        lines += ["", f"Recording costs ×{ov['recording_overhead']['median']:.2f} and injecting "
                  f"×{ov['injection_overhead']['median']:.2f} wall time at the same NFE (medians, tiny FLUX, "
                  f"all blocks).", ""]
    g = doc.get("gpu", {})
    if g.get("runs"):
        lines += [f"GPU ({g['device']}, {g['dtype']}, random FLUX-dev weights):", "",
                  "| run | seconds | NFE | speed-up vs Euler 28+28 | peak GPU GiB | cache GiB |", "|---|---|---|---|---|---|"]
        for k, r in g["runs"].items():
            lines.append(f"| {k} | {r['seconds']:.2f} | {r['nfe']} | {r.get('speedup_vs_euler_28+28', 0):.2f} | "
                         f"{(r['peak_gpu_bytes'] or 0) / 2 ** 30:.1f} | {r['cache_bytes'] / 2 ** 30:.2f} |")
    else:
        lines += [f"GPU mode: {g.get('skipped', 'not run')}."]
    lines += [""] + [f"![{p}](docs/{p})" for p in PLOTS]
    return "\n".join(lines)


def _fill(text, start, end, body):
    i, j = text.index(start), text.index(end)
    return text[: i + len(start)] + "\n" + body + "\n" + text[j:]


def main(argv=None):
    argv = argv if argv is not None else sys.argv[1:]
    paths = [pathlib.Path(a) for a in argv] or [ROOT / "results" / "bench.json"]
    docs = [json.loads(p.read_text()) for p in paths]
    path, doc = paths[0], docs[0]  # further files: `families` sections from other ComfyUI hosts
    readme = ROOT / "README.md"
    text = readme.read_text()
    if "analytic" in doc:
        text = _fill(text, START, END, render(doc))
    hosts = {d["versions"].get("comfyui", "?"): d["families"] for d in docs if "families" in d}
    if hosts:
        from . import families
        text = _fill(text, FAMILIES_START, FAMILIES_END, "\n".join(families.render(hosts)))
    video = next((d["video"] for d in docs if "video" in d), None)
    if video is not None:
        text = _fill(text, VIDEO_START, VIDEO_END, video["markdown"])
    methods = next((d["methods"] for d in docs if "methods" in d), None)
    if methods is not None:
        from . import methods as m
        text = _fill(text, METHODS_START, METHODS_END, "\n".join(m.render(methods)))
    quality = next((d["quality"] for d in docs if "quality" in d), None)
    if quality is not None:
        from . import quality as q
        text = _fill(text, QUALITY_START, QUALITY_END, "\n".join(q.render(quality)))
        for p in ("quality_grid.png", "quality_tradeoff.png"):
            src = next((pp.parent / p for pp, d in zip(paths, docs) if "quality" in d), None)
            if src is not None and src.exists():
                shutil.copy(src, ROOT / "docs" / p)
    readme.write_text(text)
    for p in PLOTS:
        if (path.parent / p).exists():
            shutil.copy(path.parent / p, ROOT / "docs" / p)


if __name__ == "__main__":
    main()

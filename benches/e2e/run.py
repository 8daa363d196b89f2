#!/usr/bin/env python3
"""End-to-end benchmark: the LASER way in PyTorch vs `laser`, on the same items and model.

Run through scripts/bench-e2e.sh (it fetches the model, installs the PyTorch reference into a
virtual environment and builds `laser` first). Four measurements on the bundled task's selection
(first N after the seeded shuffle) and test splits:

  (a) laser_torch.py — HF transformers, one sequence per choice, full forward (the reference);
  (b) `laser eval`;
  (c) `laser search --strategy exhaustive` within a restricted grid (documented in the output),
      from which the full SmolLM2 grid (30 layers × 7 kinds × 9 ρ) is estimated;
  (d) `laser adapt` (gradient strategy, defaults).

Writes the medians, the ratios (b)/(a) and (c)/(d), accuracy on both splits and the machine into
docs/BENCHMARKS.md between the `e2e` markers (temporary file + rename), and the raw runs as JSON
beside the report in --work.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

BEGIN = "<!-- e2e:begin (written by scripts/bench-e2e.sh; edits here are overwritten) -->"
END = "<!-- e2e:end -->"
LAYERS, KINDS, RHOS = 30, 7, 9  # SmolLM2's full LASER grid


def timed(cmd, env=None):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - t, json.loads(out.stdout)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(open("/proc/meminfo").readline().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--laser", required=True)
    ap.add_argument("--python", required=True, help="interpreter with torch + transformers")
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3, help="runs of (a) and (b)")
    ap.add_argument("--heavy-runs", type=int, default=1, help="runs of (c) and (d)")
    ap.add_argument("--layers", default="25-29", help="grid of (c)")
    ap.add_argument("--rho", default="0.9,0.5,0.1,0.05,0.01", help="grid of (c)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--parts", default="abcd",
                    help="parts to run; the others are taken from the previous raw.json")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    here = os.path.dirname(os.path.abspath(__file__))
    common = ["--model", args.model, "--task", args.task, "--n", str(args.n), "--json"]
    raw = {"a": [], "b": [], "c": [], "d": []}
    raw_path = os.path.join(args.work, "raw.json")
    if set(args.parts) != set("abcd"):
        with open(raw_path) as f:
            previous = json.load(f)
        raw.update({k: v for k, v in previous.items() if k not in args.parts})

    def log(msg):
        print(f"[bench-e2e] {msg}", file=sys.stderr, flush=True)

    for r in range(args.runs):
        for split in ("select", "test"):
            if "a" in args.parts:
                log(f"run {r + 1}/{args.runs}: (a) PyTorch reference, {split} split")
                wall, out = timed(
                    [args.python, os.path.join(here, "laser_torch.py"), "--gguf", args.model,
                     "--task", args.task, "--n", str(args.n), "--split", split,
                     "--threads", str(args.threads)],
                    env,
                )
                raw["a"].append({"split": split, "wall": wall, **out})
            if "b" in args.parts:
                log(f"run {r + 1}/{args.runs}: (b) laser eval, {split} split")
                wall, out = timed([args.laser, "eval", *common, "--split", split,
                                   "--threads", str(args.threads)], env)
                raw["b"].append({"split": split, "wall": wall, **out})
    for r in range(args.heavy_runs):
        if "c" in args.parts:
            log(f"run {r + 1}/{args.heavy_runs}: (c) exhaustive over layers {args.layers}, "
                f"ρ {args.rho}")
            wall, out = timed([args.laser, "search", *common, "--strategy", "exhaustive",
                               "--layers", args.layers, "--rho", args.rho,
                               "--threads", str(args.threads)], env)
            out.pop("candidates", None)
            raw["c"].append({"wall": wall, **out})
        if "d" in args.parts:
            log(f"run {r + 1}/{args.heavy_runs}: (d) laser adapt")
            # A fresh folder: with the previous run's candidate log there, adapt would resume
            # from it and skip the scan (the 70 s "adapt" of the first run on 2026-11-29 08:14).
            out_dir = os.path.join(args.work, f"adapt-{r}")
            shutil.rmtree(out_dir, ignore_errors=True)
            wall, out = timed([args.laser, "adapt", *common, "--out", out_dir,
                               "--threads", str(args.threads)], env)
            out.pop("candidates", None)
            out.pop("ranking", None)
            raw["d"].append({"wall": wall, **out})
    tmp = raw_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(raw, f, indent=1)
    os.replace(tmp, raw_path)
    write_doc(args, raw)


def write_doc(args, raw):
    def med(key, split, field):
        return median([x[field] for x in raw[key] if x["split"] == split])

    rows = []
    for split in ("select", "test"):
        a_eval = median([x["seconds"]["eval"] for x in raw["a"] if x["split"] == split])
        b_wall = med("b", split, "wall")
        rows.append((split, med("a", split, "n"), a_eval, med("a", split, "wall"), b_wall,
                     med("a", split, "accuracy"), med("b", split, "accuracy"),
                     med("a", split, "logloss"), med("b", split, "logloss")))
    c = raw["c"]
    d = raw["d"]
    c_wall = median([x["wall"] for x in c])
    d_wall = median([x["wall"] for x in d])
    lo, hi = (int(v) for v in args.layers.split("-"))
    n_rho = len(args.rho.split(","))
    c_cands = c[0]["candidates_evaluated"] if c else 0
    full_pass = median([x["wall"] for x in raw["b"] if x["split"] == "select"])
    # Per-candidate cost ≈ fixed + full_pass · (L − ℓ) / L: the fixed part from (c)'s scan.
    rerun = sum(full_pass * (LAYERS - layer) / LAYERS for layer in range(lo, hi + 1)) * KINDS * n_rho
    c_scan = median([x["seconds"]["scan"] for x in c]) - full_pass if c else float("nan")
    fixed = max(0.0, (c_scan - rerun) / max(c_cands, 1))
    full_grid = sum(
        (fixed + full_pass * (LAYERS - layer) / LAYERS) * KINDS * RHOS for layer in range(LAYERS)
    )
    lines = [
        BEGIN,
        "",
        "## End to end: the LASER way in PyTorch vs `laser` (`scripts/bench-e2e.sh`)",
        "",
        f"Machine: {machine()}; {args.threads} threads for both. Model: SmolLM2-135M-Instruct "
        f"(the Q4_1 GGUF, dequantized to f32 by both). Task: `{os.path.basename(args.task)}`, "
        f"selection = first {args.n} after the seeded shuffle, test = the rest. "
        f"Medians of {args.runs} runs for (a)/(b), {args.heavy_runs} for (c)/(d). "
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| split | items | (a) PyTorch eval s | (a) incl. load s | (b) `laser eval` s | (a)/(b) "
        "| acc (a) | acc (b) | log-loss (a) | log-loss (b) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for split, n, a_eval, a_wall, b_wall, acc_a, acc_b, ll_a, ll_b in rows:
        lines.append(
            f"| {split} | {n:.0f} | {a_eval:.1f} | {a_wall:.1f} | {b_wall:.1f} | "
            f"{a_eval / b_wall:.1f}× | {acc_a:.1f} | {acc_b:.1f} | {ll_a:.4f} | {ll_b:.4f} |"
        )
    lines += [
        "",
        "(b) is the whole `laser eval` command (model load included); (a)'s eval column excludes "
        "transformers' GGUF load, the next column includes it.",
        "",
    ]
    if c and d:
        dd = d[0]
        lines += [
            "| run | wall s | candidates | selection acc | test acc | chosen |",
            "|---|---|---|---|---|---|",
            f"| (c) exhaustive, layers {args.layers} × {KINDS} kinds × ρ {{{args.rho}}} | "
            f"{c_wall:.0f} | {c_cands} | {c[0]['best']['select']['accuracy']:.1f} | "
            f"{c[0]['best'].get('test', {}).get('accuracy', float('nan')):.1f} | "
            f"{edits(c[0])} |",
            f"| (d) `laser adapt` (defaults) | {d_wall:.0f} | {dd['candidates_evaluated']} | "
            f"{dd['best']['select']['accuracy']:.1f} | "
            f"{dd['best'].get('test', {}).get('accuracy', float('nan')):.1f} | {edits(dd)} |",
            "",
            f"Base model: selection {dd['base']['select']['accuracy']:.1f}%, test "
            f"{dd['base'].get('test', {}).get('accuracy', float('nan')):.1f}%. "
            f"(c)/(d) on the restricted grid: {c_wall / d_wall:.2f}×. "
            f"Full grid estimate ({LAYERS} layers × {KINDS} kinds × {RHOS} ρ = "
            f"{LAYERS * KINDS * RHOS} candidates): per candidate {fixed:.2f} s fixed + "
            f"{full_pass:.1f} s × (30 − layer)/30 (the layers above the edit rerun), "
            f"≈ {full_grid / 60:.0f} min, i.e. {full_grid / d_wall:.0f}× the `laser adapt` run "
            "(an estimate from measured costs, not a run).",
            "",
        ]
    lines.append(END)
    block = "\n".join(lines) + "\n"
    doc = open(args.doc, encoding="utf-8").read() if os.path.exists(args.doc) else ""
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        doc = head + block + ("\n" + tail if tail else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    tmp = args.doc + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(doc)
    os.replace(tmp, args.doc)
    print(block)


def edits(report):
    es = report["best"]["edits"]
    if not es:
        return "no edit"
    return ", ".join(f"`{e['name'].removeprefix('model.')}` ρ={e['rho']} {e['factor']}" for e in es)


if __name__ == "__main__":
    main()

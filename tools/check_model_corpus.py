#!/usr/bin/env python3
"""Checks every program of the model corpus (tools/gen_model_corpus.py) with oxport: `oxport inspect` must
print it exactly as PyTorch prints it, and `oxport run` must give PyTorch's outputs on the recorded inputs
(f32: |a - b| <= 1e-4 + 1e-4 |b|, or, where the corpus has PyTorch's float64 outputs, an error against
them within twice PyTorch's own f32 error; integers and bools exact).

Prints a markdown table per model (both IR forms) with the first reason a program fails, then the counts
by source; with --markdown FILE it also writes them there (docs/runtime_coverage.md keeps the last run).

Usage: check_model_corpus.py OXPORT_BIN [CORPUS_DIR] [--markdown FILE] [--only A,B] [--strict]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from check_runtime_coverage import compare


def first_line(s):
    lines = [l for l in s.strip().splitlines() if l.strip()]
    return lines[-1][:140] if lines else ""


def check(oxport, d, case):
    base = f"{case['name']}.{case['form']}"
    pt2 = os.path.join(d, case["pt2"])
    r = subprocess.run([oxport, "inspect", pt2], capture_output=True, text=True)
    want = open(os.path.join(d, base + ".txt")).read()
    if r.returncode != 0:
        printed = "error: " + first_line(r.stderr)
    elif r.stdout == want:
        printed = "yes"
    else:
        diff = next(((a, b) for a, b in zip(r.stdout.splitlines(), want.splitlines()) if a != b), None)
        printed = "differs" + (f": `{diff[0].strip()[:70]}`" if diff else " (length)")
    with tempfile.TemporaryDirectory() as out:
        cmd = [oxport, "run", pt2, "--output-dir", out]
        for i in range(len(case["inputs"])):
            cmd += ["--input", os.path.join(d, f"{base}.in_{i}.npy")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            ran = "error: " + first_line(r.stderr)
        else:
            ran = "yes"
            notes = []
            for j in range(len(case["outputs"])):
                got = np.load(os.path.join(out, f"output_{j}.npy"))
                want = np.load(os.path.join(d, f"{base}.out_{j}.npy"))
                why = compare(got, want)
                ref = os.path.join(d, f"{case['name']}.f64.out_{j}.npy")
                if why and os.path.exists(ref) and got.shape == want.shape:
                    # Deep random-weight nets: within twice PyTorch's own f32 error against float64 (sums in
                    # another order, as any other runtime's kernels, land on either side of it).
                    ref = np.load(ref)
                    ours, theirs = np.abs(got - ref).max(), np.abs(want - ref).max()
                    if ours <= 2 * theirs:
                        notes.append(f"output {j}: max error vs float64 {ours:.3g}, PyTorch's {theirs:.3g}")
                        why = None
                if why:
                    ran = f"output {j} differs: {why}"
                    break
            if ran == "yes" and notes:
                ran = "yes (" + "; ".join(notes) + ")"
    return printed, ran


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("oxport")
    ap.add_argument("dir", nargs="?", default=os.path.expanduser("~/.cache/oxport/corpus"))
    ap.add_argument("--markdown")
    ap.add_argument("--only", default="", help="only programs whose name starts with one of these (comma-separated)")
    ap.add_argument("--strict", action="store_true", help="exit 1 unless every program prints and runs")
    a = ap.parse_args()
    manifest = json.load(open(os.path.join(a.dir, "manifest.json")))
    rows, counts = [], {}
    for case in sorted(manifest["cases"], key=lambda c: (c["source"], c["name"], c["form"] != "train")):
        if not any(case["name"].startswith(part) for part in a.only.split(",")):
            continue
        printed, ran = check(a.oxport, a.dir, case)
        rows.append((case["source"], f"{case['name']}.{case['form']}", printed, ran))
        c = counts.setdefault(case["source"], [0, 0, 0])
        c[0] += 1
        c[1] += printed == "yes"
        c[2] += ran.startswith("yes")
    lines = ["| source | program | prints as PyTorch | runs and matches PyTorch |", "|---|---|---|---|"]
    lines += [f"| {s} | {b} | {p} | {r} |" for s, b, p, r in rows]
    lines += ["", "| source | programs | print identically | run and match |", "|---|---|---|---|"]
    for s, (n, p, r) in sorted(counts.items()):
        lines.append(f"| {s} | {n} | {p} | {r} |")
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    lines.append(f"| all | {total[0]} | {total[1]} | {total[2]} |")
    skipped = manifest.get("skipped", {})
    if skipped:
        lines += ["", f"Not in the corpus ({len(skipped)}; PyTorch could not export them, or too large):", ""]
        lines += [f"* {k}: {v}" for k, v in sorted(skipped.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    if a.strict and (not total[0] or total[0] != total[1] or total[0] != total[2]):
        sys.exit(f"{total[0] - total[1]} programs print differently, {total[0] - total[2]} do not run or match")


if __name__ == "__main__":
    main()

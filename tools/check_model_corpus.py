#!/usr/bin/env python3
"""Checks every program of the model corpus (tools/gen_model_corpus.py) with oxport: `oxport inspect` must
print it exactly as PyTorch prints it, and `oxport run` must give PyTorch's outputs on the recorded inputs
(f32: |a - b| <= 1e-4 + 1e-4 |b|, or, where the corpus has PyTorch's float64 outputs, an error against
them within twice PyTorch's own f32 error; integers and bools exact).

Prints a markdown table per model (both IR forms) with the first reason a program fails, then the counts
by source; with --markdown FILE it also writes them there (docs/runtime_coverage.md keeps the last run).

With --compare-plain, each program also runs on the plain plan (`oxport run --no-fuse`: no static shapes,
folding, fusion or memory plan) and the optimized outputs must equal the plain ones within the same f32
tolerance (a last column says so).

Usage: check_model_corpus.py OXPORT_BIN [CORPUS_DIR] [--markdown FILE] [--only A,B] [--strict] [--compare-plain]
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


def run_outputs(oxport, pt2, inputs, out, extra=()):
    """Runs oxport on the inputs into OUT; returns an error line or None."""
    cmd = [oxport, "run", pt2, "--output-dir", out, *extra]
    for p in inputs:
        cmd += ["--input", p]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return None if r.returncode == 0 else "error: " + first_line(r.stderr)


def check_plain(oxport, d, case):
    """The optimized plan's outputs against the plain plan's."""
    base = f"{case['name']}.{case['form']}"
    pt2 = os.path.join(d, case["pt2"])
    inputs = [os.path.join(d, f"{base}.in_{i}.npy") for i in range(len(case["inputs"]))]
    with tempfile.TemporaryDirectory() as fused, tempfile.TemporaryDirectory() as plain:
        for out, extra in ((fused, ()), (plain, ("--no-fuse",))):
            err = run_outputs(oxport, pt2, inputs, out, extra)
            if err:
                return ("plain " if extra else "") + err
        for j in range(len(case["outputs"])):
            why = compare(np.load(os.path.join(fused, f"output_{j}.npy")), np.load(os.path.join(plain, f"output_{j}.npy")))
            if why:
                return f"output {j} differs: {why}"
    return "yes"


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
    ap.add_argument("--compare-plain", action="store_true",
                    help="also check the optimized plan's outputs against the plain plan's (oxport run --no-fuse)")
    a = ap.parse_args()
    manifest = json.load(open(os.path.join(a.dir, "manifest.json")))
    rows, counts = [], {}
    for case in sorted(manifest["cases"], key=lambda c: (c["source"], c["name"], c["form"] != "train")):
        if not any(case["name"].startswith(part) for part in a.only.split(",")):
            continue
        printed, ran = check(a.oxport, a.dir, case)
        plain = check_plain(a.oxport, a.dir, case) if a.compare_plain else None
        rows.append((case["source"], f"{case['name']}.{case['form']}", printed, ran, plain))
        c = counts.setdefault(case["source"], [0, 0, 0, 0])
        c[0] += 1
        c[1] += printed == "yes"
        c[2] += ran.startswith("yes")
        c[3] += plain == "yes"
    extra_h, extra_sep = (" optimized = plain plan |", "---|") if a.compare_plain else ("", "")
    lines = [f"| source | program | prints as PyTorch | runs and matches PyTorch |{extra_h}", f"|---|---|---|---|{extra_sep}"]
    lines += [f"| {s} | {b} | {p} | {r} |" + (f" {pl} |" if a.compare_plain else "") for s, b, p, r, pl in rows]
    lines += ["", f"| source | programs | print identically | run and match |{extra_h}", f"|---|---|---|---|{extra_sep}"]
    for s, (n, p, r, pl) in sorted(counts.items()):
        lines.append(f"| {s} | {n} | {p} | {r} |" + (f" {pl} |" if a.compare_plain else ""))
    total = [sum(c[i] for c in counts.values()) for i in range(4)]
    lines.append(f"| all | {total[0]} | {total[1]} | {total[2]} |" + (f" {total[3]} |" if a.compare_plain else ""))
    skipped = manifest.get("skipped", {})
    if skipped:
        lines += ["", f"Not in the corpus ({len(skipped)}; PyTorch could not export them, or too large):", ""]
        lines += [f"* {k}: {v}" for k, v in sorted(skipped.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    if a.strict and a.compare_plain and total[0] != total[3]:
        sys.exit(f"{total[0] - total[3]} programs' optimized outputs differ from the plain plan's")
    if a.strict and (not total[0] or total[0] != total[1] or total[0] != total[2]):
        sys.exit(f"{total[0] - total[1]} programs print differently, {total[0] - total[2]} do not run or match")


if __name__ == "__main__":
    main()

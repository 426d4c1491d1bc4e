#!/usr/bin/env python3
"""Runtime coverage: `oxport run` every PyTorch-exported program of a directory (tests/fixtures/pt2 and the
large programs of tools/gen_large_pt2.py) on its recorded inputs and compare with PyTorch's outputs
(floats: |a - b| <= 1e-4 + 1e-4 |b|, or a case's recorded `tol` for half-precision programs; integers and bools exact).

Prints a markdown table (the one kept in docs/runtime_coverage.md) and exits non-zero if a program fails
that is not listed in KNOWN_FAILURES.

Usage: check_runtime_coverage.py OXPORT_BIN DIR [DIR ...]
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.utils._pytree as pytree

# Programs that cannot match, and why.
KNOWN_FAILURES = {}


def compare(got, want, tol=(1e-4, 1e-4)):
    """None when equal: floats within tol = (rtol, atol), everything else exactly."""
    if got.shape != want.shape:
        return f"shape {got.shape} vs {want.shape}"
    if want.dtype.kind == "f":
        bad = ~(np.isclose(got, want, rtol=tol[0], atol=tol[1], equal_nan=True))
        if bad.any():
            i = np.argwhere(bad)[0]
            return f"at {tuple(i)}: {got[tuple(i)]} vs {want[tuple(i)]} (max abs diff {np.nanmax(np.abs(got - want)):.3g})"
    elif not np.array_equal(got, want):
        return "values differ"
    return None


def make_case(d, case, base, out):
    """Random inputs of the recorded shapes and PyTorch's outputs for them, written into `out`."""
    rng = np.random.default_rng(0)
    flat, paths = [], []
    for i, spec in enumerate(case["inputs"]):
        arr = rng.standard_normal(spec["shape"]).astype(spec["dtype"])
        path = os.path.join(out, f"{base}.in_{i}.npy")
        np.save(path, arr)
        flat.append(torch.from_numpy(arr))
        paths.append(path)
    ep = torch.export.load(os.path.join(d, case.get("pt2", base + ".pt2")))
    args, kwargs = pytree.tree_unflatten(flat, ep.call_spec.in_spec)
    with torch.no_grad():
        outs = pytree.tree_leaves(ep.module()(*args, **kwargs))
    for j, y in enumerate(outs):
        np.save(os.path.join(out, f"{base}.out_{j}.npy"), y.numpy())
    return out, paths


def main():
    oxport, dirs = sys.argv[1], sys.argv[2:]
    rows, failures = [], []
    for d in dirs:
        manifest = json.load(open(os.path.join(d, "manifest.json")))
        for case in manifest["cases"]:
            base = f"{case['name']}.{case['form']}"
            if any("value" in spec for spec in case["inputs"]):
                # e.g. a str argument: `oxport run` takes .npy files; tests/fixtures_run.rs covers these.
                rows.append((base, "not by `oxport run` (a non-numeric input); see crates/oxport-runtime/tests/fixtures_run.rs"))
                continue
            inputs = [os.path.join(d, f"{base}.in_{i}.npy") for i in range(len(case["inputs"]))]
            with tempfile.TemporaryDirectory() as out:
                expected_dir = d
                if not all(os.path.exists(p) for p in inputs):
                    # Inputs too large to commit: random ones, and PyTorch's outputs for them, made here.
                    expected_dir, inputs = make_case(d, case, base, out)
                cmd = [oxport, "run", os.path.join(d, case.get("pt2", base + ".pt2")), "--output-dir", out]
                for p in inputs:
                    cmd += ["--input", p]
                r = subprocess.run(cmd, capture_output=True, text=True)
                status = "ok"
                if r.returncode != 0:
                    status = "error: " + r.stderr.strip().splitlines()[-1][:160]
                else:
                    for j in range(len(case["outputs"])):
                        want = np.load(os.path.join(expected_dir, f"{base}.out_{j}.npy"))
                        got = np.load(os.path.join(out, f"output_{j}.npy"))
                        why = compare(got, want, tuple(case.get("tol", (1e-4, 1e-4))))
                        if why:
                            status = f"output {j} differs: {why}"
                            break
            known = KNOWN_FAILURES.get(base)
            if status != "ok" and not known:
                failures.append(f"{base}: {status}")
            rows.append((base, "yes" if status == "ok" else ("no (" + (known or status) + ")")))
    print("| program | runs and matches PyTorch |")
    print("|---|---|")
    for base, ok in rows:
        print(f"| {base} | {ok} |")
    passed = sum(1 for _, ok in rows if ok == "yes")
    print(f"\n{passed} of {len(rows)} programs match PyTorch.")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Symbolic-int exports, run by CI: crates/oxport-export/tests/sym_ints.rs (with OXPORT_SYM_INTS_PT2=DIR)
wrote oxport's export of each Rust twin of tools/gen_export_fixtures.py's SymFactories / SymViews /
SymScalars / SymFloats / SymAttention to DIR/<name>.pt2. Check with real PyTorch that torch.export.load
opens it, prints PyTorch's own export of the twin (tests/fixtures/export/<name>.train.txt, `# File:` lines aside), and runs at each
recorded size (<name>.<sizes>.in_<i>.npy) to the outputs of PyTorch's program (.out_<i>.npy).

Usage: check_sym_ints_interop.py DIR
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "export")
sys.path.insert(0, HERE)
import gen_export_fixtures  # noqa: E402


def strip(text):
    return [l for l in text.splitlines() if not l.strip().startswith("# File:")]


def main():
    root = sys.argv[1]
    failures, checked = [], 0
    for name, sizes in gen_export_fixtures.RUN_SIZES.items():
        if not name.startswith("sym_"):  # RUN_SIZES also holds other twins' runs (the einsums)
            continue
        ep = torch.export.load(os.path.join(root, f"{name}.pt2"))
        want = open(os.path.join(FIXTURES, f"{name}.train.txt")).read()
        if strip(str(ep)) != strip(want):
            diff = [(a, b) for a, b in zip(strip(str(ep)), strip(want)) if a != b][:1]
            failures.append(f"{name}: the loaded program prints differently from PyTorch's export: {diff}")
        for tag in sizes:
            load = lambda kind, i: np.load(os.path.join(FIXTURES, f"{name}.{tag}.{kind}_{i}.npy"))
            n_in = len([f for f in os.listdir(FIXTURES) if f.startswith(f"{name}.{tag}.in_")])
            with torch.no_grad():
                outs = ep.module()(*[torch.from_numpy(load("in", i)) for i in range(n_in)])
            if isinstance(outs, torch.Tensor):
                outs = (outs,)
            for j, y in enumerate(outs):
                w = load("out", j)
                if y.numpy().dtype != w.dtype or y.shape != w.shape or not np.allclose(y.numpy(), w, rtol=1e-6, atol=1e-6):
                    failures.append(f"{name}.{tag}: output {j} differs from PyTorch's program's")
        checked += 1
    for f in failures:
        print("FAIL", f)
    print(f"{checked} symbolic-int exports checked, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

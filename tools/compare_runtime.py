#!/usr/bin/env python3
"""Runtime speed against PyTorch, in the same run: for each program, PyTorch's `ep.module()` (eager,
torch.set_num_threads(2), no_grad) and `oxport bench --threads 2` on the same inputs; prints median ms
and the ratio oxport/PyTorch (below 1 = oxport faster).

Then, when target/release/examples/export_zoo is built, times export: `torch.export.export` of each zoo
model's PyTorch twin against oxport's `export()` (tools/compare_export.py).

Usage: compare_runtime.py OXPORT_BIN [DIR] [--iters N]   (DIR defaults to ~/.cache/oxport/large_pt2,
made by tools/gen_large_pt2.py)
"""
import argparse
import json
import os
import re
import subprocess
import time

import numpy as np
import torch
import torch.utils._pytree as pytree


def torch_median_ms(ep, args, kwargs, iters, warmup=3):
    m = ep.module()
    with torch.no_grad():
        for _ in range(warmup):
            m(*args, **kwargs)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            m(*args, **kwargs)
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("oxport")
    ap.add_argument("dir", nargs="?", default=os.path.expanduser("~/.cache/oxport/large_pt2"))
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(2)
    manifest = json.load(open(os.path.join(a.dir, "manifest.json")))
    print(f"{'program':<28} {'pytorch ms':>11} {'oxport ms':>10} {'oxport/pytorch':>15}")
    for case in manifest["cases"]:
        base = f"{case['name']}.{case['form']}"
        inputs = [os.path.join(a.dir, f"{base}.in_{i}.npy") for i in range(len(case["inputs"]))]
        ep = torch.export.load(os.path.join(a.dir, case["pt2"]))
        flat = [torch.from_numpy(np.load(p)) for p in inputs]
        args, kwargs = pytree.tree_unflatten(flat, ep.call_spec.in_spec)
        t_torch = torch_median_ms(ep, args, kwargs, a.iters)
        cmd = [a.oxport, "bench", os.path.join(a.dir, case["pt2"]), "--threads", "2", "--iters", str(a.iters)]
        for p in inputs:
            cmd += ["--input", p]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        t_ox = float(re.search(r"median_ms=([0-9.]+)", out).group(1))
        print(f"{base:<28} {t_torch:>11.3f} {t_ox:>10.3f} {t_ox / t_torch:>15.2f}", flush=True)
    export_zoo = os.path.join(os.path.dirname(os.path.abspath(a.oxport)), "examples", "export_zoo")
    if os.path.exists(export_zoo):
        import sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from compare_export import compare
        print()
        compare(export_zoo, 3)


if __name__ == "__main__":
    main()

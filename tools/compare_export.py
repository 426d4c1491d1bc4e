#!/usr/bin/env python3
"""Export speed against PyTorch: for each Rust zoo model, `export_zoo` (which prints "exported NAME in X ms",
timing export() alone) against `torch.export.export` of the PyTorch twin (median of --runs, after one warm-up).

Usage: compare_export.py EXPORT_ZOO_BIN [--runs N]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export_interop import twin  # noqa: E402

MODELS = ["sin_cos", "conv_relu_maxpool", "resnet18", "mobilenet_v3_small", "transformer_encoder", "lstm", "gpt_block"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export_zoo")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    compare(a.export_zoo, a.runs)


def compare(export_zoo, runs):
    """Prints one row per zoo model: torch.export.export of the twin vs oxport's export()."""
    print(f"{'model':<20} {'torch.export ms':>16} {'oxport export ms':>17} {'speedup':>9}")
    for name in MODELS:
        mod, args, kwargs = twin(name)
        mod.eval()
        torch.export.export(mod, args, kwargs)  # warm-up (imports, caches)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            torch.export.export(mod, args, kwargs)
            times.append((time.perf_counter() - t0) * 1e3)
        t_torch = float(np.median(times))
        ours = []
        with tempfile.TemporaryDirectory() as d:
            for _ in range(runs):
                out = subprocess.run([export_zoo, "--model", name, "--out", d], capture_output=True, text=True, check=True).stdout
                ours.append(float(re.search(r"in ([0-9.]+) ms", out).group(1)))
        t_ox = float(np.median(ours))
        print(f"{name:<20} {t_torch:>16.1f} {t_ox:>17.2f} {t_torch / t_ox:>8.0f}x", flush=True)


if __name__ == "__main__":
    main()

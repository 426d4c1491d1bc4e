#!/usr/bin/env python3
"""PyTorch reads what oxport writes.

For every fixture program (tests/fixtures/pt2/*.pt2, written by torch.export.save) that oxport loaded and
saved again into OURS_DIR (same file names), check with real PyTorch that:
  * torch.export.load opens oxport's file and prints it exactly as the original prints;
  * the state_dict and constants are equal: same keys, values, dtypes, sizes, strides, storage offsets,
    parameter-ness, and the same storage sharing (tied weights stay tied);
  * ep.module() on oxport's file gives bitwise the same outputs (and input mutations) as on the original,
    for the fixture's inputs (random inputs of the recorded shapes when none are committed).

Run: tools/check_pt2_interop.sh (builds the Rust side, then runs this).
Usage: check_pt2_interop.py OURS_DIR [FIXTURES_DIR] [--resave RESAVE_BIN]
(FIXTURES_DIR defaults to tests/fixtures/pt2). With --resave, each program is re-saved by RESAVE_BIN (the
oxport-ir `resave` example) just before it is checked and deleted just after, so only one copy is on disk
at a time (the large programs are ~1.5 GB in all).
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.utils._pytree as pytree

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pt2")
ARGS = sys.argv[1:]
RESAVE = None
if "--resave" in ARGS:
    i = ARGS.index("--resave")
    RESAVE = ARGS[i + 1]
    del ARGS[i:i + 2]
if len(ARGS) > 1:  # another set of PyTorch-written programs, e.g. tools/gen_large_pt2.py's
    FIXTURES = ARGS[1]


def storage_groups(tensors):
    """Partition of names by shared storage (order-independent)."""
    groups = {}
    for name, t in tensors.items():
        groups.setdefault(t.untyped_storage().data_ptr(), []).append(name)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def same_tensors(label, a, b):
    problems = []
    if list(a.keys()) != list(b.keys()):
        return [f"{label} keys differ: {list(a.keys())} vs {list(b.keys())}"]
    for k in a:
        x, y = a[k], b[k]
        if (x.dtype, x.shape, x.stride(), x.storage_offset()) != (y.dtype, y.shape, y.stride(), y.storage_offset()):
            problems.append(f"{label}[{k}]: layout {x.dtype} {tuple(x.shape)} {x.stride()} {x.storage_offset()} "
                            f"vs {y.dtype} {tuple(y.shape)} {y.stride()} {y.storage_offset()}")
        elif not torch.equal(x, y):
            problems.append(f"{label}[{k}]: values differ")
        if isinstance(x, torch.nn.Parameter) != isinstance(y, torch.nn.Parameter):
            problems.append(f"{label}[{k}]: Parameter-ness differs")
    if storage_groups(a) != storage_groups(b):
        problems.append(f"{label}: storage sharing differs: {storage_groups(a)} vs {storage_groups(b)}")
    return problems


def inputs_for(case):
    base = os.path.join(FIXTURES, f"{case['name']}.{case['form']}")
    flat = []
    gen = torch.Generator().manual_seed(0)
    for i, spec in enumerate(case["inputs"]):
        path = f"{base}.in_{i}.npy"
        if "value" in spec:  # a non-tensor leaf recorded by value (e.g. a string)
            flat.append(spec["value"])
        elif os.path.exists(path):
            arr = np.load(path)
            flat.append(torch.from_numpy(arr) if spec["kind"] == "tensor" else arr.item())
        else:
            dtype = getattr(torch, spec["dtype"])
            if dtype.is_floating_point:
                flat.append(torch.randn(spec["shape"], generator=gen, dtype=dtype))
            else:
                flat.append(torch.randint(0, 3, spec["shape"], generator=gen, dtype=dtype))
    return flat


def run(ep, flat):
    flat = [x.clone() if isinstance(x, torch.Tensor) else x for x in flat]
    args, kwargs = pytree.tree_unflatten(flat, ep.call_spec.in_spec)
    with torch.no_grad():
        out = ep.module()(*args, **kwargs)
    return pytree.tree_leaves(out), flat


def same_values(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and x.shape == y.shape
                    and torch.equal(x, y) if not x.is_floating_point() else
                    torch.equal(torch.nan_to_num(x, 7.0), torch.nan_to_num(y, 7.0))):
                return False
        elif x != y:
            return False
    return True


def main():
    ours_dir = ARGS[0]
    manifest = json.load(open(os.path.join(FIXTURES, "manifest.json")))
    failures = []
    checked = 0
    for case in manifest["cases"]:
        fname = case["pt2"]
        ours_path = os.path.join(ours_dir, fname)
        if RESAVE is not None:
            r = subprocess.run([RESAVE, ours_dir, os.path.join(FIXTURES, fname)], capture_output=True, text=True)
            if r.returncode != 0:
                failures.append(f"{fname}: oxport could not re-save it: {r.stderr.strip()}")
                continue
        try:
            failures += check_case(case, fname, ours_path)
            checked += 1
        finally:
            if RESAVE is not None and os.path.exists(ours_path):
                os.remove(ours_path)
    print(f"PyTorch {torch.__version__} loaded, printed and ran {checked} programs saved by oxport")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


def check_case(case, fname, ours_path):
    """Problems found with oxport's copy of one program (an empty list when there are none)."""
    if not os.path.exists(ours_path):
        return [f"{fname}: oxport did not write it"]
    try:
        original = torch.export.load(os.path.join(FIXTURES, fname))
        ours = torch.export.load(ours_path)
    except Exception as e:  # noqa: BLE001
        return [f"{fname}: torch.export.load failed: {type(e).__name__}: {e}"]
    problems = []
    expected_text = open(os.path.join(FIXTURES, fname[:-4] + ".txt")).read()
    if str(ours) != expected_text:
        problems.append("prints differently")
    problems += same_tensors("state_dict", original.state_dict, ours.state_dict)
    problems += same_tensors("constants", {k: v for k, v in original.constants.items()},
                             {k: v for k, v in ours.constants.items()})
    flat = inputs_for(case)
    try:
        out_a, in_a = run(original, flat)
        out_b, in_b = run(ours, flat)
        if not same_values(out_a, out_b):
            problems.append("outputs differ")
        if not same_values(in_a, in_b):
            problems.append("input mutations differ")
    except Exception as e:  # noqa: BLE001
        problems.append(f"running failed: {type(e).__name__}: {e}")
    return [f"{fname}: " + "; ".join(problems)] if problems else []


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Large reference programs, generated on demand (never committed): torchvision resnet18,
mobilenet_v3_small and vit_b_16, nn.TransformerEncoder, nn.LSTM and the GPT block (tools/collect_ops.py),
each exported by real torch.export (eval mode, seeded weights) in training IR (`train`) and after
run_decompositions() (`core`).

Writes into OUT_DIR (default ~/.cache/oxport/large_pt2), for each NAME.FORM:
  NAME.FORM.pt2          torch.export.save
  NAME.FORM.txt          print(torch.export.load(NAME.FORM.pt2))
  NAME.FORM.in_<i>.npy   flattened (args, kwargs) inputs
  NAME.FORM.out_<j>.npy  flattened outputs of ep.module() on them
and manifest.json (same case format as tests/fixtures/pt2/manifest.json). Files already there for the
installed torch version are kept, so a second run is quick.

Run: ~/.cache/oxport/venv/bin/python tools/gen_large_pt2.py [OUT_DIR]
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.utils._pytree as pytree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import collect_ops  # noqa: E402  (model definitions)

torch.set_num_threads(2)
LARGE = ("resnet18", "mobilenet_v3_small", "vit_b_16", "transformer_encoder", "lstm", "gpt_block")


def leaf_spec(x):
    if isinstance(x, torch.Tensor):
        return {"kind": "tensor", "dtype": str(x.dtype).split(".")[-1], "shape": list(x.shape)}
    return {"kind": type(x).__name__, "value": x}


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/oxport/large_pt2")
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    manifest = {"torch_version": torch.__version__, "cases": []}
    if os.path.exists(manifest_path):
        old = json.load(open(manifest_path))
        if old.get("torch_version") == torch.__version__:
            manifest = old
    done = {(c["name"], c["form"]) for c in manifest["cases"]}
    for name, thunk in collect_ops.models():
        if name not in LARGE or {(name, "train"), (name, "core")} <= done:
            continue
        t0 = time.time()
        torch.manual_seed(0)
        mod, args, kwargs = thunk()
        mod.eval()
        export_start = time.time()
        ep = torch.export.export(mod, args, kwargs)
        export_s = time.time() - export_start
        flat_in = pytree.tree_leaves((args, kwargs))
        for form, prog in (("train", ep), ("core", ep.run_decompositions())):
            base = os.path.join(out_dir, f"{name}.{form}")
            prog.example_inputs = None  # keep the archive to weights + program
            torch.export.save(prog, base + ".pt2")
            loaded = torch.export.load(base + ".pt2")
            with open(base + ".txt", "w") as f:
                f.write(str(loaded))
            with torch.no_grad():
                outs = pytree.tree_leaves(loaded.module()(*args, **kwargs))
            for i, x in enumerate(flat_in):
                np.save(f"{base}.in_{i}.npy", x.numpy() if isinstance(x, torch.Tensor) else np.array(x))
            for j, y in enumerate(outs):
                np.save(f"{base}.out_{j}.npy", y.numpy() if isinstance(y, torch.Tensor) else np.array(y))
            manifest["cases"] = [c for c in manifest["cases"] if (c["name"], c["form"]) != (name, form)]
            manifest["cases"].append({
                "name": name, "form": form, "pt2": f"{name}.{form}.pt2",
                "pt2_size": os.path.getsize(base + ".pt2"),
                "inputs": [leaf_spec(x) for x in flat_in], "outputs": [leaf_spec(y) for y in outs],
                "torch_export_seconds": round(export_s, 3),
            })
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=1)
        print(f"[{name}] exported in {export_s:.2f}s, total {time.time() - t0:.1f}s", flush=True)
    print(f"{len(manifest['cases'])} programs in {out_dir}")


if __name__ == "__main__":
    main()

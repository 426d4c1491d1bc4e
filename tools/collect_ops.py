#!/usr/bin/env python3
"""Export a set of reference models with real torch.export and record the
call_function targets of each graph, in training IR and after
run_decompositions() (core ATen IR).

Outputs:
  tools/data/model_ops.json  per model / per IR sorted target lists
  tools/data/model_ops.txt   sorted union of all aten OpOverloads (one per line)

Run: ~/.cache/oxport/venv/bin/python tools/collect_ops.py
"""
import json
import os
import sys
import time
import traceback

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.manual_seed(0)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "data")


class SinCos(nn.Module):
    def forward(self, x, y):
        return torch.sin(x) + torch.cos(y)


class ConvReluMaxpool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3)

    def forward(self, x, constant=None):
        a = self.conv(x)
        a.add_(constant)
        return self.maxpool(self.relu(a))


class GPTBlock(nn.Module):
    def __init__(s, d=64, h=4):
        super().__init__()
        s.ln1 = nn.LayerNorm(d)
        s.attn = nn.MultiheadAttention(d, h, batch_first=True)
        s.ln2 = nn.LayerNorm(d)
        s.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(s, x):
        h = s.ln1(x)
        a, _ = s.attn(h, h, h, need_weights=False)
        x = x + a
        return x + s.mlp(s.ln2(x))


def models():
    """Yield (name, thunk) where thunk() -> (module, args, kwargs)."""
    import torchvision.models as tvm

    yield "sin_cos", lambda: (SinCos(), (torch.randn(10, 10), torch.randn(10, 10)), {})
    yield "conv_relu_maxpool", lambda: (
        ConvReluMaxpool(),
        (torch.randn(1, 3, 256, 256),),
        {"constant": torch.randn(1, 16, 256, 256)},
    )
    yield "resnet18", lambda: (tvm.resnet18(), (torch.randn(1, 3, 224, 224),), {})
    yield "mobilenet_v3_small", lambda: (tvm.mobilenet_v3_small(), (torch.randn(1, 3, 224, 224),), {})
    yield "vit_b_16", lambda: (tvm.vit_b_16(), (torch.randn(1, 3, 224, 224),), {})
    yield "transformer_encoder", lambda: (
        nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2),
        (torch.randn(2, 16, 64),),
        {},
    )
    yield "lstm", lambda: (nn.LSTM(16, 32, batch_first=True), (torch.randn(2, 5, 16),), {})
    yield "gpt_block", lambda: (GPTBlock(), (torch.randn(2, 16, 64),), {})


def target_name(t):
    if isinstance(t, torch._ops.OpOverload):
        return str(t)  # e.g. aten.conv2d.default
    if isinstance(t, torch._ops.HigherOrderOperator):
        return f"higher_order.{t.name()}"
    mod = getattr(t, "__module__", None) or "?"
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", None) or str(t)
    return f"{mod}.{name}"


def graph_targets(gm, acc):
    """Collect call_function targets, recursing into submodules (HOP bodies)."""
    for node in gm.graph.nodes:
        if node.op == "call_function":
            acc.add(target_name(node.target))
    for _, sub in gm.named_children():
        if isinstance(sub, torch.fx.GraphModule):
            graph_targets(sub, acc)
    return acc


def main():
    result = {"torch_version": torch.__version__.split("+")[0], "models": {}}
    all_ops = set()
    for name, thunk in models():
        t0 = time.time()
        entry = {}
        try:
            torch.manual_seed(0)
            mod, args, kwargs = thunk()
            mod.eval()
            ep = torch.export.export(mod, args, kwargs)
            entry["training"] = sorted(graph_targets(ep.graph_module, set()))
            try:
                core = ep.run_decompositions()
                entry["core"] = sorted(graph_targets(core.graph_module, set()))
            except Exception as e:  # noqa: BLE001
                entry["core_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            entry["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        for form in ("training", "core"):
            for t in entry.get(form, []):
                if t.startswith("aten."):
                    all_ops.add(t)
        result["models"][name] = entry
        print(f"[{name}] {time.time() - t0:.1f}s "
              f"training={len(entry.get('training', []))} core={len(entry.get('core', []))}"
              + (f" ERROR {entry['error']}" if "error" in entry else ""), flush=True)

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "model_ops.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(OUT_DIR, "model_ops.txt"), "w") as f:
        for op in sorted(all_ops):
            f.write(op + "\n")

    print("\n== summary ==")
    for name, entry in result["models"].items():
        if "error" in entry:
            print(f"{name}: ERROR {entry['error']}")
            continue
        print(f"{name}:")
        print(f"  training: {' '.join(entry['training'])}")
        print(f"  core:     {' '.join(entry.get('core', [entry.get('core_error')]))}")
    print(f"\n{len(all_ops)} unique aten overloads -> tools/data/model_ops.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())

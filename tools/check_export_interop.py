#!/usr/bin/env python3
"""Export interop, run by CI: for each zoo model, `export_zoo` (Rust) wrote DIR/<model>/{model.pt2,
program.txt, in_*.npy, out_*.npy}. Check with real PyTorch that:
  * the printed program equals PyTorch's print of the model's PyTorch twin, line for line, except the
    `# File:` lines (twins: tools/gen_pt2_fixtures.py for the seed programs, torchvision for resnet18);
  * torch.export.load opens model.pt2 and prints exactly program.txt;
  * running it on in_*.npy reproduces the Rust eager outputs out_*.npy (|a-b| <= 1e-5 + 1e-4|b|).

Usage: check_export_interop.py DIR MODEL [MODEL ...]
"""
import os
import sys

import numpy as np
import torch
import torch.utils._pytree as pytree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def twin(name):
    if name in ("sin_cos", "conv_relu_maxpool"):
        import gen_pt2_fixtures as g
        torch.manual_seed(0)
        if name == "sin_cos":
            return g.SinCos(), (torch.randn(10, 10), torch.randn(10, 10)), {}
        return g.ConvReluMaxpool(), (torch.randn(1, 3, 256, 256),), {"constant": torch.ones(1, 16, 256, 256)}
    if name == "transformer_encoder":
        nn = torch.nn
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2), (torch.randn(2, 16, 64),), {}
    if name == "lstm":
        return torch.nn.LSTM(16, 32, batch_first=True), (torch.randn(2, 5, 16),), {}
    if name == "gpt_block":
        import collect_ops
        torch.manual_seed(0)
        return collect_ops.GPTBlock(), (torch.randn(2, 16, 64),), {}
    if name in ("resnet18", "mobilenet_v3_small"):
        import torchvision
        return getattr(torchvision.models, name)(), (torch.randn(1, 3, 224, 224),), {}
    raise SystemExit(f"no twin for {name}")


def strip(text):
    return [l for l in text.splitlines() if not l.strip().startswith("# File:")]


def main():
    root, models = sys.argv[1], sys.argv[2:]
    failures = []
    for name in models:
        d = os.path.join(root, name)
        ours = open(os.path.join(d, "program.txt")).read()
        mod, args, kwargs = twin(name)
        mod.eval()
        theirs = str(torch.export.export(mod, args, kwargs))
        if strip(ours) != strip(theirs):
            diff = [(a, b) for a, b in zip(strip(ours), strip(theirs)) if a != b][:1]
            failures.append(f"{name}: printed program differs from PyTorch's twin: {diff}")
        ep = torch.export.load(os.path.join(d, "model.pt2"))
        if str(ep) != ours:
            failures.append(f"{name}: PyTorch prints the loaded model.pt2 differently")
        n_in = len([f for f in os.listdir(d) if f.startswith("in_")])
        flat = [torch.from_numpy(np.load(os.path.join(d, f"in_{i}.npy"))) for i in range(n_in)]
        a, k = pytree.tree_unflatten(flat, ep.call_spec.in_spec)
        with torch.no_grad():
            outs = pytree.tree_leaves(ep.module()(*a, **k))
        for j, y in enumerate(outs):
            want = np.load(os.path.join(d, f"out_{j}.npy"))
            if not np.allclose(y.numpy(), want, rtol=1e-4, atol=1e-5):
                failures.append(f"{name}: output {j} differs from the Rust eager output by {np.abs(y.numpy() - want).max()}")
        print(f"{name}: print matches PyTorch's twin; PyTorch loads, prints and runs it to the Rust outputs"
              if not any(f.startswith(name + ":") for f in failures) else f"{name}: FAILED", flush=True)
    # PyTorch's weights in the Rust resnet18 give PyTorch's outputs (export_zoo --weights, see the .sh).
    wdir = os.path.join(root, "resnet18_torch_weights")
    if os.path.isdir(wdir):
        import torchvision
        m = torchvision.models.resnet18().eval()
        m.load_state_dict(torch.export.load(os.environ["RESNET18_WEIGHTS"]).state_dict)
        x = torch.from_numpy(np.load(os.path.join(wdir, "in_0.npy")))
        with torch.no_grad():
            y = m(x).numpy()
        got = np.load(os.path.join(wdir, "out_0.npy"))
        if np.allclose(got, y, rtol=1e-4, atol=1e-5):
            print(f"resnet18 with PyTorch's weights: Rust eager output = PyTorch's (max abs diff {np.abs(got - y).max():.2e})")
        else:
            failures.append(f"resnet18 with PyTorch's weights differs from PyTorch by {np.abs(got - y).max()}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

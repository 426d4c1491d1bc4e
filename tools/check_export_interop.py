#!/usr/bin/env python3
"""Export interop, run by CI: for each zoo model, `export_zoo` (Rust) wrote DIR/<model>/{model.pt2,
program.txt, in_*.npy, out_*.npy}. Check with real PyTorch that:
  * the printed program equals PyTorch's print of the model's PyTorch twin, line for line, except the
    `# File:` lines (twins: tools/gen_pt2_fixtures.py for the seed programs, torchvision for resnet18);
  * torch.export.load opens model.pt2 and prints exactly program.txt;
  * running it on in_*.npy reproduces the Rust eager outputs out_*.npy (|a-b| <= 1e-5 + 1e-4|b|).

A MODEL named `<model>.core` was exported with `--core` (run_decompositions); its twin's program is
decomposed too, and compared as torch.export.load gives it back.
A MODEL named `<model>.dynamic_batch` was exported with `--dynamic-batch` (dim 0 of every input
`Dim("batch", min=1, max=1024)`); its twin is exported the same way, and PyTorch also runs the loaded
program at another batch size.

Usage: check_export_interop.py DIR MODEL [MODEL ...]
"""
import io
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


def canonical_sym_names(lines):
    """The lines with symbolic-int nodes renamed in order of appearance (sym0, sym1, ...). PyTorch's
    numbering of `sym_size_int_N` / `mul_N` inside torch.nn internals counts symbolic arithmetic its C++
    stride computations did and then dropped, which oxport does not replay."""
    import re
    names = {}
    for l in lines:
        m = re.match(r'\s*(\w+): "Sym\(', l)
        if m and m.group(1) not in names:
            names[m.group(1)] = f"sym{len(names)}"
    if not names:
        return lines
    pat = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    return [pat.sub(lambda m: names[m.group(1)], l) for l in lines]


def main():
    root, models = sys.argv[1], sys.argv[2:]
    failures = []
    for name in models:
        d = os.path.join(root, name)
        ours = open(os.path.join(d, "program.txt")).read()
        model, _, variant = name.partition(".")
        mod, args, kwargs = twin(model)
        mod.eval()
        dynamic = None
        if variant == "dynamic_batch":
            from torch.export import Dim
            batch = Dim("batch", min=1, max=1024)
            dynamic = ({0: batch} for _ in args), {k: {0: batch} for k in kwargs}
            dynamic = (tuple(dynamic[0]), dynamic[1]) if kwargs else tuple(dynamic[0])
        twin_ep = torch.export.export(mod, args, kwargs, dynamic_shapes=dynamic)
        if variant == "core":
            buf = io.BytesIO()
            torch.export.save(twin_ep.run_decompositions(), buf)
            buf.seek(0)
            twin_ep = torch.export.load(buf)
        theirs = str(twin_ep)
        same = strip(ours) == strip(theirs) and "matches PyTorch's twin"
        if not same and dynamic is not None and canonical_sym_names(strip(ours)) == canonical_sym_names(strip(theirs)):
            same = "matches PyTorch's twin up to the numbering of symbolic-int nodes"
        if not same:
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
        if dynamic is not None:
            # Another batch size: the loaded program runs, and agrees with the same program run per sample.
            big = [torch.cat([t, t.flip(0), t[:1]]) for t in flat]
            a, k = pytree.tree_unflatten(big, ep.call_spec.in_spec)
            with torch.no_grad():
                got = pytree.tree_leaves(ep.module()(*a, **k))
            n = flat[0].shape[0]
            for j, (y, y0) in enumerate(zip(got, outs)):
                want = torch.cat([y0, y0.flip(0), y0[:1]]) if y.shape[0] == 2 * n + 1 else None
                if want is None and y.dim() > 1 and y.shape[1] == 2 * n + 1:  # LSTM states: (layers, N, H)
                    want = torch.cat([y0, y0.flip(1), y0[:, :1]], 1)
                if want is None or not torch.allclose(y, want, rtol=1e-4, atol=1e-5):
                    failures.append(f"{name}: at batch {2 * n + 1}, output {j} is not the per-sample outputs")
        also = f", and at batch {2 * flat[0].shape[0] + 1}" if dynamic is not None else ""
        print(f"{name}: print {same}; PyTorch loads, prints and runs it to the Rust outputs{also}"
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

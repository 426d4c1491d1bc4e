#!/usr/bin/env python3
"""What torch.export prints for the PyTorch twins of the Rust zoo models, without the `# File:` lines
(those point at Python sources; oxport's point at Rust): tests/fixtures/export/<model>.train.txt.
The Rust test crates/oxport-export/tests/zoo_prints.rs compares oxport's export of each zoo model with it.

Run: ~/.cache/oxport/venv/bin/python tools/gen_export_fixtures.py
"""
import os

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "export")


def twins():
    import sys
    sys.path.insert(0, HERE)
    import collect_ops

    yield "resnet18", torchvision.models.resnet18, (torch.randn(1, 3, 224, 224),)
    yield "gpt_block", collect_ops.GPTBlock, (torch.randn(2, 16, 64),)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, ctor, args in twins():
        torch.manual_seed(0)
        ep = torch.export.export(ctor().eval(), args)
        text = "\n".join(l for l in str(ep).splitlines() if not l.strip().startswith("# File:")) + "\n"
        with open(os.path.join(OUT, f"{name}.train.txt"), "w") as f:
            f.write(text)
        print(f"{name}: {len(text)} bytes")


if __name__ == "__main__":
    main()

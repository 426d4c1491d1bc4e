#!/usr/bin/env python3
"""Symbolic-float constants as PyTorch writes and prints them: exports `x * (sym_float(t) * c)` for a
range of doubles `c` with a dynamic `t`, and records for each the `Float(...)` srepr the .pt2 stores and the
`Sym(...)` annotation the loaded program prints. Output: tests/fixtures/export/sym_float_consts.json
(checked by crates/oxport-ir/tests/sym_float_consts.rs).
"""
import io
import json
import os
import re
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "export", "sym_float_consts.json")

CONSTS = [0.5, -0.5, 1.5, 2.0, 0.1, 1 / 3, 1e-6, 1e-5, 1e-4, 0.001, 1e15, 1e16, 1e20, 100.0, 123456.789,
          0.0625, 3.14159, 12345678901234567.0, 2.5e-300, 1.7976931348623157e308, 5e-324, 0.999999999999999,
          9.999999999999999e22, -1e-7, 2 ** -20, 7.0 / 9.0]


class Consts(torch.nn.Module):
    def forward(self, x):
        f = torch.sym_float(x.shape[0])
        return tuple(x * (f * c) for c in CONSTS)


def main():
    ep = torch.export.export(Consts(), (torch.randn(5),), dynamic_shapes=({0: torch.export.Dim("t", min=2)},))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    model = json.loads(z.read(next(n for n in z.namelist() if n.endswith("models/model.json"))))
    graph = model["graph_module"]["graph"]
    buf.seek(0)
    printed = str(torch.export.load(buf))
    cases = []
    for node in graph["nodes"]:
        if node["target"] != "_operator.mul":
            continue
        name = node["outputs"][0]["as_sym_float"]["as_name"]
        c = node["inputs"][1]["arg"]["as_float"]
        srepr = graph["sym_float_values"][name]["as_expr"]["expr_str"]
        ann = re.search(rf'\b{name}: "Sym\((.*)\)" = ', printed).group(1)
        cases.append({"value": repr(c), "srepr": srepr, "printed": ann})
    with open(OUT, "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} constants")


if __name__ == "__main__":
    main()

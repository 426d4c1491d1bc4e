#!/usr/bin/env python3
"""What torch.export prints for the PyTorch twins of the Rust zoo models, without the `# File:` lines
(those point at Python sources; oxport's point at Rust): tests/fixtures/export/<model>.train.txt.
The Rust test crates/oxport-export/tests/zoo_prints.rs compares oxport's export of each zoo model with it.

Run: ~/.cache/oxport/venv/bin/python tools/gen_export_fixtures.py [name ...]  (only those twins)
"""
import io
import os
import sys

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "export")


class Layers(torch.nn.Module):
    """One of each simple layer (twin of the Rust test model in crates/oxport-export/tests/zoo_prints.rs)."""

    def __init__(s):
        super().__init__()
        nn = torch.nn
        s.bn = nn.BatchNorm2d(3)
        s.r6 = nn.ReLU6()
        s.hs = nn.Hardswish()
        s.hsig = nn.Hardsigmoid(inplace=True)
        s.si = nn.SiLU(inplace=True)
        s.ap = nn.AvgPool2d(2)
        s.ident = nn.Identity()
        s.flat = nn.Flatten()
        s.emb = nn.Embedding(10, 4)
        s.do = nn.Dropout(0.1)
        s.sg = nn.Sigmoid()
        s.th = nn.Tanh()

    def forward(s, img, idx):
        a = s.hs(s.r6(s.bn(img)))
        b = s.ap(s.si(s.hsig(a)))
        c = s.th(s.sg(s.do(s.emb(idx))))
        return s.flat(s.ident(b)), c


class DynMLP(torch.nn.Module):
    """Exported with a dynamic batch: Dim("batch", min=3, max=1024) on x's dim 0."""

    def __init__(s):
        super().__init__()
        s.fc1 = torch.nn.Linear(8, 16)
        s.relu = torch.nn.ReLU()
        s.fc2 = torch.nn.Linear(16, 4)

    def forward(s, x):
        return s.fc2(s.relu(s.fc1(x)))


class Seq1d(torch.nn.Module):
    """Conv1d, BatchNorm1d and a ModuleDict."""

    def __init__(s):
        super().__init__()
        s.conv = torch.nn.Conv1d(4, 6, 3, padding=1)
        s.bn = torch.nn.BatchNorm1d(6)
        s.heads = torch.nn.ModuleDict({"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()})

    def forward(s, x):
        h = s.bn(s.conv(x))
        return s.heads["relu"](h), s.heads["tanh"](h)


class ConvModes(torch.nn.Module):
    """Conv2d with each non-zero padding mode."""

    def __init__(s):
        super().__init__()
        s.c1 = torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
        s.c2 = torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate")
        s.c3 = torch.nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="circular")

    def forward(s, x):
        return s.c3(s.c2(s.c1(x)))


class AttnWeights(torch.nn.Module):
    """MultiheadAttention called with its defaults (need_weights=True): the averaged weights path."""

    def __init__(s):
        super().__init__()
        s.attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(s, x):
        a, w = s.attn(x, x, x)
        return a, w


class AttnMasks(torch.nn.Module):
    """MultiheadAttention: encoder-decoder (key is value) and separate key/value attention with bool
    masks, and self-attention with a float mask and per-head weights."""

    def __init__(s):
        super().__init__()
        s.attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(s, q, kv, v, kpm, am, fm):
        a, w = s.attn(q, kv, kv, key_padding_mask=kpm, attn_mask=am)
        b, _ = s.attn(q, kv, v, need_weights=False, key_padding_mask=kpm, attn_mask=am)
        c, wc = s.attn(q, q, q, attn_mask=fm, average_attn_weights=False)
        d, _ = s.attn(q, q, q, need_weights=False, attn_mask=fm)
        return a, w, b, c, wc, d


class AttnUnbatched(torch.nn.Module):
    """Sequence-first MultiheadAttention on unbatched inputs with a key padding mask."""

    def __init__(s):
        super().__init__()
        s.attn = torch.nn.MultiheadAttention(16, 2)

    def forward(s, q, kv, kpm):
        return s.attn(q, kv, kv, key_padding_mask=kpm)


class EncoderOptions(torch.nn.Module):
    """TransformerEncoder with pre-norm GELU layers and a final norm, called with a key padding mask, and
    with an attention mask and is_causal=False (without it, PyTorch's causal detection reads the mask)."""

    def __init__(s):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(16, 2, 32, activation="gelu", batch_first=True, norm_first=True)
        s.enc = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(16), enable_nested_tensor=False)

    def forward(s, x, kpm, am):
        return s.enc(x, src_key_padding_mask=kpm), s.enc(x, mask=am, is_causal=False)


class EncoderLayerSeqFirst(torch.nn.Module):
    """A sequence-first pre-norm TransformerEncoderLayer without dropout, with both masks."""

    def __init__(s):
        super().__init__()
        s.layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu", norm_first=True)

    def forward(s, x, kpm, am):
        return s.layer(x, src_mask=am, src_key_padding_mask=kpm)


def attn_mask_inputs():
    kpm = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    am = torch.triu(torch.ones(4, 5, dtype=torch.bool), 1)
    return (torch.randn(2, 4, 16), torch.randn(2, 5, 16), torch.randn(2, 5, 16), kpm, am, torch.randn(4, 4))


class CondModel(torch.nn.Module):
    """torch.cond on tensor data; the true branch uses a parameter, the false one a buffer."""

    def __init__(s):
        super().__init__()
        s.w = torch.nn.Parameter(torch.ones(3))
        s.register_buffer("b", torch.ones(3))

    def forward(s, x, y):
        def t(x, y):
            return (x * s.w + y, x.sin())

        def f(x, y):
            return (x.cos() * s.b, y + 1)

        pred = x.sum() > 0
        out = torch.cond(pred, t, f, (x, y))
        return out[0] + 1, out[1]


class DynSizes(torch.nn.Module):
    """Sizes read from dynamic dims and computed with, exported with x and y sharing a dynamic batch."""

    def forward(s, x, y):
        u = y.shape[0]
        b = x.shape[0]
        c = b * 2
        h = x.relu()
        r = h.reshape(c, -1), h.reshape(2 * b, 3, -1), y.reshape(y.shape[0], -1)
        v = x.view(b + 1 - 1, -1)
        return r, v, h.reshape(h.shape[0], x.shape[1] // 2, -1)


@torch.library.custom_op("mylib::scaled_add", mutates_args=())
def scaled_add(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """The custom op crates/oxport/tests/custom_op.rs registers on the Rust side."""
    return x + alpha * y


@scaled_add.register_fake
def _(x, y, alpha=1.0):
    return torch.empty_like(x)


class CustomOpModel(torch.nn.Module):
    """A custom op called with and without its default argument (twin in crates/oxport/tests/custom_op.rs)."""

    def forward(s, x, y):
        a = torch.ops.mylib.scaled_add(x, y)
        b = torch.ops.mylib.scaled_add(a, y, 2.5)
        return b.relu()


def write_custom_op_pt2(ep):
    """The custom-op program as torch.export.save writes it, and its loaded print with the `# File:` lines
    (oxport prints a loaded program's stack traces as PyTorch does): custom_op.pt2, custom_op.pt2.txt."""
    sys.path.insert(0, HERE)
    import gen_pt2_fixtures

    # Repository-relative stack traces and a content-derived serialization id, as the .pt2 fixtures have,
    # so the file is the same from any clone location.
    gen_pt2_fixtures.normalize_stack_traces(ep)
    gen_pt2_fixtures.normalize_nn_module_stack(ep)
    gen_pt2_fixtures.normalize_from_node(ep)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    data = gen_pt2_fixtures.normalize_torch_zip(buf.getvalue())
    path = os.path.join(OUT, "custom_op.pt2")
    with open(path, "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, "custom_op.pt2.txt"), "w") as f:
        f.write(str(torch.export.load(path)))


class SymFactories(torch.nn.Module):
    """Factories sized by a dynamic dim (twin in crates/oxport-export/tests/sym_ints.rs): arange(n),
    arange(1, n + 1), arange(0, 2 * n, 2), full([n, 4]), new_zeros, new_ones, zeros(n, 2)."""

    def forward(s, x):
        n = x.shape[0]
        pos = torch.arange(n)
        steps = torch.arange(1, n + 1)
        evens = torch.arange(0, n * 2, 2)
        f = torch.full([n, 4], 1.5)
        z = x.new_zeros([n, 3])
        o = x.new_ones([2, n])
        e = torch.zeros(n, 2)
        shifted = x + pos.unsqueeze(1)
        return pos, steps, evens, f, z, o, e, shifted


class SymViews(torch.nn.Module):
    """Views and slices with sizes computed from two dynamic dims: view([b * 4, -1]), reshape([-1, t * 2]),
    expand([b, t, 4]), x[:, 1:t - 1], narrow(1, 0, t - 1), repeat([b, 1, 1])."""

    def forward(s, x):
        b, t = x.shape[0], x.shape[1]
        v = x.view(b * 4, -1)
        r = x.reshape(-1, t * 2)
        e = x[:, :1].expand(b, t, 4)
        head = x[:, 1 : t - 1]
        n = x.narrow(1, 0, t - 1)
        rep = x[:1].repeat(b, 1, 1)
        return v, r, e, head, n, rep


class SymScalars(torch.nn.Module):
    """Numbers computed from dynamic sizes passed where ops take a Scalar: x * t, x + (t - 1), x / (t * d),
    full([2, t], t)."""

    def forward(s, x):
        t, d = x.shape[1], x.shape[-1]
        a = x * t
        c = x + (t - 1)
        q = x / (t * d)
        g = torch.full([2, t], t)
        return a, c, q, g



class SymFloats(torch.nn.Module):
    """Symbolic floats computed from dynamic sizes (twin in crates/oxport-export/tests/sym_ints.rs):
    d ** -0.5, torch.sym_sqrt(d), t / 2, t * 0.5 + 1.0, sym_float(t * d), 2.0 - sym_float(t), 1.0 / sym_float(d),
    -(t / d), t ** 2, sym_int(t / 2), 0.5 * sym_float(d) * 3, d * t * 3 (sympy orders the product s27*s53)."""

    def forward(s, x):
        t, d = x.shape[1], x.shape[-1]
        a = x * (d ** -0.5)
        b = x / torch.sym_sqrt(d)
        c = x.view(2, -1) / (t / 2)
        e = x * (t * 0.5 + 1.0)
        f = x * torch.sym_float(t * d)
        g = x * (2.0 - torch.sym_float(t))
        h = x * (1.0 / torch.sym_float(d))
        i = x * -(t / d)
        j = x * (t ** 2)
        k = x * torch.sym_int(t / 2)
        m = x * (0.5 * torch.sym_float(d) * 3)
        n = x * (d * t * 3)
        return a, b, c, e, f, g, h, i, j, k, m, n


class SymAttention(torch.nn.Module):
    """Self-attention scaled by q.size(-1) ** -0.5 with a dynamic sequence and a dynamic head dim."""

    def forward(s, x):
        w = (x @ x.transpose(-2, -1)) * (x.size(-1) ** -0.5)
        return w.softmax(-1) @ x


class EinsumPairs(torch.nn.Module):
    """torch.einsum over two and three operands (twin in crates/oxport-export/tests/decompose_fixtures.rs):
    matmul, batched, attention, outer, broadcast ellipsis, size-1 batch dims, labels only one operand has,
    labels repeated across operands, operands swapped by sumproduct_pair, reshapes that copy, and a
    contraction path (as torch.einsum passes opt_einsum's)."""

    def forward(s, x, y, z, bt, bu, q, k, v, w, one, x2, t3):
        return (
            torch.einsum("ij,jk->ik", x, y),
            torch.einsum("bij,bjk->bik", bt, bu),
            torch.einsum("bhqd,bhkd->bhqk", q, k),
            torch.einsum("i,j->ij", v, w),
            torch.einsum("...ij,...jk->...ik", bt, z),
            torch.einsum("ij,jk,kl->il", x, y, z),
            torch.einsum("ij,ij->i", x, x),
            torch.einsum("ij,ij->ij", x, x),
            torch.einsum("bij,bjk->bik", one, bu),
            torch.einsum("bij,bjk->ik", one, bu),
            torch.einsum("ij,k->i", x, w),
            torch.einsum("ij,ik->j", x, x2),
            torch.einsum("ij,ik->kj", x, x2),
            torch.einsum("ijk,kj->i", t3, y.permute(1, 0)),
            torch.einsum("bn,anm,bm->ba", x, t3, x2),
            torch.einsum("ij,jk", x, y),
            torch.einsum("Ab,bC->AC", x, y),
            torch.einsum("i,i->", v, v),
            torch.ops.aten.einsum.default("ij,jk,kl->il", [x, y, z], path=[1, 2, 0, 1]),
        )


# Input shapes of EinsumPairs, in its forward's order.
EINSUM_PAIRS_SHAPES = [(2, 3), (3, 4), (4, 5), (2, 3, 4), (2, 4, 5), (2, 3, 4, 5), (2, 3, 6, 5), (3,), (4,),
                       (1, 3, 4), (2, 4), (2, 3, 4)]


class EinsumSingle(torch.nn.Module):
    """torch.einsum over one operand (twin in crates/oxport-export/tests/decompose_fixtures.rs): diagonals
    (also inside a 3-d operand), traces, sums, transposes, implicit outputs, size-1 dims, ellipses."""

    def forward(s, sq, x, c3, d3, u):
        return (
            torch.einsum("ii->i", sq),
            torch.einsum("ii->", sq),
            torch.einsum("ii", sq),
            torch.einsum("ij->", x),
            torch.einsum("ij->ji", x),
            torch.einsum("ba", x),
            torch.einsum("ij->j", x),
            torch.einsum("iij->ji", c3),
            torch.einsum("jii->ij", d3),
            torch.einsum("iji->j", c3.permute(0, 2, 1)),
            torch.einsum("ibj->jb", u),
            torch.einsum("...j->j...", c3),
            torch.einsum("i...->...", x),
        )


EINSUM_SINGLE_SHAPES = [(3, 3), (2, 3), (3, 3, 2), (2, 3, 3), (3, 1, 4)]

# Models whose run_decompositions() print is recorded too.
CORE = {"resnet18", "mobilenet_v3_small", "layers", "seq1d", "cond", "lstm_stacked", "lstm_unbatched", "custom_op",
        "einsum_pairs", "einsum_single"}

_BATCH = torch.export.Dim("b", min=2, max=64)
DYNAMIC = {
    "dynamic_mlp": {"x": {0: torch.export.Dim("batch", min=3, max=1024)}},
    "dynamic_sizes": {"x": {0: _BATCH}, "y": {0: _BATCH}},
    "sym_factories": {"x": {0: torch.export.Dim("n", min=2, max=32)}},
    "sym_views": {"x": {0: torch.export.Dim("b", min=2, max=16), 1: torch.export.Dim("t", min=4, max=32)}},
    "sym_scalars": {"x": {1: torch.export.Dim("t", min=2, max=32), 2: torch.export.Dim("d", min=2, max=64)}},
    "sym_floats": {"x": {1: torch.export.Dim("t", min=2, max=32), 2: torch.export.Dim("d", min=2, max=64)}},
    "sym_attention": {"x": {1: torch.export.Dim("s", min=2, max=32), 2: torch.export.Dim("d", min=2, max=64)}},
}

# Dynamic models also run by PyTorch's exported program at their example size and at another one:
# <name>.<size tag>.in_<i>.npy / .out_<i>.npy, which oxport's export of the Rust twin must reproduce.
RUN_SIZES = {
    "sym_factories": {"n5": [(5, 6)], "n9": [(9, 6)]},
    "sym_views": {"b3t5": [(3, 5, 4)], "b6t11": [(6, 11, 4)]},
    "sym_scalars": {"t5d8": [(2, 5, 8)], "t7d3": [(2, 7, 3)]},
    "sym_floats": {"t5d8": [(2, 5, 8)], "t6d3": [(2, 6, 3)]},
    "sym_attention": {"s5d8": [(2, 5, 8)], "s9d4": [(2, 9, 4)]},
    "einsum_pairs": {"run": EINSUM_PAIRS_SHAPES},
    "einsum_single": {"run": EINSUM_SINGLE_SHAPES},
}


def write_runs(name, ep):
    """PyTorch's outputs of the exported program at each of RUN_SIZES[name] (seeded inputs)."""
    import numpy as np

    for tag, shapes in RUN_SIZES[name].items():
        gen = torch.Generator().manual_seed(0)
        inputs = [torch.randn(*shape, generator=gen) for shape in shapes]
        outputs = ep.module()(*inputs)
        if isinstance(outputs, torch.Tensor):  # a single output, not a tuple to iterate over
            outputs = (outputs,)
        for kind, values in (("in", inputs), ("out", outputs)):
            for i, v in enumerate(values):
                np.save(os.path.join(OUT, f"{name}.{tag}.{kind}_{i}.npy"), v.detach().contiguous().numpy(),
                        allow_pickle=False)


def twins():
    import sys
    sys.path.insert(0, HERE)
    import collect_ops

    yield "resnet18", torchvision.models.resnet18, (torch.randn(1, 3, 224, 224),)
    yield "mobilenet_v3_small", torchvision.models.mobilenet_v3_small, (torch.randn(1, 3, 224, 224),)
    yield "gpt_block", collect_ops.GPTBlock, (torch.randn(2, 16, 64),)
    nn = torch.nn
    yield "transformer_encoder", lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2), (torch.randn(2, 16, 64),)
    yield "lstm", lambda: nn.LSTM(16, 32, batch_first=True), (torch.randn(2, 5, 16),)
    yield "lstm_stacked", lambda: nn.LSTM(8, 12, num_layers=2, bidirectional=True), (
        torch.randn(5, 3, 8), (torch.randn(4, 3, 12), torch.randn(4, 3, 12)))
    yield "lstm_unbatched", lambda: nn.LSTM(8, 12, num_layers=2, bidirectional=True, bias=False, dropout=0.1), (
        torch.randn(5, 8),)
    yield "dynamic_mlp", DynMLP, (torch.randn(5, 8),)
    yield "dynamic_sizes", DynSizes, (torch.randn(4, 6), torch.randn(4, 2, 3))
    yield "seq1d", Seq1d, (torch.randn(2, 4, 10),)
    yield "conv_modes", ConvModes, (torch.randn(1, 2, 5, 5),)
    yield "attn_weights", AttnWeights, (torch.randn(2, 4, 16),)
    yield "attn_masks", AttnMasks, attn_mask_inputs()
    yield "cond", CondModel, (torch.randn(2, 3), torch.randn(2, 3))
    yield "mha_module", lambda: torch.nn.MultiheadAttention(16, 2, batch_first=True), (
        torch.randn(2, 4, 16), torch.randn(2, 5, 16), torch.randn(2, 5, 16))
    kpm4 = torch.tensor([[False] * 4, [False] * 3 + [True]])
    causal4 = torch.triu(torch.ones(4, 4, dtype=torch.bool), 1)
    yield "encoder_options", EncoderOptions, (torch.randn(2, 4, 16), kpm4, causal4)
    yield "encoder_layer_seq_first", EncoderLayerSeqFirst, (torch.randn(4, 2, 16), kpm4, causal4)
    yield "encoder_layer_train", lambda: nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), (torch.randn(2, 4, 16),)
    yield "attn_weights_train", AttnWeights, (torch.randn(2, 4, 16),)
    yield "attn_unbatched", AttnUnbatched, (torch.randn(4, 16), torch.randn(5, 16), torch.tensor([False] * 3 + [True] * 2))
    yield "layers", Layers, (torch.randn(2, 3, 8, 8), torch.tensor([[1, 2], [3, 4]]))
    yield "custom_op", CustomOpModel, (torch.randn(2, 3), torch.randn(2, 3))
    yield "sym_factories", SymFactories, (torch.randn(5, 6),)
    yield "sym_views", SymViews, (torch.randn(3, 5, 4),)
    yield "sym_scalars", SymScalars, (torch.randn(2, 5, 8),)
    yield "sym_floats", SymFloats, (torch.randn(2, 5, 8),)
    yield "sym_attention", SymAttention, (torch.randn(2, 5, 8),)
    yield "einsum_pairs", EinsumPairs, tuple(torch.randn(*s) for s in EINSUM_PAIRS_SHAPES)
    yield "einsum_single", EinsumSingle, tuple(torch.randn(*s) for s in EINSUM_SINGLE_SHAPES)


def write_safetensors():
    """PyTorch's weights of the conv_relu_maxpool twin (seeded as tools/gen_pt2_fixtures.py seeds it), as
    safetensors: the Rust model must load them to the same state as the .pt2 fixture's."""
    import sys

    from safetensors.torch import save_file

    sys.path.insert(0, HERE)
    import gen_pt2_fixtures

    torch.manual_seed(0)
    m = gen_pt2_fixtures.ConvReluMaxpool()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, os.path.join(OUT, "conv_relu_maxpool.safetensors"))


def reloaded(ep):
    """The program as torch.export.load gives it back — what oxport writes and reads. A live program
    prints a few things differently: cond's operands as a tuple rather than a list, and no getitem lines
    for the outputs of multi-output ops that nothing uses (loaded: `<node>_unused_<i>`)."""
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    return torch.export.load(buf)


def main():
    only = set(sys.argv[1:])
    os.makedirs(OUT, exist_ok=True)
    if not only:
        write_safetensors()
    for name, ctor, args in twins():
        if only and name not in only:
            continue
        torch.manual_seed(0)
        model = ctor()
        if name.endswith("_train"):
            model.train()
            for m in model.modules():  # MultiheadAttention's own dropout (PyTorch's default is 0)
                if isinstance(m, torch.nn.MultiheadAttention):
                    m.dropout = 0.25
        else:
            model.eval()
        ep = torch.export.export(model, args, dynamic_shapes=DYNAMIC.get(name))
        if name == "custom_op":
            write_custom_op_pt2(ep)
        if name in RUN_SIZES:
            write_runs(name, ep)
        if name == "cond":
            ep = reloaded(ep)
        text = "\n".join(l for l in str(ep).splitlines() if not l.strip().startswith("# File:")) + "\n"
        with open(os.path.join(OUT, f"{name}.train.txt"), "w") as f:
            f.write(text)
        print(f"{name}: {len(text)} bytes")
        if name in CORE:
            core = reloaded(ep.run_decompositions())
            text = "\n".join(l for l in str(core).splitlines() if not l.strip().startswith("# File:")) + "\n"
            with open(os.path.join(OUT, f"{name}.core.txt"), "w") as f:
                f.write(text)
            print(f"{name} (core): {len(text)} bytes")


if __name__ == "__main__":
    main()

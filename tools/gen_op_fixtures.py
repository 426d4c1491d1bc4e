#!/usr/bin/env python3
"""Generate per-op oracle fixtures by running real PyTorch ATen overloads.

Writes tests/fixtures/ops/cases.json plus one small .npy per tensor.
The output is deterministic: every case seeds torch's RNG from a hash of its
id, files are named after the case id, JSON keys are sorted and the directory
is wiped of old *.npy files first.  Re-running gives byte-identical files.

Run:  ~/.cache/oxport/venv/bin/python tools/gen_op_fixtures.py

Manifest format (one entry of "cases"):
  {"id": "add.Tensor/broadcast_f32", "op": "aten.add.Tensor",
   "args": [ARG...], "kwargs": {name: ARG}, "outputs": [OUT...],
   "mutated": {"0": OUT},        # in-place ops: positional arg i after the call
   "rtol": .., "atol": ..,       # only when different from 1e-5 / 1e-6
   "error": "first line of the exception"}   # instead of outputs
See tools/README.md for ARG / OUT encodings.

Randomness ops are deliberately not covered (no deterministic oracle):
  aten.native_dropout, aten.dropout / aten.dropout_ with train=True,
  aten.rand*, aten.randn*, aten.bernoulli*.
Every aten overload in tools/data/model_ops.txt has at least one case
(checked at the end of main()).
"""
import json
import math
import os
import re
import sys
import zlib

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)

A = torch.ops.aten
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "ops")
MODEL_OPS = os.path.join(HERE, "data", "model_ops.txt")

f32, f64, f16, bf16 = torch.float32, torch.float64, torch.float16, torch.bfloat16
c64, c128 = torch.complex64, torch.complex128
i64, i32, i16, i8, u8, b8 = torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool
nan, inf = float("nan"), float("inf")
INT64_MAX = 9223372036854775807

DTYPE_NAMES = {
    f32: "float32", f64: "float64", f16: "float16", bf16: "bfloat16",
    i64: "int64", i32: "int32", i16: "int16", i8: "int8", u8: "uint8", b8: "bool",
    c64: "complex64", c128: "complex128",
}
FLOAT_DTYPES = (f32, f64, f16, bf16)

# ops whose f32 results depend on accumulation order -> looser tolerance
ACCUM_OPS = {
    "conv2d.default", "convolution.default", "linear.default", "addmm.default", "mm.default",
    "bmm.default", "matmul.default", "batch_norm.default",
    "_native_batch_norm_legit_no_training.default", "_native_batch_norm_legit_functional.default",
    "layer_norm.default",
    "native_layer_norm.default", "avg_pool2d.default", "adaptive_avg_pool2d.default",
    "_adaptive_avg_pool2d.default", "mean.dim", "mean.default", "sum.default", "sum.dim_IntList",
    "_softmax.default", "softmax.int", "_log_softmax.default", "log_softmax.int",
    "scaled_dot_product_attention.default", "lstm.input", "gelu.default", "pow.Tensor_Tensor",
    "pow.Tensor_Scalar",
}

CASES = []
SEEN_IDS = set()
SEEN_SLUGS = set()
COVERED = set()


# ---------------------------------------------------------------- encoding
def fenc(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def to_numpy(t):
    t = t.detach().resolve_conj().resolve_neg().contiguous()
    if t.dtype == bf16:
        return t.to(f32).numpy()  # exact
    return t.numpy()


class Recorder:
    def __init__(self, cid):
        self.cid = cid
        self.slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", cid)
        assert self.slug not in SEEN_SLUGS, f"slug collision {self.slug}"
        SEEN_SLUGS.add(self.slug)

    def save(self, t, role):
        fname = f"{self.slug}.{role}.npy"
        np.save(os.path.join(OUT_DIR, fname), to_numpy(t), allow_pickle=False)
        return fname

    def tensor_arg(self, t, role):
        dt = DTYPE_NAMES[t.dtype]
        st = t.untyped_storage()
        n_storage = st.nbytes() // t.element_size()
        plain = t.is_contiguous() and t.storage_offset() == 0 and n_storage == t.numel()
        if plain:
            return {"tensor": self.save(t, role), "dtype": dt}
        base = torch.empty(0, dtype=t.dtype).set_(st, 0, (n_storage,), (1,)).clone()
        assert n_storage <= 4096, f"{self.cid}: base buffer too large ({n_storage})"
        return {
            "tensor": self.save(base, role), "dtype": dt,
            "view": {"size": list(t.shape), "stride": list(t.stride()), "offset": t.storage_offset()},
        }

    def arg(self, v, role):
        if isinstance(v, torch.Tensor):
            return self.tensor_arg(v, role)
        if v is None:
            return {"none": None}
        if isinstance(v, bool):
            return {"bool": v}
        if isinstance(v, int):
            return {"int": v}
        if isinstance(v, float):
            return {"float": fenc(v)}
        if isinstance(v, str):
            return {"str": v}
        if isinstance(v, torch.dtype):
            return {"dtype": DTYPE_NAMES[v]}
        if isinstance(v, (list, tuple)):
            v = list(v)
            if v and all(isinstance(x, torch.Tensor) for x in v):
                return {"tensors": [self.tensor_arg(x, f"{role}_{j}") for j, x in enumerate(v)]}
            if v and any(isinstance(x, torch.Tensor) for x in v):
                return {"opt_tensors": [self.arg(x, f"{role}_{j}") for j, x in enumerate(v)]}
            if v and all(isinstance(x, bool) for x in v):
                return {"bools": v}
            if all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                return {"ints": v}
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                return {"floats": [fenc(x) for x in v]}
        raise TypeError(f"{self.cid}: cannot encode arg {v!r}")

    def out(self, v, role):
        if isinstance(v, torch.Tensor):
            return {"tensor": self.save(v, role), "dtype": DTYPE_NAMES[v.dtype]}
        if isinstance(v, (list, tuple)):
            return {"tensors": [self.out(x, f"{role}_{j}") for j, x in enumerate(v)]}
        if isinstance(v, bool):
            return {"bool": v}
        if isinstance(v, int):
            return {"int": v}
        if isinstance(v, float):
            return {"float": fenc(v)}
        raise TypeError(f"{self.cid}: cannot encode output {v!r}")


def op_name(op):
    return str(op)[len("aten."):]


def _float_dtypes(v, acc):
    if isinstance(v, torch.Tensor):
        if v.dtype in FLOAT_DTYPES:
            acc.add(v.dtype)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _float_dtypes(x, acc)
    return acc


def _complex_dtypes(v, acc):
    if isinstance(v, torch.Tensor):
        if v.dtype.is_complex:
            acc.add(v.dtype)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _complex_dtypes(x, acc)
    return acc


def default_tol(name, float_dts):
    if not float_dts:
        return None
    accum = name in ACCUM_OPS
    if bf16 in float_dts:
        return (2e-2, 2e-2) if accum else (1.6e-2, 1e-2)
    if f16 in float_dts:
        return (5e-3, 5e-3) if accum else (2e-3, 1e-3)
    if f32 in float_dts:
        return (1e-4, 1e-5) if accum else None  # None -> harness default 1e-5 / 1e-6
    return (1e-9, 1e-10) if accum else (1e-10, 1e-12)  # float64 only


def record(cid, op, args, kwargs, err, tol):
    assert cid not in SEEN_IDS, f"duplicate id {cid}"
    SEEN_IDS.add(cid)
    name = op_name(op)
    COVERED.add(str(op))
    rec = Recorder(cid)
    case = {
        "id": cid, "op": str(op),
        "args": [rec.arg(a, f"a{i}") for i, a in enumerate(args)],
        "kwargs": {k: rec.arg(v, f"k_{k}") for k, v in kwargs.items()},
    }
    try:
        result = op(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        if not err:
            raise RuntimeError(f"case {cid} raised unexpectedly: {e}") from e
        case["error"] = str(e).strip().splitlines()[0]
        CASES.append(case)
        return
    if err:
        raise RuntimeError(f"case {cid} was expected to raise but returned {result!r}")

    returns = op._schema.returns
    if len(returns) == 1:
        outs = [result]
    else:
        outs = list(result)
    case["outputs"] = [rec.out(o, f"o{i}") for i, o in enumerate(outs)]
    float_dts = _float_dtypes(outs, set())
    # complex outputs are compared (by distance) with their real dtype's tolerances
    float_dts |= {f32 if d == c64 else f64 for d in _complex_dtypes(outs, set())}

    mutated = {}
    for i, a in enumerate(op._schema.arguments):
        if a.kwarg_only or i >= len(args):
            continue
        if a.alias_info is not None and a.alias_info.is_write:
            mutated[str(i)] = rec.out(args[i], f"m{i}")
            _float_dtypes(args[i], float_dts)
    if mutated:
        case["mutated"] = mutated

    if tol is None:
        tol = default_tol(name, float_dts)
    if tol is not None:
        case["rtol"], case["atol"] = tol
    CASES.append(case)


def K(op, name, err=False, tol=None):
    """K(op, "name")(*args, **kwargs) records one case.

    The RNG is seeded from the case id *before* the call's arguments are
    evaluated (Python evaluates K(...) first), so random inputs are stable
    regardless of the order / number of other cases."""
    cid = f"{op_name(op)}/{name}"
    torch.manual_seed(zlib.crc32(cid.encode()))

    def run(*args, **kwargs):
        record(cid, op, args, kwargs, err, tol)

    return run


# ---------------------------------------------------------------- inputs
def rn(*shape, dtype=f32):
    return torch.randn(*shape, dtype=f64 if dtype == f64 else f32).to(dtype)


def ri(lo, hi, *shape, dtype=i64):
    return torch.randint(lo, hi, shape, dtype=dtype)


def rb(*shape):
    return torch.rand(*shape) > 0.5


def rpos(*shape, dtype=f32):
    return (torch.rand(*shape, dtype=f64 if dtype == f64 else f32) * 3 + 0.05).to(dtype)


def tt(values, dtype=f32):
    return torch.tensor(values, dtype=dtype)


SPECIAL = [nan, inf, -inf, 0.0, -0.0, 1.0, -1.5, 2.5, 3.0, -3.0, 1e-3, -7.0]


def special(dtype=f32):
    return tt(SPECIAL, dtype)


def lin(lo, hi, n, dtype=f32):
    return torch.linspace(lo, hi, n, dtype=f64).to(dtype)


# ---------------------------------------------------------------- cases
def conv_cases():
    op = A.conv2d.default
    K(op, "basic_bias")(rn(1, 3, 6, 6), rn(4, 3, 3, 3), rn(4))
    K(op, "no_bias_defaults")(rn(2, 3, 5, 5), rn(4, 3, 3, 3))
    K(op, "bias_none_stride2_pad1")(rn(1, 3, 7, 7), rn(4, 3, 3, 3), None, [2, 2], [1, 1])
    K(op, "dilation2")(rn(1, 2, 8, 8), rn(3, 2, 3, 3), rn(3), [1, 1], [2, 2], [2, 2], 1)
    K(op, "depthwise_groups4")(rn(1, 4, 6, 6), rn(4, 1, 3, 3), None, [1, 1], [1, 1], [1, 1], 4)
    K(op, "groups2")(rn(1, 4, 5, 5), rn(6, 2, 3, 3), rn(6), [1, 1], [0, 0], [1, 1], 2)
    K(op, "pointwise_1x1")(rn(1, 8, 3, 3), rn(5, 8, 1, 1), rn(5))
    K(op, "rect_kernel_asym_stride_pad")(rn(1, 2, 7, 6), rn(3, 2, 3, 2), rn(3), [2, 1], [1, 0], [1, 2])
    K(op, "unbatched_3d_input")(rn(3, 5, 5), rn(2, 3, 3, 3), rn(2))
    K(op, "f64")(rn(1, 2, 5, 5, dtype=f64), rn(3, 2, 3, 3, dtype=f64), rn(3, dtype=f64), [1, 1], [1, 1])
    K(op, "channels_last_input")(rn(1, 5, 5, 3).permute(0, 3, 1, 2), rn(2, 3, 3, 3), rn(2))
    K(op, "kernel_equals_input")(rn(1, 2, 3, 3), rn(4, 2, 3, 3), rn(4))
    K(op, "channel_mismatch", err=True)(rn(1, 3, 5, 5), rn(4, 2, 3, 3))
    K(op, "kernel_too_large", err=True)(rn(1, 1, 2, 2), rn(1, 1, 3, 3))

    op = A.convolution.default
    K(op, "conv2d_bias")(rn(1, 3, 6, 6), rn(4, 3, 3, 3), rn(4), [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    K(op, "conv2d_nobias_stride2")(rn(2, 2, 7, 7), rn(3, 2, 3, 3), None, [2, 2], [0, 0], [1, 1], False, [0, 0], 1)
    K(op, "groups_stride_dilation")(rn(1, 4, 9, 9), rn(4, 2, 3, 3), rn(4), [2, 2], [2, 2], [2, 2], False, [0, 0], 2)
    K(op, "depthwise_5x5_pad2")(rn(1, 3, 6, 6), rn(3, 1, 5, 5), None, [1, 1], [2, 2], [1, 1], False, [0, 0], 3)
    K(op, "conv1d_3d_input")(rn(2, 3, 10), rn(4, 3, 3), rn(4), [1], [1], [1], False, [0], 1)
    K(op, "conv1d_stride2_dil2_groups")(rn(1, 4, 12), rn(6, 2, 3), rn(6), [2], [0], [2], False, [0], 2)
    K(op, "f64")(rn(1, 2, 4, 4, dtype=f64), rn(2, 2, 2, 2, dtype=f64), rn(2, dtype=f64), [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    K(op, "transposed_weight_view")(rn(1, 2, 5, 5), rn(2, 3, 3, 3).transpose(0, 1), rn(3), [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    K(op, "group_mismatch", err=True)(rn(1, 3, 5, 5), rn(4, 1, 3, 3), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 2)


def conv1d_cases():
    op = A.conv1d.default
    K(op, "basic")(rn(2, 4, 10), rn(6, 4, 3), rn(6))
    K(op, "stride_pad_dil")(rn(1, 3, 12), rn(5, 3, 3), None, [2], [1], [2])
    K(op, "groups")(rn(2, 4, 9), rn(8, 2, 3), rn(8), [1], [1], [1], 2)
    K(op, "unbatched")(rn(3, 7), rn(2, 3, 2))
    K(op, "channel_mismatch", err=True)(rn(1, 3, 8), rn(2, 4, 3))


def pad_cases():
    op = A.pad.default
    K(op, "constant_2d")(rn(1, 2, 3, 4), [1, 2, 0, 1])
    K(op, "constant_value")(rn(2, 3), [1, 1], "constant", 2.5)
    K(op, "reflect_2d")(rn(1, 2, 4, 5), [1, 1, 2, 2], "reflect")
    K(op, "replicate_2d")(rn(1, 2, 3, 3), [2, 1, 1, 2], "replicate")
    K(op, "circular_2d")(rn(1, 2, 3, 4), [1, 1, 1, 1], "circular")
    K(op, "reflect_1d_noncontig")(rn(4, 2, 5).transpose(0, 1), [2, 2], "reflect")
    K(op, "int64_constant")(ri(0, 9, 2, 3), [1, 0])
    K(op, "odd_pad_len", err=True)(rn(2, 3), [1])


def linalg_cases():
    op = A.linear.default
    K(op, "2d_bias")(rn(4, 5), rn(3, 5), rn(3))
    K(op, "3d_input")(rn(2, 3, 5), rn(4, 5), rn(4))
    K(op, "no_bias_omitted")(rn(3, 6), rn(2, 6))
    K(op, "bias_none")(rn(3, 6), rn(2, 6), None)
    K(op, "1d_input")(rn(5), rn(3, 5), rn(3))
    K(op, "f64")(rn(2, 4, dtype=f64), rn(3, 4, dtype=f64), rn(3, dtype=f64))
    K(op, "noncontig_input")(rn(5, 4).t(), rn(3, 5), rn(3))
    K(op, "batch1_row")(rn(1, 8), rn(6, 8), rn(6))
    K(op, "in_features_mismatch", err=True)(rn(2, 4), rn(3, 5))

    op = A.addmm.default
    K(op, "bias_1d")(rn(4), rn(3, 5), rn(5, 4))
    K(op, "bias_2d")(rn(3, 4), rn(3, 5), rn(5, 4))
    K(op, "bias_row_broadcast")(rn(1, 4), rn(3, 5), rn(5, 4))
    K(op, "beta_alpha_kwargs")(rn(4), rn(3, 5), rn(5, 4), beta=0.5, alpha=2.0)
    K(op, "beta0_ignores_nan")(tt([nan, inf, 1.0, 2.0]), rn(3, 5), rn(5, 4), beta=0)
    K(op, "mat2_transposed_view")(rn(4), rn(2, 6), rn(4, 6).t())
    K(op, "int64")(ri(-3, 4, 3), ri(-3, 4, 2, 4), ri(-3, 4, 4, 3))
    K(op, "f64")(rn(3, dtype=f64), rn(2, 4, dtype=f64), rn(4, 3, dtype=f64))
    K(op, "inner_mismatch", err=True)(rn(4), rn(3, 5), rn(6, 4))

    op = A.baddbmm.default
    K(op, "mha_mask")(rn(4, 4, 5), rn(4, 4, 8), rn(4, 8, 5))
    K(op, "broadcast_self")(rn(1, 5), rn(3, 4, 2), rn(3, 2, 5))
    K(op, "beta_alpha")(rn(2, 3, 3), rn(2, 3, 4), rn(2, 4, 3), beta=0.5, alpha=-2.0)
    K(op, "beta0_ignores_nan")(tt([nan, inf, 1.0]), rn(2, 2, 4), rn(2, 4, 3), beta=0)
    K(op, "transposed_views")(rn(2, 3, 3), rn(2, 4, 3).transpose(1, 2), rn(2, 3, 4).transpose(1, 2))
    K(op, "int64")(ri(-3, 4, 2, 2, 2), ri(-3, 4, 2, 2, 3), ri(-3, 4, 2, 3, 2))
    K(op, "f64")(rn(2, 2, 2, dtype=f64), rn(2, 2, 3, dtype=f64), rn(2, 3, 2, dtype=f64))
    K(op, "batch_mismatch", err=True)(rn(2, 3, 3), rn(2, 3, 4), rn(3, 4, 3))
    K(op, "self_not_broadcastable", err=True)(rn(2, 3, 4), rn(2, 3, 4), rn(2, 4, 3))

    op = A.mm.default
    K(op, "basic")(rn(3, 4), rn(4, 5))
    K(op, "both_transposed_views")(rn(4, 3).t(), rn(5, 4).t())
    K(op, "int64")(ri(-5, 5, 2, 3), ri(-5, 5, 3, 2))
    K(op, "inner_dim_zero")(rn(3, 0), rn(0, 2))
    K(op, "f64")(rn(2, 3, dtype=f64), rn(3, 2, dtype=f64))
    K(op, "vector_like_1xk")(rn(1, 7), rn(7, 1))
    K(op, "inner_mismatch", err=True)(rn(3, 4), rn(5, 2))
    K(op, "dtype_mismatch", err=True)(rn(3, 4), rn(4, 2, dtype=f64))

    op = A.bmm.default
    K(op, "basic")(rn(2, 3, 4), rn(2, 4, 5))
    K(op, "transposed_views")(rn(2, 4, 3).transpose(1, 2), rn(2, 5, 4).transpose(1, 2))
    K(op, "batch_permuted_view")(rn(3, 2, 4).permute(1, 0, 2), rn(2, 4, 3))
    K(op, "f64")(rn(2, 2, 3, dtype=f64), rn(2, 3, 2, dtype=f64))
    K(op, "batch_mismatch", err=True)(rn(2, 3, 4), rn(3, 4, 5))

    op = A.matmul.default
    K(op, "1d_1d")(rn(5), rn(5))
    K(op, "1d_2d")(rn(4), rn(4, 3))
    K(op, "2d_1d")(rn(3, 4), rn(4))
    K(op, "2d_2d")(rn(3, 4), rn(4, 2))
    K(op, "3d_2d")(rn(2, 3, 4), rn(4, 5))
    K(op, "1d_3d")(rn(4), rn(2, 4, 3))
    K(op, "3d_1d")(rn(2, 3, 4), rn(4))
    K(op, "batched_broadcast")(rn(2, 1, 3, 4), rn(3, 4, 2))
    K(op, "batched_noncontig")(rn(2, 4, 3).transpose(-1, -2), rn(2, 4, 2))
    K(op, "int64_2d")(ri(-4, 4, 2, 3), ri(-4, 4, 3, 2))
    K(op, "1d_1d_mismatch", err=True)(rn(3), rn(4))
    K(op, "batch_not_broadcastable", err=True)(rn(2, 3, 4), rn(3, 4, 5))


def binary_cases():
    for nm, op, opS in (("add", A.add.Tensor, A.add.Scalar), ("sub", A.sub.Tensor, A.sub.Scalar),
                        ("mul", A.mul.Tensor, A.mul.Scalar), ("div", A.div.Tensor, A.div.Scalar)):
        K(op, "broadcast_f32")(rn(2, 3), rn(3))
        K(op, "broadcast_both")(rn(3, 1), rn(1, 4))
        K(op, "same_shape_f64")(rn(2, 3, dtype=f64), rn(2, 3, dtype=f64))
        K(op, "int64_int64")(ri(-5, 6, 2, 3), ri(1, 6, 2, 3))
        K(op, "int_tensor_wrapped_float")(ri(-5, 6, 4, dtype=i32), 2.5)
        K(op, "int_tensor_wrapped_int")(ri(-5, 6, 4), 3)
        K(op, "f32_wrapped_int")(rn(2, 2), 6)
        K(op, "f16_wrapped_float")(rn(5, dtype=f16), 2.5)
        K(op, "f16_f32_promote")(rn(3, dtype=f16), rn(3))
        K(op, "bf16_f16_promote")(rn(3, dtype=bf16), rn(3, dtype=f16))
        K(op, "bf16_bf16")(rn(2, 3, dtype=bf16), rn(2, 3, dtype=bf16))
        K(op, "uint8_int8_promote")(ri(0, 10, 4, dtype=u8), ri(1, 5, 4, dtype=i8))
        K(op, "f32_with_0d_f64")(rn(3), tt(1.5, f64))
        K(op, "int_with_0d_f32")(ri(-3, 4, 3), tt(0.5))
        K(op, "int32_with_0d_int64")(ri(-3, 4, 3, dtype=i32), tt(4, i64))
        K(op, "0d_f32_0d_f64")(tt(1.25), tt(0.5, f64))
        K(op, "bool_wrapped_int", err=(nm == "sub"))(rb(4), 2)
        K(op, "noncontig_transpose_expand")(rn(3, 2).t(), rn(3, 1).expand(3, 2).t())
        K(op, "sliced_step")(rn(12)[1:10:2], rn(5))
        K(op, "empty")(rn(0, 3), rn(3))
        K(op, "size1_dims")(rn(1, 1), rn(1))
        K(op, "specials")(special(), tt([1.0, -1.0, 0.0, 2.0, inf, nan, 0.0, -0.0, -inf, 3.0, 1.0, 0.5]))
        K(op, "not_broadcastable", err=True)(rn(2, 3), rn(4))
        K(opS, "f32_int")(rn(2, 3), 2)
        K(opS, "f32_float")(rn(4), -1.5)
        K(opS, "int_float")(ri(-4, 5, 4), 2.5)
        K(opS, "int_int")(ri(-4, 5, 4), 3)
        K(opS, "f16_float")(rn(3, dtype=f16), 0.5)
        K(opS, "noncontig")(rn(3, 4).t(), 2.0)
    # op-specific
    K(A.add.Tensor, "alpha_kwarg_f32")(rn(3), rn(3), alpha=2.0)
    K(A.add.Tensor, "alpha_kwarg_int")(ri(-3, 3, 4), ri(-3, 3, 4), alpha=2)
    K(A.add.Tensor, "alpha_int_with_float_wrapped")(ri(-3, 3, 4), 1.5, alpha=3)
    K(A.add.Tensor, "bool_bool")(rb(5), rb(5))
    K(A.add.Tensor, "float_alpha_on_int", err=True)(ri(0, 3, 3), ri(0, 3, 3), alpha=1.5)
    K(A.add.Scalar, "alpha_kwarg")(rn(3), 2, alpha=-1)
    K(A.sub.Tensor, "alpha_kwarg")(rn(3), rn(3), alpha=0.5)
    K(A.sub.Tensor, "bool_bool", err=True)(rb(3), rb(3))
    K(A.mul.Tensor, "bool_bool")(rb(6), rb(6))
    K(A.mul.Tensor, "scale_like_sdpa")(rn(2, 3, 4), 0.3535533905932738)
    K(A.mul.Tensor, "gate_broadcast_nchw")(rn(1, 4, 1, 1), rn(1, 4, 3, 3))
    K(A.mul.Scalar, "by_zero_specials")(special(), 0.0)
    K(A.div.Tensor, "int_true_division")(ri(-9, 10, 6), tt([2, -4, 3, 5, 7, 1]))
    K(A.div.Tensor, "by_zero")(tt([1.0, -1.0, 0.0, nan]), tt([0.0, 0.0, 0.0, 0.0]))
    K(A.div.Tensor, "int_by_zero")(tt([1, -1, 0], i64), tt([0, 0, 0], i64))
    K(A.div.Tensor, "hardswish_div6")(rn(1, 6), 6)
    K(A.div.Scalar, "int_odd_values")(tt([-9, -3, 1, 7, 0], i64), 2)


def inplace_cases():
    op = A.add_.Tensor
    K(op, "same_shape")(rn(2, 3), rn(2, 3))
    K(op, "broadcast_other")(rn(2, 3), rn(3))
    K(op, "alpha")(rn(4), rn(4), alpha=2.0)
    K(op, "wrapped_scalar")(rn(4), 1.5)
    K(op, "int_self_int_other")(ri(-5, 5, 4), ri(-5, 5, 4))
    K(op, "f32_self_int_other")(rn(4), ri(-5, 5, 4))
    K(op, "on_transposed_view")(rn(3, 2).t(), rn(2, 3))
    K(op, "on_slice_view")(rn(4, 4)[1:3], rn(4))
    K(op, "int_self_float_other", err=True)(ri(0, 4, 3), rn(3))
    K(op, "broadcast_into_self", err=True)(rn(3), rn(2, 3))

    op = A.mul_.Tensor
    K(op, "same_shape")(rn(2, 3), rn(2, 3))
    K(op, "broadcast_other")(rn(2, 3), rn(2, 1))
    K(op, "wrapped_scalar")(rn(5), 0.5)
    K(op, "on_transposed_view")(rn(4, 3).t(), rn(3, 4))
    K(op, "on_strided_slice_view")(rn(10)[::2], rn(5))
    K(op, "int_by_int")(ri(-4, 4, 5, dtype=i32), 3)
    K(op, "int_by_float", err=True)(ri(0, 4, 3), 1.5)

    K(A.relu_.default, "f32")(rn(3, 4))
    K(A.relu_.default, "specials")(special())
    K(A.relu_.default, "on_view")(rn(4, 3).t())
    K(A.relu_.default, "int")(ri(-5, 5, 6))
    K(A.hardsigmoid_.default, "f32")(lin(-4, 4, 17))
    K(A.silu_.default, "noncontig")(rn(3, 4).t())
    K(A.hardtanh.default, "relu6")(lin(-8, 8, 17), 0.0, 6.0)
    K(A.hardtanh.default, "defaults")(lin(-3, 3, 13))
    K(A.hardtanh.default, "specials")(special(), -1.0, 1.0)
    K(A.hardtanh.default, "f64")(rn(5, dtype=f64) * 4, 0.0, 6.0)
    K(A.hardtanh_.default, "relu6_noncontig")(rn(3, 4).t() * 5, 0.0, 6.0)
    K(A.hardswish_.default, "f32")(lin(-4, 4, 17))
    K(A.hardswish_.default, "noncontig")(rn(3, 4).t())
    K(A.hardswish_.default, "specials")(special())
    K(A.dropout_.default, "eval")(rn(2, 5), 0.2, False)
    K(A.dropout_.default, "eval_p0")(rn(6), 0.0, False)

    op = A.copy_.default
    K(op, "same_shape")(rn(2, 3), rn(2, 3))
    K(op, "broadcast_src")(rn(2, 3), rn(3))
    K(op, "f32_into_int64")(ri(0, 2, 5), tt([1.7, -1.7, 2.5, -0.2, 9.99]))
    K(op, "int_into_f16")(rn(4, dtype=f16), ri(-100, 100, 4))
    K(op, "into_transposed_view")(rn(3, 2).t(), rn(2, 3))
    K(op, "from_noncontig_src")(rn(2, 3), rn(3, 2).t())
    K(op, "bool_into_f32")(rn(4), rb(4))
    K(op, "not_broadcastable", err=True)(rn(2, 3), rn(4))


def unary_cases():
    for op in (A.relu.default, A.sigmoid.default, A.tanh.default, A.hardswish.default,
               A.hardsigmoid.default, A.silu.default, A.sin.default, A.cos.default, A.exp.default,
               A.log.default, A.sqrt.default, A.rsqrt.default, A.neg.default):
        nm = op_name(op)
        domain_pos = nm.split(".")[0] in ("log", "sqrt", "rsqrt")
        K(op, "f32")(rpos(3, 4) if domain_pos else rn(3, 4) * 3)
        K(op, "specials")(special())
        K(op, "f64")(rpos(5, dtype=f64) if domain_pos else rn(5, dtype=f64) * 3)
        K(op, "f16")(rpos(6, dtype=f16) if domain_pos else (rn(6) * 3).to(f16))
        K(op, "bf16")(rpos(6, dtype=bf16) if domain_pos else (rn(6) * 3).to(bf16))
        K(op, "noncontig")((rpos(4, 3) if domain_pos else rn(4, 3)).t())
        K(op, "empty")(rn(0, 2))
        K(op, "0d")(tt(0.75))
        if nm.split(".")[0] not in ("relu", "neg", "hardswish", "hardsigmoid", "silu"):
            K(op, "int64_to_float")(ri(1 if domain_pos else -5, 6, 5))
        else:
            if nm.startswith(("relu", "neg")):
                K(op, "int64")(ri(-5, 6, 7))
    K(A.relu.default, "int32")(ri(-5, 6, 7, dtype=i32))
    K(A.relu.default, "bool", err=True)(rb(3))
    K(A.neg.default, "int8")(tt([-128, -1, 0, 1, 127], i8))
    K(A.neg.default, "bool", err=True)(rb(3))
    K(A.sigmoid.default, "extremes")(tt([-100.0, -20.0, -1e-8, 20.0, 100.0, 88.8, -88.8]))
    K(A.tanh.default, "extremes")(tt([-100.0, -10.0, -1e-8, 10.0, 100.0]))
    K(A.exp.default, "overflow")(tt([88.0, 89.0, -104.0, -110.0, 709.0]))
    K(A.exp.default, "bool_to_float")(rb(4))
    K(A.log.default, "domain")(tt([-1.0, 0.0, -0.0, 1e-40, 1.0, inf]))
    K(A.sqrt.default, "domain")(tt([-1.0, 0.0, -0.0, 4.0, inf]))
    K(A.rsqrt.default, "domain")(tt([-1.0, 0.0, -0.0, 4.0, inf]))
    K(A.hardswish.default, "breakpoints")(lin(-4, 4, 17))
    K(A.hardsigmoid.default, "breakpoints")(lin(-4, 4, 17))
    K(A.hardswish.default, "int", err=True)(ri(-3, 3, 4))

    op = A.gelu.default
    K(op, "none_default")(rn(3, 4) * 2)
    K(op, "none_explicit_kwarg")(rn(5) * 2, approximate="none")
    K(op, "tanh_kwarg")(rn(3, 4) * 2, approximate="tanh")
    K(op, "specials")(special())
    K(op, "specials_tanh")(special(), approximate="tanh")
    K(op, "f64")(rn(5, dtype=f64) * 2)
    K(op, "f64_tanh")(rn(5, dtype=f64) * 2, approximate="tanh")
    K(op, "bf16")((rn(6) * 2).to(bf16))
    K(op, "noncontig")(rn(4, 3).t())
    K(op, "bad_approximate", err=True)(rn(3), approximate="fast")

    op = A.clamp.default
    K(op, "min_only_int_scalar")(rn(3, 4) * 5, 0)
    K(op, "max_only_kwarg_none_min")(rn(3, 4) * 5, None, 6)
    K(op, "both")(rn(3, 4), -0.5, 0.5)
    K(op, "kwargs")(rn(6), min=-1.0, max=1.0)
    K(op, "max_only_kwarg")(rn(6) * 10, max=6)
    K(op, "nan_input_propagates")(special(), -1.0, 1.0)
    K(op, "min_greater_than_max")(rn(5), 1.0, -1.0)
    K(op, "int_tensor_int_bounds")(ri(-10, 10, 8), -3, 4)
    K(op, "int_tensor_float_min")(ri(-10, 10, 6), 0.5)
    K(op, "f16")(rn(6, dtype=f16) * 4, 0, 6)
    K(op, "noncontig")(rn(4, 3).t() * 3, -1, 1)
    K(op, "inf_bounds")(rn(5), -inf, inf)
    K(op, "no_bounds", err=True)(rn(3), None, None)

    op = A.pow.Tensor_Scalar
    K(op, "square_int_exp")(rn(3, 4), 2)
    K(op, "sqrt_float_exp")(tt([4.0, 2.0, 0.0, -1.0, inf]), 0.5)
    K(op, "negative_exp")(tt([2.0, 0.0, -0.0, -2.0, 0.5]), -1)
    K(op, "zero_exp_nan")(special(), 0)
    K(op, "cube_specials")(special(), 3.0)
    K(op, "int_tensor_int_exp")(ri(-4, 5, 6), 2)
    K(op, "int_tensor_float_exp")(ri(0, 5, 6), 2.5)
    K(op, "int32_cube")(ri(-4, 5, 6, dtype=i32), 3)
    K(op, "f16")(rpos(5, dtype=f16), 2.0)
    K(op, "int_negative_exp", err=True)(ri(1, 5, 3), -1)
    op = A.pow.Tensor_Tensor
    K(op, "broadcast")(rpos(2, 3), rn(3))
    K(op, "int_int")(ri(-3, 4, 5), ri(0, 4, 5))
    K(op, "int_base_float_exp")(ri(1, 5, 4), tt([0.5, 1.5, -1.0, 2.0]))
    K(op, "negative_base_fractional")(tt([-2.0, -8.0, 2.0]), tt([0.5, 1.0 / 3.0, 2.0]))
    K(op, "f64")(rpos(4, dtype=f64), rn(4, dtype=f64))
    K(op, "f32_with_0d_f64_exp")(rpos(4), tt(2.0, f64))


def norm_cases():
    op = A.batch_norm.default

    def bn_stats(c, dtype=f32):
        return rn(c, dtype=dtype), rn(c, dtype=dtype), rn(c, dtype=dtype) * 0.1, rpos(c, dtype=dtype)

    w, b, m, v = bn_stats(3)
    K(op, "eval_nchw")(rn(2, 3, 4, 4), *bn_stats(3), False, 0.1, 1e-5, False)
    K(op, "eval_mobilenet_eps")(rn(1, 4, 3, 3), *bn_stats(4), False, 0.01, 0.001, False)
    mm, vv = rn(3) * 0.1, rpos(3)
    K(op, "eval_no_affine")(rn(2, 3, 3, 3), None, None, mm, vv, False, 0.1, 1e-5, True)
    K(op, "eval_2d_input")(rn(4, 3), *bn_stats(3), False, 0.1, 1e-5, False)
    K(op, "eval_3d_input")(rn(2, 3, 5), *bn_stats(3), False, 0.1, 1e-5, False)
    K(op, "eval_f64")(rn(1, 2, 3, 3, dtype=f64), *bn_stats(2, f64), False, 0.1, 1e-5, False)
    K(op, "eval_channels_last")(rn(1, 3, 3, 3).permute(0, 3, 1, 2), *bn_stats(3), False, 0.1, 1e-5, False)
    K(op, "channel_mismatch", err=True)(rn(1, 3, 2, 2), *bn_stats(4), False, 0.1, 1e-5, False)

    op = A._native_batch_norm_legit_no_training.default
    K(op, "nchw")(rn(2, 3, 4, 4), *bn_stats(3), 0.1, 1e-5)
    K(op, "mobilenet_eps")(rn(1, 4, 3, 3), *bn_stats(4), 0.01, 0.001)
    K(op, "no_affine")(rn(2, 3, 3), None, None, rn(3) * 0.1, rpos(3), 0.1, 1e-5)
    K(op, "2d_input")(rn(4, 3), *bn_stats(3), 0.1, 1e-5)
    K(op, "f64")(rn(1, 2, 3, 3, dtype=f64), *bn_stats(2, f64), 0.1, 1e-5)

    op = A._native_batch_norm_legit_functional.default
    K(op, "train_nchw")(rn(2, 3, 4, 4), *bn_stats(3), True, 0.1, 1e-5)
    K(op, "train_no_affine_2d")(rn(5, 3), None, None, rn(3) * 0.1, rpos(3), True, 0.01, 1e-3)
    K(op, "eval")(rn(2, 3, 3, 3), *bn_stats(3), False, 0.1, 1e-5)

    op = A.layer_norm.default
    K(op, "affine_last_dim")(rn(2, 4, 8), [8], rn(8), rn(8), 1e-5, False)
    K(op, "vit_eps")(rn(1, 3, 16), [16], rn(16), rn(16), 1e-6, False)
    K(op, "no_affine_defaults")(rn(3, 6), [6])
    K(op, "two_dim_shape")(rn(2, 3, 4), [3, 4], rn(3, 4), rn(3, 4))
    K(op, "weight_only")(rn(4, 5), [5], rn(5), None)
    K(op, "f64")(rn(3, 5, dtype=f64), [5], rn(5, dtype=f64), rn(5, dtype=f64), 1e-5)
    K(op, "noncontig")(rn(8, 3).t(), [8], rn(8), rn(8))
    K(op, "constant_row")(torch.ones(2, 6), [6], None, None, 1e-5)
    K(op, "shape_mismatch", err=True)(rn(2, 5), [4])

    op = A.native_layer_norm.default
    K(op, "affine")(rn(2, 4, 8), [8], rn(8), rn(8), 1e-5)
    K(op, "no_affine")(rn(3, 6), [6], None, None, 1e-5)
    K(op, "two_dim_shape")(rn(2, 3, 4), [3, 4], rn(3, 4), rn(3, 4), 1e-6)
    K(op, "f64")(rn(3, 5, dtype=f64), [5], rn(5, dtype=f64), rn(5, dtype=f64), 1e-5)


def pool_cases():
    for op in (A.max_pool2d.default, A.max_pool2d_with_indices.default):
        K(op, "k3_s3_model")(rn(1, 2, 9, 9), [3, 3], [3, 3])
        K(op, "k3_s2_p1_resnet")(rn(1, 2, 8, 8), [3, 3], [2, 2], [1, 1])
        K(op, "k2_stride_default_empty")(rn(2, 2, 6, 6), [2, 2])
        K(op, "stride_explicit_empty")(rn(1, 1, 5, 5), [2, 2], [])
        K(op, "dilation2")(rn(1, 2, 7, 7), [2, 2], [1, 1], [0, 0], [2, 2])
        K(op, "ceil_mode")(rn(1, 2, 7, 7), [2, 2], [2, 2], [0, 0], [1, 1], True)
        K(op, "ceil_mode_pad")(rn(1, 1, 6, 6), [3, 3], [2, 2], [1, 1], [1, 1], True)
        K(op, "rect_kernel_stride")(rn(1, 2, 6, 7), [2, 3], [1, 2])
        K(op, "unbatched_3d")(rn(2, 6, 6), [2, 2])
        K(op, "nan_and_inf")(tt([[[[nan, 1.0, 2.0, -inf], [0.0, -1.0, inf, 3.0],
                                    [-inf, -inf, 1.0, 2.0], [-inf, -inf, nan, 5.0]]]]), [2, 2])
        K(op, "all_neg_with_padding")(-rpos(1, 1, 4, 4), [3, 3], [2, 2], [1, 1])
        K(op, "noncontig_channels_last")(rn(1, 5, 5, 2).permute(0, 3, 1, 2), [2, 2], [1, 1])
        K(op, "f64")(rn(1, 1, 4, 4, dtype=f64), [2, 2])
        K(op, "pad_too_large", err=True)(rn(1, 1, 5, 5), [2, 2], [2, 2], [2, 2])

    op = A.avg_pool2d.default
    K(op, "k2")(rn(1, 2, 6, 6), [2, 2])
    K(op, "k3_s2_p1_include_pad")(rn(1, 2, 7, 7), [3, 3], [2, 2], [1, 1], False, True)
    K(op, "k3_s2_p1_exclude_pad")(rn(1, 2, 7, 7), [3, 3], [2, 2], [1, 1], False, False)
    K(op, "ceil_mode_include_pad")(rn(1, 1, 6, 6), [3, 3], [2, 2], [1, 1], True, True)
    K(op, "ceil_mode_exclude_pad")(rn(1, 1, 6, 6), [3, 3], [2, 2], [1, 1], True, False)
    K(op, "ceil_mode_no_pad")(rn(1, 1, 5, 5), [2, 2], [2, 2], [0, 0], True)
    K(op, "divisor_override")(rn(1, 2, 4, 4), [2, 2], [2, 2], [0, 0], False, True, 3)
    K(op, "divisor_override_with_pad")(rn(1, 1, 5, 5), [3, 3], [2, 2], [1, 1], False, True, 5)
    K(op, "rect")(rn(2, 1, 5, 6), [2, 3], [1, 3])
    K(op, "unbatched_3d")(rn(2, 4, 4), [2, 2])
    K(op, "f64")(rn(1, 1, 4, 4, dtype=f64), [2, 2], [1, 1])
    K(op, "noncontig")(rn(1, 4, 4, 2).permute(0, 3, 1, 2), [2, 2])
    K(op, "pad_too_large", err=True)(rn(1, 1, 5, 5), [2, 2], [2, 2], [2, 2])

    for op in (A.adaptive_avg_pool2d.default, A._adaptive_avg_pool2d.default):
        K(op, "global_1x1")(rn(1, 3, 5, 5), [1, 1])
        K(op, "non_divisible_7_to_3")(rn(1, 2, 7, 7), [3, 3])
        K(op, "rect_5x7_to_2x3")(rn(2, 1, 5, 7), [2, 3])
        K(op, "upsample_2_to_4")(rn(1, 1, 2, 2), [4, 4])
        K(op, "identity_size")(rn(1, 2, 3, 3), [3, 3])
        K(op, "unbatched_3d")(rn(2, 6, 6), [2, 2])
        K(op, "f64")(rn(1, 1, 5, 5, dtype=f64), [2, 2])
        K(op, "noncontig")(rn(1, 4, 4, 2).permute(0, 3, 1, 2), [1, 1])


def reduction_cases():
    op = A.mean.dim
    K(op, "hw_keepdim_model")(rn(1, 3, 4, 4), [-1, -2], True)
    K(op, "single_dim")(rn(3, 4), [1])
    K(op, "dim0_no_keepdim")(rn(3, 4, 2), [0])
    K(op, "multi_dims_keepdim")(rn(2, 3, 4), [0, 2], True)
    K(op, "dtype_kwarg_f64")(rn(3, 4), [1], dtype=f64)
    K(op, "dim_none_all")(rn(3, 4), None)
    K(op, "dim_empty_list_all")(rn(2, 3), [])
    K(op, "f16")(rn(4, 5, dtype=f16), [1])
    K(op, "bf16")(rn(4, 5, dtype=bf16), [-1], True)
    K(op, "noncontig")(rn(4, 3).t(), [1])
    K(op, "with_nan_inf")(tt([[1.0, nan], [inf, 1.0], [inf, -inf]]), [1])
    K(op, "empty_reduced_dim")(rn(3, 0), [1])
    K(op, "int_input", err=True)(ri(0, 5, 3, 4), [1])
    K(op, "dim_out_of_range", err=True)(rn(3, 4), [2])

    op = A.mean.default
    K(op, "f32")(rn(3, 4))
    K(op, "f64")(rn(5, dtype=f64))
    K(op, "dtype_kwarg")(rn(3, 3), dtype=f64)
    K(op, "noncontig")(rn(4, 3).t())
    K(op, "int_input", err=True)(ri(0, 5, 4))

    op = A.sum.default
    K(op, "f32")(rn(3, 4))
    K(op, "int32_to_int64")(ri(-100, 100, 10, dtype=i32))
    K(op, "bool_to_int64")(rb(9))
    K(op, "uint8_to_int64")(ri(200, 256, 6, dtype=u8))
    K(op, "dtype_kwarg_f64")(rn(5), dtype=f64)
    K(op, "empty")(rn(0))
    K(op, "f16")(rn(8, dtype=f16))
    K(op, "noncontig")(rn(4, 3).t())

    op = A.sum.dim_IntList
    K(op, "dim1")(rn(3, 4), [1])
    K(op, "dims_0_2_keepdim")(rn(2, 3, 4), [0, 2], True)
    K(op, "negative_dim")(rn(2, 3, 4), [-1])
    K(op, "dim_none")(rn(2, 3), None)
    K(op, "int8_to_int64")(ri(-100, 100, 3, 4, dtype=i8), [1])
    K(op, "bool_to_int64")(rb(3, 4), [0])
    K(op, "dtype_kwarg")(ri(-5, 5, 3, 4), [1], dtype=f32)
    K(op, "keepdim_kwarg")(rn(3, 4), [0], keepdim=True)
    K(op, "with_nan")(tt([[1.0, nan], [inf, -inf], [1.0, 2.0]]), [1])
    K(op, "noncontig")(rn(4, 3).t(), [0])
    K(op, "empty_reduced_dim")(rn(2, 0), [1])
    K(op, "duplicate_dims", err=True)(rn(2, 3), [0, 0])

    op = A.amax.default
    K(op, "all_dims_default")(rn(3, 4))
    K(op, "dim1_keepdim")(rn(3, 4), [1], True)
    K(op, "multi_dims")(rn(2, 3, 4), [0, -1])
    K(op, "nan_propagates")(tt([[1.0, nan, 3.0], [-inf, -inf, -inf]]), [1])
    K(op, "int")(ri(-50, 50, 3, 5), [0])
    K(op, "noncontig")(rn(4, 3).t(), [1])
    K(op, "bool")(rb(3, 4), [1])
    K(op, "empty_reduced_dim", err=True)(rn(2, 0), [1])

    op = A.max.dim
    K(op, "dim1")(rn(3, 5), 1)
    K(op, "dim0_keepdim")(rn(3, 5), 0, True)
    K(op, "negative_dim")(rn(2, 3, 4), -2)
    K(op, "ties_first_index")(tt([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]]), 1)
    K(op, "nan")(tt([[1.0, nan, 3.0], [inf, -inf, nan], [-inf, -inf, -inf]]), 1)
    K(op, "int")(ri(-10, 10, 4, 3), 0)
    K(op, "noncontig")(rn(4, 3).t(), 1)
    K(op, "0d")(tt(2.5), 0)

    op = A.argmax.default
    K(op, "flat_default")(rn(3, 4))
    K(op, "dim1")(rn(3, 4), 1)
    K(op, "dim0_keepdim")(rn(3, 4), 0, True)
    K(op, "negative_dim_kwarg")(rn(2, 3, 4), dim=-1)
    K(op, "ties_first_index")(tt([[5.0, 1.0, 5.0], [0.0, 0.0, 0.0]]), 1)
    K(op, "nan")(tt([1.0, nan, 3.0, nan]))
    K(op, "int")(ri(-10, 10, 6))
    K(op, "noncontig")(rn(4, 3).t(), 1)
    K(op, "empty", err=True)(rn(0))

    op = A.any.dim
    K(op, "bool_keepdim_model")(rb(2, 3, 4) & rb(2, 3, 4) & rb(2, 3, 4), -1, True)
    K(op, "bool_dim0")(rb(3, 4), 0)
    K(op, "float_input")(tt([[0.0, 0.0], [0.0, -0.5], [nan, 0.0]]), 1)
    K(op, "uint8_keeps_dtype")(tt([[0, 0], [0, 3]], u8), 1)
    K(op, "int64_input")(tt([[0, 0], [0, 3]], i64), 1)
    K(op, "empty_reduced_dim")(torch.zeros(3, 0, dtype=b8), 1)
    K(op, "all_false")(torch.zeros(2, 5, dtype=b8), 1)
    K(op, "noncontig")(rb(4, 3).t(), 0)

    op = A.any.default
    K(op, "bool")(rb(3, 4))
    K(op, "all_false")(torch.zeros(5, dtype=b8))
    K(op, "float")(tt([0.0, -0.0, 1e-30]))
    K(op, "float_nan")(tt([0.0, nan]))
    K(op, "empty")(torch.zeros(0, dtype=b8))
    K(op, "int32")(tt([0, 0, 7], i32))
    K(op, "uint8")(tt([0, 0, 7], u8))


def softmax_cases():
    for op in (A._softmax.default, A._log_softmax.default):
        K(op, "last_dim")(rn(2, 3, 5), -1, False)
        K(op, "dim0")(rn(4, 3), 0, False)
        K(op, "masked_neg_inf")(tt([[1.0, -inf, 2.0], [-inf, -inf, 0.5]]), 1, False)
        K(op, "all_neg_inf_row")(tt([[-inf, -inf], [1.0, 1.0]]), 1, False)
        K(op, "large_values")(tt([[1000.0, 1001.0, 999.0], [-1000.0, 0.0, 1000.0]]), -1, False)
        K(op, "f64")(rn(3, 4, dtype=f64), 1, False)
        K(op, "noncontig")(rn(5, 3).t(), -1, False)
        K(op, "with_nan")(tt([[1.0, nan, 2.0], [0.0, 1.0, 2.0]]), 1, False)
        K(op, "0d")(tt(3.0), 0, False)
        K(op, "f16_half_to_float")(rn(2, 4, dtype=f16), 1, False)
    for op in (A.softmax.int, A.log_softmax.int):
        K(op, "last_dim")(rn(2, 3, 5), -1)
        K(op, "dim1")(rn(3, 4, 2), 1)
        K(op, "dtype_kwarg_f64")(rn(3, 4), 1, dtype=f64)
        K(op, "dtype_positional_f32_from_f16")(rn(3, 4, dtype=f16), 1, f32)
        K(op, "bf16")(rn(3, 4, dtype=bf16), -1)
        K(op, "masked_neg_inf")(tt([[0.5, -inf, 2.0, -inf]]), -1)
        K(op, "noncontig")(rn(4, 3).t(), 0)
        K(op, "empty_other_dim")(rn(0, 3), 1)
        K(op, "int_input", err=True)(ri(0, 3, 3, 4), 1)
        K(op, "dim_out_of_range", err=True)(rn(3, 4), 2)


def sdpa_cases():
    op = A.scaled_dot_product_attention.default
    K(op, "basic")(rn(1, 2, 4, 8), rn(1, 2, 4, 8), rn(1, 2, 4, 8))
    K(op, "lq_ne_lk")(rn(2, 2, 3, 4), rn(2, 2, 5, 4), rn(2, 2, 5, 4))
    K(op, "value_dim_differs")(rn(1, 2, 3, 4), rn(1, 2, 5, 4), rn(1, 2, 5, 6))
    K(op, "bool_mask_broadcast")(rn(1, 2, 4, 8), rn(1, 2, 4, 8), rn(1, 2, 4, 8),
                                 torch.tril(torch.ones(4, 4, dtype=b8)) | rb(4, 4))
    K(op, "bool_mask_full_shape")(rn(2, 1, 3, 4), rn(2, 1, 5, 4), rn(2, 1, 5, 4),
                                  (rb(2, 1, 3, 5) | torch.eye(3, 5, dtype=b8)))
    K(op, "bool_mask_fully_masked_row")(rn(1, 1, 3, 4), rn(1, 1, 3, 4), rn(1, 1, 3, 4),
                                        tt([[True, False, True], [False, False, False], [True, True, True]], b8))
    K(op, "float_mask")(rn(1, 2, 4, 8), rn(1, 2, 4, 8), rn(1, 2, 4, 8), rn(1, 1, 4, 4))
    K(op, "float_mask_neg_inf")(rn(1, 1, 3, 4), rn(1, 1, 3, 4), rn(1, 1, 3, 4),
                                tt([[0.0, -inf, 0.0], [0.0, 0.0, -inf], [-inf, 0.5, 0.0]]))
    K(op, "is_causal")(rn(1, 2, 4, 8), rn(1, 2, 4, 8), rn(1, 2, 4, 8), None, 0.0, True)
    K(op, "is_causal_kwarg_lq_lt_lk")(rn(1, 1, 3, 4), rn(1, 1, 5, 4), rn(1, 1, 5, 4), is_causal=True)
    K(op, "scale_kwarg")(rn(1, 2, 4, 8), rn(1, 2, 4, 8), rn(1, 2, 4, 8), scale=0.5)
    K(op, "mask_and_scale")(rn(1, 2, 3, 4), rn(1, 2, 3, 4), rn(1, 2, 3, 4), rn(3, 3), 0.0, False, scale=1.0)
    K(op, "3d_inputs")(rn(2, 4, 8), rn(2, 4, 8), rn(2, 4, 8))
    K(op, "noncontig_transposed_heads")(rn(1, 4, 2, 8).transpose(1, 2), rn(1, 4, 2, 8).transpose(1, 2),
                                        rn(1, 4, 2, 8).transpose(1, 2))
    K(op, "f64")(rn(1, 1, 3, 4, dtype=f64), rn(1, 1, 3, 4, dtype=f64), rn(1, 1, 3, 4, dtype=f64))
    # Big enough for the f32 kernel's parallel split into blocks of query rows.
    K(op, "row_blocks_causal")(rn(1, 3, 70, 16), rn(1, 3, 70, 16), rn(1, 3, 70, 16), is_causal=True)
    K(op, "row_blocks_float_mask")(rn(1, 3, 70, 16), rn(1, 3, 50, 16), rn(1, 3, 50, 8), rn(1, 70, 50))
    K(op, "causal_with_mask", err=True)(rn(1, 1, 3, 4), rn(1, 1, 3, 4), rn(1, 1, 3, 4),
                                        torch.ones(3, 3, dtype=b8), 0.0, True)


def shape_cases():
    op = A.cat.default
    K(op, "dim0_default")([rn(2, 3), rn(1, 3)])
    K(op, "dim1")([rn(1, 1, 4), rn(1, 3, 4)], 1)
    K(op, "negative_dim")([rn(2, 2), rn(2, 3), rn(2, 1)], -1)
    K(op, "single_tensor")([rn(2, 3)])
    K(op, "mixed_int_float")([ri(-3, 3, 2, 2), rn(2, 2)], 1)
    K(op, "mixed_bool_int32")([rb(3), ri(-3, 3, 2, dtype=i32)])
    K(op, "mixed_f16_bf16")([rn(2, dtype=f16), rn(3, dtype=bf16)])
    K(op, "mixed_f32_f64")([rn(2, 2), rn(1, 2, dtype=f64)])
    K(op, "legacy_empty_1d_skipped")([rn(2, 3), torch.empty(0), rn(2, 2)], 1)
    K(op, "legacy_empty_1d_first")([torch.empty(0), rn(2, 3)])
    K(op, "zero_size_along_dim")([rn(0, 3), rn(2, 3)])
    K(op, "noncontig_inputs")([rn(3, 2).t(), rn(2, 4)[:, ::2]], 1)
    K(op, "int64")([ri(0, 9, 2), ri(0, 9, 3)])
    K(op, "rank_mismatch", err=True)([rn(2, 3), rn(1, 2, 3)])
    K(op, "shape_mismatch", err=True)([rn(2, 3), rn(2, 4)], 0)
    K(op, "dim_out_of_range", err=True)([rn(2, 3), rn(2, 3)], 2)

    op = A.stack.default
    K(op, "dim0")([rn(2, 3), rn(2, 3), rn(2, 3)])
    K(op, "dim_last_negative")([rn(2, 3), rn(2, 3)], -1)
    K(op, "dim1")([rn(2, 3), rn(2, 3)], 1)
    K(op, "mixed_dtypes")([ri(0, 5, 3), rn(3)])
    K(op, "0d_tensors")([tt(1.0), tt(2.0), tt(3.0)])
    K(op, "noncontig")([rn(3, 2).t(), rn(2, 3)], 0)
    K(op, "shape_mismatch", err=True)([rn(2, 3), rn(3, 2)])

    op = A.split_with_sizes.default
    K(op, "lstm_gates")(rn(1, 2, 16), [4, 4, 4, 4], 2)
    K(op, "dim0_default")(rn(5, 2), [2, 3])
    K(op, "negative_dim")(rn(2, 6), [1, 0, 5], -1)
    K(op, "noncontig")(rn(4, 3).t(), [1, 3], 1)
    K(op, "sizes_mismatch", err=True)(rn(5, 2), [2, 2])

    op = A.flip.default
    K(op, "time_dim")(rn(5, 2, 3), [0])
    K(op, "two_dims")(rn(2, 3, 4), [0, -1])
    K(op, "noncontig")(rn(4, 3).t(), [1])
    K(op, "int64")(ri(-9, 9, 3, 2), [1])
    K(op, "no_dims")(rn(2, 2), [])
    K(op, "0d_dim_minus_1")(tt(3.0), [-1])
    K(op, "dim_out_of_range", err=True)(rn(2, 3), [2])

    op = A.chunk.default
    K(op, "mha_in_proj")(rn(12, 4), 3)
    K(op, "uneven_fewer_pieces")(rn(5, 2), 4)
    K(op, "dim1")(rn(2, 7), 3, 1)
    K(op, "noncontig")(rn(6, 3).t(), 2, 1)
    K(op, "more_chunks_than_size")(rn(2, 3), 5)
    K(op, "zero_chunks", err=True)(rn(4), 0)

    op = A.split.Tensor
    K(op, "even")(rn(6, 2), 2)
    K(op, "uneven_last_chunk")(rn(7, 2), 3)
    K(op, "size_larger_than_dim")(rn(2, 3), 5)
    K(op, "dim_negative")(rn(2, 5), 2, -1)
    K(op, "noncontig")(rn(4, 3).t(), 2, 1)

    op = A.unbind.int
    K(op, "dim0_default")(rn(3, 2))
    K(op, "dim_negative")(rn(2, 3, 2), -1)
    K(op, "size1_dim")(rn(1, 4), 0)
    K(op, "noncontig")(rn(4, 3).t(), 1)

    for op in (A.view.default, A._unsafe_view.default):
        K(op, "flatten_minus1")(rn(2, 3, 2), [-1])
        K(op, "infer_middle")(rn(4, 6), [2, -1, 3])
        K(op, "0d_to_1")(tt(5.0), [1])
        K(op, "to_0d")(rn(1, 1), [])
        K(op, "int64")(ri(0, 9, 2, 6), [3, 4])
        K(op, "zero_size")(rn(0, 4), [2, 0, 2])
        K(op, "invalid_shape", err=True)(rn(3, 4), [5, -1])
    K(A.view.default, "sliced_rows_compatible")(rn(4, 3)[1:3], [-1])
    K(A.view.default, "expanded_compatible")(rn(3, 1).expand(3, 4), [3, 2, 2])
    K(A.view.default, "transposed_incompatible", err=True)(rn(3, 4).t(), [12])
    K(A.view.default, "two_minus1", err=True)(rn(3, 4), [-1, -1])

    op = A.reshape.default
    K(op, "contiguous")(rn(2, 3, 4), [6, 4])
    K(op, "minus1")(rn(2, 3, 4), [-1, 3])
    K(op, "noncontig_copies")(rn(3, 4).t(), [12])
    K(op, "expanded")(rn(3, 1).expand(3, 4), [2, 6])
    K(op, "permuted_model")(rn(2, 3, 2, 4).permute(2, 0, 1, 3), [12, 4])
    K(op, "zero_size")(rn(0, 3), [3, 0])
    K(op, "0d")(tt(2.0), [1, 1])
    K(op, "zero_numel_minus1", err=True)(rn(0, 3), [-1, 0])
    K(op, "invalid", err=True)(rn(2, 3), [4, 2])

    op = A.permute.default
    K(op, "rotate")(rn(2, 3, 4), [2, 0, 1])
    K(op, "negative_dims")(rn(2, 3, 4), [-1, 0, 1])
    K(op, "identity")(rn(2, 3), [0, 1])
    K(op, "5d_model")(rn(1, 2, 2, 3, 4), [3, 1, 2, 0, 4])
    K(op, "noncontig")(rn(3, 4).t(), [1, 0])
    K(op, "repeated_dim", err=True)(rn(2, 3), [0, 0])
    K(op, "wrong_len", err=True)(rn(2, 3), [0])

    op = A.transpose.int
    K(op, "01")(rn(2, 3), 0, 1)
    K(op, "negative_dim_model")(rn(1, 2, 2, 3, 4), 0, -2)
    K(op, "same_dim")(rn(2, 3), 1, 1)
    K(op, "1d")(rn(4), 0, -1)
    K(op, "0d")(tt(1.5), 0, 0)
    K(op, "dim_out_of_range", err=True)(rn(2, 3), 0, 2)

    op = A.t.default
    K(op, "2d")(rn(2, 3))
    K(op, "1d")(rn(4))
    K(op, "0d")(tt(3.0))
    K(op, "noncontig")(rn(4, 6)[:, ::2])
    K(op, "3d", err=True)(rn(2, 2, 2))

    op = A.expand.default
    K(op, "minus1_model")(rn(1, 1, 4), [2, -1, -1])
    K(op, "new_leading_dims")(rn(3, 1), [2, 3, 4])
    K(op, "same_size")(rn(2, 3), [2, 3])
    K(op, "0d")(tt(7.0), [2, 2])
    K(op, "implicit_kwarg")(rn(1, 3), [4, 3], implicit=True)
    K(op, "noncontig")(rn(3, 1, 2).permute(2, 1, 0), [2, 5, 3])
    K(op, "bool")(rb(1, 3), [2, 3])
    K(op, "non_singleton", err=True)(rn(2, 3), [4, 3])

    op = A.select.int
    K(op, "dim1_index0_model")(rn(2, 3, 4), 1, 0)
    K(op, "negative_index")(rn(3, 4), 0, -1)
    K(op, "negative_dim")(rn(2, 3, 4), -1, 2)
    K(op, "1d_to_0d")(rn(5), 0, 3)
    K(op, "noncontig")(rn(4, 3).t(), 1, 2)
    K(op, "index_out_of_range", err=True)(rn(3, 4), 0, 5)

    op = A.slice.Tensor
    K(op, "model_0_0_1")(rn(5, 2, 3), 0, 0, 1)
    K(op, "model_0_1_2")(rn(5, 2, 3), 0, 1, 2)
    K(op, "negative_start")(rn(6, 2), 0, -2)
    K(op, "negative_end")(rn(6, 2), 0, 1, -1)
    K(op, "end_beyond_size")(rn(4, 3), 1, 1, 100)
    K(op, "step2")(rn(7, 2), 0, 0, 7, 2)
    K(op, "step3_kwarg")(rn(2, 10), dim=1, start=1, step=3)
    K(op, "end_int64_max")(rn(5, 3), 0, 2, INT64_MAX)
    K(op, "start_none_end_none")(rn(3, 4), 1, None, None)
    K(op, "defaults_only")(rn(4, 2))
    K(op, "start_after_end_empty")(rn(5), 0, 4, 2)
    K(op, "start_below_neg_size")(rn(5), 0, -100, 3)
    K(op, "dim_negative")(rn(2, 3, 6), -1, 1, 5, 2)
    K(op, "noncontig")(rn(4, 6).t(), 1, 1, 3)
    K(op, "step_zero", err=True)(rn(5), 0, 0, 5, 0)

    op = A.squeeze.dim
    K(op, "size1_dim")(rn(3, 1, 4), 1)
    K(op, "not_size1_noop")(rn(3, 2), 0)
    K(op, "negative_model")(rn(3, 4, 2, 1, 5), -2)
    K(op, "0d")(tt(1.0), 0)
    K(op, "dim_out_of_range", err=True)(rn(3, 1), 2)
    op = A.squeeze.dims
    K(op, "single")(rn(1, 2, 3), [0])
    K(op, "negative_model")(rn(3, 4, 1, 5), [-2])
    K(op, "multi_mixed")(rn(1, 3, 1, 2, 1), [0, 1, -1])
    K(op, "empty_list_noop")(rn(1, 2), [])
    op = A.squeeze.default
    K(op, "all_ones")(rn(1, 3, 1, 2, 1))
    K(op, "all_size1_to_0d")(rn(1, 1))
    K(op, "nothing_to_squeeze")(rn(2, 3))
    K(op, "with_zero_dim")(rn(1, 0, 1))

    op = A.unsqueeze.default
    K(op, "dim0")(rn(2, 3), 0)
    K(op, "last")(rn(2, 3), 2)
    K(op, "negative")(rn(2, 3), -1)
    K(op, "negative_middle")(rn(2, 3), -2)
    K(op, "0d")(tt(4.0), 0)
    K(op, "noncontig")(rn(3, 2).t(), 1)
    K(op, "dim_out_of_range", err=True)(rn(2, 3), 4)

    op = A.flatten.using_ints
    K(op, "start1_model")(rn(2, 3, 1, 1), 1)
    K(op, "defaults")(rn(2, 3, 4))
    K(op, "middle")(rn(2, 3, 4, 5), 1, 2)
    K(op, "negative")(rn(2, 3, 4), -2, -1)
    K(op, "0d")(tt(2.0))
    K(op, "noncontig")(rn(4, 3, 2).permute(2, 0, 1), 1)
    K(op, "start_after_end", err=True)(rn(2, 3, 4), 2, 1)

    op = A.unflatten.int
    K(op, "negative_dim_model")(rn(2, 3, 12), -1, [3, 4])
    K(op, "minus1_size")(rn(6, 2), 0, [2, -1])
    K(op, "single_size")(rn(4, 5), 1, [5])
    K(op, "noncontig")(rn(6, 2).t(), 1, [3, 2])
    K(op, "size_mismatch", err=True)(rn(2, 6), 1, [4, 2])

    for op in (A.clone.default, A.alias.default) + ((A.contiguous.default,) if hasattr(A, "contiguous") else ()):
        K(op, "contiguous_input")(rn(2, 3))
        K(op, "transposed_input")(rn(3, 2).t())
        K(op, "expanded_input")(rn(3, 1).expand(3, 2))
        K(op, "int64")(ri(-5, 5, 4))
        K(op, "bool")(rb(3))
        K(op, "0d")(tt(1.5))
    K(A.clone.default, "permuted_model")(rn(2, 3, 2, 4).permute(2, 0, 1, 3))
    K(A.clone.default, "bf16_view")(rn(4, 2, dtype=bf16).t())


def factory_cases():
    op = A.full.default
    K(op, "dtype_kwarg_model")([1, 2, 3], 0, dtype=f32)
    K(op, "int_fill_infers_int64")([2, 3], 7)
    K(op, "float_fill_infers_f32")([2, 2], 2.5)
    K(op, "bool_fill_infers_bool")([3], True)
    K(op, "neg_inf_fill")([2], -inf)
    K(op, "nan_fill_f64")([2], nan, dtype=f64)
    K(op, "float_fill_int_dtype")([3], 2.7, dtype=i32)
    K(op, "0d")([], 3.0)
    K(op, "zero_size")([0, 3], 1.0)
    K(op, "bf16")([2, 2], 0.1, dtype=bf16)
    K(op, "negative_size", err=True)([-1, 2], 0.0)

    for op, nm in ((A.zeros.default, "zeros"), (A.ones.default, "ones")):
        K(op, "default_f32")([2, 3])
        K(op, "dtype_kwarg_model")([1, 2, 3], dtype=f32)
        K(op, "int64")([4], dtype=i64)
        K(op, "bool")([2, 2], dtype=b8)
        K(op, "f16")([3], dtype=f16)
        K(op, "0d")([])
        K(op, "zero_size")([3, 0])
    for op in (A.zeros_like.default, A.ones_like.default):
        K(op, "preserve_f32")(rn(2, 3))
        K(op, "preserve_int")(ri(0, 3, 4, dtype=i32))
        K(op, "dtype_kwarg")(rn(3), dtype=i64)
        K(op, "noncontig_input")(rn(3, 2).t())
        K(op, "0d")(tt(3.0))
    op = A.full_like.default
    K(op, "int_fill_model")(rn(2, 3), 0)
    K(op, "neg_inf")(rn(2, 2), -inf)
    K(op, "int_tensor_float_fill_truncates")(ri(0, 5, 3), 2.7)
    K(op, "dtype_kwarg")(rn(3), 1, dtype=b8)
    K(op, "f16")(rn(2, dtype=f16), 65504.0)
    K(op, "noncontig_input")(rn(3, 2).t(), 5.0)

    op = A.arange.default
    K(op, "int_end")(5)
    K(op, "float_end")(4.5)
    K(op, "dtype_kwarg_f32")(6, dtype=f32)
    K(op, "dtype_kwarg_f64")(3, dtype=f64)
    K(op, "zero")(0)
    K(op, "negative_end", err=True)(-3)
    op = A.arange.start
    K(op, "int")(2, 7)
    K(op, "negative_int")(-3, 2)
    K(op, "float")(-1.5, 2.0)
    K(op, "dtype_kwarg")(1, 5, dtype=i32)
    K(op, "empty")(3, 3)
    op = A.arange.start_step
    K(op, "int_step3")(0, 10, 3)
    K(op, "int_negative_step")(10, 0, -3)
    K(op, "float_step")(0, 1, 0.1)
    K(op, "float_negative_step")(1.0, 0.0, -0.25)
    K(op, "float_args_int_dtype")(0.5, 5, 1.5, dtype=i64)
    K(op, "int_args_f64_dtype")(0, 5, 2, dtype=f64)
    K(op, "bf16_dtype")(0, 3, 0.5, dtype=bf16)
    K(op, "step_zero", err=True)(0, 5, 0)
    K(op, "wrong_sign_step", err=True)(0, 5, -1)


def compare_cases():
    for nm in ("eq", "ne", "lt", "gt", "le", "ge"):
        opT = getattr(A, nm).Tensor
        opS = getattr(A, nm).Scalar
        K(opS, "f32_float")(rn(3, 4), 0.5 if nm not in ("eq", "ne") else 0.0)
        K(opS, "specials_vs_neg_inf_model")(special(), -inf)
        K(opS, "specials_vs_nan")(special(), nan)
        K(opS, "specials_vs_zero")(special(), 0.0)
        K(opS, "int_tensor_float_scalar")(ri(0, 5, 6), 2.5)
        K(opS, "int_tensor_int_scalar")(tt([0, 1, 2, 3, 2], i64), 2)
        K(opS, "f16_scalar")(tt([0.1, 0.2, 0.3], f16), 0.1)
        K(opS, "bool_tensor")(tt([True, False], b8), True)
        K(opS, "noncontig")(ri(-2, 3, 3, 2, dtype=i32).t(), 0)
        K(opT, "broadcast")(ri(-2, 3, 3, 1).float(), ri(-2, 3, 4).float())
        K(opT, "specials_elementwise")(special(), tt([nan, inf, inf, -0.0, 0.0, 1.0, -1.5, 2.0, nan, -inf, 1e-3, -7.0]))
        K(opT, "int_vs_float_promote")(tt([1, 2, 3], i64), tt([1.0, 2.5, 2.9]))
        K(opT, "0d_other")(ri(0, 4, 5), tt(2))
        K(opT, "bool_vs_bool")(rb(4), rb(4))
        K(opT, "f16_vs_f32")(tt([0.1, 0.2], f16), tt([0.1, 0.2]))
        K(opT, "not_broadcastable", err=True)(rn(3), rn(4))

    op = A.logical_not.default
    K(op, "bool")(rb(2, 3))
    K(op, "float")(tt([0.0, -0.0, 1.0, nan, inf]))
    K(op, "int")(tt([0, 1, -2], i64))
    K(op, "uint8")(tt([0, 255], u8))
    K(op, "noncontig")(rb(4, 3).t())
    K(op, "empty")(torch.zeros(0, dtype=b8))

    op = A.masked_fill.Scalar
    K(op, "neg_inf_key_padding")(torch.zeros(2, 5), tt([[False] * 5, [False] * 3 + [True] * 2], b8), -inf)
    K(op, "broadcast_mask")(rn(2, 3, 4), rb(3, 1), 1.5)
    K(op, "mask_broadcasts_self")(rn(3, 1), rb(3, 4), 0.0)
    K(op, "int_self_int_value")(ri(-5, 5, 2, 3), rb(2, 3), 7)
    K(op, "noncontig")(rn(3, 2).t(), rb(2, 3), -1.0)
    K(op, "f64")(rn(4, dtype=f64), rb(4), 2.5)
    K(op, "uint8_mask", err=True)(rn(2), tt([1, 0], u8), 0.0)

    op = A.masked_fill_.Scalar
    K(op, "causal_mask")(torch.zeros(4, 5), torch.triu(torch.ones(4, 5, dtype=b8), 1), -inf)
    K(op, "broadcast_mask")(rn(2, 3, 4), rb(3, 1), 1.5)
    K(op, "noncontig_self")(rn(3, 2).t(), rb(2, 3), 9.0)
    K(op, "mask_larger_than_self", err=True)(rn(3, 1), rb(3, 4), 0.0)

    op = A.where.self
    K(op, "broadcast_cond_model")(rb(2, 3, 1), rn(2, 3, 4), rn(2, 3, 4))
    K(op, "broadcast_all")(rb(3, 1), rn(1, 4), rn(3, 4))
    K(op, "mixed_int_float")(rb(4), ri(-5, 5, 4), rn(4))
    K(op, "0d_f32_other")(rb(4), rn(4), tt(0.0))
    K(op, "0d_self_neg_inf")(rb(2, 2), tt(-inf), rn(2, 2))
    K(op, "0d_tensor_other")(rb(3), rn(3), tt(-1.0, f64))
    K(op, "int_int")(rb(5), ri(0, 9, 5, dtype=i32), ri(0, 9, 5, dtype=i64))
    K(op, "noncontig")(rb(3, 2).t(), rn(3, 2).t(), rn(2, 3))
    K(op, "nan_values")(tt([True, False, True], b8), tt([nan, 1.0, inf]), tt([0.0, nan, 2.0]))
    K(op, "uint8_cond")(tt([1, 0], u8), rn(2), rn(2))
    K(op, "not_broadcastable", err=True)(rb(3), rn(4), rn(4))


def conversion_cases():
    op = A.to.dtype
    K(op, "f32_to_int32_trunc")(tt([1.7, -1.7, 2.5, -2.5, 0.0, 100.9]), i32)
    K(op, "f32_to_bool")(tt([0.0, -0.0, 0.5, nan, -inf]), b8)
    K(op, "int_to_f16")(tt([1, 2049, 65504, -3], i64), f16)
    K(op, "f32_to_bf16_rne")(tt([1.00390625, 1.01171875, 3.14159, -0.1, 1e-40, 3e38]), bf16)
    K(op, "f32_to_f16_overflow")(tt([65504.0, 65520.0, 1e5, -1e5, 6e-8, 1e-9]), f16)
    K(op, "bool_to_f32")(rb(5), f32)
    K(op, "f64_to_f32")(rn(4, dtype=f64), f32)
    K(op, "same_dtype")(rn(3), f32)
    K(op, "same_dtype_copy_true")(rn(3), f32, False, True)
    K(op, "int64_to_uint8_wraps")(tt([-1, 256, 257, 100], i64), u8)
    K(op, "int64_to_int8_wraps")(tt([128, -129, 127], i64), i8)
    K(op, "bf16_to_f32")(rn(4, dtype=bf16), f32)
    K(op, "noncontig")(rn(3, 2).t(), f64)
    op = A._to_copy.default
    K(op, "dtype_kwarg")(tt([1.9, -1.9, 0.0]), dtype=i64)
    K(op, "no_dtype_plain_copy")(rn(2, 3))
    K(op, "noncontig")(rn(3, 2).t(), dtype=f16)
    K(op, "bool_to_int")(rb(4), dtype=i32)
    K(op, "f16_to_f32")(rn(4, dtype=f16), dtype=f32)
    K(op, "uint8_to_f32")(ri(0, 256, 4, dtype=u8), dtype=f32)


def math_cases():
    """The rest of the Core ATen math: unary functions, rounding, predicates, promoted binary ops."""
    unit_domain = ("asin", "acos", "atanh")
    pos_domain = ("acosh", "log2", "log10")
    for op in (A.tan.default, A.asin.default, A.acos.default, A.atan.default, A.sinh.default,
               A.cosh.default, A.asinh.default, A.acosh.default, A.atanh.default, A.expm1.default,
               A.log1p.default, A.log2.default, A.log10.default, A.reciprocal.default, A.erf.default):
        base = op_name(op).split(".")[0]
        if base in unit_domain:
            x = torch.rand(3, 4) * 1.8 - 0.9
        elif base in pos_domain:
            x = rpos(3, 4) + (1.0 if base == "acosh" else 0.0)
        elif base == "log1p":
            x = rpos(3, 4) - 0.5
        else:
            x = rn(3, 4)
        K(op, "f32")(x)
        K(op, "specials")(special())
        K(op, "f64")(x.to(f64))
        K(op, "bf16")(x.to(bf16))
        K(op, "noncontig")(x.t())
        K(op, "empty")(rn(0, 3))
        K(op, "0d")(tt(0.5))
        K(op, "int64_to_float")(ri(1, 4, 5))
    for op in (A.ceil.default, A.floor.default, A.trunc.default, A.round.default):
        K(op, "f32")(rn(3, 4) * 3)
        K(op, "halves")(tt([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997]))
        K(op, "specials")(special())
        K(op, "f64")(rn(5, dtype=f64) * 3)
        K(op, "f16")((rn(6) * 3).to(f16))
        K(op, "int64_unchanged")(ri(-5, 6, 7))
        K(op, "noncontig")((rn(4, 3) * 3).t())
        K(op, "bool", err=True)(rb(3))
    op = A.abs.default
    K(op, "f32")(rn(3, 4))
    K(op, "specials")(special())
    K(op, "int8_min_wraps")(tt([-128, -1, 0, 5], i8))
    K(op, "int64")(ri(-5, 6, 7))
    K(op, "bf16")(rn(6).to(bf16))
    K(op, "bool", err=True)(rb(3))
    op = A.sign.default
    K(op, "f32")(tt([-2.0, -0.0, 0.0, 3.0, nan, -inf]))
    K(op, "int32")(ri(-5, 6, 7, dtype=i32))
    K(op, "bool")(rb(5))
    K(op, "noncontig")(rn(4, 3).t())
    op = A.bitwise_not.default
    K(op, "int64")(ri(-5, 6, 7))
    K(op, "uint8")(tt([0, 1, 254, 255], u8))
    K(op, "bool")(rb(5))
    K(op, "float", err=True)(rn(3))
    for op in (A.isnan.default, A.isinf.default):
        K(op, "specials")(special())
        K(op, "f16")(special(f16))
        K(op, "int64")(ri(-5, 6, 4))
        K(op, "noncontig")(rn(4, 3).t())
        K(op, "empty")(rn(0))

    for op in (A.maximum.default, A.minimum.default):
        K(op, "broadcast")(rn(3, 4), rn(4))
        K(op, "nan_wins")(special(), tt([0.5] * 12))
        K(op, "int_float_promotes")(ri(-5, 6, 4), rn(4))
        K(op, "int32")(ri(-5, 6, 5, dtype=i32), ri(-5, 6, 5, dtype=i32))
        K(op, "bool")(rb(4), rb(4))
        K(op, "0d_f64_with_f32")(rn(3), tt(0.25, f64))
        K(op, "noncontig")(rn(4, 3).t(), rn(3, 4))
        K(op, "bad_broadcast", err=True)(rn(3), rn(4))
    op = A.atan2.default
    K(op, "broadcast")(rn(3, 4), rn(4))
    K(op, "quadrants")(tt([1.0, 1.0, -1.0, -1.0, 0.0, -0.0, 0.0]), tt([1.0, -1.0, 1.0, -1.0, -1.0, -1.0, 0.0]))
    K(op, "int_to_float")(ri(-5, 6, 4), ri(-5, 6, 4))
    K(op, "f64")(rn(5, dtype=f64), rn(5, dtype=f64))
    for op, sop in ((A.fmod.Tensor, A.fmod.Scalar), (A.remainder.Tensor, A.remainder.Scalar)):
        K(op, "f32_signs")(tt([5.5, -5.5, 5.5, -5.5, 0.0, 3.0]), tt([2.0, 2.0, -2.0, -2.0, 1.5, inf]))
        K(op, "int64_signs")(tt([7, -7, 7, -7, 0], i64), tt([3, 3, -3, -3, 5], i64))
        K(op, "broadcast")(rn(3, 4) * 4, rpos(4))
        K(op, "int_by_zero", err=True)(tt([1, 2], i64), tt([1, 0], i64))
        K(op, "float_by_zero")(tt([1.0, -2.0, 0.0]), tt([0.0, 0.0, 0.0]))
        K(op, "bool", err=True)(rb(3), rb(3))
        K(sop, "f32")(rn(3, 4) * 4, 1.5)
        K(sop, "int_scalar")(ri(-9, 10, 6), 4)
        K(sop, "int_tensor_float_scalar")(ri(-9, 10, 6), 2.5)
        K(sop, "negative_divisor")(rn(5) * 4, -3)
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        op, sop = getattr(A, name).Tensor, getattr(A, name).Scalar
        K(op, "int64")(ri(-9, 10, 6), ri(-9, 10, 6))
        K(op, "broadcast_int32")(ri(0, 16, 3, 4, dtype=i32), ri(0, 16, 4, dtype=i32))
        K(op, "bool")(rb(5), rb(5))
        K(op, "uint8_int64")(tt([1, 2, 255], u8), tt([3, 3, 3], i64))
        K(op, "float", err=True)(rn(3), rn(3))
        K(sop, "int")(ri(0, 16, 5), 6)
        K(sop, "bool_scalar")(rb(4), True)
        K(sop, "float_scalar", err=True)(ri(0, 16, 5), 2.5)
    for op in (A.logical_and.default, A.logical_or.default, A.logical_xor.default):
        K(op, "bool")(rb(6), rb(6))
        K(op, "float_int")(tt([0.0, 1.5, nan, -0.0]), tt([1, 0, 1, 2]))
        K(op, "broadcast")(rb(3, 4), rb(4))
        K(op, "noncontig")(rn(4, 3).t(), rn(3, 4))
    op = A.pow.Scalar
    K(op, "float_base")(2.5, rn(3, 4))
    K(op, "int_base_int_exp")(2, ri(0, 8, 5))
    K(op, "int_base_negative_exp")(2, tt([-1, -2, 0, 3]))
    K(op, "one_and_minus_one_negative_exp")(-1, tt([-1, -2, -3]))
    K(op, "int_base_float_exp")(3, rn(4))
    K(op, "float_base_int_exp")(1.5, ri(-3, 4, 5))
    K(op, "zero_base")(0.0, tt([-1.0, 0.0, 1.0, nan]))
    for op in (A.div.Tensor_mode,):
        K(op, "floor_f32")(rn(3, 4) * 5, rn(4), rounding_mode="floor")
        K(op, "trunc_f32")(rn(3, 4) * 5, rn(4), rounding_mode="trunc")
        K(op, "none_int_to_float")(ri(-9, 10, 5), ri(1, 5, 5), rounding_mode=None)
        K(op, "floor_int")(tt([7, -7, 7, -7], i64), tt([2, 2, -2, -2], i64), rounding_mode="floor")
        K(op, "trunc_int")(tt([7, -7, 7, -7], i64), tt([2, 2, -2, -2], i64), rounding_mode="trunc")
        K(op, "floor_signs_and_zero")(tt([5.0, -5.0, 0.0, 1.0, -1.0]), tt([-0.5, 0.5, 3.0, 0.0, 0.0]), rounding_mode="floor")
        K(op, "int_by_zero", err=True)(tt([1, 2], i64), tt([1, 0], i64), rounding_mode="floor")
        K(op, "bad_mode", err=True)(rn(3), rn(3), rounding_mode="round")
    K(A.div.Scalar_mode, "floor")(rn(3, 4) * 5, 1.5, rounding_mode="floor")
    K(A.div.Scalar_mode, "trunc_int")(ri(-9, 10, 6), 4, rounding_mode="trunc")


def more_reduction_cases():
    """amin, prod, min.dim, argmin, var, cumsum, any.dims."""
    op = A.amin.default
    K(op, "all")(rn(3, 4))
    K(op, "dim_keepdim")(rn(3, 4, 5), [0, 2], True)
    K(op, "nan")(special())
    K(op, "int64")(ri(-9, 10, 4, 5), [1])
    K(op, "noncontig")(rn(4, 3).t(), [1])
    K(op, "empty_dim", err=True)(rn(0, 3), [0])
    for op in (A.prod.default,):
        K(op, "f32")(rn(3, 4))
        K(op, "int_to_int64")(ri(-3, 4, 5, dtype=i32))
        K(op, "bool_to_int64")(rb(4))
        K(op, "dtype_f64")(rn(6), dtype=f64)
        K(op, "empty")(rn(0))
    op = A.prod.dim_int
    K(op, "dim1")(rn(3, 4), 1)
    K(op, "keepdim_neg")(rn(2, 3, 4), -1, True)
    K(op, "int")(ri(-3, 4, 3, 4), 0)
    K(op, "0d")(tt(2.5), 0)
    K(op, "bad_dim", err=True)(rn(3), 2)
    op = A.min.dim
    K(op, "dim1")(rn(3, 4), 1)
    K(op, "keepdim")(rn(3, 4, 2), 0, True)
    K(op, "ties_first")(tt([[1.0, 0.0, 0.0], [2.0, 2.0, 1.0]]), 1)
    K(op, "nan")(tt([[1.0, nan, 0.0], [2.0, -inf, 1.0]]), 1)
    K(op, "int")(ri(-9, 10, 4, 5), 0)
    K(op, "empty_dim", err=True)(rn(3, 0), 1)
    op = A.argmin.default
    K(op, "all")(rn(3, 4))
    K(op, "dim")(rn(3, 4), 1)
    K(op, "keepdim")(rn(3, 4), 0, True)
    K(op, "ties_first")(tt([3.0, 1.0, 1.0, 2.0]))
    K(op, "int")(ri(-9, 10, 6))
    K(op, "empty", err=True)(rn(0))
    op = A.var.correction
    K(op, "all_default")(rn(3, 4))
    K(op, "dim_keepdim")(rn(3, 4, 5), [1], keepdim=True)
    K(op, "correction0")(rn(3, 4), [0, 1], correction=0)
    K(op, "correction2_f64")(rn(5, 4, dtype=f64), [0], correction=2)
    K(op, "single_element_nan")(rn(1, 3), [0])
    K(op, "noncontig")(rn(4, 3).t(), [1])
    K(op, "int", err=True)(ri(0, 5, 4))
    op = A.var.dim
    K(op, "unbiased")(rn(3, 4), [1])
    K(op, "biased_keepdim")(rn(3, 4), [0], False, True)
    K(op, "bf16")(rn(4, 6).to(bf16), [1])
    op = A.cumsum.default
    K(op, "dim0")(rn(3, 4), 0)
    K(op, "dim_neg")(rn(2, 3, 4), -1)
    K(op, "int_to_int64")(ri(-9, 10, 5, dtype=i32), 0)
    K(op, "bool")(rb(6), 0)
    K(op, "dtype_f64")(rn(5), 0, dtype=f64)
    K(op, "noncontig")(rn(4, 3).t(), 1)
    K(op, "0d")(tt(1.5), 0)
    K(op, "empty")(rn(0, 3), 0)
    K(op, "bad_dim", err=True)(rn(3), 1)
    op = A.any.dims
    K(op, "dims")(rb(3, 4, 2), [0, 2])
    K(op, "keepdim")(rn(3, 4), [1], True)
    K(op, "none_all")(rb(3, 4))
    K(op, "uint8")(tt([[0, 3], [0, 0]], u8), [1])


def fill_pad_cases():
    """scalar_tensor, empty (sizes only: values are uninitialized), fill, copy, repeat, pads, leaky_relu,
    elu, clamp.Tensor."""
    op = A.scalar_tensor.default
    K(op, "float")(2.5)
    K(op, "int_default_f32")(3)
    K(op, "dtype_int64")(7, dtype=i64)
    K(op, "bool_dtype")(1, dtype=b8)
    K(A.empty.memory_format, "zero_size")([0, 3])
    K(A.empty.memory_format, "negative", err=True)([-1, 3])
    K(A.empty_strided.default, "zero_size")([2, 0], [1, 2])
    K(A.new_zeros.default, "self_dtype")(ri(0, 3, 2), [2, 3])
    K(A.new_ones.default, "dtype_kwarg")(rn(2), [3], dtype=f64)
    K(A.new_full.default, "fill")(rn(2), [2, 2], 2.5)
    K(A.new_full.default, "int_self_float_fill")(ri(0, 3, 2), [3], 2.5)
    K(A.new_ones.default, "negative", err=True)(rn(2), [-1])
    op = A.fill.Scalar
    K(op, "f32")(rn(3, 4), 1.5)
    K(op, "int_with_float_truncates")(ri(0, 5, 4), 2.7)
    K(op, "bool")(rb(3), 1)
    K(op, "noncontig")(rn(4, 3).t(), -2)
    op = A.copy.default
    K(op, "same")(rn(3, 4), rn(3, 4))
    K(op, "broadcast")(rn(3, 4), rn(4))
    K(op, "cast_to_int")(ri(0, 5, 4), rn(4) * 3)
    K(op, "noncontig_src")(rn(3, 4), rn(4, 3).t())
    K(op, "bad_broadcast", err=True)(rn(3), rn(4))
    op = A.repeat.default
    K(op, "2d")(rn(2, 3), [2, 2])
    K(op, "leading")(rn(3), [2, 1, 2])
    K(op, "int")(ri(0, 5, 2, 2), [1, 3])
    K(op, "zero")(rn(2, 3), [0, 1])
    K(op, "noncontig")(rn(3, 2).t(), [2, 1])
    K(op, "too_few", err=True)(rn(2, 3), [2])
    op = A.constant_pad_nd.default
    K(op, "last_dim")(rn(2, 3), [1, 2])
    K(op, "two_dims_value")(rn(2, 3, 4), [1, 1, 2, 0], 1.5)
    K(op, "int")(ri(0, 5, 2, 3), [1, 1], 7)
    for op, shape, pad in ((A.reflection_pad1d.default, (1, 2, 5), [2, 1]),
                           (A.reflection_pad2d.default, (1, 2, 4, 5), [1, 2, 2, 1]),
                           (A.reflection_pad3d.default, (1, 1, 3, 4, 5), [1, 1, 2, 1, 1, 2]),
                           (A.replication_pad2d.default, (1, 2, 4, 5), [1, 2, 3, 0]),
                           (A.replication_pad3d.default, (1, 1, 3, 4, 5), [2, 1, 0, 1, 1, 1])):
        K(op, "basic")(rn(*shape), pad)
        K(op, "noncontig")(rn(*shape[:-1], shape[-1] * 2)[..., ::2], pad)
    op = A.leaky_relu.default
    K(op, "default_slope")(rn(3, 4))
    K(op, "slope")(rn(3, 4), 0.2)
    K(op, "specials")(special())
    K(op, "bf16")(rn(6).to(bf16))
    K(op, "int", err=True)(ri(-3, 3, 4))
    op = A.elu.default
    K(op, "default")(rn(3, 4))
    K(op, "alpha_scale")(rn(3, 4), 0.5, 2.0, 1.5)
    K(op, "specials")(special())
    K(op, "f64")(rn(5, dtype=f64))
    op = A.clamp.Tensor
    K(op, "both")(rn(3, 4), rn(4) - 0.5, rn(3, 1) + 0.5)
    K(op, "min_only")(rn(3, 4), rn(4))
    K(op, "max_only")(rn(3, 4), None, rn(4))
    K(op, "int")(ri(-9, 10, 6), ri(-3, 0, 6), ri(1, 4, 6))
    K(op, "nan_bound")(rn(3), tt([nan, 0.0, 0.0]), tt([1.0, nan, 1.0]))
    K(op, "none", err=True)(rn(3), None, None)


def norm_resample_cases():
    """group_norm / native_group_norm, upsample_nearest2d.vec, upsample_bilinear2d.vec."""
    op = A.native_group_norm.default
    K(op, "affine", tol=(1e-4, 1e-5))(rn(2, 4, 3, 5), rn(4), rn(4), 2, 4, 15, 2, 1e-5)
    K(op, "no_affine", tol=(1e-4, 1e-5))(rn(3, 6, 4), None, None, 3, 6, 4, 3, 1e-5)
    K(op, "one_group_f64")(rn(2, 3, 2, 2, dtype=f64), rn(3, dtype=f64), None, 2, 3, 4, 1, 1e-3)
    K(op, "bad_groups", err=True)(rn(2, 4, 3), None, None, 2, 4, 3, 3, 1e-5)
    op = A.group_norm.default
    K(op, "affine", tol=(1e-4, 1e-5))(rn(2, 4, 3, 5) * 3 + 1, 2, rn(4), rn(4))
    K(op, "noncontig", tol=(1e-4, 1e-5))(rn(2, 3, 8).transpose(1, 2), 4)
    K(op, "3d_eps", tol=(1e-4, 1e-5))(rn(2, 6, 5), 3, None, None, 0.1)
    K(op, "bf16")(rn(2, 4, 6).to(bf16), 2)
    K(op, "indivisible", err=True)(rn(2, 4, 3), 3)
    K(op, "int", err=True)(ri(0, 5, 2, 4, 3), 2)
    op = A.upsample_nearest2d.vec
    K(op, "scale2")(rn(1, 2, 3, 4), None, [2.0, 2.0])
    K(op, "size")(rn(2, 1, 4, 5), [7, 3], None)
    K(op, "scale_fractional")(rn(1, 2, 5, 4), None, [1.5, 0.75])
    K(op, "uint8")(ri(0, 9, 1, 2, 2, 3, dtype=u8), None, [2.0, 3.0])
    K(op, "int64", err=True)(ri(0, 9, 1, 2, 2, 3), None, [2.0, 3.0])
    K(op, "noncontig")(rn(1, 2, 4, 3).transpose(2, 3), [5, 6], None)
    K(op, "both_none", err=True)(rn(1, 1, 2, 2), None, None)
    K(op, "3d_input", err=True)(rn(1, 2, 3), [4, 4], None)
    K(op, "empty_input", err=True)(rn(1, 2, 0, 3), [4, 4], None)
    op = A.upsample_bilinear2d.vec
    K(op, "size_no_align")(rn(2, 2, 4, 6), [5, 7], False, None)
    K(op, "size_align")(rn(2, 2, 4, 6), [5, 7], True, None)
    K(op, "scale_align")(rn(1, 3, 4, 4), None, True, [1.5, 1.5])
    K(op, "scale_no_align")(rn(1, 3, 4, 5), None, False, [2.0, 0.5])
    K(op, "downsample")(rn(1, 1, 8, 8), [3, 5], False, None)
    K(op, "to_one")(rn(1, 1, 4, 4), [1, 1], True, None)
    K(op, "f64")(rn(1, 2, 3, 3, dtype=f64), [4, 5], False, None)
    K(op, "uint8")(ri(0, 255, 1, 2, 3, 3, dtype=u8), [5, 4], False, None)
    K(op, "noncontig")(rn(1, 2, 5, 4).transpose(2, 3), [6, 7], False, None)
    op = A.upsample_bicubic2d.vec
    K(op, "size_no_align", tol=(1e-4, 1e-5))(rn(2, 2, 4, 6), [5, 7], False, None)
    K(op, "size_align", tol=(1e-4, 1e-5))(rn(2, 2, 4, 6), [5, 7], True, None)
    K(op, "crossvit_up", tol=(1e-4, 1e-5))(rn(1, 3, 8, 8), [15, 15], False, None)
    K(op, "scale_no_align", tol=(1e-4, 1e-5))(rn(1, 3, 4, 5), None, False, [2.0, 0.5])
    K(op, "scale_align", tol=(1e-4, 1e-5))(rn(1, 1, 4, 4), None, True, [1.5, 1.5])
    K(op, "downsample", tol=(1e-4, 1e-5))(rn(1, 1, 9, 9), [4, 3], False, None)
    K(op, "to_one", tol=(1e-4, 1e-5))(rn(1, 1, 4, 4), [1, 1], True, None)
    K(op, "tiny_input", tol=(1e-4, 1e-5))(rn(1, 2, 1, 2), [3, 5], False, None)
    K(op, "f64")(rn(1, 2, 3, 3, dtype=f64), [4, 5], False, None)
    K(op, "noncontig", tol=(1e-4, 1e-5))(rn(1, 2, 5, 4).transpose(2, 3), [6, 7], False, None)
    K(op, "int", err=True)(ri(0, 9, 1, 1, 3, 3), [4, 4], False, None)
    K(op, "3d", err=True)(rn(1, 3, 3), [4, 4], False, None)


def sort_cases():
    """sort (stable, NaN largest) and topk (inputs without ties: PyTorch's tie order is unspecified)."""
    def distinct(*shape, dtype=f32):
        n = math.prod(shape)
        if dtype in FLOAT_DTYPES:
            return (torch.randperm(n).to(f64) * 0.37 - n * 0.1).reshape(shape).to(dtype)
        return (torch.randperm(n) - n // 2).reshape(shape).to(dtype)
    op = A.sort.default
    K(op, "last_dim")(distinct(3, 5))
    K(op, "dim0_descending")(distinct(4, 3), 0, True)
    K(op, "stable_ties")(tt([[2.0, 1.0, 2.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0]]))
    K(op, "stable_ties_descending")(tt([[2.0, 1.0, 2.0, 1.0, 0.0]]), -1, True)
    K(op, "nan_last")(tt([3.0, nan, -1.0, inf, -inf, nan, 0.0]))
    K(op, "nan_first_descending")(tt([3.0, nan, -1.0, inf, -inf, 0.0]), 0, True)
    K(op, "int64_exact")(tt([2**62 + 1, 2**62, -5, 2**62 + 3], i64))
    K(op, "bool")(tt([True, False, True, False]))
    K(op, "noncontig")(distinct(5, 4).t(), 1)
    K(op, "0d")(tt(1.5))
    K(op, "empty")(rn(0, 3), 1)
    K(op, "bad_dim", err=True)(rn(3), 1)
    op = A.topk.default
    K(op, "largest")(distinct(3, 6), 2)
    K(op, "smallest_dim0")(distinct(5, 3), 3, 0, False)
    K(op, "k0")(distinct(3, 4), 0)
    K(op, "full")(distinct(7), 7)
    K(op, "int32")(distinct(2, 5, dtype=i32), 3)
    K(op, "noncontig")(distinct(4, 3).t(), 2)
    K(op, "k_too_big", err=True)(rn(3), 4)


def random_and_more_cases():
    """Random ops (errors only: values come from oxport's own generator), _native_batch_norm_legit,
    nonzero, atan2.out."""
    K(A.rand.default, "negative", err=True)([-1, 2])
    K(A.rand.default, "int_dtype", err=True)([2], dtype=i64)
    K(A.randn.default, "int_dtype", err=True)([2], dtype=i64)
    K(A.randperm.default, "negative", err=True)(-1)
    K(A.randperm.default, "bool", err=True)(3, dtype=b8)
    K(A.randperm.default, "zero")(0)
    K(A.native_dropout.default, "eval")(rn(3, 4), 0.5, False)
    K(A.native_dropout.default, "p_one_train")(rn(3, 4), 1.0, True)
    K(A.native_dropout.default, "p_zero_train")(rn(3, 4), 0.0, True)
    K(A.native_dropout.default, "bad_p", err=True)(rn(3), 1.5, True)
    op = A._native_batch_norm_legit.default
    K(op, "train_updates_stats", tol=(1e-4, 1e-5))(rn(4, 3, 5), rn(3), rn(3), torch.zeros(3), torch.ones(3), True, 0.1, 1e-5)
    K(op, "eval")(rn(4, 3, 5), rn(3), rn(3), rn(3), rpos(3), False, 0.1, 1e-5)
    K(op, "train_no_affine_4d", tol=(1e-4, 1e-5))(rn(2, 3, 4, 4), None, None, rn(3), rpos(3), True, 0.3, 1e-3)
    op = A._native_batch_norm_legit.no_stats
    K(op, "train", tol=(1e-4, 1e-5))(rn(4, 3, 5), rn(3), None, True, 0.1, 1e-5)
    K(op, "eval", err=True)(rn(4, 3, 5), None, None, False, 0.1, 1e-5)
    op = A.nonzero.default
    K(op, "2d")(tt([[0.0, 1.5, 0.0], [nan, 0.0, -2.0]]))
    K(op, "int_3d")(ri(0, 2, 2, 3, 2))
    K(op, "bool")(rb(7))
    K(op, "none")(torch.zeros(2, 3))
    K(op, "0d")(tt(3.0))
    K(op, "noncontig")(ri(0, 2, 4, 3).t())
    op = A.to.device
    K(op, "to_f64")(rn(3, 4), "cpu", f64)
    K(op, "same_no_copy")(rn(3, 4), "cpu", f32)
    K(op, "same_copy")(rn(3, 4), "cpu", f32, False, True)
    K(op, "float_to_int")(rn(5) * 5, "cpu", i64)
    op = A.to.dtype_layout
    K(op, "dtype")(rn(3, 4), dtype=f16)
    K(op, "device_only")(rn(3), device="cpu")
    K(op, "noncontig_copy")(rn(4, 3).t(), dtype=f32, copy=True)
    op = A.atan2.out
    K(op, "into_out")(rn(3, 4), rn(4), out=torch.zeros(3, 4))
    K(op, "int_into_float_out")(ri(-3, 4, 5), ri(-3, 4, 5), out=torch.zeros(5))


def conv_transpose_cases():
    """conv_transpose1d/2d and convolution(transposed=True)."""
    T = dict(tol=(1e-4, 1e-5))
    op = A.conv_transpose2d.input
    K(op, "k2s2", **T)(rn(1, 4, 3, 3), rn(4, 2, 2, 2), rn(2), [2, 2])
    K(op, "k3_pad_outpad", **T)(rn(2, 3, 4, 5), rn(3, 2, 3, 3), None, [2, 2], [1, 1], [1, 1])
    K(op, "groups_dilation", **T)(rn(1, 4, 4, 4), rn(4, 3, 3, 3), rn(6), [1, 1], [1, 1], [0, 0], 2, [2, 1])
    K(op, "unbatched", **T)(rn(2, 3, 3), rn(2, 3, 2, 2))
    K(op, "f64")(rn(1, 2, 3, 3, dtype=f64), rn(2, 2, 3, 3, dtype=f64), None, [2, 1], [1, 0])
    K(op, "noncontig", **T)(rn(1, 3, 5, 4).transpose(2, 3), rn(3, 2, 2, 3))
    K(op, "bad_channels", err=True)(rn(1, 3, 4, 4), rn(2, 2, 3, 3))
    K(op, "bad_output_padding", err=True)(rn(1, 2, 4, 4), rn(2, 2, 3, 3), None, [1, 1], [0, 0], [1, 1])
    op = A.conv3d.default
    K(op, "basic", **T)(rn(1, 2, 4, 5, 5), rn(3, 2, 2, 3, 3), rn(3))
    K(op, "stride_pad_dil", **T)(rn(2, 2, 5, 6, 6), rn(4, 2, 3, 3, 3), None, [1, 2, 2], [1, 1, 0], [2, 1, 1])
    K(op, "groups_unbatched", **T)(rn(4, 3, 4, 4), rn(4, 2, 1, 3, 3), rn(4), [1], [0], [1], 2)
    K(op, "f64")(rn(1, 1, 3, 3, 3, dtype=f64), rn(2, 1, 2, 2, 2, dtype=f64))
    K(op, "kernel_too_big", err=True)(rn(1, 1, 2, 2, 2), rn(1, 1, 3, 3, 3))
    K(A.convolution.default, "3d", **T)(rn(1, 2, 3, 4, 4), rn(2, 2, 2, 2, 2), rn(2), [1, 1, 1], [0, 1, 1], [1, 1, 1], False, [0, 0, 0], 1)
    op = A.conv_transpose1d.default
    K(op, "basic", **T)(rn(2, 3, 6), rn(3, 4, 3), rn(4), [2], [1], [1])
    K(op, "groups", **T)(rn(1, 4, 5), rn(4, 1, 2), None, [1], [0], [0], 2)
    op = A.convolution.default
    K(op, "transposed_2d", **T)(rn(1, 4, 3, 3), rn(4, 2, 2, 2), rn(2), [2, 2], [0, 0], [1, 1], True, [0, 0], 1)
    K(op, "transposed_1d", **T)(rn(2, 2, 5), rn(2, 3, 3), None, [2], [1], [1], True, [1], 1)


def rnn_cases():
    """gru.input, rnn_tanh.input, rnn_relu.input (run by their decompositions)."""
    T = dict(tol=(1e-4, 1e-5))

    def params(gates, inp, hidden, layers, dirs, bias=True):
        ps = []
        for layer in range(layers):
            for _ in range(dirs):
                i = inp if layer == 0 else hidden * dirs
                ps += [rn(gates * hidden, i) * 0.3, rn(gates * hidden, hidden) * 0.3]
                if bias:
                    ps += [rn(gates * hidden) * 0.1, rn(gates * hidden) * 0.1]
        return ps
    op = A.gru.input
    K(op, "two_layers", **T)(rn(4, 2, 5), rn(2, 2, 6), params(3, 5, 6, 2, 1), True, 2, 0.0, False, False, False)
    K(op, "bidirectional_batch_first", **T)(rn(2, 3, 4), rn(2, 2, 5), params(3, 4, 5, 1, 2), True, 1, 0.0, False, True, True)
    K(op, "no_bias", **T)(rn(3, 1, 4), rn(1, 1, 3), params(3, 4, 3, 1, 1, bias=False), False, 1, 0.0, False, False, False)
    op = A.rnn_tanh.input
    K(op, "two_layers", **T)(rn(4, 2, 5), rn(2, 2, 6), params(1, 5, 6, 2, 1), True, 2, 0.0, False, False, False)
    K(op, "bidirectional", **T)(rn(3, 2, 4), rn(2, 2, 3), params(1, 4, 3, 1, 2), True, 1, 0.0, False, True, False)
    op = A.rnn_relu.input
    K(op, "batch_first_no_bias", **T)(rn(2, 5, 3), rn(1, 2, 4), params(1, 3, 4, 1, 1, bias=False), False, 1, 0.0, False, False, True)


def decomposed_nn_cases():
    """Non-Core nn ops run through their decompositions: grid_sampler, embedding_bag."""
    op = A.grid_sampler.default
    K(op, "bilinear_zeros")(rn(1, 2, 5, 6), torch.rand(1, 3, 4, 2) * 2.2 - 1.1, 0, 0, False)
    K(op, "nearest_border_align")(rn(2, 1, 4, 4), torch.rand(2, 2, 3, 2) * 2 - 1, 1, 1, True)
    op = A.embedding_bag.padding_idx
    K(op, "mean", tol=(1e-5, 1e-6))(rn(10, 4), ri(0, 10, 7), tt([0, 3, 5], i64), False, 1, False, None, False, None)
    K(op, "sum_padding_idx")(rn(10, 4), tt([1, 2, 0, 4, 0], i64), tt([0, 2], i64), False, 0, False, None, False, 0)
    op = A.roll.default
    K(op, "two_dims")(rn(3, 4, 5), [-1, 2], [1, 2])
    K(op, "flattened")(rn(3, 4), [5])
    K(op, "big_shift_int")(ri(0, 9, 6), [13], [0])
    K(op, "noncontig")(rn(4, 3).t(), [1], [-1])
    K(op, "empty")(rn(0, 3), [1], [1])
    K(op, "misaligned", err=True)(rn(3, 4), [1, 2], [0])
    op = A.fill_.Scalar
    K(op, "f32")(rn(3, 4), 2.5)
    K(op, "int_noncontig")(ri(1, 9, 4, 3).t(), 7)
    op = A.adaptive_avg_pool3d.default
    K(op, "to_one")(rn(1, 2, 3, 4, 5), [1, 1, 1])
    K(op, "to_2x2x3", tol=(1e-5, 1e-6))(rn(1, 2, 4, 5, 6), [2, 2, 3])
    op = A.zero_.default
    K(op, "f32")(rn(3, 4))
    K(op, "int_noncontig")(ri(1, 9, 4, 3).t())
    op = A.embedding_bag.default
    K(op, "max")(rn(10, 3), ri(0, 10, 6), tt([0, 2, 4], i64), False, 2)
    K(op, "sum_weights")(rn(8, 3), ri(0, 8, 5), tt([0, 2, 4], i64), False, 0, False, rn(5), False)


def composite_cases():
    """CompositeImplicit ops real models keep in the training IR: type_as, reshape_as, where with numbers,
    min/max.other, diff, linalg_vector_norm, _weight_norm, einsum."""
    op = A.type_as.default
    K(op, "int_to_float")(ri(0, 9, 2, 3), rn(1))
    K(op, "float_to_int32")(rn(2, 3) * 5, ri(0, 2, 1, dtype=torch.int32))
    K(op, "same_dtype")(rn(2, 3), rn(4))
    K(op, "bool_to_f64_noncontig")(rb(3, 2).t(), rn(1, dtype=f64))
    K(op, "f16_to_f32_0d")(rn(1).reshape(()).half(), rn(2))
    op = A.reshape_as.default
    K(op, "basic")(rn(2, 6), rn(3, 4))
    K(op, "noncontig")(rn(4, 3).t(), rn(12))
    K(op, "zero_size")(rn(0, 3), rn(3, 0))
    K(op, "0d")(rn(1), rn(1).reshape(()))
    K(op, "numel_mismatch", err=True)(rn(2, 3), rn(4))
    op = A.where.ScalarOther
    K(op, "float_min")(rb(2, 3), rn(2, 3), -3.4028234663852886e+38)
    K(op, "broadcast_int")(rb(3, 1), ri(0, 9, 1, 4), 7)
    K(op, "int_tensor_float_scalar")(rb(2, 3), ri(0, 9, 2, 3), 0.5)
    K(op, "f64_noncontig")(rb(3, 2).t(), rn(3, 2, dtype=f64).t(), 1)
    K(op, "bool_cond_u8", err=False)(rb(2, 2).to(torch.uint8), rn(2, 2), 0.0)
    K(op, "bad_cond", err=True)(rn(2), rn(2), 0.0)
    op = A.where.ScalarSelf
    K(op, "basic")(rb(2, 3), 2.5, rn(2, 3))
    K(op, "int_bool")(rb(4), True, rb(4))
    op = A.where.Scalar
    K(op, "ints")(rb(2, 3), 1, 0)
    K(op, "float_int")(rb(2, 3), 1.5, 0)
    for op in (A.min.other, A.max.other):
        K(op, "broadcast")(rn(2, 3), rn(3))
        K(op, "int_float")(ri(-5, 5, 4), rn(4))
        K(op, "nan")(tt([nan, 1.0, 2.0]), tt([0.0, nan, 3.0]))
        K(op, "i64_noncontig")(ri(-9, 9, 3, 4).t(), ri(-9, 9, 4, 1))
        K(op, "bool")(rb(5), rb(5))
        K(op, "shape_mismatch", err=True)(rn(2), rn(3))
    op = A.diff.default
    K(op, "basic")(rn(2, 5))
    K(op, "n2_dim0")(rn(4, 3), 2, 0)
    K(op, "prepend_append")(ri(0, 9, 2, 4), 1, -1, ri(0, 9, 2, 1), ri(0, 9, 2, 2))
    K(op, "prepend_llama")(ri(0, 9, 2, 12), 1, -1, ri(0, 9, 2, 1))
    K(op, "bool_xor")(rb(3, 6), 1, 1)
    K(op, "n_larger_than_dim")(rn(3), 5)
    K(op, "n0")(rn(2, 3), 0)
    K(op, "f64_noncontig")(rn(5, 4, dtype=f64).t(), 3, 1)
    K(op, "empty")(rn(0), 1)
    K(op, "mixed_prepend_dtype")(ri(0, 9, 3), 1, 0, rn(2))
    K(op, "0d", err=True)(rn(1).reshape(()), 1)
    K(op, "negative_n", err=True)(rn(3), -1)
    K(op, "prepend_rank", err=True)(rn(2, 3), 1, -1, rn(3))
    K(op, "prepend_shape", err=True)(rn(2, 3), 1, -1, rn(3, 3))
    op = A.linalg_vector_norm.default
    K(op, "l2_all")(rn(3, 4))
    K(op, "l2_dim_keepdim")(rn(1, 4, 8, 5), 2.0, [-1], True)
    K(op, "l1_dims")(rn(3, 4, 5), 1, [0, 2])
    K(op, "l3")(rn(6), 3.0)
    K(op, "l0")(tt([[0.0, 1.0, -2.0], [0.0, 0.0, 3.0]]), 0, [1])
    K(op, "inf")(rn(3, 4), inf, [1])
    K(op, "neg_inf_keepdim")(rn(3, 4), -inf, [0], True)
    K(op, "fractional")(rpos(4, 3), 0.5, [0])
    K(op, "single_element_dim")(rn(3, 1), 2, [1])
    K(op, "single_element_all")(rn(1, 1), 2)
    K(op, "f64_noncontig")(rn(4, 3, dtype=f64).t(), 2, [1])
    K(op, "dtype_f64")(rn(3, 3), 2, None, False, dtype=f64)
    K(op, "empty_l2")(rn(0, 3), 2, [0])
    K(op, "f16", tol=(2e-3, 2e-3))(rn(8).half())
    K(op, "int", err=True)(ri(0, 9, 3))
    K(op, "empty_inf", err=True)(rn(0, 3), inf, [0])
    K(op, "int_dtype", err=True)(rn(3), 2, None, False, dtype=i64)
    op = A._weight_norm.default
    K(op, "dim0")(rn(8, 4, 3), rpos(8, 1, 1), 0)
    K(op, "dim_last_wav2vec2")(rn(6, 2, 5), rpos(1, 1, 5), 2)
    K(op, "dim_middle")(rn(3, 4, 5), rpos(1, 4, 1), 1)
    K(op, "dim_all")(rn(3, 4), rpos(()), -1)
    K(op, "f64")(rn(4, 3, dtype=f64), rpos(4, 1, dtype=f64), 0)
    op = A.einsum.default
    K(op, "matmul")("ij,jk->ik", [rn(2, 3), rn(3, 4)])
    K(op, "batched_attention", tol=(1e-5, 1e-5))("bhqd,bhkd->bhqk", [rn(2, 3, 4, 5), rn(2, 3, 6, 5)])
    K(op, "implicit")("ij,jk", [rn(2, 3), rn(3, 4)])
    K(op, "implicit_sorted")("ba", [rn(2, 3)])
    K(op, "transpose")("ij->ji", [rn(2, 3)])
    K(op, "sum_all")("ij->", [rn(2, 3)])
    K(op, "trace")("ii", [rn(3, 3)])
    K(op, "diagonal")("ii->i", [rn(4, 4)])
    K(op, "outer")("i,j->ij", [rn(3), rn(4)])
    K(op, "dot")("i,i->", [rn(5), rn(5)])
    K(op, "ellipsis")("...ij,...jk->...ik", [rn(2, 2, 3), rn(2, 3, 4)])
    K(op, "ellipsis_broadcast")("...ij,jk", [rn(5, 2, 3), rn(3, 4)])
    K(op, "three_operands", tol=(1e-5, 1e-5))("ij,jk,kl->il", [rn(2, 3), rn(3, 4), rn(4, 5)])
    K(op, "maxvit_rel")("bhwc,hkc->bhwk", [rn(2, 3, 4, 5), rn(3, 6, 5)])
    K(op, "unused_label_summed")("ij,k->i", [rn(2, 3), rn(4)])
    K(op, "broadcast_size1")("bij,bjk->bik", [rn(1, 2, 3), rn(4, 3, 5)])
    K(op, "uppercase")("Ab,bC->AC", [rn(2, 3), rn(3, 4)])
    K(op, "f64_noncontig")("ij,jk->ki", [rn(3, 2, dtype=f64).t(), rn(4, 3, dtype=f64).t()])
    K(op, "int64")("ij,jk->ik", [ri(-3, 3, 2, 3), ri(-3, 3, 3, 2)])
    K(op, "zero_size")("ij,jk->ik", [rn(2, 0), rn(0, 3)])
    K(op, "spaces")("i j , j k -> i k", [rn(2, 3), rn(3, 4)])
    K(op, "too_few_operands", err=True)("ij,jk->ik", [rn(2, 3)])
    K(op, "too_many_operands", err=True)("ij->ij", [rn(2, 3), rn(3, 4)])
    K(op, "rank_mismatch", err=True)("ij->ij", [rn(2, 3, 4)])
    K(op, "bad_subscript", err=True)("i1,j->ij", [rn(2), rn(3)])
    K(op, "output_repeated", err=True)("ij->ii", [rn(2, 3)])
    K(op, "output_unknown", err=True)("ij->ik", [rn(2, 3)])
    K(op, "size_mismatch", err=True)("ij,jk->ik", [rn(2, 3), rn(4, 5)])
    K(op, "diagonal_mismatch", err=True)("ii->i", [rn(2, 3)])
    for base in ("__and__", "__or__", "__xor__"):
        op = getattr(A, base).Tensor
        K(op, "bool_broadcast")(rb(2, 3), rb(3))
        K(op, "int")(ri(0, 64, 4), ri(0, 64, 4))
        K(op, "int32_noncontig")(ri(0, 64, 3, 2, dtype=torch.int32).t(), ri(0, 64, 2, 1, dtype=torch.int32))
        K(op, "float", err=True)(rn(3), rn(3))
        op = getattr(A, base).Scalar
        K(op, "int")(ri(0, 64, 4), 6)
        K(op, "bool")(rb(4), True)
    for op in (A.clamp_min.default, A.clamp_max.default):
        K(op, "float")(rn(3, 4), 0.1)
        K(op, "int_float_bound")(ri(-5, 5, 6), 0.5)
        K(op, "int")(ri(-5, 5, 6), 1)
        K(op, "f64_noncontig")(rn(4, 3, dtype=f64).t(), -0.2)
        K(op, "nan")(tt([nan, 1.0, -1.0]), 0.0)
        K(op, "bool_int_bound")(rb(3), 1)
        K(op, "bool_bool_bound", err=True)(rb(3), True)
    K(A.clamp.default, "bool_int_bounds")(rb(3), 0, 1)
    K(A.clamp.default, "bool_max_only", err=True)(rb(3), None, True)
    op = A.swapaxes.default
    K(op, "basic")(rn(2, 3, 4), 0, 2)
    K(op, "negative")(rn(2, 3, 4), -1, 1)
    K(op, "same")(rn(2, 3), 1, 1)
    K(op, "out_of_range", err=True)(rn(2, 3), 0, 2)
    op = A.repeat_interleave.self_int
    K(op, "dim0")(rn(1, 3, 2), 4, 0)
    K(op, "dim1")(rn(2, 3), 2, 1)
    K(op, "negative_dim")(ri(0, 9, 2, 3), 3, -1)
    K(op, "flat")(rn(2, 3), 2)
    K(op, "zero")(rn(2, 3), 0, 0)
    K(op, "0d")(rn(1).reshape(()), 3)
    K(op, "noncontig")(rn(3, 2).t(), 2, 0)
    K(op, "negative", err=True)(rn(2), -1, 0)
    for op in (A.conv1d.padding, A.conv2d.padding, A.conv3d.padding):
        nd = {"conv1d": 1, "conv2d": 2, "conv3d": 3}[op._schema.name.split("::")[1]]
        x = lambda c=3: rn(1, c, *([6] * nd))  # noqa: E731
        w = lambda k, o=4, c=3: rn(o, c, *([k] * nd))  # noqa: E731
        K(op, "same_odd_kernel", tol=(1e-4, 1e-5))(x(), w(3), rn(4), [1] * nd, "same", [1] * nd, 1)
        K(op, "same_even_kernel", tol=(1e-4, 1e-5))(x(), w(4), rn(4), [1] * nd, "same", [1] * nd, 1)
        K(op, "same_dilated", tol=(1e-4, 1e-5))(x(), w(2), None, [1] * nd, "same", [2] * nd, 1)
        K(op, "valid_strided", tol=(1e-4, 1e-5))(x(), w(3), rn(4), [2] * nd, "valid", [1] * nd, 1)
        K(op, "same_depthwise", tol=(1e-4, 1e-5))(x(4), w(3, 4, 1), rn(4), [1] * nd, "same", [1] * nd, 4)
        K(op, "same_strided", err=True)(x(), w(3), None, [2] * nd, "same", [1] * nd, 1)
        K(op, "bad_mode", err=True)(x(), w(3), None, [1] * nd, "full", [1] * nd, 1)
    op = A.expand_as.default
    K(op, "basic")(rn(3, 1), rn(2, 3, 4))
    K(op, "same")(rn(2, 3), rn(2, 3))
    K(op, "int_other_dtype")(ri(0, 5, 1), rn(4, 2))
    K(op, "bad", err=True)(rn(3, 2), rn(3, 4))
    op = A.view_as.default
    K(op, "basic")(rn(2, 6), rn(3, 4))
    K(op, "noncontig", err=True)(rn(4, 3).t(), rn(12))
    K(op, "numel", err=True)(rn(2, 3), rn(4))
    op = A.swapdims.default
    K(op, "basic")(rn(2, 3, 4), 1, 2)


def misc_cases():
    K(A.detach.default, "view")(rn(3, 4))
    K(A.detach_.default, "in_place")(rn(2, 3))

    op = A.lift_fresh_copy.default
    K(op, "copy")(rn(3, 4))
    K(op, "noncontig_int")(ri(0, 9, 4, 3).t())

    op = A.dropout.default
    K(op, "eval_p0_1")(rn(2, 5), 0.1, False)
    K(op, "eval_p0")(rn(3, 4), 0.0, False)
    K(op, "eval_noncontig")(rn(4, 3).t(), 0.5, False)

    op = A.embedding.default
    K(op, "2d_indices")(rn(10, 4), ri(0, 10, 2, 3))
    K(op, "1d_indices")(rn(6, 3), tt([5, 0, 5, 2], i64))
    K(op, "int32_indices")(rn(6, 3), tt([1, 2, 3], i32))
    K(op, "padding_idx")(rn(5, 2), tt([0, 1, 0], i64), 0)
    K(op, "0d_index")(rn(5, 2), tt(3, i64))
    K(op, "empty_indices")(rn(5, 2), torch.zeros(0, dtype=i64))
    K(op, "noncontig_weight")(rn(3, 6).t(), tt([0, 5], i64))
    K(op, "index_out_of_range", err=True)(rn(5, 2), tt([0, 5], i64))

    op = A.lstm.input
    I, H, B, T = 3, 4, 2, 3

    def params(bias=True, layers=1, dirs=1):
        s = 1.0 / math.sqrt(H)
        p = []
        for layer in range(layers):
            for _ in range(dirs):
                p += [(torch.rand(4 * H, I if layer == 0 else H * dirs) * 2 - 1) * s, (torch.rand(4 * H, H) * 2 - 1) * s]
                if bias:
                    p += [(torch.rand(4 * H) * 2 - 1) * s, (torch.rand(4 * H) * 2 - 1) * s]
        return p

    z = lambda: torch.zeros(1, B, H)  # noqa: E731
    K(op, "batch_first_zero_state")(rn(B, T, I), [z(), z()], params(), True, 1, 0.0, False, False, True)
    K(op, "seq_first_zero_state")(rn(T, B, I), [z(), z()], params(), True, 1, 0.0, False, False, False)
    K(op, "batch_first_random_state")(rn(B, T, I), [rn(1, B, H), rn(1, B, H)], params(), True, 1, 0.0, False, False, True)
    K(op, "no_bias")(rn(B, T, I), [z(), z()], params(False), False, 1, 0.0, False, False, True)
    K(op, "two_layers_bidirectional")(rn(T, B, I), [rn(4, B, H), rn(4, B, H)], params(True, 2, 2), True, 2, 0.0, False, True, False)
    K(op, "two_layers_batch_first_no_bias")(rn(B, T, I), [rn(2, B, H), rn(2, B, H)], params(False, 2, 1), False, 2, 0.0, False, False, True)
    K(op, "unbatched_is_an_error", err=True)(rn(T, I), [rn(2, H), rn(2, H)], params(True, 1, 2), True, 1, 0.0, False, True, False)
    K(op, "single_step_batch1")(rn(1, 1, I), [torch.zeros(1, 1, H), torch.zeros(1, 1, H)], params(), True, 1, 0.0, False, False, True)


def indexing_cases():
    op = A.gather.default
    K(op, "dim0_f32")(rn(3, 4), 0, ri(0, 3, 2, 4))
    K(op, "neg_dim_i64")(ri(-9, 9, 3, 5), -1, ri(0, 5, 3, 2))
    K(op, "smaller_index_bf16")(rn(4, 3, dtype=bf16), 1, ri(0, 3, 2, 2))
    K(op, "noncontig_self_and_index")(rn(4, 3).t(), 0, ri(0, 3, 2, 3).t())
    K(op, "int32_index_bool")(rb(3, 3), 1, ri(0, 3, 3, 4, dtype=i32))
    K(op, "0d")(tt(2.5), 0, tt(0, i64))
    K(op, "empty_index")(rn(3, 4), 1, torch.zeros(0, 9, dtype=i64))
    K(op, "3d_f16")(rn(2, 3, 4, dtype=f16), 1, ri(0, 3, 2, 5, 4))
    K(op, "out_of_range", err=True)(rn(3, 4), 0, tt([[5]], i64))
    K(op, "rank_mismatch", err=True)(rn(3, 4), 0, tt([0, 1], i64))
    K(op, "index_too_large", err=True)(rn(3, 4), 0, torch.zeros(2, 5, dtype=i64))
    K(op, "float_index", err=True)(rn(3, 4), 0, tt([[0.0]]))

    op = A.index_select.default
    K(op, "dim0_f32")(rn(4, 3), 0, tt([3, 0, 0, 2], i64))
    K(op, "neg_dim_int32_index")(ri(0, 99, 3, 4, dtype=i32), -1, tt([3, 1], i32))
    K(op, "noncontig_f64")(rn(3, 5, dtype=f64).t(), 1, tt([2, 2], i64))
    K(op, "0d_index_u8")(ri(0, 255, 2, 3, 2, dtype=u8), 1, tt(1, i64))
    K(op, "empty_index_bool")(rb(3, 2), 0, torch.zeros(0, dtype=i64))
    K(op, "0d_self")(tt(7.0), 0, tt([0], i64))
    K(op, "zero_size_inner_dim")(torch.zeros(3, 2, 0), 0, tt([2, 0], i32))
    K(op, "out_of_range", err=True)(rn(3, 4), 0, tt([3], i64))
    K(op, "negative_index", err=True)(rn(3, 4), 0, tt([-1], i64))
    K(op, "2d_index", err=True)(rn(3, 4), 0, tt([[0]], i64))
    K(op, "out_of_range_dim1_path", err=True)(rn(3, 4), -1, tt([4], i64))
    K(op, "empty_self_zero_dim", err=True)(torch.zeros(2, 0), 1, tt([0], i64))

    op = A.index.Tensor
    x = torch.arange(24.0).view(2, 3, 4)
    K(op, "single_dim0")(rn(4, 3), [tt([3, 0, -1], i64)])
    K(op, "none_then_index")(ri(0, 9, 2, 3, 4), [None, tt([[2, 0], [1, 1]], i64)])
    K(op, "adjacent_broadcast")(x, [None, tt([[0], [2]], i64), tt([1, 3, -4], i64)])
    K(op, "non_adjacent")(x, [tt([1, 0], i64), None, tt([3, 2], i64)])
    K(op, "non_adjacent_broadcast_bf16")(rn(2, 3, 4, dtype=bf16), [tt([[1], [0]], i64), None, tt([3, 2, 0], i64)])
    K(op, "bool_mask_2d")(rn(3, 4), [rb(3, 4)])
    K(op, "bool_mask_after_none")(x, [None, tt([True, False, True], b8), tt([0, 3], i64)])
    K(op, "uint8_mask")(rn(3, 2, dtype=f64), [tt([1, 0, 1], u8)])
    K(op, "int32_0d_index_noncontig")(rn(4, 3).t(), [tt(1, i32)])
    K(op, "empty_index_int16")(ri(0, 9, 3, 2, dtype=i16), [torch.zeros(0, dtype=i64)])
    K(op, "out_of_range", err=True)(rn(3, 4), [tt([3], i64)])
    K(op, "neg_out_of_range", err=True)(rn(3, 4), [None, tt([-5], i64)])
    K(op, "too_many", err=True)(rn(3, 4), [None, None, tt([0], i64)])
    K(op, "mask_shape", err=True)(rn(3, 4), [None, tt([True, False], b8)])
    K(op, "float_index", err=True)(rn(3, 4), [tt([0.0])])
    K(op, "no_broadcast", err=True)(rn(3, 4), [tt([0, 1], i64), tt([0, 1, 2], i64)])
    K(op, "size0_dim", err=True)(torch.zeros(0, 3), [tt([0], i64)])
    K(op, "mask_past_last_dim", err=True)(rn(3, 4), [torch.ones(3, 4, dtype=b8), tt([0], i64)])

    perm = lambda n, k: torch.randperm(n)[:k]  # noqa: E731
    op = A.scatter.src
    K(op, "dim0_f32")(rn(3, 4), 0, torch.stack([perm(3, 2) for _ in range(4)], 1), rn(2, 4))
    K(op, "neg_dim_src_larger_i32")(ri(0, 9, 2, 5, dtype=i32), -1, torch.stack([perm(5, 3) for _ in range(2)]), ri(0, 9, 3, 4, dtype=i32))
    K(op, "noncontig_f16")(rn(4, 3, dtype=f16).t(), 1, torch.stack([perm(4, 2) for _ in range(3)]).t().contiguous().t(), rn(3, 2, dtype=f16))
    K(op, "int32_index_bool")(rb(2, 3), 1, tt([[2, 0], [1, 2]], i32), rb(2, 2))
    K(op, "0d")(tt(1.0), 0, tt(0, i64), tt(5.0))
    K(op, "empty_index")(rn(3, 4), 0, torch.zeros(0, 9, dtype=i64), rn(3, 4))
    K(op, "out_of_range", err=True)(rn(3, 4), 0, tt([[7]], i64), rn(3, 4))
    K(op, "src_dtype", err=True)(rn(3, 4), 0, tt([[0]], i64), rn(3, 4, dtype=f64))
    K(op, "index_too_large", err=True)(rn(3, 4), 0, torch.zeros(4, 2, dtype=i64), rn(3, 4))
    K(op, "empty_index_skips_checks")(rn(3, 4), 0, torch.zeros(0, dtype=i64), rn(3))
    K(op, "src_fewer_dims", err=True)(rn(3, 4), 0, torch.zeros(1, 1, dtype=i64), rn(3))
    op = A.scatter.value
    K(op, "float_value")(rn(3, 4), 1, tt([[0, 3], [1, 2], [3, 3]], i64), -2.5)
    K(op, "int_value_i64")(ri(0, 9, 3, 4), 0, tt([[2, 0, 1, 1]], i64), 7)
    K(op, "value_to_u8_noncontig")(ri(0, 9, 4, 3, dtype=u8).t(), -1, tt([[0], [3], [1]], i64), 200)
    K(op, "rank_mismatch", err=True)(rn(3, 4), 0, tt([0], i64), 1.0)
    K(op, "index_too_large", err=True)(rn(3, 4), 0, torch.zeros(2, 5, dtype=i64), 1.0)
    op = A.scatter_add.default
    K(op, "dup_indices_f32")(rn(3, 4), 0, ri(0, 3, 5, 4), rn(5, 4))
    K(op, "neg_dim_i64")(ri(-9, 9, 2, 3), -1, ri(0, 3, 2, 6), ri(-9, 9, 2, 7))
    K(op, "f64_noncontig")(rn(4, 3, dtype=f64).t(), 1, ri(0, 4, 3, 5), rn(3, 5, dtype=f64))
    K(op, "bool_or")(torch.zeros(3, dtype=b8), 0, tt([0, 0, 2], i64), tt([True, False, True], b8))
    K(op, "int8_wraps")(tt([120, 0], i8), 0, tt([0, 0], i64), tt([5, 10], i8))
    K(op, "src_dtype", err=True)(rn(3, 4), 0, tt([[0]], i64), rn(3, 4, dtype=f64))
    op = A.scatter_reduce.two
    for red in ("sum", "prod", "mean", "amax", "amin"):
        K(op, f"{red}_include_self_f32")(rn(3, 4), 0, ri(0, 3, 5, 4), rn(5, 4), red)
        K(op, f"{red}_exclude_self_i64")(ri(-20, 20, 6), 0, tt([0, 0, 2, 5, 2, 0, 5], i64), ri(-20, 20, 7), red, include_self=False)
    K(op, "mean_int_floor")(tt([10, 7, 0], i64), 0, tt([0, 0, 1], i64), tt([1, 2, -2], i64), "mean")
    K(op, "amax_nan_bf16")(tt([1.0, nan, 0.0], bf16), 0, tt([0, 1, 0], i64), tt([nan, 2.0, 3.0], bf16), "amax")
    K(op, "bad_reduce", err=True)(rn(3), 0, tt([0], i64), rn(1), "foo")
    K(op, "max_alias")(rn(3, 2), 0, ri(0, 3, 4, 2), rn(4, 2), "max")
    K(op, "bool_mean", err=True)(torch.zeros(3, dtype=b8), 0, tt([0, 0], i64), tt([True, True], b8), "mean")

    op = A.index_put.default
    K(op, "rows_f32")(rn(4, 3), [tt([3, 0], i64)], rn(2, 3))
    K(op, "broadcast_value_i32")(ri(0, 9, 3, 4, dtype=i32), [None, tt([1, -1], i64)], tt(5, i32))
    K(op, "accumulate_dups")(rn(3, 4), [tt([0, 2, 0], i64), tt([1, 1, 1], i64)], rn(3), True)
    K(op, "accumulate_i64_mask")(ri(0, 9, 3, 4), [rb(3, 4)], tt(100, i64), True)
    K(op, "non_adjacent_f16")(rn(2, 3, 4, dtype=f16), [tt([1, 0], i64), None, tt([3, 2], i64)], rn(2, 3, dtype=f16))
    K(op, "noncontig_self_bool")(rb(4, 3).t(), [tt([2, 0], i64)], tt([True, False, True, False], b8))
    # one mask and a one-element value: PyTorch runs masked_fill (casts the value, ignores its shape)
    K(op, "mask_one_element_value_casts")(rn(3, 2), [tt([True, False, True], b8)], tt([[2.5]], f64))
    K(op, "mask_after_none_one_element_value")(ri(0, 9, 2, 3), [None, tt([False, True, True], b8)], tt(7, i64))
    K(op, "mask_shape_one_element_value", err=True)(rn(3, 4), [tt([True, False], b8), rn(1)], tt(1.0))
    K(op, "dtype_mismatch", err=True)(rn(3, 4), [tt([0], i64)], tt(1.0, f64))
    K(op, "value_shape", err=True)(rn(3, 4), [tt([0, 1], i64)], rn(3))
    K(op, "out_of_range", err=True)(rn(3, 4), [tt([0, 5], i64)], rn(4))
    K(op, "out_of_range_second_index", err=True)(rn(2, 3, 4), [None, tt([0], i64), tt([9], i64)], tt(1.0))

    for op in (A.index_copy.default, A.index_copy_.default):
        K(op, "rows_f32")(rn(4, 3), 0, tt([3, 0], i64), rn(2, 3))
        K(op, "neg_dim_i32")(ri(0, 9, 3, 4, dtype=i32), -1, tt([1, 3], i64), ri(-9, 0, 3, 2, dtype=i32))
        # the static KV cache update: [batch, heads, max_len, head_dim] at one position of dim 2
        K(op, "kv_cache_step")(torch.zeros(1, 2, 6, 4), 2, tt([4], i64), rn(1, 2, 1, 4))
        K(op, "dup_index_last_wins_f64")(rn(3, dtype=f64), 0, tt([1, 1], i64), tt([1.0, 2.0], f64))
        K(op, "noncontig_self_src_index_f16")(rn(4, 3, dtype=f16).t(), 1, tt([2, 9, 0, 9], i64)[::2], rn(2, 3, dtype=f16).t())
        K(op, "bool")(rb(2, 3), 1, tt([2], i64), rb(2, 1))
        K(op, "0d_index")(rn(3, 2), 0, tt(1, i64), rn(1, 2))
        K(op, "0d_source_1d_self")(rn(3), 0, tt(2, i64), tt(5.0))
        K(op, "0d_self")(tt(1.0), 0, tt([0, 0], i64), tt([5.0, 6.0]))
        K(op, "0d_self_0d_source")(tt(1.0), -1, tt(0, i64), tt(5.0))
        K(op, "empty_index")(rn(3, 4), 0, torch.zeros(0, dtype=i64), rn(0, 4))
        K(op, "zero_size_self")(torch.zeros(2, 0), 1, torch.zeros(0, dtype=i64), torch.zeros(2, 0))
        K(op, "int32_index", err=True)(rn(3, 4), 0, tt([2], i32), rn(1, 4))
        K(op, "float_index_before_dtype", err=True)(rn(2, 2), 0, tt([1.0]), rn(1, 2, dtype=f64))
        K(op, "dtype", err=True)(rn(3, 4), 0, tt([2], i64), rn(1, 4, dtype=f64))
        K(op, "2d_index", err=True)(rn(3, 4), 0, tt([[2]], i64), rn(1, 4))
        K(op, "out_of_range", err=True)(rn(3, 4), 0, tt([0, 3], i64), rn(2, 4))
        K(op, "negative_index", err=True)(rn(3, 4), 0, tt([-1], i64), rn(1, 4))
        K(op, "0d_self_out_of_range", err=True)(tt(1.0), 0, tt([1], i64), tt([5.0]))
        K(op, "num_indices", err=True)(rn(3, 4), 0, tt([5, 6], i64), rn(1, 4))
        K(op, "slice_shape_3d", err=True)(rn(2, 3, 4), 1, tt([0], i64), rn(2, 1, 5))
        K(op, "0d_source_slice_shape", err=True)(rn(2, 2), 0, tt([1], i64), tt(5.0))
        K(op, "0d_source_two_indices", err=True)(rn(3), 0, tt([0, 1], i64), tt(5.0))
        K(op, "rank_before_num_indices", err=True)(rn(2, 2), 0, tt([0, 1], i64), rn(2))
        K(op, "dim_out_of_range", err=True)(rn(3, 4), 2, tt([0], i64), rn(1, 4))

    op = A.select_scatter.default
    K(op, "dim0_f32")(rn(3, 4), rn(4), 0, 1)
    K(op, "neg_dim_neg_index_i64")(ri(0, 9, 2, 3, 4), ri(0, 9, 2, 3), -1, -1)
    K(op, "src_cast_noncontig")(rn(4, 3).t(), rn(4, dtype=f64), 0, 2)
    K(op, "1d_to_0d_bool")(rb(5), tt(True, b8), 0, 3)
    K(op, "src_shape", err=True)(rn(3, 4), rn(3), 0, 0)
    K(op, "index_out_of_range", err=True)(rn(3, 4), rn(4), 0, 3)
    K(op, "index_out_of_range_neg_dim", err=True)(rn(3, 4), rn(3), -1, -5)
    op = A.slice_scatter.default
    K(op, "dim0_f32")(rn(4, 3), rn(2, 3), 0, 1, 3)
    K(op, "step2_neg_dim_i32")(ri(0, 9, 3, 5, dtype=i32), ri(0, 9, 3, 3, dtype=i32), -1, None, None, 2)
    K(op, "clamped_end_noncontig_bf16")(rn(5, 3, dtype=bf16).t(), rn(3, 2, dtype=bf16), 1, -2, 100)
    K(op, "empty_slice")(rn(3, 2), torch.zeros(0, 2), 0, 2, 1)
    K(op, "src_shape", err=True)(rn(3, 4), rn(3, 4), 0, 0, 2)

    op = A.masked_scatter.default
    K(op, "same_shape_f32")(rn(3, 4), rb(3, 4), rn(12))
    K(op, "broadcast_mask_i64")(ri(0, 9, 3, 4), tt([True, False, True, False], b8), torch.arange(20))
    K(op, "broadcast_self_f16")(rn(4, dtype=f16), rb(3, 4), rn(3, 4, dtype=f16))
    K(op, "noncontig_bool")(rb(4, 3).t(), rb(3, 4), rb(2, 6))
    K(op, "0d")(tt(1.0), tt(True, b8), tt([5.0, 6.0]))
    K(op, "source_too_small", err=True)(rn(3, 4), torch.ones(3, 4, dtype=b8), rn(2))
    K(op, "dtype_mismatch", err=True)(rn(3, 4), rb(3, 4), rn(12, dtype=f64))
    K(op, "uint8_mask", err=True)(rn(3, 4), torch.ones(3, 4, dtype=u8), rn(12))
    K(op, "no_broadcast", err=True)(rn(2, 3), torch.ones(2, 2, dtype=b8), rn(6))

    op = A.diagonal.default
    K(op, "main_f32")(rn(3, 4))
    K(op, "offset_pos_i64")(ri(0, 9, 3, 4), 2)
    K(op, "offset_neg_3d")(rn(2, 4, 3), -1, 1, 2)
    K(op, "neg_dims_swapped_f16")(rn(3, 2, 4, dtype=f16), 0, -1, 0)
    K(op, "noncontig_bool")(rb(4, 5).t(), 1)
    K(op, "offset_past_end")(rn(3, 3), 5)
    K(op, "same_dims", err=True)(rn(3, 4), 0, -2, 0)
    K(op, "1d", err=True)(rn(3), 0, 0, 1)


# ---------------------------------------------------------------- main
def nn_extra_cases():
    """3-d pooling (avg, max with indices, adaptive avg)."""
    op = A.avg_pool3d.default
    K(op, "basic")(rn(1, 2, 4, 5, 6), [2, 2, 2])
    K(op, "stride_pad_ceil", tol=(1e-5, 1e-6))(rn(2, 1, 5, 4, 5), [3, 2, 3], [2, 1, 2], [1, 1, 1], True)
    K(op, "no_count_pad")(rn(1, 2, 3, 4, 4), [3], [2], [1], True, False)
    K(op, "divisor_override_4d")(rn(2, 3, 4, 4), [2, 3, 2], [1], [0, 1, 1], False, True, 5)
    K(op, "f64_noncontig")(rn(1, 4, 5, 3, 2, dtype=f64).transpose(1, 4), [2], [1])
    K(op, "int64")(ri(-50, 50, 1, 2, 3, 4, 4), [2], [1], [1], False, True)
    K(op, "int64_neg_divisor")(ri(-50, 50, 1, 1, 3, 3, 3), [2], [1], [0], False, True, -3)
    K(op, "f16", err=True)(rn(1, 1, 2, 2, 2).half(), [2])
    K(op, "kernel_larger", err=True)(rn(1, 2, 4, 5, 6), [5, 2, 2])
    K(op, "bad_stride_len", err=True)(rn(1, 2, 4, 5, 6), [2], [2, 1])
    K(op, "negative_kernel", err=True)(rn(1, 2, 4, 5, 6), [-1, 2, 2], [1])
    op = A.max_pool3d_with_indices.default
    K(op, "basic")(rn(1, 2, 4, 5, 6), [2, 2, 2])
    K(op, "dilation_pad_ceil")(rn(2, 1, 6, 5, 7), [2, 3, 2], [2, 1, 2], [1, 1, 1], [2, 1, 2], True)
    K(op, "unbatched")(rn(3, 4, 4, 5), [3], [2], [1])
    K(op, "nan_neginf")(tt([[[[[1.0, nan, 3.0, nan], [-inf, -inf, -inf, -inf]]]]]), [1, 1, 2], [1], [0, 0, 1])
    K(op, "bf16_noncontig")(rn(1, 5, 4, 3, 2).to(bf16).transpose(1, 4), [2], [1])
    K(op, "int32")(ri(-9, 9, 1, 2, 3, 4, 4, dtype=i32), [2, 2, 3], [1, 2, 1])
    K(op, "int64")(ri(-9, 9, 2, 3, 3, 3), [2])
    K(op, "bool", err=True)(rb(1, 1, 2, 2, 2), [2])
    K(op, "pad_vs_dilation", err=True)(rn(1, 2, 6, 6, 6), [2], [1], [2], [3])
    K(op, "too_small", err=True)(rn(1, 2, 4, 5, 6), [5, 2, 2])
    op = A._adaptive_avg_pool3d.default
    K(op, "basic", tol=(1e-5, 1e-6))(rn(1, 2, 5, 6, 7), [2, 3, 4])
    K(op, "unbatched_upsample")(rn(2, 3, 2, 3), [4, 3, 5])
    K(op, "f64_noncontig")(rn(1, 4, 5, 3, 2, dtype=f64).transpose(1, 4), [1, 2, 3])
    K(op, "f16")(rn(1, 2, 4, 4, 4).half(), [3, 2, 1])
    K(op, "bf16")(rn(1, 2, 3, 4, 5).to(bf16), [2, 2, 2])
    K(op, "zero_out")(rn(1, 2, 3, 4, 5), [0, 2, 2])
    K(op, "int", err=True)(ri(0, 5, 1, 2, 2, 2, 2), [1, 1, 1])
    K(op, "3d", err=True)(rn(2, 3, 4), [1, 1, 1])
    K(op, "two_sizes", err=True)(rn(1, 2, 3, 4, 5), [1, 1])

    op = A.grid_sampler_2d.default
    def grid(n, h, w, scale=1.2, dtype=f32):
        return ((torch.rand(n, h, w, 2, dtype=f64) * 2 - 1) * scale).to(dtype)
    for m, mname in enumerate(("bilinear", "nearest", "bicubic")):
        for p, pname in enumerate(("zeros", "border", "reflection")):
            for ac in (False, True):
                K(op, f"{mname}_{pname}_{'align' if ac else 'noalign'}", tol=(1e-5, 1e-5))(
                    rn(2, 2, 4, 5), grid(2, 3, 2, 1.6 if p == 2 else 1.2), m, p, ac)
    K(op, "f64_noncontig")(rn(1, 5, 4, 2, dtype=f64).transpose(1, 3), grid(1, 2, 3, dtype=f64).transpose(1, 2), 0, 0, False)
    K(op, "f16_bilinear")(rn(1, 2, 3, 3).half(), grid(1, 2, 2, 0.9, f16), 0, 1, True)
    K(op, "bf16_bicubic", tol=(3e-2, 3e-2))(rn(1, 1, 4, 4).to(bf16), grid(1, 2, 2, 0.9, bf16), 2, 0, False)
    K(op, "size1_reflection")(rn(1, 1, 1, 3), grid(1, 2, 2, 3.0), 0, 2, True)
    K(op, "empty_grid")(rn(2, 3, 4, 5), grid(2, 0, 2), 0, 0, False)
    K(op, "batch_mismatch", err=True)(rn(2, 3, 4, 5), grid(1, 3, 2), 0, 0, False)
    K(op, "grid_last_dim", err=True)(rn(2, 3, 4, 5), rn(2, 3, 2, 3), 0, 0, False)
    K(op, "dtype_mismatch", err=True)(rn(2, 3, 4, 5), grid(2, 3, 2, dtype=f64), 0, 0, False)
    K(op, "int", err=True)(ri(0, 5, 1, 1, 2, 2), grid(1, 2, 2), 0, 0, False)

    op = A._embedding_bag.default
    idx, off = tt([0, 2, 5, 2, 1, 4, 3], i64), tt([0, 3, 3, 5], i64)
    for m, mname in enumerate(("sum", "mean", "max")):
        K(op, f"{mname}")(rn(6, 3), idx, off, False, m)
        K(op, f"{mname}_last_offset")(rn(6, 3), idx, tt([0, 2, 4], i64), False, m, False, None, True)
        K(op, f"{mname}_padding_idx")(rn(6, 3), idx, off, False, m, False, None, False, 2)
        K(op, f"{mname}_f64_decreasing")(rn(6, 2, dtype=f64), idx, tt([0, 4, 2], i64), False, m)
        K(op, f"{mname}_noncontig_int32")(rn(3, 6).t(), idx.int(), off.int(), False, m)
    K(op, "sum_bf16")(rn(6, 3).to(bf16), idx, off, False, 0)
    K(op, "mean_f16_padding")(rn(6, 3).half(), idx, off, False, 1, False, None, False, 5)
    K(op, "max_nan_ties")(tt([[nan, 1.0], [2.0, nan], [0.0, 1.0]]), tt([0, 1, 2, 2, 1], i64), tt([0, 3], i64), False, 2)
    K(op, "per_sample_weights")(rn(6, 3), idx, off, False, 0, False, rn(7))
    K(op, "per_sample_weights_padding")(rn(6, 3), idx, off, False, 0, False, rn(7), False, 4)
    K(op, "mixed_index_dtypes")(rn(6, 3), idx.int(), off, False, 1)
    K(op, "out_of_range", err=True)(rn(6, 3), tt([0, 6], i64), tt([0, 1], i64), False, 0)
    K(op, "out_of_range_max", err=True)(rn(6, 3), tt([0, -1], i64), tt([0, 1], i64), False, 2)
    K(op, "offsets0", err=True)(rn(6, 3), idx, tt([1, 3], i64), False, 0)
    K(op, "offsets_past_end", err=True)(rn(6, 3), idx, tt([0, 9], i64), False, 1)
    K(op, "per_sample_weights_mean", err=True)(rn(6, 3), idx, off, False, 1, False, rn(7))
    K(op, "offset_past_end_slow", err=True)(rn(6, 3, dtype=f64), idx, tt([0, 9, 2], i64), False, 0)
    K(op, "float_indices", err=True)(rn(6, 3), idx.float(), off, False, 0)

    op = A.col2im.default
    K(op, "basic")(rn(2, 12, 12), [4, 5], [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "stride_pad_dilation")(rn(1, 8, 6), [5, 4], [2, 2], [2, 1], [1, 0], [2, 2])
    K(op, "unbatched")(rn(6, 6), [3, 5], [1, 3], [1, 1], [0, 1], [2, 2])
    K(op, "f64_noncontig")(rn(2, 9, 4, dtype=f64).transpose(1, 2).contiguous().transpose(1, 2), [4, 4], [3, 3], [1, 1], [1, 1], [2, 2])
    K(op, "f16")(rn(1, 4, 9).half(), [4, 4], [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "bool")(rb(1, 4, 9), [4, 4], [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "int", err=True)(ri(0, 5, 1, 4, 9), [4, 4], [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "blocks_mismatch", err=True)(rn(2, 12, 11), [4, 5], [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "unbatched_not_divisible", err=True)(rn(5, 8), [3, 5], [1, 3], [1, 1], [0, 1], [2, 2])
    K(op, "not_divisible", err=True)(rn(2, 10, 12), [4, 5], [2, 2], [1, 1], [0, 0], [1, 1])
    op = A.im2col.default
    K(op, "basic")(rn(2, 3, 5, 6), [2, 3], [1, 1], [0, 0], [1, 1])
    K(op, "volo")(rn(1, 4, 7, 7), [3, 3], [1, 1], [1, 1], [2, 2])
    K(op, "dilation_padding")(rn(1, 2, 6, 5), [2, 2], [2, 1], [1, 2], [1, 2])
    K(op, "unbatched_f64")(rn(3, 4, 4, dtype=f64), [2, 2], [1, 1], [0, 0], [2, 2])
    K(op, "noncontig_f16")(rn(1, 2, 5, 4).half().transpose(2, 3), [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "int", err=True)(ri(0, 9, 1, 2, 5, 4), [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "empty_batch")(rn(0, 2, 4, 4), [2, 2], [1, 1], [0, 0], [1, 1])
    K(op, "too_small", err=True)(rn(1, 2, 2, 2), [3, 3], [1, 1], [0, 0], [1, 1])
    K(op, "bad_kernel", err=True)(rn(1, 2, 4, 4), [0, 2], [1, 1], [0, 0], [1, 1])
    K(op, "bad_rank", err=True)(rn(2, 4), [2, 2], [1, 1], [0, 0], [1, 1])
    op = A._cdist_forward.default
    for pv in (0.0, 1.0, 2.0, 3.5, inf, 0.5):
        K(op, f"p{pv}")(rn(3, 4), rn(5, 4), pv, None)
    K(op, "mm_mode1", tol=(1e-4, 1e-4))(rn(3, 4), rn(5, 4), 2.0, 1)
    K(op, "mm_large_rows", tol=(1e-4, 1e-4))(rn(26, 3), rn(4, 3), 2.0, None)
    K(op, "no_mm_mode2")(rn(26, 3), rn(4, 3), 2.0, 2)
    K(op, "batch_broadcast_f64")(rn(2, 1, 3, 4, dtype=f64), rn(3, 5, 4, dtype=f64).transpose(1, 2).contiguous().transpose(1, 2), 1.0, None)
    K(op, "f16_mm")(rn(3, 4).half(), rn(2, 4).half(), 2.0, 1)
    K(op, "empty_cols")(rn(3, 0), rn(5, 0), 2.0, None)
    K(op, "f16_p1", err=True)(rn(3, 4).half(), rn(2, 4).half(), 1.0, None)
    K(op, "negative_p", err=True)(rn(3, 4), rn(5, 4), -1.0, None)
    K(op, "columns", err=True)(rn(3, 4), rn(5, 3), 2.0, None)
    op = A._pdist_forward.default
    for pv in (0.0, 1.0, 2.0, 3.0, inf):
        K(op, f"p{pv}")(rn(5, 3), pv)
    K(op, "f64_p0.7")(rn(4, 6, dtype=f64), 0.7)
    K(op, "one_row")(rn(1, 3), 2.0)
    K(op, "no_cols")(rn(4, 0), 2.0)
    K(op, "noncontig", err=True)(rn(3, 4).t(), 2.0)
    K(op, "f16", err=True)(rn(3, 4).half(), 2.0)
    K(op, "1d", err=True)(rn(4), 2.0)


def rc(*shape, dtype=c64):
    return torch.randn(*shape, dtype=dtype)


def complex_cases():
    # FFTs: f32 results carry the round-off of O(log n) butterfly stages over unit-scale sums, and
    # MKL's and rustfft's algorithms differ, so f32 compares at rtol 1e-4 / atol 1e-5 (f64 1e-9 / 1e-11).
    FT, FT64 = (1e-4, 1e-5), (1e-9, 1e-11)
    op = A._fft_r2c.default
    K(op, "last_dim_onesided", tol=FT)(rn(3, 8), [1], 0, True)
    K(op, "odd_len_full", tol=FT)(rn(2, 7), [1], 0, False)
    K(op, "by_root_n", tol=FT)(rn(4, 6), [1], 1, True)
    K(op, "by_n_dim0", tol=FT)(rn(5, 3), [0], 2, True)
    K(op, "two_dims", tol=FT)(rn(2, 4, 6), [1, 2], 0, True)
    K(op, "two_dims_unordered_full", tol=FT)(rn(4, 5, 6), [2, 0], 1, False)
    K(op, "prime_len_17", tol=FT)(rn(17), [0], 0, True)
    K(op, "len_1", tol=FT)(rn(3, 1), [1], 0, True)
    K(op, "f64", tol=FT64)(rn(3, 10, dtype=f64), [1], 2, True)
    K(op, "noncontig", tol=FT)(rn(6, 4).t(), [1], 0, True)
    K(op, "zero_batch", tol=FT)(rn(0, 8), [1], 0, True)
    K(op, "complex_input", err=True)(rc(4), [0], 0, True)
    op = A._fft_c2r.default
    K(op, "even", tol=FT)(rc(3, 5), [1], 2, 8)
    K(op, "odd", tol=FT)(rc(3, 5), [1], 2, 9)
    K(op, "no_norm", tol=FT)(rc(2, 4), [1], 0, 6)
    K(op, "ortho_dim0", tol=FT)(rc(4, 3), [0], 1, 6)
    K(op, "two_dims", tol=FT)(rc(3, 4, 5), [1, 2], 2, 8)
    K(op, "f64", tol=FT64)(rc(2, 6, dtype=c128), [1], 2, 10)
    K(op, "noncontig", tol=FT)(rc(5, 3).t(), [1], 2, 8)
    K(op, "real_input", err=True)(rn(3, 5), [1], 2, 8)
    op = A._fft_c2c.default
    K(op, "forward", tol=FT)(rc(3, 8), [1], 0, True)
    K(op, "backward_by_n", tol=FT)(rc(3, 8), [1], 2, False)
    K(op, "two_dims_ortho", tol=FT)(rc(4, 6), [0, 1], 1, True)
    K(op, "prime_len_13", tol=FT)(rc(13), [0], 0, True)
    K(op, "f64", tol=FT64)(rc(5, 7, dtype=c128), [1], 0, False)
    K(op, "noncontig", tol=FT)(rc(6, 3).t(), [0, 1], 0, True)
    K(op, "real_input", err=True)(rn(4), [0], 0, True)
    # the torch.fft composites (fft_* decompose to the ops above)
    op = A.fft_rfft.default
    K(op, "default", tol=FT)(rn(3, 8))
    K(op, "n_pads_ortho", tol=FT)(rn(3, 6), 10, -1, "ortho")
    K(op, "n_slices_dim0_forward", tol=FT)(rn(9, 4), 5, 0, "forward")
    K(op, "int_input", tol=FT)(ri(-5, 5, 2, 6))
    K(op, "f64", tol=FT64)(rn(4, 7, dtype=f64))
    K(op, "complex_input", err=True)(rc(4))
    K(op, "bad_norm", err=True)(rn(4), None, -1, "bogus")
    K(op, "n_zero", err=True)(rn(4), 0)
    op = A.fft_irfft.default
    K(op, "default", tol=FT)(rc(3, 5))
    K(op, "n_odd_ortho", tol=FT)(rc(3, 5), 7, -1, "ortho")
    K(op, "n_pads", tol=FT)(rc(2, 3), 10)
    K(op, "dim0_forward", tol=FT)(rc(4, 3), 6, 0, "forward")
    K(op, "real_input", tol=FT)(rn(3, 5))
    op = A.fft_fft.default
    K(op, "complex", tol=FT)(rc(3, 8))
    K(op, "real_input", tol=FT)(rn(2, 7))
    K(op, "n_ortho", tol=FT)(rc(4, 5), 8, 0, "ortho")
    op = A.fft_ifft.default
    K(op, "complex", tol=FT)(rc(3, 8))
    K(op, "real_input", tol=FT)(rn(2, 6))

    # views between complex and real dtypes
    op = A.view_as_real.default
    K(op, "c64")(rc(2, 3))
    K(op, "noncontig")(rc(3, 2).t())
    K(op, "zero_d")(rc(()))
    K(op, "c128")(rc(4, dtype=c128))
    K(op, "offset_view")(rc(10)[3:7])
    K(op, "real_input", err=True)(rn(3))
    op = A.view_as_complex.default
    K(op, "f32")(rn(3, 2))
    K(op, "f64")(rn(2, 4, 2, dtype=f64))
    K(op, "strided_even")(rn(4, 3, 2)[:, 1])
    K(op, "offset_even")(rn(10)[2:6].view(2, 2))
    K(op, "last_dim_3", err=True)(rn(3, 3))
    K(op, "last_stride", err=True)(rn(2, 3).t())
    K(op, "odd_stride", err=True)(rn(3, 3)[:, :2])
    K(op, "odd_offset", err=True)(rn(10)[1:5].view(2, 2))
    K(op, "zero_d", err=True)(tt(1.0))
    K(op, "int_input", err=True)(ri(0, 3, 3, 2))
    for name, o in (("real", A.real.default), ("imag", A.imag.default)):
        K(o, "c64")(rc(2, 3))
        K(o, "noncontig")(rc(3, 4).t())
        K(o, "c128")(rc(5, dtype=c128))
    K(A.real.default, "real_input")(rn(3))
    K(A.imag.default, "real_input", err=True)(rn(3))
    op = A.complex.default
    K(op, "f32")(rn(3), rn(3))
    K(op, "broadcast")(rn(2, 1), rn(3))
    K(op, "f64_noncontig")(rn(3, 2, dtype=f64).t(), rn(2, 3, dtype=f64))
    K(op, "dtype_mismatch", err=True)(rn(3), rn(3, dtype=f64))
    K(op, "int_input", err=True)(ri(0, 3, 3), ri(0, 3, 3))
    op = A.abs.default
    K(op, "c64")(rc(4, 3))
    K(op, "c128")(rc(5, dtype=c128))
    K(op, "c64_special")(torch.complex(special(), special().flip(0)))
    op = A.angle.default
    K(op, "c64")(rc(6))
    K(op, "c128")(rc(2, 3, dtype=c128))
    K(op, "f32_special")(special())
    K(op, "int")(ri(-3, 3, 6))
    op = A._conj.default
    K(op, "c64")(rc(3, 2))
    # arithmetic with type promotion across complex and real
    op = A.mul.Tensor
    K(op, "c64")(rc(3, 4), rc(3, 4))
    K(op, "c64_f32_broadcast")(rc(3, 4), rn(4))
    K(op, "c64_f64_tensor")(rc(3), rn(3, dtype=f64))
    K(op, "f64_tensor_c64_0d")(rn(3, dtype=f64), rc(()))
    K(op, "c64_int_0d")(rc(3), tt(3, i64))
    K(op, "c128_noncontig")(rc(4, 3, dtype=c128).t(), rc(3, 4, dtype=c128))
    K(A.mul.Scalar, "c64")(rc(3), 2.5)
    op = A.add.Tensor
    K(op, "c64")(rc(3, 4), rc(3, 4))
    K(op, "c64_alpha")(rc(3), rn(3), alpha=2.5)
    K(op, "c64_f32_0d")(rc(2, 2), tt(1.5))
    op = A.sub.Tensor
    K(op, "c64")(rc(3, 4), rc(4))
    K(op, "c128_alpha")(rc(3, dtype=c128), rc(3, dtype=c128), alpha=-0.5)
    # views and copies of complex tensors
    K(A.view.default, "c64")(rc(2, 3, 4), [6, 4])
    K(A._unsafe_view.default, "c64")(rc(2, 3, 4), [4, 6])
    K(A.reshape.default, "c64_noncontig")(rc(3, 4).t(), [12])
    K(A.flatten.using_ints, "c64")(rc(2, 3, 4), 1)
    K(A.unflatten.int, "c64")(rc(6, 2), 0, [2, 3])
    K(A.permute.default, "c64")(rc(2, 3, 4), [2, 0, 1])
    K(A.transpose.int, "c64")(rc(2, 3), 0, 1)
    K(A.t.default, "c64")(rc(2, 3))
    K(A.expand.default, "c64")(rc(3, 1), [3, 4])
    K(A.select.int, "c64")(rc(3, 4), 1, 2)
    K(A.slice.Tensor, "c64")(rc(6, 4), 0, 1, 5, 2)
    K(A.narrow.default, "c64")(rc(6, 4), 1, 1, 2)
    K(A.squeeze.default, "c64")(rc(3, 1, 2))
    K(A.squeeze.dim, "c64")(rc(3, 1, 2), 1)
    K(A.squeeze.dims, "c64")(rc(1, 3, 1), [0, 2])
    K(A.unsqueeze.default, "c64")(rc(3, 2), 1)
    K(A.alias.default, "c64")(rc(3))
    K(A.clone.default, "c64_noncontig")(rc(3, 4).t())
    K(A.detach.default, "c64")(rc(3))
    K(A.contiguous.default, "c64")(rc(3, 4).t())
    K(A._to_copy.default, "c64_to_c128")(rc(3), dtype=c128)
    K(A._to_copy.default, "f32_to_c64")(rn(3), dtype=c64)
    K(A._to_copy.default, "c64_to_f32")(rc(3), dtype=f32)
    K(A._to_copy.default, "i64_to_c128")(ri(-5, 5, 4), dtype=c128)
    K(A.to.dtype, "c128_to_c64")(rc(3, dtype=c128), c64)
    K(A.copy_.default, "c64")(rc(2, 3), rc(3))
    K(A.cat.default, "c64")([rc(2, 3), rc(1, 3)])
    K(A.stack.default, "c64")([rc(2), rc(2)], 1)
    K(A.split_with_sizes.default, "c64")(rc(5, 2), [2, 3])
    K(A.split.Tensor, "c64")(rc(5, 2), 2)
    K(A.unbind.int, "c64")(rc(2, 3), 1)
    K(A.constant_pad_nd.default, "c64")(rc(2, 3), [1, 2])
    # Negative padding crops (volo pads with -1 to trim its fold output).
    K(A.constant_pad_nd.default, "negative_crop")(rn(2, 3, 5), [-1, -1, 1, -1], 0.5)
    K(A.constant_pad_nd.default, "negative_mixed")(rn(4, 5), [2, -3])
    K(A.constant_pad_nd.default, "negative_too_much", err=True)(rn(2, 3), [-2, -2])
    K(A.pad.default, "reflect_negative")(rn(2, 3), [-1, 0], "reflect")
    K(A.pad.default, "circular_negative")(rn(2, 4), [-1, -1], "circular")
    K(A.pad.default, "replicate_negative")(rn(1, 2, 3), [-1, 2], "replicate")
    K(A.pad.default, "c64")(rc(2, 3), [0, 2])


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):
        if f.endswith(".npy") or f == "cases.json":
            os.remove(os.path.join(OUT_DIR, f))

    for fn in (conv_cases, conv1d_cases, pad_cases, linalg_cases, binary_cases, inplace_cases, unary_cases,
               norm_cases, pool_cases, reduction_cases, softmax_cases, sdpa_cases, shape_cases, factory_cases,
               compare_cases, conversion_cases, math_cases, more_reduction_cases, fill_pad_cases,
               norm_resample_cases, sort_cases, indexing_cases, random_and_more_cases,
               conv_transpose_cases, rnn_cases, nn_extra_cases, decomposed_nn_cases,
               misc_cases, composite_cases, complex_cases):
        fn()

    # one case per line: compact, diff-friendly, still plain JSON (keys sorted)
    with open(os.path.join(OUT_DIR, "cases.json"), "w") as f:
        f.write('{"cases": [\n')
        for i, c in enumerate(CASES):
            f.write(json.dumps(c, sort_keys=True, allow_nan=False))
            f.write(",\n" if i + 1 < len(CASES) else "\n")
        f.write('], "torch_version": %s}\n' % json.dumps(torch.__version__.split("+")[0]))

    # coverage check against the ops the reference models use
    missing = []
    if os.path.exists(MODEL_OPS):
        with open(MODEL_OPS) as f:
            needed = [l.strip() for l in f if l.strip()]
        missing = [o for o in needed if o not in COVERED]

    per_op = {}
    for c in CASES:
        per_op.setdefault(c["op"], [0, 0])
        per_op[c["op"]][1 if "error" in c else 0] += 1
    print(f"{len(CASES)} cases, {len(per_op)} ops, {sum(v[1] for v in per_op.values())} error cases")
    for o in sorted(per_op):
        ok, er = per_op[o]
        print(f"  {o:55s} {ok + er:3d}" + (f"  ({er} error)" if er else ""))
    if missing:
        print("MISSING model ops:", missing)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

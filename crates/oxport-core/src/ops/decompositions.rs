//! PyTorch's decompositions (`torch/_decomp/decompositions.py`, `torch/_refs`, the C++ composites) of the
//! non-Core ops oxport supports, written over the op registry: each is attached to its op's declaration
//! in `defs/` (`r.op(..).decomposition(decompositions::linear)`).
//!
//! One function serves two purposes. Run eagerly, it computes the op (the runtime runs it for an op
//! without a kernel). Run under export's tracer in decomposition mode, every op it calls is recorded (and
//! non-Core ones decomposed in turn), which is `run_decompositions()`: the ops, their order and their
//! arguments are PyTorch's, so decomposed programs print as PyTorch's do.
use super::registry::{call_def, Decomposed, OpDef};
use super::value::{Args, Value};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::op_def;
use crate::sym::SymInt;
use crate::tensor::Tensor;

fn call(op: &'static OpDef, positional: Vec<Value<Tensor>>) -> Result<Vec<Value<Tensor>>> {
    call_def(op, positional, vec![])
}

fn call_kw(
    op: &'static OpDef,
    positional: Vec<Value<Tensor>>,
    kwargs: Vec<(String, Value<Tensor>)>,
) -> Result<Vec<Value<Tensor>>> {
    call_def(op, positional, kwargs)
}

fn first(outs: Vec<Value<Tensor>>) -> Result<Decomposed> {
    outs.into_iter()
        .next()
        .map(|v| Decomposed::from(vec![v]))
        .ok_or_else(|| Error::value("an op returned nothing"))
}

fn int(v: i64) -> Value<Tensor> {
    Value::Scalar(Scalar::Int(v))
}

/// The bound value of argument `name`.
fn arg(a: &Args<Tensor>, name: &str) -> Result<Value<Tensor>> {
    a.get(name).cloned()
}

/// The bound values of the arguments `names`, in that order (to pass them on to another op).
fn named<T: Clone>(a: &Args<T>, names: &[&str]) -> Result<Vec<Value<T>>> {
    names.iter().map(|n| a.get(n).cloned()).collect()
}

/// The `input` (or `self`) tensor.
fn input(a: &Args<Tensor>) -> Result<Tensor> {
    a.tensor("input").or_else(|_| a.tensor("self")).cloned()
}

/// An in-place op's decomposition: the functional result, which is also the new value of `self`.
fn in_place(out: Decomposed) -> Result<Decomposed> {
    let Some(Value::Tensor(t)) = out.outputs.first() else {
        return Err(Error::value("an in-place op returned no tensor"));
    };
    let t = t.clone();
    Ok(Decomposed {
        outputs: out.outputs,
        mutations: vec![(0, t)],
    })
}

fn convolution(a: &Args<Tensor>, nd: usize) -> Result<Decomposed> {
    call(
        op_def!("aten.convolution.default")?,
        vec![
            arg(a, "input")?,
            arg(a, "weight")?,
            arg(a, "bias")?,
            arg(a, "stride")?,
            arg(a, "padding")?,
            arg(a, "dilation")?,
            Value::Bool(false),
            Value::Ints(vec![SymInt::Int(0); nd]),
            arg(a, "groups")?,
        ],
    )
    .map(Decomposed::from)
}

/// `conv1d` -> `convolution`.
pub(crate) fn conv1d(a: &Args<Tensor>) -> Result<Decomposed> {
    convolution(a, 1)
}

/// `conv3d` -> `convolution`.
pub(crate) fn conv3d(a: &Args<Tensor>) -> Result<Decomposed> {
    convolution(a, 3)
}

/// `conv2d` -> `convolution`.
pub(crate) fn conv2d(a: &Args<Tensor>) -> Result<Decomposed> {
    convolution(a, 2)
}

/// `conv_transpose1d/2d` -> `convolution(.., transposed=True, output_padding, groups)`.
pub(crate) fn conv_transpose(a: &Args<Tensor>) -> Result<Decomposed> {
    call(
        op_def!("aten.convolution.default")?,
        vec![
            arg(a, "input")?,
            arg(a, "weight")?,
            arg(a, "bias")?,
            arg(a, "stride")?,
            arg(a, "padding")?,
            arg(a, "dilation")?,
            Value::Bool(true),
            arg(a, "output_padding")?,
            arg(a, "groups")?,
        ],
    )
    .map(Decomposed::from)
}

/// `batch_norm` -> `_native_batch_norm_legit_no_training`, or in training mode the functional form,
/// whose new running statistics are mutations of those buffers.
pub(crate) fn batch_norm(a: &Args<Tensor>) -> Result<Decomposed> {
    if !a.bool("training")? {
        return first(call(
            op_def!("aten._native_batch_norm_legit_no_training.default")?,
            named(
                a,
                &[
                    "input",
                    "weight",
                    "bias",
                    "running_mean",
                    "running_var",
                    "momentum",
                    "eps",
                ],
            )?,
        )?);
    }
    let outs = call(
        op_def!("aten._native_batch_norm_legit_functional.default")?,
        vec![
            arg(a, "input")?,
            arg(a, "weight")?,
            arg(a, "bias")?,
            arg(a, "running_mean")?,
            arg(a, "running_var")?,
            Value::Bool(true),
            arg(a, "momentum")?,
            arg(a, "eps")?,
        ],
    )?;
    let mut mutations = vec![];
    for (name, i) in [("running_mean", 3), ("running_var", 4)] {
        if let (Some(_), Some(Value::Tensor(new))) = (a.opt_tensor(name)?, outs.get(i)) {
            let index = a
                .schema
                .arg_index(name)
                .ok_or_else(|| Error::value(format!("batch_norm has no argument '{name}'")))?;
            mutations.push((index, new.clone()));
        }
    }
    let mut d = first(outs)?;
    d.mutations = mutations;
    Ok(d)
}

/// `group_norm` -> `native_group_norm(input, weight, bias, N, C, HxW, group, eps)`, first output.
pub(crate) fn group_norm(a: &Args<Tensor>) -> Result<Decomposed> {
    let x = input(a)?;
    let sizes = x.sizes_untraced();
    let n = sizes.first().copied().unwrap_or(1) as i64;
    let c = sizes.get(1).copied().unwrap_or(1) as i64;
    let hxw = sizes.iter().skip(2).product::<usize>() as i64;
    first(call(
        op_def!("aten.native_group_norm.default")?,
        vec![
            Value::Tensor(x),
            arg(a, "weight")?,
            arg(a, "bias")?,
            Value::Int(SymInt::Int(n)),
            Value::Int(SymInt::Int(c)),
            Value::Int(SymInt::Int(hxw)),
            arg(a, "num_groups")?,
            arg(a, "eps")?,
        ],
    )?)
}

/// `max_pool2d` -> `max_pool2d_with_indices`, first output.
pub(crate) fn max_pool2d(a: &Args<Tensor>) -> Result<Decomposed> {
    first(call(
        op_def!("aten.max_pool2d_with_indices.default")?,
        named(
            a,
            &[
                "self",
                "kernel_size",
                "stride",
                "padding",
                "dilation",
                "ceil_mode",
            ],
        )?,
    )?)
}

/// `adaptive_avg_pool2d` -> `mean` over the spatial dims for a 1x1 output, else `_adaptive_avg_pool2d`.
pub(crate) fn adaptive_avg_pool2d(a: &Args<Tensor>) -> Result<Decomposed> {
    let out = a.ints("output_size")?;
    if out.iter().all(|&o| o == 1) {
        let dims = Value::Ints(vec![SymInt::Int(-1), SymInt::Int(-2)]);
        call(
            op_def!("aten.mean.dim")?,
            vec![arg(a, "self")?, dims, Value::Bool(true)],
        )
        .map(Decomposed::from)
    } else {
        call(
            op_def!("aten._adaptive_avg_pool2d.default")?,
            vec![arg(a, "self")?, arg(a, "output_size")?],
        )
        .map(Decomposed::from)
    }
}

/// `adaptive_avg_pool3d` -> `mean` over the three spatial dims for a 1x1x1 output, else
/// `_adaptive_avg_pool3d`.
pub(crate) fn adaptive_avg_pool3d(a: &Args<Tensor>) -> Result<Decomposed> {
    if a.ints("output_size")?.iter().all(|&o| o == 1) {
        let dims = Value::Ints(vec![SymInt::Int(-1), SymInt::Int(-2), SymInt::Int(-3)]);
        return call(
            op_def!("aten.mean.dim")?,
            vec![arg(a, "self")?, dims, Value::Bool(true)],
        )
        .map(Decomposed::from);
    }
    call(
        op_def!("aten._adaptive_avg_pool3d.default")?,
        vec![arg(a, "self")?, arg(a, "output_size")?],
    )
    .map(Decomposed::from)
}

/// `flatten` -> `view` (the input itself when nothing is flattened).
pub(crate) fn flatten(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    let sizes = t.sizes_untraced().to_vec();
    let nd = sizes.len().max(1) as i64;
    let wrap = |d: i64| if d < 0 { d + nd } else { d };
    let (s, e) = (
        wrap(a.int("start_dim")?) as usize,
        wrap(a.int("end_dim")?) as usize,
    );
    // PyTorch's composite: a 0-d tensor reshapes to [1].
    if sizes.is_empty() {
        return first(view(&t, &[1])?);
    }
    if s >= e {
        return Ok(Decomposed::from(t));
    }
    let mut shape: Vec<SymInt> = sizes[..s].iter().map(|&d| SymInt::from(d)).collect();
    shape.push(SymInt::from(sizes[s..=e].iter().product::<usize>()));
    shape.extend(sizes[e + 1..].iter().map(|&d| SymInt::from(d)));
    call(
        op_def!("aten.view.default")?,
        vec![Value::Tensor(t), Value::Ints(shape)],
    )
    .map(Decomposed::from)
}

/// `linear` -> `addmm` / flattened `addmm` / `matmul` (+ `add`).
pub(crate) fn linear(a: &Args<Tensor>) -> Result<Decomposed> {
    linear_of(
        a.tensor("input")?,
        a.tensor("weight")?,
        a.opt_tensor("bias")?,
    )
    .map(Decomposed::from)
}

/// `matmul` -> `mm`, folded `mm`, or batched `bmm`.
pub(crate) fn matmul(a: &Args<Tensor>) -> Result<Decomposed> {
    matmul_of(a.tensor("self")?, a.tensor("other")?).map(Decomposed::from)
}

/// `layer_norm` -> `native_layer_norm`, first output.
pub(crate) fn layer_norm(a: &Args<Tensor>) -> Result<Decomposed> {
    first(call(
        op_def!("aten.native_layer_norm.default")?,
        named(a, &["input", "normalized_shape", "weight", "bias", "eps"])?,
    )?)
}

/// `transpose` -> `permute` (`alias` for 0-d and 1-d tensors and equal dims, as `_refs.transpose`).
pub(crate) fn transpose(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    let (dim0, dim1) = (a.int("dim0")?, a.int("dim1")?);
    let (d0, d1) = (
        crate::tensor::wrap_dim(dim0, t.dim())?,
        crate::tensor::wrap_dim(dim1, t.dim())?,
    );
    if t.dim() <= 1 || dim0 == dim1 {
        return first(call(
            op_def!("aten.alias.default")?,
            vec![Value::Tensor(t)],
        )?);
    }
    let mut perm: Vec<i64> = (0..t.dim() as i64).collect();
    perm.swap(d0, d1);
    permute(&t, &perm).map(Decomposed::from)
}

/// `unflatten` -> `view`.
pub(crate) fn unflatten(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    let nd = t.dim() as i64;
    let d = a.int("dim")?;
    let d = if d < 0 { d + nd } else { d } as usize;
    let sizes: Vec<i64> = t.sizes_untraced().iter().map(|&s| s as i64).collect();
    let mut shape = sizes[..d].to_vec();
    shape.extend(a.ints("sizes")?);
    shape.extend(&sizes[d + 1..]);
    view(&t, &shape).map(Decomposed::from)
}

/// `squeeze.dim` -> `squeeze.dims`.
pub(crate) fn squeeze_dim(a: &Args<Tensor>) -> Result<Decomposed> {
    call(
        op_def!("aten.squeeze.dims")?,
        vec![
            arg(a, "self")?,
            Value::Ints(vec![SymInt::Int(a.int("dim")?)]),
        ],
    )
    .map(Decomposed::from)
}

/// `narrow(self, dim, start, length)` -> `slice(self, dim, start, start + length)`, a negative `start`
/// counted from the end (`narrow_symint` in ATen).
pub(crate) fn narrow(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    let dim = a.int("dim")?;
    let mut start = a.symint("start")?.clone();
    if start.guard_lt(&SymInt::Int(0)) {
        let d = crate::tensor::wrap_dim(dim, t.dim())?;
        start = start.add(&SymInt::from(t.sizes_untraced()[d]));
    }
    // `start + length` on symbolic ints is recorded, as PyTorch's decomposition records it.
    let end = &start + a.symint("length")?;
    call(
        op_def!("aten.slice.Tensor")?,
        vec![
            Value::Tensor(t),
            Value::Int(SymInt::Int(dim)),
            Value::Int(start),
            Value::Int(end),
        ],
    )
    .map(Decomposed::from)
}

/// `contiguous` -> the input itself, or a contiguous `clone`.
pub(crate) fn contiguous(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    if t.is_contiguous() {
        return Ok(Decomposed::from(t));
    }
    clone_contiguous(&t).map(Decomposed::from)
}

/// `reshape` -> `view` (when the input can be viewed so).
pub(crate) fn reshape(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    let shape = a.ints("shape")?;
    if !viewable(&t, &shape) {
        return Err(Error::value("reshape of a tensor that cannot be viewed so"));
    }
    view(&t, &shape).map(Decomposed::from)
}

/// `softmax.int` -> `_softmax`.
pub(crate) fn softmax(a: &Args<Tensor>) -> Result<Decomposed> {
    if !matches!(arg(a, "dtype")?, Value::None) {
        return Err(Error::value("softmax with a dtype"));
    }
    call(
        op_def!("aten._softmax.default")?,
        vec![arg(a, "self")?, arg(a, "dim")?, Value::Bool(false)],
    )
    .map(Decomposed::from)
}

/// `scaled_dot_product_attention` -> its CPU math form.
pub(crate) fn scaled_dot_product_attention(a: &Args<Tensor>) -> Result<Decomposed> {
    sdpa(a).map(Decomposed::from)
}

/// `lstm.input` -> the unrolled cells of `lstm_impl`.
pub(crate) fn lstm_input(a: &Args<Tensor>) -> Result<Decomposed> {
    lstm(a).map(Decomposed::from)
}

/// `hardswish` -> `x * clamp(x + 3, 0, 6) / 6`, as PyTorch's decomposition writes it.
pub(crate) fn hardswish(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    let m = binary(op_def!("aten.mul.Tensor")?, &t, &hard_gate(&t)?)?;
    call(op_def!("aten.div.Tensor")?, vec![Value::Tensor(m), int(6)]).map(Decomposed::from)
}

/// `hardswish_`: [`hardswish`], written back.
pub(crate) fn hardswish_(a: &Args<Tensor>) -> Result<Decomposed> {
    in_place(hardswish(a)?)
}

/// `hardsigmoid` -> `clamp(x + 3, 0, 6) / 6`.
pub(crate) fn hardsigmoid(a: &Args<Tensor>) -> Result<Decomposed> {
    let gate = hard_gate(&input(a)?)?;
    call(
        op_def!("aten.div.Tensor")?,
        vec![Value::Tensor(gate), int(6)],
    )
    .map(Decomposed::from)
}

/// `hardsigmoid_`: [`hardsigmoid`], written back.
pub(crate) fn hardsigmoid_(a: &Args<Tensor>) -> Result<Decomposed> {
    in_place(hardsigmoid(a)?)
}

/// `silu` -> `x * sigmoid(x)`.
pub(crate) fn silu(a: &Args<Tensor>) -> Result<Decomposed> {
    let t = input(a)?;
    let s = unary(op_def!("aten.sigmoid.default")?, &t)?;
    Ok(Decomposed::from(binary(
        op_def!("aten.mul.Tensor")?,
        &t,
        &s,
    )?))
}

/// `silu_`: [`silu`], written back.
pub(crate) fn silu_(a: &Args<Tensor>) -> Result<Decomposed> {
    in_place(silu(a)?)
}

/// `full(size, fill, ...)` with every keyword filled in, as PyTorch's decompositions of `zeros`, `ones`
/// and the `new_*` factories write it.
fn full_of(a: &Args<Tensor>, fill: Value<Tensor>, default_dtype: DType) -> Result<Decomposed> {
    let dtype = match arg(a, "dtype")? {
        Value::None => Value::ScalarType(default_dtype),
        d => d,
    };
    let device = match arg(a, "device")? {
        Value::None => Value::Device("cpu".into()),
        d => d,
    };
    let pin = match arg(a, "pin_memory")? {
        Value::None => Value::Bool(false),
        p => p,
    };
    call_kw(
        op_def!("aten.full.default")?,
        vec![arg(a, "size")?, fill],
        vec![
            ("dtype".into(), dtype),
            (
                "layout".into(),
                Value::Layout(super::value::Layout::Strided),
            ),
            ("device".into(), device),
            ("pin_memory".into(), pin),
        ],
    )
    .map(Decomposed::from)
}

/// `zeros` -> `full(size, 0, ...)`.
pub(crate) fn zeros(a: &Args<Tensor>) -> Result<Decomposed> {
    full_of(a, int(0), DType::F32)
}

/// `ones` -> `full(size, 1, ...)`.
pub(crate) fn ones(a: &Args<Tensor>) -> Result<Decomposed> {
    full_of(a, int(1), DType::F32)
}

/// `x.new_zeros(size)` -> `full(size, 0, dtype=x.dtype, ...)`.
pub(crate) fn new_zeros(a: &Args<Tensor>) -> Result<Decomposed> {
    full_of(a, int(0), input(a)?.dtype())
}

/// `x.new_ones(size)` -> `full(size, 1, dtype=x.dtype, ...)`.
pub(crate) fn new_ones(a: &Args<Tensor>) -> Result<Decomposed> {
    full_of(a, int(1), input(a)?.dtype())
}

/// `x.new_full(size, v)` -> `full(size, v, dtype=x.dtype, ...)`.
pub(crate) fn new_full(a: &Args<Tensor>) -> Result<Decomposed> {
    full_of(a, arg(a, "fill_value")?, input(a)?.dtype())
}

/// `Tensor.to(...)` as PyTorch's `to_impl` decomposes it: the input itself when dtype, layout and device
/// do not change and no copy is asked, else `_to_copy` with the given keywords (in schema order).
fn to_copy_of(a: &Args<Tensor>, keywords: &[&str]) -> Result<Decomposed> {
    let t = input(a)?;
    let dtype = a.opt_dtype("dtype")?;
    let same_dtype = dtype.is_none_or(|d| d == t.dtype());
    let device_is_cpu = match a.schema.arg_index("device").map(|_| arg(a, "device")) {
        Some(Ok(Value::Device(d))) => d == "cpu",
        _ => true,
    };
    if same_dtype && device_is_cpu && !a.bool("copy")? {
        return Ok(Decomposed::from(t));
    }
    let mut kwargs = vec![];
    for &k in keywords {
        match arg(a, k)? {
            Value::None => {}
            Value::Bool(false) if k == "non_blocking" => {}
            v => kwargs.push((k.to_string(), v)),
        }
    }
    call_kw(
        op_def!("aten._to_copy.default")?,
        vec![Value::Tensor(t)],
        kwargs,
    )
    .map(Decomposed::from)
}

/// `to.dtype` -> the input, or `_to_copy(dtype=...)`.
pub(crate) fn to_dtype(a: &Args<Tensor>) -> Result<Decomposed> {
    to_copy_of(a, &["dtype", "non_blocking", "memory_format"])
}

/// `to.device` -> the input, or `_to_copy(dtype=..., device=...)`.
pub(crate) fn to_device(a: &Args<Tensor>) -> Result<Decomposed> {
    to_copy_of(a, &["dtype", "device", "non_blocking", "memory_format"])
}

/// `to.dtype_layout` -> the input, or `_to_copy(dtype=..., layout=..., device=..., pin_memory=...)`.
pub(crate) fn to_dtype_layout(a: &Args<Tensor>) -> Result<Decomposed> {
    to_copy_of(
        a,
        &[
            "dtype",
            "layout",
            "device",
            "pin_memory",
            "non_blocking",
            "memory_format",
        ],
    )
}

/// `sum.default` -> `sum.dim_IntList` over no dims.
pub(crate) fn sum(a: &Args<Tensor>) -> Result<Decomposed> {
    let mut kw = vec![];
    if !matches!(arg(a, "dtype")?, Value::None) {
        kw.push(("dtype".into(), arg(a, "dtype")?));
    }
    call_kw(
        op_def!("aten.sum.dim_IntList")?,
        vec![arg(a, "self")?, Value::Ints(vec![])],
        kw,
    )
    .map(Decomposed::from)
}

/// `lift_fresh_copy` -> `clone`.
pub(crate) fn lift_fresh_copy(a: &Args<Tensor>) -> Result<Decomposed> {
    call(op_def!("aten.clone.default")?, vec![arg(a, "self")?]).map(Decomposed::from)
}

/// `detach` -> the tensor itself (autograd is not modelled).
pub(crate) fn detach(a: &Args<Tensor>) -> Result<Decomposed> {
    Ok(Decomposed::from(input(a)?))
}

/// `index_copy` as `torch/_decomp/decompositions.py`'s `_index_copy` writes it: an `index_put` with `None`
/// for the dims before `dim` (0-d tensors seen as 1-d), then made contiguous.
pub(crate) fn index_copy(a: &Args<Tensor>) -> Result<Decomposed> {
    let (x, index, src) = (input(a)?, a.tensor("index")?, a.tensor("source")?);
    let d = crate::tensor::wrap_dim(a.int("dim")?, x.dim())?;
    let unsqueeze = |t: &Tensor| -> Result<Tensor> {
        if t.dim() == 0 {
            one(call(
                op_def!("aten.unsqueeze.default")?,
                vec![Value::Tensor(t.clone()), int(0)],
            )?)
        } else {
            Ok(t.clone())
        }
    };
    let zero_dim = x.dim() == 0;
    let mut indices = vec![None; d];
    indices.push(Some(unsqueeze(index)?));
    let out = one(call(
        op_def!("aten.index_put.default")?,
        vec![
            Value::Tensor(unsqueeze(&x)?),
            Value::OptTensors(indices),
            Value::Tensor(src.clone()),
        ],
    )?)?;
    if zero_dim {
        first(call(
            op_def!("aten.squeeze.dim")?,
            vec![Value::Tensor(out), int(0)],
        )?)
    } else if out.is_contiguous() {
        Ok(Decomposed::from(vec![Value::Tensor(out)]))
    } else {
        first(clone_contiguous(&out)?)
    }
}

/// `index_copy_`: [`index_copy`], written back (what functionalization makes of it).
pub(crate) fn index_copy_(a: &Args<Tensor>) -> Result<Decomposed> {
    in_place(index_copy(a)?)
}

/// `dropout` in eval mode (or with p = 0) -> the input itself.
pub(crate) fn dropout(a: &Args<Tensor>) -> Result<Decomposed> {
    if a.bool("train")? && a.float("p")? > 0.0 {
        return Err(Error::value("dropout in training mode"));
    }
    Ok(Decomposed::from(input(a)?))
}

/// `clamp(clamp(x + 3, 0), None, 6)`.
fn hard_gate(x: &Tensor) -> Result<Tensor> {
    let s = one(call(
        op_def!("aten.add.Tensor")?,
        vec![Value::Tensor(x.clone()), int(3)],
    )?)?;
    let lo = one(call(
        op_def!("aten.clamp.default")?,
        vec![Value::Tensor(s), int(0)],
    )?)?;
    one(call(
        op_def!("aten.clamp.default")?,
        vec![Value::Tensor(lo), Value::None, int(6)],
    )?)
}

fn one(outs: Vec<Value<Tensor>>) -> Result<Tensor> {
    match outs.into_iter().next() {
        Some(Value::Tensor(t)) => Ok(t),
        _ => Err(Error::value("expected one tensor")),
    }
}

fn ints(v: &[i64]) -> Value<Tensor> {
    Value::Ints(v.iter().map(|&i| SymInt::Int(i)).collect())
}

fn permute(t: &Tensor, perm: &[i64]) -> Result<Vec<Value<Tensor>>> {
    call(
        op_def!("aten.permute.default")?,
        vec![Value::Tensor(t.clone()), ints(perm)],
    )
}

fn view(t: &Tensor, shape: &[i64]) -> Result<Vec<Value<Tensor>>> {
    call(
        op_def!("aten.view.default")?,
        vec![Value::Tensor(t.clone()), ints(shape)],
    )
}

fn expand(t: &Tensor, shape: &[i64]) -> Result<Vec<Value<Tensor>>> {
    call(
        op_def!("aten.expand.default")?,
        vec![Value::Tensor(t.clone()), ints(shape)],
    )
}

fn clone_contiguous(t: &Tensor) -> Result<Vec<Value<Tensor>>> {
    call_kw(
        op_def!("aten.clone.default")?,
        vec![Value::Tensor(t.clone())],
        vec![(
            "memory_format".into(),
            Value::MemoryFormat(super::value::MemoryFormat::ContiguousFormat),
        )],
    )
}

/// Whether `t` can be viewed with `shape` without a copy (contiguous runs of merged dims).
fn viewable(t: &Tensor, shape: &[i64]) -> bool {
    if t.is_contiguous() {
        return true;
    }
    // The common case here: only splitting or keeping dims whose strides line up.
    let sizes: Vec<i64> = t.sizes_untraced().iter().map(|&s| s as i64).collect();
    let strides: Vec<i64> = t.strides().iter().map(|&s| s as i64).collect();
    let numel: i64 = sizes.iter().product();
    let mut shape = shape.to_vec();
    if let Some(i) = shape.iter().position(|&s| s == -1) {
        let known: i64 = shape.iter().filter(|&&s| s != -1).product();
        shape[i] = if known == 0 { 0 } else { numel / known };
    }
    // Walk both shapes, merging old dims into each new dim; merged old dims must be contiguous chunks.
    let (mut i, mut j) = (0usize, 0usize);
    while i < sizes.len() && j < shape.len() {
        let (mut a, mut b) = (sizes[i], shape[j]);
        let start = i;
        while a != b {
            if a < b {
                i += 1;
                if i >= sizes.len() {
                    return false;
                }
                a *= sizes[i];
            } else {
                j += 1;
                if j >= shape.len() {
                    return false;
                }
                b *= shape[j];
            }
        }
        for k in start..i {
            if sizes[k + 1] != 1 && strides[k] != strides[k + 1] * sizes[k + 1] {
                return false;
            }
        }
        i += 1;
        j += 1;
    }
    true
}

/// PyTorch's `linear` decomposition: `addmm` for a 2-d input, flatten + `addmm` + view for a contiguous
/// 3-d input with bias, else `matmul(input, weight.t())` (+ `bias`).
fn linear_of(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Vec<Value<Tensor>>> {
    let k = *weight.sizes_untraced().last().unwrap_or(&0) as i64;
    let out_features = weight.sizes_untraced().first().copied().unwrap_or(0) as i64;
    if let (2, Some(b)) = (input.dim(), bias) {
        let wt = one(permute(weight, &[1, 0])?)?;
        return call(
            op_def!("aten.addmm.default")?,
            vec![
                Value::Tensor(b.clone()),
                Value::Tensor(input.clone()),
                Value::Tensor(wt),
            ],
        );
    }
    if let (3, Some(b), true) = (input.dim(), bias, input.is_contiguous()) {
        let sizes: Vec<i64> = input.sizes_untraced().iter().map(|&s| s as i64).collect();
        let flat = one(view(input, &[sizes[0] * sizes[1], k])?)?;
        let wt = one(permute(weight, &[1, 0])?)?;
        let out = one(call(
            op_def!("aten.addmm.default")?,
            vec![
                Value::Tensor(b.clone()),
                Value::Tensor(flat),
                Value::Tensor(wt),
            ],
        )?)?;
        return view(&out, &[sizes[0], sizes[1], out_features]);
    }
    let wt = one(permute(weight, &[1, 0])?)?;
    let out = one(matmul_of(input, &wt)?)?;
    match bias {
        Some(b) => Ok(vec![Value::Tensor(binary(
            op_def!("aten.add.Tensor")?,
            &out,
            b,
        )?)]),
        None => Ok(vec![Value::Tensor(out)]),
    }
}

/// PyTorch's `matmul` decomposition for the shapes the layers use: 2-d @ 2-d is `mm`; an N-d tensor
/// whose leading dims fold times a matrix is view + `mm` + view; otherwise expand + view + `bmm` + view.
fn matmul_of(t1: &Tensor, t2: &Tensor) -> Result<Vec<Value<Tensor>>> {
    let s1: Vec<i64> = t1.sizes_untraced().iter().map(|&s| s as i64).collect();
    let s2: Vec<i64> = t2.sizes_untraced().iter().map(|&s| s as i64).collect();
    let (d1, d2) = (s1.len(), s2.len());
    if d1 < 2 || d2 < 2 {
        return Err(Error::value("matmul with a vector"));
    }
    if d1 == 2 && d2 == 2 {
        return call(
            op_def!("aten.mm.default")?,
            vec![Value::Tensor(t1.clone()), Value::Tensor(t2.clone())],
        );
    }
    let st1: Vec<i64> = t1.strides().iter().map(|&s| s as i64).collect();
    let folds = d1 >= 3 && d2 == 2 && (0..d1 - 2).all(|i| st1[i] == st1[i + 1] * s1[i + 1]);
    if folds {
        let m: i64 = s1[..d1 - 1].iter().product();
        let flat = one(view(t1, &[m, s1[d1 - 1]])?)?;
        let out = one(call(
            op_def!("aten.mm.default")?,
            vec![Value::Tensor(flat), Value::Tensor(t2.clone())],
        )?)?;
        let mut shape = s1[..d1 - 1].to_vec();
        shape.push(s2[1]);
        return view(&out, &shape);
    }
    // Batched: broadcast the batch dims, fold them, bmm, unfold.
    let (b1, b2) = (&s1[..d1 - 2], &s2[..d2.saturating_sub(2)]);
    let nb = b1.len().max(b2.len());
    let mut batch = vec![1i64; nb];
    for (i, d) in batch.iter_mut().enumerate() {
        let x = if i + b1.len() >= nb {
            b1[i + b1.len() - nb]
        } else {
            1
        };
        let y = if i + b2.len() >= nb {
            b2[i + b2.len() - nb]
        } else {
            1
        };
        *d = x.max(y);
    }
    let prod: i64 = batch.iter().product();
    let (n, m1) = (s1[d1 - 2], s1[d1 - 1]);
    let (m2, p) = (s2[d2 - 2], s2[d2 - 1]);
    let with = |tail: [i64; 2]| -> Vec<i64> { batch.iter().copied().chain(tail).collect() };
    let e1 = one(expand(t1, &with([n, m1]))?)?;
    let v1 = one(view(&e1, &[prod, n, m1])?)?;
    let e2 = one(expand(t2, &with([m2, p]))?)?;
    let v2 = one(view(&e2, &[prod, m2, p])?)?;
    let out = one(call(
        op_def!("aten.bmm.default")?,
        vec![Value::Tensor(v1), Value::Tensor(v2)],
    )?)?;
    view(&out, &with([n, p]))
}

/// `scaled_dot_product_attention` without mask, dropout or causality, as PyTorch decomposes it on CPU
/// (flash attention's math form): both q and k scaled by `sqrt(scale)`, softmax with fully masked rows
/// zeroed, the output re-laid out as the flash kernel returns it.
fn sdpa(a: &Args<Tensor>) -> Result<Vec<Value<Tensor>>> {
    if a.opt_tensor("attn_mask")?.is_some() || a.bool("is_causal")? || a.float("dropout_p")? > 0.0 {
        return Err(Error::value(
            "scaled_dot_product_attention with a mask, causality or dropout",
        ));
    }
    let (q, k, v) = (a.tensor("query")?, a.tensor("key")?, a.tensor("value")?);
    let e = *q.sizes_untraced().last().unwrap_or(&1) as f64;
    let scale = a.opt_float("scale")?.unwrap_or(1.0 / e.sqrt());
    let sqrt_scale = Value::Scalar(Scalar::Float(scale.sqrt()));
    let nd = k.dim() as i64;
    let mut perm: Vec<i64> = (0..nd).collect();
    perm.swap(nd as usize - 1, nd as usize - 2);
    let qs = one(call(
        op_def!("aten.mul.Scalar")?,
        vec![Value::Tensor(q.clone()), sqrt_scale.clone()],
    )?)?;
    let kt = one(permute(k, &perm)?)?;
    let ks = one(call(
        op_def!("aten.mul.Scalar")?,
        vec![Value::Tensor(kt), sqrt_scale],
    )?)?;
    let scores = one(matmul_of(&qs, &ks)?)?;
    let sm = one(call(
        op_def!("aten._softmax.default")?,
        vec![
            Value::Tensor(scores.clone()),
            Value::Int(SymInt::Int(-1)),
            Value::Bool(false),
        ],
    )?)?;
    let inf = Value::Scalar(Scalar::Float(f64::NEG_INFINITY));
    let eq = one(call(
        op_def!("aten.eq.Scalar")?,
        vec![Value::Tensor(scores), inf],
    )?)?;
    let not = one(call(
        op_def!("aten.logical_not.default")?,
        vec![Value::Tensor(eq)],
    )?)?;
    let any = one(call(
        op_def!("aten.any.dim")?,
        vec![
            Value::Tensor(not),
            Value::Int(SymInt::Int(-1)),
            Value::Bool(true),
        ],
    )?)?;
    let masked = one(call(
        op_def!("aten.logical_not.default")?,
        vec![Value::Tensor(any)],
    )?)?;
    let zeros = one(call_kw(
        op_def!("aten.full_like.default")?,
        vec![Value::Tensor(sm.clone()), int(0)],
        vec![
            ("pin_memory".into(), Value::Bool(false)),
            (
                "memory_format".into(),
                Value::MemoryFormat(super::value::MemoryFormat::PreserveFormat),
            ),
        ],
    )?)?;
    let w = one(call(
        op_def!("aten.where.self")?,
        vec![
            Value::Tensor(masked),
            Value::Tensor(zeros),
            Value::Tensor(sm),
        ],
    )?)?;
    let out = one(matmul_of(&w, v)?)?;
    // The CPU flash-attention decomposition returns `out.permute(2, 0, 1, 3).contiguous().permute(1, 2, 0, 3)`.
    if out.dim() != 4 {
        return Ok(vec![Value::Tensor(out)]);
    }
    let p1 = one(permute(&out, &[2, 0, 1, 3])?)?;
    let c = if p1.is_contiguous() {
        p1
    } else {
        one(clone_contiguous(&p1)?)?
    };
    permute(&c, &[1, 2, 0, 3])
}

/// `t.unbind(0)` as PyTorch decomposes it: every slice, then every squeeze.
fn unbind0(t: &Tensor) -> Result<Vec<Tensor>> {
    let n = t.sizes_untraced().first().copied().unwrap_or(0) as i64;
    let mut slices = vec![];
    for i in 0..n {
        slices.push(one(call(
            op_def!("aten.slice.Tensor")?,
            vec![
                Value::Tensor(t.clone()),
                Value::Int(SymInt::Int(0)),
                Value::Int(SymInt::Int(i)),
                Value::Int(SymInt::Int(i + 1)),
            ],
        )?)?);
    }
    slices.iter().map(squeeze0).collect()
}

fn squeeze0(t: &Tensor) -> Result<Tensor> {
    one(call(
        op_def!("aten.squeeze.dims")?,
        vec![Value::Tensor(t.clone()), ints(&[0])],
    )?)
}

fn unsqueeze0(t: &Tensor) -> Result<Tensor> {
    one(call(
        op_def!("aten.unsqueeze.default")?,
        vec![Value::Tensor(t.clone()), Value::Int(SymInt::Int(0))],
    )?)
}

fn cat(ts: &[Tensor], dim: i64) -> Result<Tensor> {
    let mut args = vec![Value::Tensors(ts.to_vec())];
    if dim != 0 {
        args.push(Value::Int(SymInt::Int(dim)));
    }
    one(call(op_def!("aten.cat.default")?, args)?)
}

fn unary(op: &'static OpDef, t: &Tensor) -> Result<Tensor> {
    one(call(op, vec![Value::Tensor(t.clone())])?)
}

fn binary(op: &'static OpDef, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    one(call(
        op,
        vec![Value::Tensor(x.clone()), Value::Tensor(y.clone())],
    )?)
}

/// `aten.lstm.input` as PyTorch's `lstm_impl` decomposition unrolls it.
fn lstm(a: &Args<Tensor>) -> Result<Vec<Value<Tensor>>> {
    let input = a.tensor("input")?;
    let hx = a.tensors("hx")?;
    let params = a.tensors("params")?;
    let has_biases = a.bool("has_biases")?;
    let layers = a.int("num_layers")? as usize;
    let dirs = if a.bool("bidirectional")? { 2 } else { 1 };
    if a.bool("train")? && a.float("dropout")? > 0.0 && layers > 1 {
        return Err(Error::value("lstm dropout in training mode"));
    }
    let group = if has_biases { 4 } else { 2 };
    if hx.len() != 2 || params.len() != layers * dirs * group {
        return Err(Error::value("an lstm with projections"));
    }
    let (h0, c0) = (unbind0(&hx[0])?, unbind0(&hx[1])?);
    let batch_first = a.bool("batch_first")?;
    let mut x = if batch_first {
        one(permute(input, &[1, 0, 2])?)?
    } else {
        input.clone()
    };
    let (mut hs, mut cs) = (vec![], vec![]);
    for layer in 0..layers {
        let mut outs = vec![];
        for dir in 0..dirs {
            let k = layer * dirs + dir;
            let p = &params[k * group..(k + 1) * group];
            let (out, h, c) = lstm_layer(&x, &h0[k], &c0[k], p, has_biases, dir == 1)?;
            outs.push(out);
            hs.push(h);
            cs.push(c);
        }
        x = if dirs == 2 {
            let d = outs[0].dim() as i64 - 1;
            cat(&outs, d)?
        } else {
            outs.remove(0)
        };
    }
    if batch_first {
        x = one(permute(&x, &[1, 0, 2])?)?;
    }
    let (h_n, c_n) = (stack0(&hs)?, stack0(&cs)?);
    Ok(vec![
        Value::Tensor(x),
        Value::Tensor(h_n),
        Value::Tensor(c_n),
    ])
}

/// `one_layer_lstm`: the input projection for all steps, then one cell per step (reversed for the
/// backward direction). Returns the outputs and the final hidden and cell states.
fn lstm_layer(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    p: &[Tensor],
    has_biases: bool,
    reverse: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (w_ih, w_hh) = (&p[0], &p[1]);
    let (b_ih, b_hh) = if has_biases {
        (Some(&p[2]), Some(&p[3]))
    } else {
        (None, None)
    };
    let (mut h, mut c) = (unsqueeze0(h0)?, unsqueeze0(c0)?);
    let mut pre = one(linear_of(x, w_ih, b_ih)?)?;
    if reverse {
        pre = one(call(
            op_def!("aten.flip.default")?,
            vec![Value::Tensor(pre), ints(&[0])],
        )?)?;
    }
    let mut steps = vec![];
    for step in unbind0(&pre)? {
        let lin = one(linear_of(&h, w_hh, b_hh)?)?;
        let gates = binary(op_def!("aten.add.Tensor")?, &lin, &step)?;
        let hsize = *gates.sizes_untraced().last().unwrap_or(&0) as i64 / 4;
        let chunks = match call(
            op_def!("aten.split_with_sizes.default")?,
            vec![
                Value::Tensor(gates),
                ints(&[hsize; 4]),
                Value::Int(SymInt::Int(2)),
            ],
        )?
        .into_iter()
        .next()
        {
            Some(Value::Tensors(ts)) if ts.len() == 4 => ts,
            _ => return Err(Error::value("lstm gates did not split in four")),
        };
        let i_g = unary(op_def!("aten.sigmoid.default")?, &chunks[0])?;
        let f_g = unary(op_def!("aten.sigmoid.default")?, &chunks[1])?;
        let g_g = unary(op_def!("aten.tanh.default")?, &chunks[2])?;
        let o_g = unary(op_def!("aten.sigmoid.default")?, &chunks[3])?;
        let fc = binary(op_def!("aten.mul.Tensor")?, &f_g, &c)?;
        let ig = binary(op_def!("aten.mul.Tensor")?, &i_g, &g_g)?;
        c = binary(op_def!("aten.add.Tensor")?, &fc, &ig)?;
        let tc = unary(op_def!("aten.tanh.default")?, &c)?;
        h = binary(op_def!("aten.mul.Tensor")?, &o_g, &tc)?;
        steps.push(h.clone());
    }
    if reverse {
        steps.reverse();
    }
    let out = cat(&steps, 0)?;
    Ok((out, squeeze0(&h)?, squeeze0(&c)?))
}

/// `torch.stack(ts, 0)` as PyTorch decomposes it: cat, then a view with the new leading dim.
fn stack0(ts: &[Tensor]) -> Result<Tensor> {
    let joined = cat(ts, 0)?;
    let mut shape: Vec<i64> = vec![ts.len() as i64];
    shape.extend(ts[0].sizes_untraced().iter().map(|&s| s as i64));
    one(view(&joined, &shape)?)
}

/// `t.chunk(n, dim)` as PyTorch decomposes it (equal `split_with_sizes`).
fn chunk(t: &Tensor, n: usize, dim: i64) -> Result<Vec<Tensor>> {
    let d = if dim < 0 { dim + t.dim() as i64 } else { dim } as usize;
    let size = *t
        .sizes_untraced()
        .get(d)
        .ok_or_else(|| Error::value("chunk: dim out of range"))? as i64;
    let part = (size + n as i64 - 1) / n as i64;
    match call(
        op_def!("aten.split_with_sizes.default")?,
        vec![
            Value::Tensor(t.clone()),
            ints(&vec![part; n]),
            Value::Int(SymInt::Int(dim)),
        ],
    )?
    .into_iter()
    .next()
    {
        Some(Value::Tensors(ts)) if ts.len() == n => Ok(ts),
        _ => Err(Error::value(
            "chunk: split_with_sizes gave another number of parts",
        )),
    }
}

/// The recurrence of one step: (precomputed input projection, hidden [1, B, H], w_hh, b_hh) -> hidden.
type Cell = fn(&Tensor, &Tensor, &Tensor, Option<&Tensor>) -> Result<Tensor>;

/// `gru_cell`: reset, update and new gates from the input projection and the hidden projection.
fn gru_cell(x: &Tensor, h: &Tensor, w_hh: &Tensor, b_hh: Option<&Tensor>) -> Result<Tensor> {
    let ig = chunk(x, 3, 1)?;
    let hg = chunk(&one(linear_of(h, w_hh, b_hh)?)?, 3, 2)?;
    let add = op_def!("aten.add.Tensor")?;
    let mul = op_def!("aten.mul.Tensor")?;
    let reset = unary(
        op_def!("aten.sigmoid.default")?,
        &binary(add, &hg[0], &ig[0])?,
    )?;
    let input_gate = unary(
        op_def!("aten.sigmoid.default")?,
        &binary(add, &hg[1], &ig[1])?,
    )?;
    let new = unary(
        op_def!("aten.tanh.default")?,
        &binary(add, &ig[2], &binary(mul, &hg[2], &reset)?)?,
    )?;
    let diff = binary(op_def!("aten.sub.Tensor")?, h, &new)?;
    binary(add, &binary(mul, &diff, &input_gate)?, &new)
}

fn rnn_cell_with(
    x: &Tensor,
    h: &Tensor,
    w_hh: &Tensor,
    b_hh: Option<&Tensor>,
    nonlinearity: &'static OpDef,
) -> Result<Tensor> {
    let lin = one(linear_of(h, w_hh, b_hh)?)?;
    unary(nonlinearity, &binary(op_def!("aten.add.Tensor")?, &lin, x)?)
}

fn rnn_tanh_cell(x: &Tensor, h: &Tensor, w_hh: &Tensor, b_hh: Option<&Tensor>) -> Result<Tensor> {
    rnn_cell_with(x, h, w_hh, b_hh, op_def!("aten.tanh.default")?)
}

fn rnn_relu_cell(x: &Tensor, h: &Tensor, w_hh: &Tensor, b_hh: Option<&Tensor>) -> Result<Tensor> {
    rnn_cell_with(x, h, w_hh, b_hh, op_def!("aten.relu.default")?)
}

/// `one_layer_rnn`: the input projection for all steps, then the cell per step (reversed for the
/// backward direction). Returns the outputs and the final hidden state.
fn one_layer_rnn(
    x: &Tensor,
    h0: &Tensor,
    p: &[Tensor],
    has_biases: bool,
    cell: Cell,
    reverse: bool,
) -> Result<(Tensor, Tensor)> {
    let (w_ih, w_hh) = (&p[0], &p[1]);
    let (b_ih, b_hh) = if has_biases {
        (Some(&p[2]), Some(&p[3]))
    } else {
        (None, None)
    };
    let mut pre = one(linear_of(x, w_ih, b_ih)?)?;
    if reverse {
        pre = one(call(
            op_def!("aten.flip.default")?,
            vec![Value::Tensor(pre), ints(&[0])],
        )?)?;
    }
    let mut h = unsqueeze0(h0)?;
    let mut steps = vec![];
    for step in unbind0(&pre)? {
        h = cell(&step, &h, w_hh, b_hh)?;
        steps.push(h.clone());
    }
    if reverse {
        steps.reverse();
    }
    Ok((cat(&steps, 0)?, squeeze0(&h)?))
}

/// `_rnn_helper` for GRU and plain RNNs: layers (and directions) of [`one_layer_rnn`], hidden states
/// stacked. Dropout between layers in training mode is not decomposed.
fn rnn_of(a: &Args<Tensor>, cell: Cell) -> Result<Decomposed> {
    let input = a.tensor("input")?;
    let hx = a.tensor("hx")?;
    let params = a.tensors("params")?;
    let has_biases = a.bool("has_biases")?;
    let layers = a.int("num_layers")? as usize;
    let dirs = if a.bool("bidirectional")? { 2 } else { 1 };
    if a.bool("train")? && a.float("dropout")? > 0.0 && layers > 1 {
        return Err(Error::value("rnn dropout in training mode"));
    }
    let group = if has_biases { 4 } else { 2 };
    if params.len() != layers * dirs * group {
        return Err(Error::value(format!(
            "expected {} parameter tensors, got {}",
            layers * dirs * group,
            params.len()
        )));
    }
    let h0 = unbind0(hx)?;
    if h0.len() != layers * dirs {
        return Err(Error::value(format!(
            "expected {} initial hidden states, got {}",
            layers * dirs,
            h0.len()
        )));
    }
    let batch_first = a.bool("batch_first")?;
    let mut x = if batch_first {
        one(permute(input, &[1, 0, 2])?)?
    } else {
        input.clone()
    };
    let mut finals = vec![];
    for layer in 0..layers {
        let mut outs = vec![];
        for dir in 0..dirs {
            let k = layer * dirs + dir;
            let p = &params[k * group..(k + 1) * group];
            let (out, h) = one_layer_rnn(&x, &h0[k], p, has_biases, cell, dir == 1)?;
            outs.push(out);
            finals.push(h);
        }
        x = if dirs == 2 {
            let d = outs[0].dim() as i64 - 1;
            cat(&outs, d)?
        } else {
            outs.remove(0)
        };
    }
    if batch_first {
        x = one(permute(&x, &[1, 0, 2])?)?;
    }
    Ok(Decomposed::from(vec![
        Value::Tensor(x),
        Value::Tensor(stack0(&finals)?),
    ]))
}

/// `gru.input` as PyTorch's `gru_impl` decomposes it.
pub(crate) fn gru_input(a: &Args<Tensor>) -> Result<Decomposed> {
    rnn_of(a, gru_cell)
}

/// `rnn_tanh.input` as PyTorch's `rnn_tanh_input` decomposes it.
pub(crate) fn rnn_tanh_input(a: &Args<Tensor>) -> Result<Decomposed> {
    rnn_of(a, rnn_tanh_cell)
}

/// `rnn_relu.input` as PyTorch's `rnn_relu_input` decomposes it.
pub(crate) fn rnn_relu_input(a: &Args<Tensor>) -> Result<Decomposed> {
    rnn_of(a, rnn_relu_cell)
}

/// The arguments of `_embedding_bag` for an `embedding_bag` call (`padding_idx=None` is `-1`).
pub(crate) fn embedding_bag_args<T: Clone>(a: &Args<T>) -> Result<Vec<Value<T>>> {
    let padding_idx = match a
        .schema
        .arg_index("padding_idx")
        .map(|i| a.values[i].clone())
    {
        Some(Value::Int(i)) => Value::Int(i),
        _ => Value::Int(SymInt::Int(-1)),
    };
    let mut v = named(
        a,
        &[
            "weight",
            "indices",
            "offsets",
            "scale_grad_by_freq",
            "mode",
            "sparse",
            "per_sample_weights",
            "include_last_offset",
        ],
    )?;
    v.push(padding_idx);
    Ok(v)
}

/// `embedding_bag` -> `_embedding_bag`.
pub(crate) fn embedding_bag(a: &Args<Tensor>) -> Result<Decomposed> {
    call(
        op_def!("aten._embedding_bag.default")?,
        embedding_bag_args(a)?,
    )
    .map(Decomposed::from)
}

/// `grid_sampler` on a 4-d input -> `grid_sampler_2d`.
pub(crate) fn grid_sampler(a: &Args<Tensor>) -> Result<Decomposed> {
    if input(a)?.dim() != 4 {
        return Err(Error::value(
            "grid_sampler on a non-4-d input (grid_sampler_3d)",
        ));
    }
    call(op_def!("aten.grid_sampler_2d.default")?, a.values.clone()).map(Decomposed::from)
}

/// `roll` as PyTorch's reference decomposes it: one `index_select` per rolled dim, gathering at
/// `fmod(arange(size) + (size - shift) % size, size)`; no dims rolls the flattened tensor.
pub(crate) fn roll(a: &Args<Tensor>) -> Result<Decomposed> {
    let x = input(a)?;
    let shifts = a.ints("shifts")?;
    let dims = a.ints("dims")?;
    if x.numel() == 0 {
        return call(op_def!("aten.clone.default")?, vec![Value::Tensor(x)]).map(Decomposed::from);
    }
    if dims.is_empty() && shifts.len() == 1 {
        let sizes: Vec<i64> = x.sizes_untraced().iter().map(|&s| s as i64).collect();
        let flat = one(view(&x, &[x.numel() as i64])?)?;
        let rolled = roll_dim(&flat, shifts[0], 0)?;
        return view(&rolled, &sizes).map(Decomposed::from);
    }
    let mut out = x;
    for (&s, &d) in shifts.iter().zip(&dims) {
        out = roll_dim(&out, s, d)?;
    }
    Ok(Decomposed::from(out))
}

fn roll_dim(x: &Tensor, shift: i64, dim: i64) -> Result<Tensor> {
    let nd = x.dim() as i64;
    let d = if dim < 0 { dim + nd } else { dim };
    let size = x.sizes_untraced()[d as usize] as i64;
    let start = (size - shift).rem_euclid(size);
    let idx = one(call_kw(
        op_def!("aten.arange.start_step")?,
        vec![int(0), int(size)],
        vec![
            (
                "layout".into(),
                Value::Layout(super::value::Layout::Strided),
            ),
            ("device".into(), Value::Device("cpu".into())),
            ("pin_memory".into(), Value::Bool(false)),
        ],
    )?)?;
    let shifted = one(call(
        op_def!("aten.add.Tensor")?,
        vec![Value::Tensor(idx), int(start)],
    )?)?;
    let wrapped = one(call(
        op_def!("aten.fmod.Scalar")?,
        vec![Value::Tensor(shifted), int(size)],
    )?)?;
    one(call(
        op_def!("aten.index_select.default")?,
        vec![
            Value::Tensor(x.clone()),
            Value::Int(SymInt::Int(dim)),
            Value::Tensor(wrapped),
        ],
    )?)
}

// ---------------------------------------------------------------- CompositeImplicit ops real models keep

fn t(x: &Tensor) -> Value<Tensor> {
    Value::Tensor(x.clone())
}

fn scalar_f(v: f64) -> Value<Tensor> {
    Value::Scalar(Scalar::Float(v))
}

/// `_to_copy(t, dtype=d, layout=strided, device=cpu)`: `Tensor.to(other's options)`.
fn to_options(x: &Tensor, dtype: DType) -> Result<Tensor> {
    one(call_kw(
        op_def!("aten._to_copy.default")?,
        vec![t(x)],
        vec![
            ("dtype".into(), Value::ScalarType(dtype)),
            (
                "layout".into(),
                Value::Layout(super::value::Layout::Strided),
            ),
            ("device".into(), Value::Device("cpu".into())),
        ],
    )?)
}

/// `type_as(self, other)` -> `self` when the dtypes agree, else `self.to(other.options())`.
pub(crate) fn type_as(a: &Args<Tensor>) -> Result<Decomposed> {
    let (x, other) = (a.tensor("self")?, a.tensor("other")?);
    if x.dtype() == other.dtype() {
        return Ok(Decomposed::from(x.clone()));
    }
    Ok(Decomposed::from(to_options(x, other.dtype())?))
}

/// `reshape_as(self, other)` -> `reshape(self, other.sizes())`.
pub(crate) fn reshape_as(a: &Args<Tensor>) -> Result<Decomposed> {
    let (x, other) = (a.tensor("self")?, a.tensor("other")?);
    let shape: Vec<i64> = other.sizes_untraced().iter().map(|&s| s as i64).collect();
    if viewable(x, &shape) {
        return view(x, &shape).map(Decomposed::from);
    }
    let c = one(clone_contiguous(x)?)?;
    view(&c, &shape).map(Decomposed::from)
}

/// `where.ScalarOther` / `where.ScalarSelf` / `where.Scalar` -> `where.self` with the numbers as
/// `scalar_tensor`s of the result dtype (and tensors converted to it).
pub(crate) fn where_scalar(a: &Args<Tensor>, result: DType) -> Result<Decomposed> {
    let operand = |name: &str| -> Result<Tensor> {
        match a.get(name)? {
            Value::Scalar(s) => one(call_kw(
                op_def!("aten.scalar_tensor.default")?,
                vec![Value::Scalar(*s)],
                vec![
                    ("dtype".into(), Value::ScalarType(result)),
                    (
                        "layout".into(),
                        Value::Layout(super::value::Layout::Strided),
                    ),
                    ("device".into(), Value::Device("cpu".into())),
                ],
            )?),
            Value::Tensor(x) if x.dtype() != result => to_options(x, result),
            Value::Tensor(x) => Ok(x.clone()),
            v => Err(Error::value(format!("where: {name} is a {}", v.kind()))),
        }
    };
    let (x, y) = (operand("self")?, operand("other")?);
    call(
        op_def!("aten.where.self")?,
        vec![arg(a, "condition")?, t(&x), t(&y)],
    )
    .map(Decomposed::from)
}

/// An alias (`__and__` -> `bitwise_and`, `clamp_min` -> `clamp`, `swapaxes` -> `transpose`): the
/// target op over the re-ordered arguments.
pub(crate) fn alias(target: &'static OpDef, args: Vec<Value<Tensor>>) -> Result<Decomposed> {
    call(target, args).map(Decomposed::from)
}

/// `expand_as` / `view_as` -> `target(self, other.sizes())`.
pub(crate) fn sized_like(a: &Args<Tensor>, target: &'static OpDef) -> Result<Decomposed> {
    let other = a.tensor("other")?;
    call(
        target,
        vec![arg(a, "self")?, Value::Ints(other.sym_sizes())],
    )
    .map(Decomposed::from)
}

/// `repeat_interleave(self, int repeats, dim)` as ATen's composite writes it: `unsqueeze(dim + 1)`,
/// `expand` the new dim to `repeats`, a contiguous `clone` and a `view` merging the two (over the
/// flattened input when `dim` is None).
pub(crate) fn repeat_interleave(a: &Args<Tensor>) -> Result<Decomposed> {
    let x = a.tensor("self")?;
    // The meta function (meta_repeat_interleave) has checked `repeats` and `dim`.
    let repeats = a.int("repeats")?;
    let dim = a.opt_int("dim")?;
    let input = match dim {
        Some(_) => x.clone(),
        None => one(call(
            op_def!("aten.flatten.using_ints")?,
            vec![t(x), int(0), int(-1)],
        )?)?,
    };
    let d = crate::tensor::wrap_dim(dim.unwrap_or(0), x.dim())?;
    let u = one(call(
        op_def!("aten.unsqueeze.default")?,
        vec![t(&input), int(d as i64 + 1)],
    )?)?;
    let mut shape: Vec<i64> = u.sizes_untraced().iter().map(|&s| s as i64).collect();
    shape[d + 1] = repeats;
    let e = one(expand(&u, &shape)?)?;
    let c = one(clone_contiguous(&e)?)?;
    let mut out: Vec<i64> = input.sizes_untraced().iter().map(|&s| s as i64).collect();
    if out.is_empty() {
        out.push(1);
    }
    out[d] *= repeats;
    view(&c, &out).map(Decomposed::from)
}

/// `_convolution_mode`'s padding: `valid` is none; `same` pads `dilation * (k - 1)` per spatial dim,
/// half on each side and any odd remainder on the right (returned as the extra right padding, which
/// PyTorch adds with `constant_pad_nd` before a symmetric convolution).
pub(crate) fn same_padding(
    mode: &str,
    weight: &[usize],
    dilation: &[i64],
    stride: &[i64],
) -> Result<(Vec<i64>, Option<Vec<i64>>)> {
    let spatial = weight.len().saturating_sub(2);
    let at = |v: &[i64], i: usize| {
        if v.len() == 1 {
            v[0]
        } else {
            v.get(i).copied().unwrap_or(1)
        }
    };
    match mode {
        "valid" => Ok((vec![0; spatial], None)),
        "same" => {
            if (0..spatial).any(|i| at(stride, i) != 1) {
                return Err(Error::value(
                    "padding='same' is not supported for strided convolutions",
                ));
            }
            let mut left = vec![];
            let mut extra = vec![];
            for i in 0..spatial {
                let total = at(dilation, i) * (weight[i + 2] as i64 - 1);
                left.push(total / 2);
                extra.push(total - 2 * (total / 2));
            }
            let asymmetric = extra.iter().any(|&e| e > 0);
            Ok((left, asymmetric.then_some(extra)))
        }
        other => Err(Error::value(format!("Invalid padding string: '{other}'"))),
    }
}

/// `conv1d/2d/3d.padding` -> `convolution` with `_convolution_mode`'s padding.
pub(crate) fn conv_padding(a: &Args<Tensor>) -> Result<Decomposed> {
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    let dilation = a.ints("dilation")?;
    let stride = a.ints("stride")?;
    let spatial = w.dim().saturating_sub(2);
    let (pad, extra) = same_padding(a.str("padding")?, w.sizes_untraced(), &dilation, &stride)?;
    let input = match extra {
        Some(extra) => {
            // constant_pad_nd pads the last dim first: (left, right) pairs from the last spatial dim.
            let mut p = vec![];
            for e in extra.iter().rev() {
                p.extend([0, *e]);
            }
            one(call(
                op_def!("aten.constant_pad_nd.default")?,
                vec![t(x), ints(&p), int(0)],
            )?)?
        }
        None => x.clone(),
    };
    call(
        op_def!("aten.convolution.default")?,
        vec![
            t(&input),
            t(w),
            arg(a, "bias")?,
            ints(&stride),
            ints(&pad),
            ints(&dilation),
            Value::Bool(false),
            ints(&vec![0; spatial]),
            arg(a, "groups")?,
        ],
    )
    .map(Decomposed::from)
}

/// `min.other` -> `minimum`.
pub(crate) fn min_other(a: &Args<Tensor>) -> Result<Decomposed> {
    call(
        op_def!("aten.minimum.default")?,
        named(a, &["self", "other"])?,
    )
    .map(Decomposed::from)
}

/// `max.other` -> `maximum`.
pub(crate) fn max_other(a: &Args<Tensor>) -> Result<Decomposed> {
    call(
        op_def!("aten.maximum.default")?,
        named(a, &["self", "other"])?,
    )
    .map(Decomposed::from)
}

fn slice(x: &Tensor, dim: i64, start: i64, end: i64) -> Result<Tensor> {
    one(call(
        op_def!("aten.slice.Tensor")?,
        vec![t(x), int(dim), int(start), int(end)],
    )?)
}

/// `diff` as ATen's composite computes it: `prepend`/`append` concatenated on `dim`, then `n` times
/// `narrow(1, len) - narrow(0, len)` (`logical_xor` for bools). ATen evaluates the second narrow first,
/// so the `slice` from 0 comes first in the graph, as in PyTorch's.
pub(crate) fn diff(a: &Args<Tensor>) -> Result<Decomposed> {
    let x = a.tensor("self")?;
    // The meta function (meta_diff) has checked the input's rank, `n`, `dim` and prepend/append.
    let n = a.int("n")?;
    let dim = a.int("dim")?;
    let d = crate::tensor::wrap_dim(dim, x.dim())?;
    let mut parts = vec![];
    let mut r = x.clone();
    if n > 0 {
        if let Some(p) = a.opt_tensor("prepend")? {
            parts.push(p.clone());
        }
        parts.push(x.clone());
        if let Some(p) = a.opt_tensor("append")? {
            parts.push(p.clone());
        }
        if parts.len() > 1 {
            r = cat(&parts, dim)?;
        }
    }
    let len = r.sizes_untraced()[d] as i64;
    if n == 0 {
        return one(clone_contiguous(&r)?).map(Decomposed::from);
    }
    let n = n.min(len);
    let mut out_len = len - 1;
    let xor = r.dtype() == DType::Bool;
    for _ in 0..n {
        let lo = slice(&r, dim, 0, out_len)?;
        let hi = slice(&r, dim, 1, 1 + out_len)?;
        r = if xor {
            binary(op_def!("aten.logical_xor.default")?, &hi, &lo)?
        } else {
            binary(op_def!("aten.sub.Tensor")?, &hi, &lo)?
        };
        out_len -= 1;
    }
    Ok(Decomposed::from(r))
}

/// `linalg_vector_norm` as `torch._refs.linalg.vector_norm` computes it.
pub(crate) fn linalg_vector_norm(a: &Args<Tensor>) -> Result<Decomposed> {
    let x = a.tensor("self")?.clone();
    let ord = a.scalar("ord")?;
    let ordf = ord.to_f64();
    let keepdim = a.bool("keepdim")?;
    let dims = a.opt_ints("dim")?;
    let result = a.opt_dtype("dtype")?.unwrap_or(x.dtype());
    let abs = |x: &Tensor| unary(op_def!("aten.abs.default")?, x);
    let dims_value = |d: &Option<Vec<i64>>| match d {
        Some(v) => ints(v),
        None => Value::None,
    };
    let to_result = |r: Tensor| -> Result<Tensor> {
        if r.dtype() == result {
            Ok(r)
        } else {
            one(call_kw(
                op_def!("aten._to_copy.default")?,
                vec![t(&r)],
                vec![("dtype".into(), Value::ScalarType(result))],
            )?)
        }
    };
    let out = if ordf == 0.0 {
        let ne = one(call(
            op_def!("aten.ne.Scalar")?,
            vec![t(&x), scalar_f(0.0)],
        )?)?;
        one(call_kw(
            op_def!("aten.sum.dim_IntList")?,
            vec![t(&ne), dims_value(&dims), Value::Bool(keepdim)],
            vec![("dtype".into(), Value::ScalarType(result))],
        )?)?
    } else if ordf.is_infinite() {
        let op = if ordf > 0.0 {
            op_def!("aten.amax.default")?
        } else {
            op_def!("aten.amin.default")?
        };
        let d = dims.clone().unwrap_or_default();
        to_result(one(call(
            op,
            vec![t(&abs(&x)?), ints(&d), Value::Bool(keepdim)],
        )?)?)?
    } else {
        let x = if x.dtype() != result && result.is_floating_point() {
            to_result(x)?
        } else {
            x
        };
        let nd = x.dim();
        let dims = match dims {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(
                v.iter()
                    .map(|&d| crate::tensor::wrap_dim(d, nd).map(|w| w as i64))
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => None,
        };
        let sizes = x.sizes_untraced().to_vec();
        let trivial = match &dims {
            None => sizes.iter().product::<usize>() == 1,
            Some(v) => nd > 0 && v.iter().all(|&d| sizes[d as usize] == 1),
        };
        if trivial {
            let r = abs(&x)?;
            let r = if keepdim || nd == 0 {
                r
            } else if let Some(v) = &dims {
                let shape: Vec<i64> = (0..nd)
                    .filter(|d| !v.contains(&(*d as i64)))
                    .map(|d| sizes[d] as i64)
                    .collect();
                one(view(&r, &shape)?)?
            } else {
                let flat = one(view(&r, &[-1])?)?;
                one(call(
                    op_def!("aten.select.int")?,
                    vec![t(&flat), int(0), int(0)],
                )?)?
            };
            return Ok(Decomposed::from(to_result(r)?));
        }
        let even = ordf % 2.0 == 0.0;
        let x = if even && x.dtype().is_floating_point() {
            x
        } else {
            abs(&x)?
        };
        let p = one(call(
            op_def!("aten.pow.Tensor_Scalar")?,
            vec![t(&x), Value::Scalar(ord)],
        )?)?;
        let s = one(call(
            op_def!("aten.sum.dim_IntList")?,
            vec![t(&p), dims_value(&dims), Value::Bool(keepdim)],
        )?)?;
        to_result(one(call(
            op_def!("aten.pow.Tensor_Scalar")?,
            vec![t(&s), scalar_f(1.0 / ordf)],
        )?)?)?
    };
    Ok(Decomposed::from(out))
}

/// `_weight_norm(v, g, dim)` -> `v * (g / ‖v‖)`, the norm over every dim but `dim` (kept), as
/// `_weight_norm_interface`'s decomposition writes it; `dim = -1` is the norm of all of `v`.
pub(crate) fn weight_norm(a: &Args<Tensor>) -> Result<Decomposed> {
    let (v, g) = (a.tensor("v")?, a.tensor("g")?);
    let dim = a.int("dim")?;
    let nd = v.dim() as i64;
    let (dims, keep): (Vec<i64>, bool) = if dim == -1 {
        (vec![], false)
    } else {
        let d = crate::tensor::wrap_dim(dim, v.dim())? as i64;
        ((0..nd).filter(|&i| i != d).collect(), true)
    };
    let norm = one(call(
        op_def!("aten.linalg_vector_norm.default")?,
        vec![
            t(v),
            Value::Scalar(Scalar::Int(2)),
            if dims.is_empty() {
                Value::None
            } else {
                ints(&dims)
            },
            Value::Bool(keep),
        ],
    )?)?;
    let q = binary(op_def!("aten.div.Tensor")?, g, &norm)?;
    Ok(Decomposed::from(binary(
        op_def!("aten.mul.Tensor")?,
        v,
        &q,
    )?))
}

/// `einsum`, as PyTorch's C++ composite (`at::native::einsum` in ATen's `Linear.cpp`) computes it: every
/// operand aligned to one dim order (the output labels, then the summed ones) by diagonals (`diagonal` +
/// `movedim`, a `permute`), `unsqueeze`s for its missing labels and a `permute`; then the operands
/// contracted pairwise — left to right, as `torch.einsum` asks without `opt_einsum`, or along the given
/// `path` — each pair first summing (keeping dims) what only one side still has and nothing later needs,
/// then `sumproduct_pair`; the summed dims are finally dropped by a `view` (or, for one operand, summed).
pub(crate) fn einsum(a: &Args<Tensor>) -> Result<Decomposed> {
    use super::einsum::Equation;
    let operands = a.tensors("tensors")?;
    let ranks: Vec<usize> = operands.iter().map(|x| x.dim()).collect();
    let path = a.opt_ints("path")?;
    if let Some(p) = &path {
        let want = if operands.len() == 1 {
            1
        } else {
            (operands.len() - 1) * 2
        };
        if p.len() != want {
            return Err(Error::value(format!(
                "einsum(): expected contraction path given in path parameter to have size {want} but got {}",
                p.len()
            )));
        }
    }
    let eq = Equation::parse(a.str("equation")?, &ranks)?;
    // PyTorch's size checks (repeated labels, broadcasting), with its messages.
    let sym: Vec<Vec<SymInt>> = operands
        .iter()
        .map(|x| {
            x.sizes_untraced()
                .iter()
                .map(|&s| SymInt::from(s))
                .collect()
        })
        .collect();
    eq.label_sizes(&sym)?;
    let order = eq.aligned_labels();
    let (n, out_num_dim) = (order.len(), eq.output.len());
    // Per aligned dim, how many operands (still) have it with a size other than 1.
    let mut dim_counts = vec![0usize; n];
    let mut ops: Vec<Tensor> = vec![];
    for (x, labels) in operands.iter().zip(&eq.inputs) {
        let mut op = x.clone();
        let mut perm: Vec<Option<usize>> = vec![None; n];
        let mut dim = 0usize;
        for l in labels {
            let p = order.iter().position(|o| o == l).unwrap_or(0);
            match perm[p] {
                None => {
                    if op.sizes_untraced()[dim] != 1 {
                        dim_counts[p] += 1;
                    }
                    perm[p] = Some(dim);
                    dim += 1;
                }
                Some(prev) => {
                    // A repeated label: its diagonal, moved back to the first occurrence's place.
                    op = one(call(
                        op_def!("aten.diagonal.default")?,
                        vec![t(&op), int(0), int(prev as i64), int(dim as i64)],
                    )?)?;
                    op = one(permute(&op, &movedim_last_to(op.dim(), prev))?)?;
                }
            }
        }
        for p in perm.iter_mut().filter(|p| p.is_none()) {
            op = one(call(
                op_def!("aten.unsqueeze.default")?,
                vec![t(&op), int(dim as i64)],
            )?)?;
            *p = Some(dim);
            dim += 1;
        }
        let perm: Vec<i64> = perm.iter().map(|p| p.unwrap_or(0) as i64).collect();
        ops.push(one(permute(&op, &perm)?)?);
    }
    let size = |x: &Tensor, d: usize| x.sizes_untraced()[d];
    // The pairs to contract: the path's (as opt_einsum writes it; each result goes last), or left to
    // right (each result goes first).
    let mut steps = path.iter().flatten().copied();
    while ops.len() > 1 {
        let (i, j) = match &path {
            None => (0, 1),
            Some(_) => {
                let (i, j) = (steps.next().unwrap_or(0), steps.next().unwrap_or(0));
                let (i, j) = (i.min(j), i.max(j));
                if i == j || i < 0 || j >= ops.len() as i64 {
                    return Err(Error::value(format!(
                        "einsum(): invalid contraction ({i}, {j}){}",
                        if i == j {
                            " cannot contract an operand with itself"
                        } else {
                            " operand index is out of bounds"
                        }
                    )));
                }
                (i as usize, j as usize)
            }
        };
        let mut b = ops.remove(j);
        let mut a = ops.remove(i);
        let (mut sum_dims, mut a_sum, mut b_sum) = (vec![], vec![], vec![]);
        for (d, count) in dim_counts.iter_mut().enumerate().skip(out_num_dim) {
            let (sa, sb) = (size(&a, d) != 1, size(&b, d) != 1);
            if sa && sb {
                *count = count.saturating_sub(1);
                if *count == 1 {
                    sum_dims.push(d as i64);
                    *count = 0;
                }
            } else if *count == 1 {
                if sa {
                    a_sum.push(d as i64);
                    *count = 0;
                } else if sb {
                    b_sum.push(d as i64);
                    *count = 0;
                }
            }
        }
        if !a_sum.is_empty() {
            a = sum_keepdim(&a, &a_sum)?;
        }
        if !b_sum.is_empty() {
            b = sum_keepdim(&b, &b_sum)?;
        }
        let r = sumproduct_pair(a, b, &sum_dims)?;
        if path.is_some() {
            ops.push(r);
        } else {
            ops.insert(0, r);
        }
    }
    let result = ops
        .pop()
        .ok_or_else(|| Error::value("einsum(): must provide at least one operand"))?;
    if n == out_num_dim {
        return Ok(Decomposed::from(result));
    }
    if operands.len() > 1 {
        // Every summed dim has size 1 by now.
        let sizes: Vec<i64> = result.sizes_untraced()[..out_num_dim]
            .iter()
            .map(|&s| s as i64)
            .collect();
        return first(view(&result, &sizes)?);
    }
    let dims: Vec<i64> = (out_num_dim as i64..n as i64).collect();
    first(call(
        op_def!("aten.sum.dim_IntList")?,
        vec![t(&result), ints(&dims), Value::Bool(false)],
    )?)
}

/// The permutation `movedim(-1, to)` is on an `nd`-dim tensor.
fn movedim_last_to(nd: usize, to: usize) -> Vec<i64> {
    let last = nd as i64 - 1;
    (0..to as i64)
        .chain([last])
        .chain(to as i64..last)
        .collect()
}

/// `x.sum(dims, keepdim=True)`.
fn sum_keepdim(x: &Tensor, dims: &[i64]) -> Result<Tensor> {
    one(call(
        op_def!("aten.sum.dim_IntList")?,
        vec![t(x), ints(dims), Value::Bool(true)],
    )?)
}

/// `reshape` as ATen's C++ composite does it: a `view` when the strides allow one
/// (`computeStride`), else a contiguous `clone` viewed (`_unsafe_view`, a `view` in Core ATen).
fn reshape_of(x: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let new: Vec<usize> = shape.iter().map(|&s| s.max(0) as usize).collect();
    if super::defs::view_strides(x.sizes_untraced(), x.strides(), &new).is_some() {
        return one(view(x, shape)?);
    }
    one(view(&one(clone_contiguous(x)?)?, shape)?)
}

/// ATen's `sumproduct_pair(left, right, sum_dims, keepdim=True)` for einsum: `(left * right)` summed
/// over `sum_dims` (kept as size 1) as one `bmm` between the permuted, flattened operands — or a plain
/// `mul` when nothing is summed. Both operands have the same number of dims (aligned by einsum).
fn sumproduct_pair(left: Tensor, right: Tensor, sum_dims: &[i64]) -> Result<Tensor> {
    if sum_dims.is_empty() {
        return binary(op_def!("aten.mul.Tensor")?, &left, &right);
    }
    let (mut left, mut right) = (left, right);
    let dim = left.dim();
    // Dims in the output: in both (lro), only left (lo), only right (ro); with their sizes.
    let (mut lro, mut lo, mut ro) = (vec![], vec![], vec![]);
    let (mut lro_size, mut lo_size, mut ro_size, mut sum_size) = (1i64, 1i64, 1i64, 1i64);
    for i in 0..dim {
        let (szl, szr) = (
            left.sizes_untraced()[i] as i64,
            right.sizes_untraced()[i] as i64,
        );
        let (sl, sr) = (szl != 1, szr != 1);
        if sum_dims.contains(&(i as i64)) {
            if sl && sr {
                sum_size *= szl;
            } else if sl {
                left = sum_keepdim(&left, &[i as i64])?;
            } else if sr {
                right = sum_keepdim(&right, &[i as i64])?;
            }
        } else if sl && sr {
            lro.push(i as i64);
            lro_size *= szl;
        } else if sl {
            lo.push(i as i64);
            lo_size *= szl;
        } else {
            ro.push(i as i64);
            ro_size *= szr;
        }
    }
    // When every right-only dim comes before every left-only one, the operands swap sides, so that
    // bmm lays the result out in the output's order.
    if matches!((lo.first(), ro.last()), (Some(f), Some(l)) if l < f) {
        std::mem::swap(&mut left, &mut right);
        std::mem::swap(&mut lo, &mut ro);
        std::mem::swap(&mut lo_size, &mut ro_size);
    }
    let size_of = |x: &Tensor, d: i64| x.sizes_untraced()[d as usize] as i64;
    let out_size: Vec<i64> = lro
        .iter()
        .map(|&d| size_of(&left, d))
        .chain(lo.iter().map(|&d| size_of(&left, d)))
        .chain(sum_dims.iter().map(|_| 1))
        .chain(ro.iter().map(|&d| size_of(&right, d)))
        .collect();
    let cat = |parts: &[&[i64]]| -> Vec<i64> { parts.concat() };
    let lperm = cat(&[&lro, &lo, sum_dims, &ro]);
    let rperm = cat(&[&lro, sum_dims, &ro, &lo]);
    // The output permutation puts each dim back where it came from.
    let mut operm = vec![0i64; lperm.len()];
    for (i, &d) in lperm.iter().enumerate() {
        operm[d as usize] = i as i64;
    }
    let l = reshape_of(
        &one(permute(&left, &lperm)?)?,
        &[lro_size, lo_size, sum_size],
    )?;
    let r = reshape_of(
        &one(permute(&right, &rperm)?)?,
        &[lro_size, sum_size, ro_size],
    )?;
    let result = binary(op_def!("aten.bmm.default")?, &l, &r)?;
    let result = one(view(&result, &out_size)?)?;
    one(permute(&result, &operm)?)
}

// ---- complex views and the torch.fft composites -------------------------------------------------------

/// `real` / `imag` (`part` 0 / 1) of a complex tensor: `select(view_as_real(self), -1, part)` (the C++
/// composite); `real` of a real tensor is the tensor itself.
fn real_imag(a: &Args<Tensor>, part: i64) -> Result<Decomposed> {
    let t = a.tensor("self")?;
    if !t.dtype().is_complex() {
        return Ok(Decomposed::from(t.clone()));
    }
    let vr = unary(op_def!("aten.view_as_real.default")?, t)?;
    let last = vr.dim() as i64 - 1;
    call(
        op_def!("aten.select.int")?,
        vec![
            Value::Tensor(vr),
            Value::Int(SymInt::Int(last)),
            Value::Int(SymInt::Int(part)),
        ],
    )
    .map(Decomposed::from)
}

/// `aten.real.default`.
pub(crate) fn real(a: &Args<Tensor>) -> Result<Decomposed> {
    real_imag(a, 0)
}

/// `aten.imag.default`.
pub(crate) fn imag(a: &Args<Tensor>) -> Result<Decomposed> {
    real_imag(a, 1)
}

/// PyTorch's `resize_fft_input` for one dim: sliced to `size`, or zero-padded (`constant_pad_nd`).
fn resize_fft_input(x: Tensor, dim: usize, size: &SymInt) -> Result<Tensor> {
    let cur = x.sym_size(dim as i64)?;
    if cur.guard_lt(size) {
        let nd = x.dim();
        let mut pad = vec![SymInt::Int(0); 2 * nd];
        pad[2 * nd - 2 * dim - 1] = size - &cur;
        return one(call(
            op_def!("aten.constant_pad_nd.default")?,
            vec![Value::Tensor(x), Value::Ints(pad)],
        )?);
    }
    if size.guard_lt(&cur) {
        return one(call(
            op_def!("aten.slice.Tensor")?,
            vec![
                Value::Tensor(x),
                Value::Int(SymInt::Int(dim as i64)),
                Value::Int(SymInt::Int(0)),
                Value::Int(size.clone()),
            ],
        )?);
    }
    Ok(x)
}

/// PyTorch's `promote_tensor_fft`: integers to the default float dtype; with `require_complex`, real
/// tensors to their complex dtype.
fn promote_tensor_fft(t: Tensor, require_complex: bool) -> Result<Tensor> {
    let mut dt = t.dtype();
    if !dt.is_floating_point() && !dt.is_complex() {
        dt = DType::F32;
    }
    if require_complex && !dt.is_complex() {
        dt = dt.to_complex().ok_or(Error::DTypeNotSupported {
            op: "fft (oxport has no ComplexHalf)".into(),
            dtype: dt,
        })?;
    }
    if dt == t.dtype() {
        return Ok(t);
    }
    one(call(
        op_def!("aten.to.dtype")?,
        vec![Value::Tensor(t), Value::ScalarType(dt)],
    )?)
}

/// `torch.fft.fft / ifft / rfft / irfft` as their C++ composites (`fft_c2c`, `fft_r2c`, `fft_c2r` in
/// `aten/src/ATen/native/SpectralOps.cpp`).
fn fft_composite(a: &Args<Tensor>, c: super::defs::Composite) -> Result<Decomposed> {
    use super::defs::Composite;
    let t = a.tensor("self")?.clone();
    let d = crate::tensor::wrap_dim(a.int("dim")?, t.dim())?;
    let n = a.opt_symint("n")?.cloned();
    let norm = super::defs::norm_from_string(a.opt_str("norm")?, c.forward())?;
    let dims = Value::Ints(vec![SymInt::Int(d as i64)]);
    let norm = Value::Int(SymInt::Int(norm));
    let complex_path = t.dtype().is_complex() && matches!(c, Composite::Fft | Composite::Ifft);
    if c == Composite::Irfft {
        let x = promote_tensor_fft(t, true)?;
        let last = match &n {
            Some(n) => n.clone(),
            None => &(&x.sym_size(d as i64)? - 1) * 2,
        };
        let x = match &n {
            Some(n) => resize_fft_input(x, d, &(&(n / 2) + 1))?,
            None => x,
        };
        return call(
            op_def!("aten._fft_c2r.default")?,
            vec![Value::Tensor(x), dims, norm, Value::Int(last)],
        )
        .map(Decomposed::from);
    }
    if complex_path {
        let x = match &n {
            Some(n) => resize_fft_input(t, d, n)?,
            None => t,
        };
        return call(
            op_def!("aten._fft_c2c.default")?,
            vec![Value::Tensor(x), dims, norm, Value::Bool(c.forward())],
        )
        .map(Decomposed::from);
    }
    let x = promote_tensor_fft(t, false)?;
    let x = match &n {
        Some(n) => resize_fft_input(x, d, n)?,
        None => x,
    };
    let out = one(call(
        op_def!("aten._fft_r2c.default")?,
        vec![
            Value::Tensor(x),
            dims,
            norm,
            Value::Bool(c == Composite::Rfft),
        ],
    )?)?;
    if c.forward() {
        Ok(Decomposed::from(out))
    } else {
        unary(op_def!("aten._conj.default")?, &out).map(Decomposed::from)
    }
}

/// `aten.fft_fft.default`.
pub(crate) fn fft_fft(a: &Args<Tensor>) -> Result<Decomposed> {
    fft_composite(a, super::defs::Composite::Fft)
}
/// `aten.fft_ifft.default`.
pub(crate) fn fft_ifft(a: &Args<Tensor>) -> Result<Decomposed> {
    fft_composite(a, super::defs::Composite::Ifft)
}
/// `aten.fft_rfft.default`.
pub(crate) fn fft_rfft(a: &Args<Tensor>) -> Result<Decomposed> {
    fft_composite(a, super::defs::Composite::Rfft)
}
/// `aten.fft_irfft.default`.
pub(crate) fn fft_irfft(a: &Args<Tensor>) -> Result<Decomposed> {
    fft_composite(a, super::defs::Composite::Irfft)
}

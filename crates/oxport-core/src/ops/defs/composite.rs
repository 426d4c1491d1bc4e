//! CompositeImplicit ops that stay in training-IR programs of real models (transformers, timm): each
//! is declared with its meta function and runs as its decomposition (no kernel of its own), so
//! `run_decompositions()` and the runtime share one definition.
use super::*;

pub(super) fn register(r: &mut Builder) {
    r.decomposed(
        "aten.type_as.default",
        meta_type_as,
        decompositions::type_as,
    );
    r.decomposed(
        "aten.reshape_as.default",
        meta_reshape_as,
        decompositions::reshape_as,
    );
    for name in [
        "aten.where.ScalarOther",
        "aten.where.ScalarSelf",
        "aten.where.Scalar",
    ] {
        r.decomposed(name, pointwise::meta_where, |a| {
            let result = result_type(&[&a.operand("self")?, &a.operand("other")?]);
            decompositions::where_scalar(a, result)
        });
    }
    r.decomposed(
        "aten.min.other",
        pointwise::meta_binary,
        decompositions::min_other,
    );
    r.decomposed(
        "aten.max.other",
        pointwise::meta_binary,
        decompositions::max_other,
    );
    r.decomposed("aten.diff.default", meta_diff, decompositions::diff);
    r.decomposed(
        "aten.repeat_interleave.self_int",
        meta_repeat_interleave,
        decompositions::repeat_interleave,
    );
    // conv1d/2d/3d with padding='same' / 'valid': convolution after PyTorch's `_convolution_mode`.
    for name in [
        "aten.conv1d.padding",
        "aten.conv2d.padding",
        "aten.conv3d.padding",
    ] {
        r.decomposed(name, meta_conv_padding, decompositions::conv_padding);
    }
    // `x.expand_as(y)`, `x.view_as(y)`: `expand` / `view` to `y`'s sizes.
    r.decomposed(
        "aten.expand_as.default",
        |a| meta_sized_like(a, crate::op_def!("aten.expand.default")?),
        |a| decompositions::sized_like(a, crate::op_def!("aten.expand.default")?),
    );
    r.decomposed(
        "aten.view_as.default",
        |a| meta_sized_like(a, crate::op_def!("aten.view.default")?),
        |a| decompositions::sized_like(a, crate::op_def!("aten.view.default")?),
    );
    r.decomposed(
        "aten.linalg_vector_norm.default",
        reduce::meta_vector_norm,
        decompositions::linalg_vector_norm,
    );
    r.decomposed(
        "aten._weight_norm.default",
        meta_weight_norm,
        decompositions::weight_norm,
    );
    r.decomposed("aten.einsum.default", meta_einsum, decompositions::einsum);
    // Aliases: the meta and the decomposition are the target op's, over re-ordered arguments.
    macro_rules! alias {
        ($($name:literal => $target:literal ($($arg:tt),*);)*) => {$({
            fn args<T: Clone>(a: &Args<T>) -> Result<Vec<Value<T>>> {
                Ok(vec![$(alias!(@arg a, $arg)),*])
            }
            r.decomposed(
                $name,
                |a| {
                    let op = crate::op_def!($target)?;
                    (op.meta)(&Args::bind(&op.schema, args(a)?, vec![])?)
                },
                |a| decompositions::alias(crate::op_def!($target)?, args(a)?),
            );
        })*};
        (@arg $a:ident, None) => { Value::None };
        (@arg $a:ident, $n:literal) => { $a.get($n)?.clone() };
    }
    alias! {
        "aten.__and__.Tensor" => "aten.bitwise_and.Tensor"("self", "other");
        "aten.__and__.Scalar" => "aten.bitwise_and.Scalar"("self", "other");
        "aten.__or__.Tensor" => "aten.bitwise_or.Tensor"("self", "other");
        "aten.__or__.Scalar" => "aten.bitwise_or.Scalar"("self", "other");
        "aten.__xor__.Tensor" => "aten.bitwise_xor.Tensor"("self", "other");
        "aten.__xor__.Scalar" => "aten.bitwise_xor.Scalar"("self", "other");
        "aten.clamp_min.default" => "aten.clamp.default"("self", "min");
        "aten.clamp_max.default" => "aten.clamp.default"("self", None, "max");
        "aten.swapaxes.default" => "aten.transpose.int"("self", "axis0", "axis1");
        "aten.swapdims.default" => "aten.transpose.int"("self", "dim0", "dim1");
    }
}

fn meta_type_as(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, other) = (meta_self(a)?, a.tensor("other")?);
    if t.dtype == other.dtype {
        return Ok(vec![Value::Tensor(t.clone())]);
    }
    one(other.dtype, t.sizes.clone())
}

fn meta_reshape_as(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, other) = (meta_self(a)?, a.tensor("other")?);
    if t.numel() != other.numel() {
        return Err(Error::shape(format!(
            "shape '{}' is invalid for input of size {}",
            fmt_shape(&other.sizes),
            t.numel()
        )));
    }
    one(t.dtype, other.sizes.clone())
}

/// The meta of `target(self, other.sizes)`.
fn meta_sized_like(
    a: &Args<TensorMeta>,
    target: &'static crate::ops::OpDef,
) -> Result<Vec<Value<TensorMeta>>> {
    let other = a.tensor("other")?;
    let args = vec![a.get("self")?.clone(), Value::Ints(other.sizes.clone())];
    (target.meta)(&Args::bind(&target.schema, args, vec![])?)
}

fn meta_repeat_interleave(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let repeats = a.symint("repeats")?;
    if repeats.as_int().is_some_and(|r| r < 0) {
        return Err(Error::value("Repeats must be non-negative"));
    }
    match a.opt_int("dim")? {
        None => one(t.dtype, vec![t.numel().mul(repeats)]),
        Some(d) => {
            let d = wrap(d, t)?;
            let mut sizes = t.sizes.clone();
            if t.dim() > 0 {
                sizes[d] = sizes[d].mul(repeats);
            }
            one(t.dtype, sizes)
        }
    }
}

/// The meta of `convolution` over the input padded as `_convolution_mode` pads it.
fn meta_conv_padding(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    let spatial = w.dim().saturating_sub(2);
    let dilation = a.ints("dilation")?;
    let (sym_pad, extra) = decompositions::same_padding(
        a.str("padding")?,
        &w.concrete_sizes()?,
        &dilation,
        &a.ints("stride")?,
    )?;
    let mut input = x.clone();
    if let Some(extra) = extra {
        // The right-side extra of each spatial dim (last dims of the input).
        let nd = input.dim();
        for (i, e) in extra.iter().enumerate() {
            if nd >= spatial && *e > 0 {
                let d = nd - spatial + i;
                input.sizes[d] = input.sizes[d].add(&SymInt::Int(*e));
            }
        }
        input = TensorMeta::contiguous(input.dtype, input.sizes.clone());
    }
    let op = crate::op_def!("aten.convolution.default")?;
    let ints = |v: &[i64]| Value::Ints(v.iter().map(|&i| SymInt::Int(i)).collect());
    let args = vec![
        Value::Tensor(input),
        a.get("weight")?.clone(),
        a.get("bias")?.clone(),
        a.get("stride")?.clone(),
        ints(&sym_pad),
        ints(&dilation),
        Value::Bool(false),
        ints(&vec![0; spatial]),
        a.get("groups")?.clone(),
    ];
    (op.meta)(&Args::bind(&op.schema, args, vec![])?)
}

fn meta_diff(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dim() == 0 {
        return Err(Error::value(
            "diff expects input to be at least one-dimensional",
        ));
    }
    let n = a.int("n")?;
    if n < 0 {
        return Err(Error::value(format!(
            "order must be non-negative but got {n}"
        )));
    }
    let d = wrap(a.int("dim")?, t)?;
    let mut sizes = t.sizes.clone();
    let mut dtype = t.dtype;
    for name in ["prepend", "append"] {
        if let Some(p) = a.opt_tensor(name)? {
            if p.dim() != t.dim() {
                return Err(Error::value(
                    "diff expects prepend or append to be the same dimension as input",
                ));
            }
            for i in 0..t.dim() {
                if i != d && p.sizes[i] != t.sizes[i] {
                    return Err(Error::value(format!(
                        "diff expects the shape of tensor to prepend or append to match that of input except along the differencing dimension; input.size({i}) = {}, but got tensor.size({i}) = {}",
                        t.sizes[i], p.sizes[i]
                    )));
                }
            }
            if n > 0 {
                sizes[d] = sizes[d].add(&p.sizes[d]);
                if p.dtype != t.dtype {
                    dtype = crate::dtype::promote_types(dtype, p.dtype);
                }
            }
        }
    }
    let len = sizes[d]
        .as_int()
        .ok_or_else(|| Error::Symbolic("diff over a symbolic dim".into()))?;
    sizes[d] = SymInt::Int(len - n.min(len));
    one(dtype, sizes)
}

fn meta_weight_norm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (v, g) = (a.tensor("v")?, a.tensor("g")?);
    let dim = a.int("dim")?;
    if dim != -1 {
        wrap(dim, v)?;
    }
    let dt = result_type(&[&Operand::Tensor(v), &Operand::Tensor(g)]);
    let sizes = broadcast_shapes(&[&v.sizes, &g.sizes])?;
    one(dt, sizes)
}

fn meta_einsum(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let ops = a.tensors("tensors")?;
    let sizes: Vec<Vec<SymInt>> = ops.iter().map(|t| t.sizes.clone()).collect();
    let out = super::super::einsum::output_sizes(a.str("equation")?, &sizes)?;
    let dt = ops.first().map_or(DType::F32, |t| t.dtype);
    if let Some(o) = ops.iter().find(|t| t.dtype != dt) {
        return Err(Error::DType(format!(
            "expected scalar type {} but found {}",
            dt, o.dtype
        )));
    }
    one(dt, out)
}

//! Core ATen factories and data movement not covered elsewhere: `scalar_tensor`, `empty`,
//! `empty_strided`, `fill`, `copy`, `repeat`, the padding family (`constant_pad_nd`, reflection and
//! replication pads, computed by `aten.pad`'s kernel), and the activations `leaky_relu`, `elu` and
//! `clamp.Tensor`.
use super::*;
use crate::dtype::Scalar;
use crate::op_def;
use crate::ops::registry::call_def;
use crate::tensor::kernels::elementwise::{binary_map, ternary_map, unary_map};

pub(super) fn register(r: &mut Builder) {
    r.out_op("aten.scalar_tensor.default", meta_scalar_tensor, |a, o| {
        fill_into(&o[0], a.scalar("s")?)
    });
    r.out_op("aten.empty.memory_format", meta_empty, |_, _| Ok(()));
    r.out_op("aten.empty_strided.default", meta_empty_strided, |_, _| {
        Ok(())
    });
    r.out_op("aten.fill.Scalar", meta_same_as_self, |a, o| {
        fill_into(&o[0], a.scalar("value")?)
    });
    r.out_op("aten.copy.default", meta_copy, |a, o| {
        let src = a.tensor("src")?;
        let out = &o[0];
        let expanded = expand_to(src, out.sizes_untraced())?;
        out.assign_untraced(&expanded)
    });
    r.out_op("aten.repeat.default", meta_repeat, repeat);
    for name in [
        "aten.constant_pad_nd.default",
        "aten.reflection_pad1d.default",
        "aten.reflection_pad2d.default",
        "aten.reflection_pad3d.default",
        "aten.replication_pad2d.default",
        "aten.replication_pad3d.default",
    ] {
        r.op(name, meta_pad_family, pad_family);
    }
    r.complex_ops(&["aten.constant_pad_nd.default"]);
    r.op("aten.leaky_relu.default", meta_float_activation, |a, o| {
        let slope = a.scalar("negative_slope")?.to_f64();
        float_unary(a, o, move |x| if x > 0.0 { x } else { x * slope })
    });
    r.op("aten.elu.default", meta_float_activation, |a, o| {
        let alpha = a.scalar("alpha")?.to_f64();
        let scale = a.scalar("scale")?.to_f64();
        let input_scale = a.scalar("input_scale")?.to_f64();
        float_unary(a, o, move |x| {
            if x > 0.0 {
                x * scale
            } else {
                (x * input_scale).exp_m1() * alpha * scale
            }
        })
    });
    r.op("aten.clamp.Tensor", meta_clamp_tensor, clamp_tensor);
}

fn meta_scalar_tensor(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    one(a.opt_dtype("dtype")?.unwrap_or(DType::F32), vec![])
}

fn meta_empty(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let sizes = a.symints("size")?.to_vec();
    check_sizes(&sizes)?;
    one(a.opt_dtype("dtype")?.unwrap_or(DType::F32), sizes)
}

fn meta_empty_strided(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let sizes = a.symints("size")?.to_vec();
    let strides = a.symints("stride")?.to_vec();
    check_sizes(&sizes)?;
    if sizes.len() != strides.len() {
        return Err(Error::shape(format!(
            "mismatch in length of strides and shape: {} vs {}",
            strides.len(),
            sizes.len()
        )));
    }
    Ok(vec![Value::Tensor(TensorMeta {
        dtype: a.opt_dtype("dtype")?.unwrap_or(DType::F32),
        sizes,
        strides,
        offset: SymInt::Int(0),
    })])
}

fn meta_same_as_self(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    one(t.dtype, t.sizes.clone())
}

/// Writes `s` into every element of `out` (through its view).
pub(super) fn fill_into(out: &Tensor, s: Scalar) -> Result<()> {
    if out.is_contiguous() {
        return crate::dispatch_dtype!(out.dtype(), T => {
            let v = crate::tensor::scalar_to::<T>(s);
            out.with_contiguous_mut::<T, _>(|o| o.fill(v))
        });
    }
    let value = Tensor::scalar_of(s, out.dtype());
    out.assign_untraced(&expand_to(&value, out.sizes_untraced())?)
}

/// `src` broadcast to `sizes` (a view).
fn expand_to(src: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    let nd = sizes.len();
    let sd = src.dim();
    if sd > nd {
        return Err(Error::shape(
            "copy: the source has more dims than the destination",
        ));
    }
    let mut strides = vec![0usize; nd];
    for i in 0..sd {
        let (s, d) = (src.sizes_untraced()[i], sizes[nd - sd + i]);
        strides[nd - sd + i] = if s == d {
            src.strides()[i]
        } else if s == 1 {
            0
        } else {
            return Err(Error::shape(format!(
                "The size of tensor a ({d}) must match the size of tensor b ({s}) at non-singleton dimension {}",
                nd - sd + i
            )));
        };
    }
    src.restride(sizes, &strides, src.storage_offset())
}

fn meta_copy(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let src = a.tensor("src")?;
    let b = broadcast_shapes(&[&t.sizes, &src.sizes])?;
    if b.len() != t.sizes.len() || b.iter().zip(&t.sizes).any(|(x, y)| x != y) {
        return Err(Error::shape(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            fmt_shape(&t.sizes),
            fmt_shape(&b)
        )));
    }
    one(t.dtype, t.sizes.clone())
}

fn meta_repeat(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let reps = a.symints("repeats")?;
    if reps.len() < t.dim() {
        return Err(Error::value(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor",
        ));
    }
    let lead = reps.len() - t.dim();
    let mut sizes = vec![];
    for (i, r) in reps.iter().enumerate() {
        if r.guard_lt(&SymInt::Int(0)) {
            return Err(Error::value(format!(
                "Trying to create tensor with negative dimension {r}: {}",
                fmt_shape(reps)
            )));
        }
        sizes.push(if i < lead {
            r.clone()
        } else {
            t.sizes[i - lead].mul(r)
        });
    }
    one(t.dtype, sizes)
}

/// `repeat`: each output element reads the input at its index modulo the input's size.
fn repeat(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let t = a.tensor("self")?;
    let out = &o[0];
    let out_sizes = out.sizes_untraced().to_vec();
    let lead = out_sizes.len() - t.dim();
    // View the input as [1]*lead + sizes, then tile by expanding a (rep, size) pair per dim.
    let mut tiled_sizes = vec![];
    let mut tiled_strides = vec![];
    for (i, &n) in out_sizes.iter().enumerate() {
        if i < lead {
            tiled_sizes.push(n);
            tiled_strides.push(0);
        } else {
            let s = t.sizes_untraced()[i - lead];
            let reps = n.checked_div(s).unwrap_or(0);
            tiled_sizes.extend([reps, s]);
            tiled_strides.extend([0, t.strides()[i - lead]]);
        }
    }
    let tiled = t.restride(&tiled_sizes, &tiled_strides, t.storage_offset())?;
    let flat = tiled.contiguous_untraced();
    let shaped = flat.restride(
        &out_sizes,
        &crate::tensor::contiguous_strides(&out_sizes),
        flat.storage_offset(),
    )?;
    out.assign_untraced(&shaped)
}

/// The `aten.pad` arguments of a padding-family call: (input, pad, mode, value).
fn as_pad_args<T: Clone>(a: &Args<T>) -> Result<Vec<Value<T>>> {
    let name = a.schema.name.as_str();
    let mode = if name.starts_with("aten::reflection") {
        "reflect"
    } else if name.starts_with("aten::replication") {
        "replicate"
    } else {
        "constant"
    };
    let pad = if mode == "constant" {
        a.get("pad")?.clone()
    } else {
        a.get("padding")?.clone()
    };
    let value = if mode == "constant" {
        Value::Float(a.scalar("value")?.to_f64())
    } else {
        Value::None
    };
    Ok(vec![
        a.get("self")?.clone(),
        pad,
        Value::Str(mode.into()),
        value,
    ])
}

fn meta_pad_family(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let pad = op_def!("aten.pad.default")?;
    let bound = Args::bind(&pad.schema, as_pad_args(a)?, vec![])?;
    (pad.meta)(&bound)
}

fn pad_family(a: &Args<Tensor>, _: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    call_def(op_def!("aten.pad.default")?, as_pad_args(a)?, vec![])
}

fn meta_float_activation(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_floating_point() {
        let kernel = match a.schema.name.as_str() {
            "aten::leaky_relu" => "leaky_relu_cpu",
            _ => "elu_cpu",
        };
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype: t.dtype,
        });
    }
    one(t.dtype, t.sizes.clone())
}

/// A float activation computed in f64 and rounded once to the input's dtype.
fn float_unary(
    a: &Args<Tensor>,
    o: &[Value<TensorMeta>],
    f: impl Fn(f64) -> f64 + Sync + Send,
) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let dt = out_dtype(o, 0)?;
    let r = unary_map::<f64, f64>(&as_dtype(t, DType::F64), f);
    out1(as_dtype(&r, dt))
}

fn meta_clamp_tensor(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let (lo, hi) = (a.opt_tensor("min")?, a.opt_tensor("max")?);
    if lo.is_none() && hi.is_none() {
        return Err(Error::value(
            "torch.clamp: At least one of 'min' or 'max' must not be None",
        ));
    }
    let mut operands = vec![Operand::Tensor(t)];
    operands.extend([lo, hi].into_iter().flatten().map(Operand::Tensor));
    let ops: Vec<&Operand<&TensorMeta>> = operands.iter().collect();
    let dt = result_type(&ops);
    let shapes: Vec<&[SymInt]> = [Some(t), lo, hi]
        .into_iter()
        .flatten()
        .map(|m| m.sizes.as_slice())
        .collect();
    one(dt, broadcast_shapes(&shapes)?)
}

/// `clamp(self, min, max)` with tensor bounds: `min(max(x, lo), hi)`, NaN propagating from any operand.
fn clamp_tensor(a: &Args<Tensor>, o: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(o, 0)?;
    let sizes = out_sizes(o, 0)?;
    let x = as_dtype(a.tensor("self")?, DType::F64);
    let nan_max = |p: f64, q: f64| {
        if p.is_nan() || q.is_nan() {
            f64::NAN
        } else {
            p.max(q)
        }
    };
    let nan_min = |p: f64, q: f64| {
        if p.is_nan() || q.is_nan() {
            f64::NAN
        } else {
            p.min(q)
        }
    };
    let r = match (a.opt_tensor("min")?, a.opt_tensor("max")?) {
        (Some(lo), Some(hi)) => ternary_map::<f64, f64, f64, f64>(
            &x,
            &as_dtype(lo, DType::F64),
            &as_dtype(hi, DType::F64),
            &sizes,
            move |p, l, h| nan_min(nan_max(p, l), h),
        ),
        (Some(lo), None) => {
            binary_map::<f64, f64, f64>(&x, &as_dtype(lo, DType::F64), &sizes, nan_max)
        }
        (None, Some(hi)) => {
            binary_map::<f64, f64, f64>(&x, &as_dtype(hi, DType::F64), &sizes, nan_min)
        }
        (None, None) => {
            return Err(Error::value(
                "torch.clamp: At least one of 'min' or 'max' must not be None",
            ))
        }
    };
    out1(as_dtype(&r, dt))
}

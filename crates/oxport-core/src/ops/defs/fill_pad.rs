//! Core ATen factories and data movement not covered elsewhere: `scalar_tensor`, `empty`,
//! `empty_strided`, `fill`, `copy`, `repeat`, the padding family (`constant_pad_nd`, reflection and
//! replication pads, computed by `aten.pad`'s kernel), and the activations `leaky_relu`, `elu` and
//! `clamp.Tensor`.
use super::pointwise::{f64_unary_into, first};
use super::*;
use crate::dtype::Scalar;
use crate::op_def;
use crate::ops::registry::Kernel;
use crate::tensor::kernels::elementwise::ternary_map_into;
use crate::tensor::{cast_element, Element};

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
    // The padding family, each computed by `aten.pad` in its mode.
    macro_rules! pad {
        ($($name:literal, $mode:literal;)*) => {$(
            r.out_op($name, |a| meta_pad_family(a, $mode), |a, o| pad_family(a, o, $mode));
        )*};
    }
    pad! {
        "aten.constant_pad_nd.default", "constant";
        "aten.reflection_pad1d.default", "reflect";
        "aten.reflection_pad2d.default", "reflect";
        "aten.reflection_pad3d.default", "reflect";
        "aten.replication_pad2d.default", "replicate";
        "aten.replication_pad3d.default", "replicate";
    }
    r.complex_ops(&["aten.constant_pad_nd.default"]);
    r.out_op(
        "aten.leaky_relu.default",
        |a| meta_float_activation(a, "leaky_relu_cpu"),
        |a, o| {
            let slope = a.scalar("negative_slope")?.to_f64();
            float_unary(a, o, move |x| if x > 0.0 { x } else { x * slope })
        },
    );
    r.out_op(
        "aten.elu.default",
        |a| meta_float_activation(a, "elu_cpu"),
        |a, o| {
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
        },
    );
    r.out_op("aten.clamp.Tensor", meta_clamp_tensor, clamp_tensor);
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

/// The `aten.pad` arguments of a padding-family call in `mode`: (input, pad, mode, value).
fn as_pad_args<T: Clone>(a: &Args<T>, mode: &str) -> Result<Vec<Value<T>>> {
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

fn meta_pad_family(a: &Args<TensorMeta>, mode: &str) -> Result<Vec<Value<TensorMeta>>> {
    let pad = op_def!("aten.pad.default")?;
    let bound = Args::bind(&pad.schema, as_pad_args(a, mode)?, vec![])?;
    (pad.meta)(&bound)
}

/// Runs `aten.pad`'s kernel into the given output: directly when it is an out kernel, else by copying
/// its result in.
fn pad_family(a: &Args<Tensor>, o: &mut [Tensor], mode: &str) -> Result<()> {
    let pad = op_def!("aten.pad.default")?;
    let bound = Args::bind(&pad.schema, as_pad_args(a, mode)?, vec![])?;
    if let Some(Kernel::Out(k)) = pad.kernel {
        return k(&bound, o);
    }
    let r = pad.run(&bound)?;
    match r.first() {
        Some(Value::Tensor(t)) => first(o)?.assign_untraced(t),
        _ => Err(Error::value("aten.pad returned no tensor")),
    }
}

/// A float-only activation; `kernel` is the CPU kernel PyTorch names refusing other dtypes.
fn meta_float_activation(a: &Args<TensorMeta>, kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype: t.dtype,
        });
    }
    one(t.dtype, t.sizes.clone())
}

/// A float activation computed in f64 and cast once to the input's dtype.
fn float_unary(
    a: &Args<Tensor>,
    o: &mut [Tensor],
    f: impl Fn(f64) -> f64 + Sync + Send,
) -> Result<()> {
    f64_unary_into(&as_dtype(a.tensor("self")?, DType::F64), first(o)?, f)
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

/// `clamp(self, min, max)` with tensor bounds: `min(max(x, lo), hi)` in f64, NaN propagating from any
/// operand, cast to the output's dtype. A missing bound is -inf / +inf, which leaves every value (NaN
/// included) as it is.
fn clamp_tensor(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    fn to<O: Element>(x: &Tensor, lo: &Tensor, hi: &Tensor, out: &Tensor) -> Result<()> {
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
        ternary_map_into::<f64, f64, f64, O>(x, lo, hi, out, move |p, l, h| {
            cast_element::<f64, O>(nan_min(nan_max(p, l), h))
        })
    }
    let out = first(o)?;
    let (lo, hi) = (a.opt_tensor("min")?, a.opt_tensor("max")?);
    if lo.is_none() && hi.is_none() {
        return Err(Error::value(
            "torch.clamp: At least one of 'min' or 'max' must not be None",
        ));
    }
    let bound = |b: Option<&Tensor>, missing: f64| match b {
        Some(t) => as_dtype(t, DType::F64),
        None => Tensor::scalar(missing),
    };
    let x = as_dtype(a.tensor("self")?, DType::F64);
    let (lo, hi) = (bound(lo, f64::NEG_INFINITY), bound(hi, f64::INFINITY));
    let d = out.dtype();
    crate::dispatch_real_dtype!(d, O => to::<O>(&x, &lo, &hi, out), complex => Err(Error::DTypeNotSupported { op: "clamp".into(), dtype: d }))
}

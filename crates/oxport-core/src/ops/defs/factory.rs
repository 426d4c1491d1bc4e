//! Tensor factories: full, zeros, ones, *_like, arange.
use super::*;
use crate::dtype::Scalar;
use crate::ops::value::SymScalar;

pub(super) fn register(r: &mut Builder) {
    r.out_op("aten.full.default", meta_full, |a, o| {
        fill(o, a.scalar("fill_value")?)
    });
    r.out_op("aten.zeros.default", meta_zeros_ones, |_, o| {
        fill(o, Scalar::Int(0))
    })
    .decomposition(decompositions::zeros);
    r.out_op("aten.ones.default", meta_zeros_ones, |_, o| {
        fill(o, Scalar::Int(1))
    })
    .decomposition(decompositions::ones);
    r.out_op("aten.full_like.default", meta_like, |a, o| {
        fill(o, a.scalar("fill_value")?)
    });
    r.out_op("aten.zeros_like.default", meta_like, |_, o| {
        fill(o, Scalar::Int(0))
    });
    r.out_op("aten.ones_like.default", meta_like, |_, o| {
        fill(o, Scalar::Int(1))
    });
    // No kernels of their own: the runtime runs their decompositions (`full`).
    r.decomposed(
        "aten.new_zeros.default",
        meta_new,
        decompositions::new_zeros,
    );
    r.decomposed("aten.new_ones.default", meta_new, decompositions::new_ones);
    r.decomposed("aten.new_full.default", meta_new, decompositions::new_full);
    r.out_op("aten.arange.default", meta_arange, arange);
    r.out_op("aten.arange.start", meta_arange, arange);
    r.out_op("aten.arange.start_step", meta_arange, arange);
}

/// `full(size, fill_value)`: the dtype defaults to the fill value's (`torch.full((2,), 1)` is int64).
fn meta_full(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let default = a.scalar("fill_value")?.natural_dtype();
    meta_factory(a, default)
}

/// `zeros(size)` / `ones(size)`: float32 by default.
fn meta_zeros_ones(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    meta_factory(a, DType::F32)
}

fn meta_factory(a: &Args<TensorMeta>, default: DType) -> Result<Vec<Value<TensorMeta>>> {
    let sizes = a.symints("size")?.to_vec();
    check_sizes(&sizes)?;
    one(a.opt_dtype("dtype")?.unwrap_or(default), sizes)
}

/// `x.new_*(size, dtype=None)`: `size`, in `dtype` or x's dtype.
fn meta_new(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let sizes = a.symints("size")?.to_vec();
    check_sizes(&sizes)?;
    one(a.opt_dtype("dtype")?.unwrap_or(t.dtype), sizes)
}

fn meta_like(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    one(a.opt_dtype("dtype")?.unwrap_or(t.dtype), t.sizes.clone())
}

fn fill(o: &mut [Tensor], value: Scalar) -> Result<()> {
    super::fill_pad::fill_into(&o[0], value)
}

fn arange_params<T>(a: &Args<T>) -> Result<(Scalar, Scalar, Scalar)> {
    let start = if a.schema.arg_index("start").is_some() {
        a.scalar("start")?
    } else {
        Scalar::Int(0)
    };
    let step = if a.schema.arg_index("step").is_some() {
        a.scalar("step")?
    } else {
        Scalar::Int(1)
    };
    Ok((start, a.scalar("end")?, step))
}

fn arange_len(start: f64, end: f64, step: f64) -> Result<usize> {
    if step == 0.0 {
        return Err(Error::value("step must be nonzero"));
    }
    if !start.is_finite() || !end.is_finite() {
        return Err(Error::value(format!("unsupported range: {start} -> {end}")));
    }
    if (step > 0.0 && end < start) || (step < 0.0 && end > start) {
        return Err(Error::value(
            "upper bound and lower bound inconsistent with step sign",
        ));
    }
    let n = ((end - start) / step).ceil();
    if n > crate::tensor::MAX_NUMEL as f64 {
        return Err(Error::value(format!("arange would create {n} elements")));
    }
    Ok(n as usize)
}

/// The length of an integer `arange` with a symbolic bound, as PyTorch's reference computes it:
/// `(end - start + step - sgn(step)) // step`, which simplifies to `s0` for `arange(s0)`, `arange(1, s0 + 1)`
/// and `arange(0, 2*s0, 2)`. `None` when an argument is not an int.
fn sym_arange_len(a: &Args<TensorMeta>) -> Result<Option<SymInt>> {
    let get = |name: &str, default: i64| -> Result<Option<SymInt>> {
        if a.schema.arg_index(name).is_none() {
            return Ok(Some(SymInt::Int(default)));
        }
        Ok(a.sym_scalar(name)?.as_sym_int())
    };
    let symbolic = ["start", "end", "step"].iter().any(|n| {
        a.schema.arg_index(n).is_some() && matches!(a.sym_scalar(n), Ok(SymScalar::Int(_)))
    });
    if !symbolic {
        return Ok(None);
    }
    let (Some(start), Some(end), Some(step)) = (
        get("start", 0)?,
        a.sym_scalar("end")?.as_sym_int(),
        get("step", 1)?,
    ) else {
        return Err(Error::Symbolic(
            "arange with a symbolic bound and a float argument is not supported yet".into(),
        ));
    };
    let positive = SymInt::Int(0).guard_lt(&step);
    if !positive && !step.guard_lt(&SymInt::Int(0)) {
        return Err(Error::value("step must be nonzero"));
    }
    // The bounds must be in the step's direction.
    let backwards = if positive {
        end.guard_lt(&start)
    } else {
        start.guard_lt(&end)
    };
    if backwards {
        return Err(Error::value(
            "upper bound and larger bound inconsistent with step sign",
        ));
    }
    let sgn = SymInt::Int(if positive { 1 } else { -1 });
    Ok(Some(end.sub(&start).add(&step).sub(&sgn).floor_div(&step)))
}

fn meta_arange(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    if let Some(n) = sym_arange_len(a)? {
        return one(a.opt_dtype("dtype")?.unwrap_or(DType::I64), vec![n]);
    }
    let (start, end, step) = arange_params(a)?;
    let any_float = [start, end, step].iter().any(|s| s.is_float());
    let dt = a
        .opt_dtype("dtype")?
        .unwrap_or(if any_float { DType::F32 } else { DType::I64 });
    // The length uses the arguments as given; integer aranges then truncate start and step
    // (PyTorch's accscalar_t is int64 there), so a truncated step of 0 is an error too.
    let n = arange_len(start.to_f64(), end.to_f64(), step.to_f64())?;
    if !dt.is_floating_point() && step.to_i64() == 0 {
        return Err(Error::value("step must be nonzero"));
    }
    one(dt, vec![SymInt::from(n)])
}

fn arange(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = &o[0];
    let dt = out.dtype();
    let (start, _, step) = arange_params(a)?;
    crate::dispatch_dtype!(dt, O => out.with_contiguous_mut::<O, _>(|v| {
        if dt.is_floating_point() {
            let (s, st) = (start.to_f64(), step.to_f64());
            for (i, x) in v.iter_mut().enumerate() {
                *x = crate::tensor::cast_element::<f64, O>(s + st * i as f64);
            }
        } else {
            let (s, st) = (start.to_i64(), step.to_i64());
            for (i, x) in v.iter_mut().enumerate() {
                *x = crate::tensor::cast_element::<i64, O>(s.wrapping_add(st.wrapping_mul(i as i64)));
            }
        }
    }))
}

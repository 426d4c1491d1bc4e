//! Reductions (sum, mean, amax, any, max.dim, argmax) and softmax / log_softmax.
use super::*;
use crate::tensor::cast_element;
use crate::tensor::kernels::reduce::{
    along_dim_into, reduce_segments_into, reduce_segments_to, segments,
};
use num_traits::Float;

pub(super) fn register(r: &mut Builder) {
    r.out_op(
        "aten.sum.default",
        |a| meta_reduce(a, Red::Sum),
        |a, o| reduce(a, &o[0], Red::Sum),
    )
    .decomposition(decompositions::sum);
    r.out_op(
        "aten.sum.dim_IntList",
        |a| meta_reduce(a, Red::Sum),
        |a, o| reduce(a, &o[0], Red::Sum),
    );
    r.out_op(
        "aten.mean.default",
        |a| meta_reduce(a, Red::Mean),
        |a, o| reduce(a, &o[0], Red::Mean),
    );
    r.out_op(
        "aten.mean.dim",
        |a| meta_reduce(a, Red::Mean),
        |a, o| reduce(a, &o[0], Red::Mean),
    );
    r.out_op(
        "aten.amax.default",
        |a| meta_reduce(a, Red::Max),
        |a, o| reduce(a, &o[0], Red::Max),
    );
    r.out_op(
        "aten.any.dim",
        |a| meta_reduce(a, Red::Any),
        |a, o| reduce(a, &o[0], Red::Any),
    );
    r.out_op(
        "aten.any.dims",
        |a| meta_reduce(a, Red::Any),
        |a, o| reduce(a, &o[0], Red::Any),
    );
    r.out_op(
        "aten.amin.default",
        |a| meta_reduce(a, Red::Min),
        |a, o| reduce(a, &o[0], Red::Min),
    );
    r.out_op(
        "aten.prod.default",
        |a| meta_reduce(a, Red::Prod),
        |a, o| reduce(a, &o[0], Red::Prod),
    );
    r.out_op(
        "aten.prod.dim_int",
        |a| meta_reduce(a, Red::Prod),
        |a, o| reduce(a, &o[0], Red::Prod),
    );
    r.out_op("aten.min.dim", meta_max_dim, |a, o| {
        max_dim(a, o, argmin_of)
    });
    r.out_op("aten.argmin.default", meta_argmax, |a, o| {
        argmax(a, o, argmin_of)
    });
    r.out_op("aten.var.correction", meta_var, var);
    r.out_op("aten.var.dim", meta_var, var);
    r.out_op("aten.cumsum.default", meta_cumsum, cumsum);
    r.out_op(
        "aten.any.default",
        |a| meta_reduce(a, Red::Any),
        |a, o| reduce(a, &o[0], Red::Any),
    );
    r.out_op("aten.max.dim", meta_max_dim, |a, o| {
        max_dim(a, o, argmax_of)
    });
    r.out_op("aten.argmax.default", meta_argmax, |a, o| {
        argmax(a, o, argmax_of)
    });
    r.out_op(
        "aten._softmax.default",
        |a| meta_softmax(a, false),
        |a, o| softmax(a, &o[0], false),
    );
    r.out_op(
        "aten.softmax.int",
        |a| meta_softmax(a, false),
        |a, o| softmax(a, &o[0], false),
    )
    .decomposition(decompositions::softmax);
    r.out_op(
        "aten._log_softmax.default",
        |a| meta_softmax(a, true),
        |a, o| softmax(a, &o[0], true),
    );
    r.out_op(
        "aten.log_softmax.int",
        |a| meta_softmax(a, true),
        |a, o| softmax(a, &o[0], true),
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Red {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    Any,
}

/// The reduced dims of a reduction call (all dims when `dim` is absent, None or empty).
fn reduced_dims<T>(a: &Args<T>, nd: usize) -> Result<Vec<usize>> {
    let dims: Vec<i64> = match a.schema.arg_index("dim") {
        None => vec![],
        Some(_) => match a.get("dim")? {
            Value::None => vec![],
            Value::Int(i) => vec![i
                .as_int()
                .ok_or_else(|| Error::Symbolic("symbolic dim".into()))?],
            _ => a.ints("dim")?,
        },
    };
    if dims.is_empty() {
        return Ok((0..nd).collect());
    }
    let mut out = Vec::new();
    for d in dims {
        let w = wrap_dim(d, nd)?;
        if nd == 0 {
            continue; // a 0-d tensor accepts dim 0 / -1 and has nothing to reduce
        }
        if out.contains(&w) {
            return Err(Error::value(format!(
                "dim {w} appears multiple times in the list of dims"
            )));
        }
        out.push(w);
    }
    out.sort_unstable();
    Ok(out)
}

fn keepdim<T>(a: &Args<T>) -> Result<bool> {
    Ok(a.schema.arg_index("keepdim").is_some() && a.bool("keepdim")?)
}

fn reduced_sizes(sizes: &[SymInt], dims: &[usize], keep: bool) -> Vec<SymInt> {
    let mut out = Vec::new();
    for (i, s) in sizes.iter().enumerate() {
        if dims.contains(&i) {
            if keep {
                out.push(SymInt::Int(1));
            }
        } else {
            out.push(s.clone());
        }
    }
    out
}

/// `linalg_vector_norm`: a float reduction (`dtype` converts the result).
pub(super) fn meta_vector_norm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_floating_point() {
        return Err(Error::DType(format!(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. Got {}",
            t.dtype.scalar_type_name()
        )));
    }
    let dims = reduced_dims(a, t.dim())?;
    let ord = a.scalar("ord")?.to_f64();
    if ord < 0.0 || ord.is_infinite() {
        let all = matches!(a.get("dim")?, Value::None);
        if all && t.numel().as_int() == Some(0) {
            return Err(Error::shape(format!(
                "linalg.vector_norm cannot compute the {} norm on an empty tensor because the operation does not have an identity",
                a.scalar("ord")?
            )));
        }
        for &d in &dims {
            if !all && t.sizes[d].as_int() == Some(0) {
                // PyTorch's message, missing space included.
                return Err(Error::shape(format!(
                    "linalg.vector_norm cannot compute the {} norm on the dimension {d}because this dimension is empty and the operation does not have an identity",
                    a.scalar("ord")?
                )));
            }
        }
    }
    let dt = match a.opt_dtype("dtype")? {
        Some(d) if !d.is_floating_point() => {
            return Err(Error::DType(format!(
                "linalg.vector_norm: dtype should be floating point or complex, but got {}",
                d.scalar_type_name()
            )))
        }
        Some(d) => d,
        None => t.dtype,
    };
    one(dt, reduced_sizes(&t.sizes, &dims, keepdim(a)?))
}

fn meta_reduce(a: &Args<TensorMeta>, red: Red) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let dims = reduced_dims(a, t.dim())?;
    let explicit = if a.schema.arg_index("dtype").is_some() {
        a.opt_dtype("dtype")?
    } else {
        None
    };
    let dt = match red {
        Red::Sum | Red::Prod => explicit.unwrap_or(if t.dtype.is_floating_point() {
            t.dtype
        } else {
            DType::I64
        }),
        Red::Mean => {
            let dt = explicit.unwrap_or(t.dtype);
            if !dt.is_floating_point() {
                return Err(Error::DType(format!(
                    "mean(): could not infer output dtype. {} dtype must be either a floating point or complex dtype. Got: {}",
                    if explicit.is_some() { "Optional" } else { "Input" },
                    dt
                )));
            }
            dt
        }
        Red::Any => {
            if t.dtype == DType::U8 {
                DType::U8
            } else {
                DType::Bool
            }
        }
        Red::Max | Red::Min => {
            for &d in &dims {
                if t.sizes[d].as_int() == Some(0) {
                    return Err(Error::shape(format!(
                        "{}(): Expected reduction dim {d} to have non-zero size.",
                        if red == Red::Max { "amax" } else { "amin" }
                    )));
                }
            }
            t.dtype
        }
    };
    one(dt, reduced_sizes(&t.sizes, &dims, keepdim(a)?))
}

fn reduce(a: &Args<Tensor>, out: &Tensor, red: Red) -> Result<()> {
    let t = a.tensor("self")?;
    let dt = out.dtype();
    let dims = reduced_dims(a, t.dim())?;
    if let Some(done) = sum_trailing_f32(t, out, &dims, red) {
        return done;
    }
    if red == Red::Any {
        let (data, seg) = segments::<bool>(&as_dtype(t, DType::Bool), &dims);
        reduce_segments_to(&data, seg, out, |s| s.iter().any(|&x| x))
    } else if dt.is_floating_point() || red == Red::Mean {
        let (data, seg) = segments::<f64>(&as_dtype(t, DType::F64), &dims);
        match red {
            Red::Sum => reduce_segments_to(&data, seg, out, |s| s.iter().sum::<f64>()),
            Red::Mean => {
                reduce_segments_to(&data, seg, out, |s| s.iter().sum::<f64>() / s.len() as f64)
            }
            Red::Prod => reduce_segments_to(&data, seg, out, |s| s.iter().product::<f64>()),
            Red::Min => reduce_segments_to(&data, seg, out, |s| {
                s.iter().copied().fold(f64::INFINITY, |m, x| {
                    if x.is_nan() || m.is_nan() {
                        f64::NAN
                    } else {
                        m.min(x)
                    }
                })
            }),
            _ => reduce_segments_to(&data, seg, out, |s| {
                s.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
                    if x.is_nan() || m.is_nan() {
                        f64::NAN
                    } else {
                        m.max(x)
                    }
                })
            }),
        }
    } else {
        let (data, seg) = segments::<i64>(&as_dtype(t, DType::I64), &dims);
        match red {
            Red::Sum => reduce_segments_to(&data, seg, out, |s| {
                s.iter().fold(0i64, |x, &y| x.wrapping_add(y))
            }),
            Red::Prod => reduce_segments_to(&data, seg, out, |s| {
                s.iter().fold(1i64, |x, &y| x.wrapping_mul(y))
            }),
            Red::Min => reduce_segments_to(&data, seg, out, |s| {
                s.iter().copied().min().unwrap_or(i64::MAX)
            }),
            _ => reduce_segments_to(&data, seg, out, |s| {
                s.iter().copied().max().unwrap_or(i64::MIN)
            }),
        }
    }
}

/// Sum or mean of a contiguous f32 tensor over its trailing dims (global average pooling, a norm's
/// statistics): each output is one contiguous run of the input, read in place (no permuted f64 copy)
/// and summed in f64 as the general path does. `None`: another case.
fn sum_trailing_f32(t: &Tensor, out: &Tensor, dims: &[usize], red: Red) -> Option<Result<()>> {
    let nd = t.dim();
    let trailing = !dims.is_empty() && dims.iter().copied().eq(nd - dims.len()..nd);
    let seg: usize = dims.iter().map(|&d| t.sizes()[d]).product();
    let f32s = t.dtype() == DType::F32 && out.dtype() == DType::F32;
    if !matches!(red, Red::Sum | Red::Mean)
        || !f32s
        || !trailing
        || seg == 0
        || !t.is_contiguous()
        || t.shares_storage(out)
    {
        return None;
    }
    let n = if red == Red::Mean { seg as f64 } else { 1.0 };
    let run = t.with_contiguous::<f32, _>(|x| {
        out.with_contiguous_mut::<f32, _>(|o| {
            reduce_segments_into(x, seg, o, |s| (sum_f64(s) / n) as f32)
        })
    });
    Some(run.and_then(|r| r))
}

/// The sum of `s` in f64, over eight lanes (vectorized).
fn sum_f64(s: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = s.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64;
        }
    }
    acc.iter().sum::<f64>() + rest
}

fn meta_max_dim(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let d = wrap(a.int("dim")?, t)?;
    if t.dim() > 0 && t.sizes[d].as_int() == Some(0) {
        return Err(Error::shape(format!(
            "{}(): Expected reduction dim {d} to have non-zero size.",
            a.schema.name.trim_start_matches("aten::")
        )));
    }
    let dims: Vec<usize> = if t.dim() == 0 { vec![] } else { vec![d] };
    let sizes = reduced_sizes(&t.sizes, &dims, a.bool("keepdim")?);
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(t.dtype, sizes.clone())),
        Value::Tensor(TensorMeta::contiguous(DType::I64, sizes)),
    ])
}

/// (index, value) of the first maximum; NaN counts as the maximum (PyTorch).
fn argmax_of(s: &[f64]) -> (usize, f64) {
    arg_extreme(s, |x, best| x > best)
}

/// (index, value) of the first minimum; NaN counts as the minimum (PyTorch).
fn argmin_of(s: &[f64]) -> (usize, f64) {
    arg_extreme(s, |x, best| x < best)
}

fn arg_extreme(s: &[f64], better: fn(f64, f64) -> bool) -> (usize, f64) {
    let mut best = (0, f64::NAN);
    for (i, &x) in s.iter().enumerate() {
        if x.is_nan() {
            return (i, x);
        }
        if i == 0 || better(x, best.1) {
            best = (i, x);
        }
    }
    best
}

/// `max.dim` (`pick = argmax_of`) and `min.dim` (`argmin_of`).
fn max_dim(a: &Args<Tensor>, o: &mut [Tensor], pick: fn(&[f64]) -> (usize, f64)) -> Result<()> {
    let t = a.tensor("self")?;
    let dims = if t.dim() == 0 {
        vec![]
    } else {
        vec![wrap_dim(a.int("dim")?, t.dim())?]
    };
    let (data, seg) = segments::<f64>(&as_dtype(t, DType::F64), &dims);
    let (values, indices) = (&o[0], &o[1]);
    indices.with_contiguous_mut::<i64, _>(|idx| {
        reduce_segments_into(&data, seg, idx, |s| pick(s).0 as i64)
    })?;
    indices.with_contiguous::<i64, _>(|idx| {
        crate::dispatch_dtype!(values.dtype(), O => values.with_contiguous_mut::<O, _>(|v| {
            for (k, (v, &i)) in v.iter_mut().zip(idx).enumerate() {
                *v = cast_element::<f64, O>(data[k * seg + i as usize]);
            }
        }))
    })?
}

fn meta_argmax(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let sizes = match a.opt_int("dim")? {
        None => {
            if t.numel().as_int() == Some(0) {
                return Err(Error::shape(format!(
                    "{}(): Expected reduction dim to be specified for input.numel() == 0.",
                    a.schema.name.trim_start_matches("aten::")
                )));
            }
            if a.bool("keepdim")? {
                vec![SymInt::Int(1); t.dim()]
            } else {
                vec![]
            }
        }
        Some(d) => {
            let d = wrap(d, t)?;
            let dims: Vec<usize> = if t.dim() == 0 { vec![] } else { vec![d] };
            reduced_sizes(&t.sizes, &dims, a.bool("keepdim")?)
        }
    };
    one(DType::I64, sizes)
}

/// `argmax` (`pick = argmax_of`) and `argmin` (`argmin_of`).
fn argmax(a: &Args<Tensor>, o: &mut [Tensor], pick: fn(&[f64]) -> (usize, f64)) -> Result<()> {
    let t = a.tensor("self")?;
    let dims: Vec<usize> = match a.opt_int("dim")? {
        None => (0..t.dim()).collect(),
        Some(_) if t.dim() == 0 => vec![],
        Some(d) => vec![wrap_dim(d, t.dim())?],
    };
    let (data, seg) = segments::<f64>(&as_dtype(t, DType::F64), &dims);
    reduce_segments_to(&data, seg, &o[0], |s| pick(s).0 as i64)
}

/// The correction of `var.correction` (`correction`, default 1) or `var.dim` (`unbiased`).
fn var_correction<T>(a: &Args<T>) -> Result<f64> {
    if a.schema.arg_index("correction").is_some() {
        return Ok(a
            .opt_scalar("correction")?
            .map(|s| s.to_f64())
            .unwrap_or(1.0));
    }
    Ok(if a.bool("unbiased")? { 1.0 } else { 0.0 })
}

fn meta_var(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_floating_point() {
        return Err(Error::DType(
            "std and var only support floating point and complex dtypes".into(),
        ));
    }
    let dims = reduced_dims(a, t.dim())?;
    one(t.dtype, reduced_sizes(&t.sizes, &dims, keepdim(a)?))
}

fn var(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let t = a.tensor("self")?;
    let dims = reduced_dims(a, t.dim())?;
    let correction = var_correction(a)?;
    let (data, seg) = segments::<f64>(&as_dtype(t, DType::F64), &dims);
    reduce_segments_to(&data, seg, &o[0], |s| {
        let n = s.len() as f64;
        let mean = s.iter().sum::<f64>() / n;
        let ss: f64 = s.iter().map(|x| (x - mean) * (x - mean)).sum();
        // PyTorch divides by max(0, N - correction): 0 / 0 is NaN, x / 0 is inf.
        ss / (n - correction).max(0.0)
    })
}

fn meta_cumsum(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    wrap(a.int("dim")?, t)?;
    let dt = a
        .opt_dtype("dtype")?
        .unwrap_or(if t.dtype.is_floating_point() {
            t.dtype
        } else {
            DType::I64
        });
    one(dt, t.sizes.clone())
}

fn cumsum(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let t = a.tensor("self")?;
    let out = &o[0];
    let dt = out.dtype();
    if t.dim() == 0 {
        return out.assign_untraced(t);
    }
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    // Accumulate in the output dtype as PyTorch does (f32 stays f32, ints wrap in i64).
    match dt {
        DType::F64 => along_dim_into::<f64>(&as_dtype(t, dt), d, out, running_sum),
        DType::F32 | DType::F16 | DType::BF16 => {
            along_dim_into::<f32>(&as_dtype(t, DType::F32), d, out, running_sum)
        }
        _ => along_dim_into::<i64>(&as_dtype(t, DType::I64), d, out, |s| {
            let mut acc = 0i64;
            for x in s.iter_mut() {
                acc = acc.wrapping_add(*x);
                *x = acc;
            }
        }),
    }
}

fn running_sum<F: Float>(s: &mut [F]) {
    let mut acc = F::zero();
    for x in s.iter_mut() {
        acc = acc + *x;
        *x = acc;
    }
}

/// `softmax` / `log_softmax` (`log`).
fn meta_softmax(a: &Args<TensorMeta>, log: bool) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    wrap(a.int("dim")?, t)?;
    let mut dt = t.dtype;
    if a.schema.arg_index("half_to_float").is_some() && a.bool("half_to_float")? {
        dt = DType::F32;
    } else if a.schema.arg_index("dtype").is_some() {
        dt = a.opt_dtype("dtype")?.unwrap_or(t.dtype);
    }
    if !dt.is_floating_point() {
        let kernel = if log {
            "log_softmax_lastdim_kernel_impl"
        } else {
            "softmax_lastdim_kernel_impl"
        };
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype: dt,
        });
    }
    one(dt, t.sizes.clone())
}

fn softmax_seg<F: Float>(s: &mut [F], log: bool) {
    let m = s.iter().copied().fold(
        F::neg_infinity(),
        |m, x| if x > m || x.is_nan() { x } else { m },
    );
    let mut sum = F::zero();
    for x in s.iter_mut() {
        let e = (*x - m).exp();
        if log {
            sum = sum + e;
            *x = *x - m;
        } else {
            *x = e;
            sum = sum + e;
        }
    }
    if log {
        let ls = sum.ln();
        s.iter_mut().for_each(|x| *x = *x - ls);
    } else {
        s.iter_mut().for_each(|x| *x = *x / sum);
    }
}

/// Softmax of f32 `t` along `dim`, not its last, into a contiguous f32 `out`: each `[size(dim),
/// inner]` block by [`vmath::softmax_block`](crate::tensor::kernels::vmath::softmax_block), blocks in
/// parallel when large. Returns false, writing nothing, for other outputs.
fn softmax_f32_blocks(
    t: &Tensor,
    dim: usize,
    out: &Tensor,
    log: bool,
    isa: crate::tensor::kernels::simd::Isa,
) -> Result<bool> {
    use crate::tensor::kernels::{elementwise::PAR_THRESHOLD, vmath};
    use rayon::prelude::*;
    let inner: usize = t.sizes()[dim + 1..].iter().product();
    let block = inner * t.sizes()[dim];
    if out.dtype() != DType::F32 || !out.is_contiguous() || out.shares_storage(t) || block == 0 {
        return Ok(false);
    }
    t.with_contiguous::<f32, _>(|src| {
        out.with_contiguous_mut::<f32, _>(|dst| {
            let f = |(s, o): (&[f32], &mut [f32])| vmath::softmax_block(isa, s, o, inner, log);
            if src.len() >= PAR_THRESHOLD && src.len() > block {
                src.par_chunks(block)
                    .zip(dst.par_chunks_mut(block))
                    .for_each(f);
            } else {
                src.chunks(block).zip(dst.chunks_mut(block)).for_each(f);
            }
        })
    })??;
    Ok(true)
}

fn softmax(a: &Args<Tensor>, out: &Tensor, log: bool) -> Result<()> {
    let dt = out.dtype();
    let t = a.tensor("self")?;
    if t.dim() == 0 {
        let v = if log { 0.0 } else { 1.0 };
        return super::fill_pad::fill_into(out, crate::Scalar::Float(v));
    }
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    if dt == DType::F64 {
        along_dim_into::<f64>(&as_dtype(t, DType::F64), d, out, |s| softmax_seg(s, log))
    } else {
        // The vectorised kernels; the ISA read here, as rayon's workers do not see a forced one.
        let isa = crate::tensor::kernels::simd::active();
        let t = as_dtype(t, DType::F32);
        if d + 1 < t.dim() && softmax_f32_blocks(&t, d, out, log, isa)? {
            return Ok(());
        }
        along_dim_into::<f32>(&t, d, out, move |s| {
            crate::tensor::kernels::vmath::softmax_inplace(isa, s, log)
        })
    }
}

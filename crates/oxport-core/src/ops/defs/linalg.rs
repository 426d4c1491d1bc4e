//! Matrix products: mm, bmm, addmm, matmul, linear — all on one strided batched-gemm core.
use super::*;
use crate::dtype::Scalar as Number;
use crate::tensor::kernels::matmul::{gemm_strided, Scalar as GemmScalar};
use crate::tensor::{strided::for_each_run, Element};
use rayon::prelude::*;

pub(super) fn register(r: &mut Builder) {
    r.out_op(
        "aten.mm.default",
        |a| meta_mm(a, false),
        |a, o| batched_matmul_into(a.tensor("self")?, a.tensor("mat2")?, &o[0]),
    );
    r.out_op(
        "aten.bmm.default",
        |a| meta_mm(a, true),
        |a, o| batched_matmul_into(a.tensor("self")?, a.tensor("mat2")?, &o[0]),
    );
    r.out_op("aten.addmm.default", meta_addmm, addmm);
    r.out_op("aten.baddbmm.default", meta_baddbmm, baddbmm);
    r.out_op("aten.matmul.default", meta_matmul, |a, o| {
        matmul_tensors_into(a.tensor("self")?, a.tensor("other")?, &o[0])
    })
    .decomposition(decompositions::matmul);
    r.out_op("aten.linear.default", meta_linear, linear)
        .decomposition(decompositions::linear);
}

/// `out = f(out, other)` in place, `other` broadcast to `out`'s sizes, computed in `C` (each side cast
/// to `C`, the result cast back to `out`'s dtype).
fn combine_into<C: Element>(out: &Tensor, other: &Tensor, f: impl Fn(C, C) -> C) -> Result<()> {
    let sizes = out.sizes().to_vec();
    let oc = as_dtype(other, C::DTYPE);
    let strides = crate::tensor::kernels::elementwise::broadcast_strides(&oc, &sizes);
    let ys = oc
        .restride(&sizes, &strides, oc.storage_offset())?
        .to_vec::<C>()?;
    crate::dispatch_dtype!(out.dtype(), O => out.with_contiguous_mut::<O, _>(|o| {
        for (x, &y) in o.iter_mut().zip(&ys) {
            *x = crate::tensor::cast_element::<C, O>(f(crate::tensor::cast_element::<O, C>(*x), y));
        }
    }))
}

fn check_same_dtype(x: DType, y: DType) -> Result<()> {
    if x != y {
        return Err(Error::DType(format!(
            "expected m1 and m2 to have the same dtype, but got: {} != {}",
            x.cpp_type_name(),
            y.cpp_type_name()
        )));
    }
    if x == DType::Bool {
        return Err(Error::DTypeNotSupported {
            op: "addmm_impl_cpu_".into(),
            dtype: x,
        });
    }
    Ok(())
}

/// `mm` (`batched = false`) and `bmm`.
fn meta_mm(a: &Args<TensorMeta>, batched: bool) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = (meta_self(a)?, a.tensor("mat2")?);
    let want = if batched { 3 } else { 2 };
    if x.dim() != want {
        return Err(Error::shape(if batched {
            "batch1 must be a 3D tensor".into()
        } else {
            "self must be a matrix".to_string()
        }));
    }
    if y.dim() != want {
        return Err(Error::shape(if batched {
            "batch2 must be a 3D tensor".into()
        } else {
            "mat2 must be a matrix".to_string()
        }));
    }
    check_same_dtype(x.dtype, y.dtype)?;
    if batched {
        if !x.sizes[0].guard_eq(&y.sizes[0]) || !x.sizes[2].guard_eq(&y.sizes[1]) {
            return Err(Error::shape(format!(
                "Expected size for first two dimensions of batch2 tensor to be: [{}, {}] but got: [{}, {}].",
                x.sizes[0], x.sizes[2], y.sizes[0], y.sizes[1]
            )));
        }
        return one(
            x.dtype,
            vec![x.sizes[0].clone(), x.sizes[1].clone(), y.sizes[2].clone()],
        );
    }
    if !x.sizes[1].guard_eq(&y.sizes[0]) {
        return Err(Error::shape(format!(
            "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            x.sizes[0], x.sizes[1], y.sizes[0], y.sizes[1]
        )));
    }
    one(x.dtype, vec![x.sizes[0].clone(), y.sizes[1].clone()])
}

/// `beta * self + alpha * (batch1 @ batch2)`, `self` broadcast to the product's shape.
fn meta_baddbmm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y, s) = (a.tensor("batch1")?, a.tensor("batch2")?, meta_self(a)?);
    if x.dim() != 3 {
        return Err(Error::shape("batch1 must be a 3D tensor"));
    }
    if y.dim() != 3 {
        return Err(Error::shape("batch2 must be a 3D tensor"));
    }
    check_same_dtype(x.dtype, y.dtype)?;
    if !x.sizes[0].guard_eq(&y.sizes[0]) || !x.sizes[2].guard_eq(&y.sizes[1]) {
        return Err(Error::shape(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{}, {}] but got: [{}, {}].",
            x.sizes[0], x.sizes[2], y.sizes[0], y.sizes[1]
        )));
    }
    let out = vec![x.sizes[0].clone(), x.sizes[1].clone(), y.sizes[2].clone()];
    // `self` must expand to the product's shape.
    let off = out.len() as i64 - s.dim() as i64;
    for (i, sz) in s.sizes.iter().enumerate() {
        let j = i as i64 + off;
        let fits = j >= 0 && (sz.guard_eq(&out[j as usize]) || sz.guard_is_one());
        if !fits {
            let j = j.max(0) as usize;
            return Err(Error::shape(format!(
                "The expanded size of the tensor ({}) must match the existing size ({sz}) at non-singleton dimension {j}.  Target sizes: {}.  Tensor sizes: {}",
                out[j],
                fmt_shape(&out),
                fmt_shape(&s.sizes)
            )));
        }
    }
    if s.dtype != x.dtype {
        return Err(Error::DType(format!(
            "self and mat2 must have the same dtype, but got {} and {}",
            s.dtype.cpp_type_name(),
            x.dtype.cpp_type_name()
        )));
    }
    one(x.dtype, out)
}

fn baddbmm(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = &o[0];
    batched_matmul_into(a.tensor("batch1")?, a.tensor("batch2")?, out)?;
    let beta = a.opt_scalar("beta")?.unwrap_or(Number::Int(1));
    let alpha = a.opt_scalar("alpha")?.unwrap_or(Number::Int(1));
    let input = a.tensor("self")?;
    // beta == 0 ignores self (NaN and inf included), as PyTorch does.
    let ignore_self = beta.to_f64() == 0.0;
    fn axpby<T: Element + std::ops::Mul<Output = T> + std::ops::Add<Output = T>>(
        out: &Tensor,
        s: &Tensor,
        alpha: Number,
        beta: Number,
        ignore_self: bool,
    ) -> Result<()> {
        let (al, be): (T, T) = (
            crate::tensor::scalar_to(alpha),
            crate::tensor::scalar_to(beta),
        );
        combine_into::<T>(
            out,
            s,
            move |x, y| {
                if ignore_self {
                    al * x
                } else {
                    al * x + be * y
                }
            },
        )
    }
    match out.dtype().compute_dtype() {
        DType::F32 => axpby::<f32>(out, input, alpha, beta, ignore_self),
        DType::F64 => axpby::<f64>(out, input, alpha, beta, ignore_self),
        _ => {
            // Integers wrap, as in C++.
            let (al, be) = (alpha.to_i64(), beta.to_i64());
            combine_into::<i64>(out, input, move |x, y| {
                let ax = al.wrapping_mul(x);
                if ignore_self {
                    ax
                } else {
                    ax.wrapping_add(be.wrapping_mul(y))
                }
            })
        }
    }
}

fn meta_addmm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (m1, m2, bias) = (a.tensor("mat1")?, a.tensor("mat2")?, meta_self(a)?);
    if m1.dim() != 2 || m2.dim() != 2 {
        return Err(Error::shape(format!(
            "mat1 must be a matrix, got {}-D tensor",
            m1.dim()
        )));
    }
    if !m1.sizes[1].guard_eq(&m2.sizes[0]) {
        return Err(Error::shape(format!(
            "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            m1.sizes[0], m1.sizes[1], m2.sizes[0], m2.sizes[1]
        )));
    }
    check_same_dtype(m1.dtype, m2.dtype)?;
    check_same_dtype(bias.dtype, m1.dtype)?;
    let out = vec![m1.sizes[0].clone(), m2.sizes[1].clone()];
    let b = broadcast_shapes(&[&bias.sizes, &out])?;
    if b != out {
        return Err(Error::shape(format!(
            "The expanded size of the tensor ({}) must match the existing size ({}) at non-singleton dimension 1.  Target sizes: {}.  Tensor sizes: {}",
            out[1], bias.sizes.last().cloned().unwrap_or(SymInt::Int(1)), fmt_shape(&out), fmt_shape(&bias.sizes)
        )));
    }
    one(m1.dtype, out)
}

/// Shapes of `torch.matmul`: returns (output sizes, a as [.., m, k], b as [.., k, n], squeeze flags).
fn matmul_shapes(x: &[SymInt], y: &[SymInt]) -> Result<Vec<SymInt>> {
    let (dx, dy) = (x.len(), y.len());
    if dx == 0 || dy == 0 {
        return Err(Error::shape(format!(
            "both arguments to matmul need to be at least 1D, but they are {dx}D and {dy}D"
        )));
    }
    let k_x = &x[dx - 1];
    let k_y = if dy == 1 { &y[0] } else { &y[dy - 2] };
    if !k_x.guard_eq(k_y) {
        return Err(Error::shape(if dx == 1 && dy == 1 {
            format!("inconsistent tensor size, expected tensor [{k_x}] and src [{k_y}] to have the same number of elements, but got {k_x} and {k_y} elements respectively")
        } else {
            format!(
                "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
                if dx == 1 {
                    SymInt::Int(1)
                } else {
                    x[..dx - 1].iter().fold(SymInt::Int(1), |p, s| p.mul(s))
                },
                k_x,
                k_y,
                if dy == 1 {
                    SymInt::Int(1)
                } else {
                    y[dy - 1].clone()
                }
            )
        }));
    }
    let bx: &[SymInt] = if dx > 2 { &x[..dx - 2] } else { &[] };
    let by: &[SymInt] = if dy > 2 { &y[..dy - 2] } else { &[] };
    let mut out = broadcast_shapes(&[bx, by])?;
    if dx >= 2 {
        out.push(x[dx - 2].clone());
    }
    if dy >= 2 {
        out.push(y[dy - 1].clone());
    }
    Ok(out)
}

fn meta_matmul(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = (meta_self(a)?, a.tensor("other")?);
    check_same_dtype(x.dtype, y.dtype)?;
    one(x.dtype, matmul_shapes(&x.sizes, &y.sizes)?)
}

fn meta_linear(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    if w.dim() != 2 && w.dim() != 1 {
        return Err(Error::shape(format!(
            "linear: weight must be 1-D or 2-D, got {}-D",
            w.dim()
        )));
    }
    check_same_dtype(x.dtype, w.dtype)?;
    let wt: Vec<SymInt> = w.sizes.iter().rev().cloned().collect();
    let mut out = matmul_shapes(&x.sizes, &wt)?;
    if let Some(b) = a.opt_tensor("bias")? {
        check_same_dtype(b.dtype, x.dtype)?;
        out = broadcast_shapes(&[&out, &b.sizes])?;
    }
    one(x.dtype, out)
}

/// `a @ b` for a: [.., m, k], b: [.., k, n] with broadcast batch dims (both at least 2-D), in `dtype`.
pub(crate) fn batched_matmul(a: &Tensor, b: &Tensor, dtype: DType) -> Result<Tensor> {
    let (mut sizes, m, _, n) = batch_layout(a, b)?;
    sizes.extend([m, n]);
    let out = Tensor::filled(&sizes, Number::Int(0), dtype);
    batched_matmul_into(a, b, &out)?;
    Ok(out)
}

/// [`batched_matmul`] writing into `out`: contiguous, `batch x m x n` elements, the result's dtype.
pub(crate) fn batched_matmul_into(a: &Tensor, b: &Tensor, out: &Tensor) -> Result<()> {
    let dtype = out.dtype();
    let compute = if dtype == DType::F64 {
        DType::F64
    } else if dtype.is_floating_point() {
        DType::F32
    } else {
        DType::I64
    };
    let (a, b) = (as_dtype(a, compute), as_dtype(b, compute));
    match compute {
        DType::F32 => matmul_float_into::<f32>(&a, &b, out),
        DType::F64 => matmul_float_into::<f64>(&a, &b, out),
        _ => matmul_int_into(&a, &b, out),
    }
}

fn batch_layout(a: &Tensor, b: &Tensor) -> Result<(Vec<usize>, usize, usize, usize)> {
    let (da, db) = (a.dim(), b.dim());
    let (m, k, n) = (a.sizes()[da - 2], a.sizes()[da - 1], b.sizes()[db - 1]);
    let ba: Vec<SymInt> = a.sizes()[..da - 2]
        .iter()
        .map(|&s| SymInt::from(s))
        .collect();
    let bb: Vec<SymInt> = b.sizes()[..db - 2]
        .iter()
        .map(|&s| SymInt::from(s))
        .collect();
    let batch = concrete_usizes(&broadcast_shapes(&[&ba, &bb])?)?;
    Ok((batch, m, k, n))
}

/// Storage offsets of each batch's matrix for `t` broadcast to `batch`.
fn batch_offsets(t: &Tensor, batch: &[usize]) -> Vec<usize> {
    let nb = t.dim() - 2;
    let off = batch.len() - nb;
    let st: Vec<usize> = (0..batch.len())
        .map(|d| {
            if d < off || t.sizes()[d - off] == 1 {
                0
            } else {
                t.strides()[d - off]
            }
        })
        .collect();
    if batch.is_empty() {
        return vec![t.storage_offset()];
    }
    let mut offs = Vec::with_capacity(batch.iter().product());
    for_each_run(batch, &[&st], &[t.storage_offset()], |o, len, s| {
        offs.extend((0..len).map(|i| o[0] + i * s[0]));
    });
    offs
}

/// The float product into `out`: gemm writes straight into its buffer when it has the compute dtype
/// `T`, else into a `T` scratch rounded into it.
fn matmul_float_into<T: Element + GemmScalar>(a: &Tensor, b: &Tensor, out: &Tensor) -> Result<()> {
    if out.dtype() == T::DTYPE {
        out.with_contiguous_mut::<T, _>(|c| gemm_batches::<T>(a, b, c))?
    } else {
        let mut c = vec![T::default(); out.numel()];
        gemm_batches::<T>(a, b, &mut c)?;
        out.write_contiguous(&c)
    }
}

/// Every batch's `m x n` product, row-major into `c` (`batch * m * n` elements).
fn gemm_batches<T: Element + GemmScalar>(a: &Tensor, b: &Tensor, c: &mut [T]) -> Result<()> {
    let (batch, m, k, n) = batch_layout(a, b)?;
    let nbatch: usize = batch.iter().product();
    if c.len() != nbatch * m * n {
        return Err(Error::shape(format!(
            "matmul: an output of {} elements for a product of {}",
            c.len(),
            nbatch * m * n
        )));
    }
    let (oa, ob) = (batch_offsets(a, &batch), batch_offsets(b, &batch));
    let (da, db) = (a.dim(), b.dim());
    let (a_rs, a_cs) = (a.strides()[da - 2] as isize, a.strides()[da - 1] as isize);
    let (b_rs, b_cs) = (b.strides()[db - 2] as isize, b.strides()[db - 1] as isize);
    let ga = a.storage().read();
    let gb_owned;
    let gb = if a.shares_storage(b) {
        &ga
    } else {
        gb_owned = b.storage().read();
        &gb_owned
    };
    let sa = T::slice(&ga).expect("dtype checked");
    let sb = T::slice(gb).expect("dtype checked");
    let mn = m * n;
    if mn == 0 {
        // Nothing to write (and the operands may have no storage to index).
    } else if k == 0 {
        // Empty sum: zeros.
        c.fill(T::default());
    } else {
        let one = |i: usize, c: &mut [T], parallel: bool| {
            gemm_strided(
                m,
                k,
                n,
                &sa[oa[i]..],
                a_rs,
                a_cs,
                &sb[ob[i]..],
                b_rs,
                b_cs,
                c,
                false,
                parallel,
            )
        };
        if nbatch > 1 && m * n * k < (1 << 18) {
            // Many small products (attention heads): parallel over the batch, each gemm on one thread.
            c.par_chunks_mut(mn)
                .enumerate()
                .for_each(|(i, c)| one(i, c, false));
        } else {
            c.chunks_mut(mn)
                .enumerate()
                .for_each(|(i, c)| one(i, c, true));
        }
    }
    Ok(())
}

fn matmul_int_into(a: &Tensor, b: &Tensor, out: &Tensor) -> Result<()> {
    let (batch, m, k, n) = batch_layout(a, b)?;
    let nbatch: usize = batch.iter().product();
    if out.numel() != nbatch * m * n {
        return Err(Error::shape(format!(
            "matmul: an output of {} elements for a product of {}",
            out.numel(),
            nbatch * m * n
        )));
    }
    let (oa, ob) = (batch_offsets(a, &batch), batch_offsets(b, &batch));
    let (va, vb) = (a.storage().read(), b.storage().read());
    let (sa, sb) = (i64::slice(&va).expect("i64"), i64::slice(&vb).expect("i64"));
    let (da, db) = (a.dim(), b.dim());
    let (ars, acs, brs, bcs) = (
        a.strides()[da - 2],
        a.strides()[da - 1],
        b.strides()[db - 2],
        b.strides()[db - 1],
    );
    crate::dispatch_dtype!(out.dtype(), O => out.with_contiguous_mut::<O, _>(|o| {
        for bi in 0..nbatch {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0i64;
                    for p in 0..k {
                        acc = acc.wrapping_add(
                            sa[oa[bi] + i * ars + p * acs]
                                .wrapping_mul(sb[ob[bi] + p * brs + j * bcs]),
                        );
                    }
                    o[(bi * m + i) * n + j] = crate::tensor::cast_element::<i64, O>(acc);
                }
            }
        }
    }))
}

/// `torch.matmul` semantics via the batched core (1-D operands get a unit dim that is removed after).
pub(crate) fn matmul_tensors(
    x: &Tensor,
    y: &Tensor,
    dtype: DType,
    out: &[usize],
) -> Result<Tensor> {
    let r = Tensor::filled(out, Number::Int(0), dtype);
    matmul_tensors_into(x, y, &r)?;
    Ok(r)
}

/// [`matmul_tensors`] writing into a contiguous `out` of the result's sizes and dtype.
pub(crate) fn matmul_tensors_into(x: &Tensor, y: &Tensor, out: &Tensor) -> Result<()> {
    let xa = if x.dim() == 1 {
        x.unsqueeze_untraced(0)
    } else {
        x.clone()
    };
    let yb = if y.dim() == 1 {
        y.unsqueeze_untraced(1)
    } else {
        y.clone()
    };
    batched_matmul_into(&xa, &yb, out)
}

/// `out = alpha * out + beta * bias` in place (`bias` broadcast), computed as PyTorch's CPU addmm
/// epilogue: in f64, rounded to the output's compute dtype.
fn add_bias_into(out: &Tensor, bias: &Tensor, beta: Number, alpha: Number) -> Result<()> {
    let compute = out.dtype().compute_dtype();
    crate::dispatch_dtype!(compute, T => {
        let (be, al): (f64, f64) = (beta.to_f64(), alpha.to_f64());
        combine_into::<T>(out, bias, move |x, y| {
            if be == 1.0 && al == 1.0 {
                T::from_f64(x.to_f64() + y.to_f64())
            } else {
                T::from_f64(al * x.to_f64() + be * y.to_f64())
            }
        })
    })
}

fn addmm(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = &o[0];
    let dt = out.dtype();
    batched_matmul_into(a.tensor("mat1")?, a.tensor("mat2")?, out)?;
    let (beta, alpha) = (a.scalar("beta")?, a.scalar("alpha")?);
    if beta.to_f64() == 0.0 {
        // PyTorch ignores `self` entirely (NaN included) when beta == 0.
        if alpha.to_f64() == 1.0 {
            return Ok(());
        }
        let z = Tensor::scalar_of(Number::Int(0), dt);
        return add_bias_into(out, &z, Number::Int(0), alpha);
    }
    add_bias_into(out, a.tensor("self")?, beta, alpha)
}

fn linear(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = &o[0];
    let dt = out.dtype();
    let x = a.tensor("input")?;
    let w = a.tensor("weight")?;
    let w = if w.dim() == 2 {
        w.transpose_untraced(0, 1)
    } else {
        w.clone()
    };
    let sizes = out.sizes().to_vec();
    // A contiguous N-d input is one 2-d matmul against the (strided, uncopied) transposed weight,
    // instead of a batched matmul that would materialize the weight per call.
    let x2;
    let x = match (x.dim(), w.dim(), x.sizes().last()) {
        (d, 2, Some(&k)) if d > 2 && k > 0 && x.is_contiguous() => {
            x2 = x.restride(&[x.numel() / k, k], &[k, 1], x.storage_offset())?;
            &x2
        }
        _ => x,
    };
    let mm_sizes = concrete_usizes(&matmul_shapes(
        &TensorMeta::of(x).sizes,
        &TensorMeta::of(&w).sizes,
    )?)?;
    if mm_sizes.iter().product::<usize>() == out.numel() {
        // The product has the output's elements in row-major order: write it in place.
        matmul_tensors_into(x, &w, out)?;
    } else {
        // A bias broadcasting the product to a larger shape: expand the product into the output.
        let r = matmul_tensors(x, &w, dt, &mm_sizes)?;
        let strides = crate::tensor::kernels::elementwise::broadcast_strides(&r, &sizes);
        out.assign_untraced(&r.restride(&sizes, &strides, 0)?)?;
    }
    match a.opt_tensor("bias")? {
        Some(b) => add_bias_into(out, b, Number::Int(1), Number::Int(1)),
        None => Ok(()),
    }
}

//! Matrix products: mm, bmm, addmm, matmul, linear — all on one strided batched-gemm core.
use super::*;
use crate::dtype::Scalar as Number;
use crate::tensor::kernels::matmul::{gemm_strided, Scalar as GemmScalar};
use crate::tensor::{contiguous_strides, strided::for_each_run, Element};
use rayon::prelude::*;

pub(super) fn register(r: &mut Builder) {
    r.op("aten.mm.default", meta_mm, |a, o| {
        out1(batched_matmul(
            a.tensor("self")?,
            a.tensor("mat2")?,
            out_dtype(o, 0)?,
        )?)
    });
    r.op("aten.bmm.default", meta_mm, |a, o| {
        out1(batched_matmul(
            a.tensor("self")?,
            a.tensor("mat2")?,
            out_dtype(o, 0)?,
        )?)
    });
    r.op("aten.addmm.default", meta_addmm, addmm);
    r.op("aten.baddbmm.default", meta_baddbmm, baddbmm);
    r.op("aten.matmul.default", meta_matmul, matmul)
        .decomposition(decompositions::matmul);
    r.op("aten.linear.default", meta_linear, linear)
        .decomposition(decompositions::linear);
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

fn meta_mm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = (meta_self(a)?, a.tensor("mat2")?);
    let batched = a.schema.name == "aten::bmm";
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

fn baddbmm(a: &Args<Tensor>, o: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(o, 0)?;
    let prod = batched_matmul(a.tensor("batch1")?, a.tensor("batch2")?, dt)?;
    let beta = a.opt_scalar("beta")?.unwrap_or(Number::Int(1));
    let alpha = a.opt_scalar("alpha")?.unwrap_or(Number::Int(1));
    let sizes = out_sizes(o, 0)?;
    let input = a.tensor("self")?;
    // beta == 0 ignores self (NaN and inf included), as PyTorch does.
    let ignore_self = beta.to_f64() == 0.0;
    let compute = dt.compute_dtype();
    let (p, s) = (as_dtype(&prod, compute), as_dtype(input, compute));
    fn axpby<T: Element + std::ops::Mul<Output = T> + std::ops::Add<Output = T>>(
        p: &Tensor,
        s: &Tensor,
        sizes: &[usize],
        alpha: Number,
        beta: Number,
        ignore_self: bool,
    ) -> Tensor {
        let (al, be): (T, T) = (
            crate::tensor::scalar_to(alpha),
            crate::tensor::scalar_to(beta),
        );
        crate::tensor::kernels::elementwise::binary_map::<T, T, T>(p, s, sizes, move |x, y| {
            if ignore_self {
                al * x
            } else {
                al * x + be * y
            }
        })
    }
    let r = match compute {
        DType::F32 => axpby::<f32>(&p, &s, &sizes, alpha, beta, ignore_self),
        DType::F64 => axpby::<f64>(&p, &s, &sizes, alpha, beta, ignore_self),
        _ => {
            // Integers wrap, as in C++.
            let (al, be) = (alpha.to_i64(), beta.to_i64());
            crate::tensor::kernels::elementwise::binary_map::<i64, i64, i64>(
                &as_dtype(&p, DType::I64),
                &as_dtype(&s, DType::I64),
                &sizes,
                move |x, y| {
                    let ax = al.wrapping_mul(x);
                    if ignore_self {
                        ax
                    } else {
                        ax.wrapping_add(be.wrapping_mul(y))
                    }
                },
            )
        }
    };
    out1(as_dtype(&r, dt))
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
    let compute = if dtype == DType::F64 {
        DType::F64
    } else if dtype.is_floating_point() {
        DType::F32
    } else {
        DType::I64
    };
    let (a, b) = (as_dtype(a, compute), as_dtype(b, compute));
    let r = match compute {
        DType::F32 => matmul_float::<f32>(&a, &b),
        DType::F64 => matmul_float::<f64>(&a, &b),
        _ => matmul_int(&a, &b),
    }?;
    Ok(as_dtype(&r, dtype))
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

fn matmul_float<T: Element + GemmScalar>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (batch, m, k, n) = batch_layout(a, b)?;
    let nbatch: usize = batch.iter().product();
    let (oa, ob) = (batch_offsets(a, &batch), batch_offsets(b, &batch));
    let (da, db) = (a.dim(), b.dim());
    let (a_rs, a_cs) = (a.strides()[da - 2] as isize, a.strides()[da - 1] as isize);
    let (b_rs, b_cs) = (b.strides()[db - 2] as isize, b.strides()[db - 1] as isize);
    let mut out = vec![T::default(); nbatch * m * n];
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
    if mn == 0 || k == 0 {
        // Empty product: the zeros already in `out` (and the operands may have no storage to index).
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
            out.par_chunks_mut(mn)
                .enumerate()
                .for_each(|(i, c)| one(i, c, false));
        } else {
            out.chunks_mut(mn)
                .enumerate()
                .for_each(|(i, c)| one(i, c, true));
        }
    }
    let mut sizes = batch;
    sizes.extend([m, n]);
    Ok(Tensor::from_buffer(T::into_buffer(out), &sizes))
}

fn matmul_int(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (batch, m, k, n) = batch_layout(a, b)?;
    let nbatch: usize = batch.iter().product();
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
    let mut out = vec![0i64; nbatch * m * n];
    for bi in 0..nbatch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0i64;
                for p in 0..k {
                    acc = acc.wrapping_add(
                        sa[oa[bi] + i * ars + p * acs].wrapping_mul(sb[ob[bi] + p * brs + j * bcs]),
                    );
                }
                out[(bi * m + i) * n + j] = acc;
            }
        }
    }
    let mut sizes = batch;
    sizes.extend([m, n]);
    Tensor::from_vec(out, &sizes)
}

/// `torch.matmul` semantics via the batched core (1-D operands get a unit dim that is removed after).
pub(crate) fn matmul_tensors(
    x: &Tensor,
    y: &Tensor,
    dtype: DType,
    out: &[usize],
) -> Result<Tensor> {
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
    let r = batched_matmul(&xa, &yb, dtype)?;
    r.restride(out, &contiguous_strides(out), 0)
}

fn matmul(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    out1(matmul_tensors(
        a.tensor("self")?,
        a.tensor("other")?,
        out_dtype(outs, 0)?,
        &out_sizes(outs, 0)?,
    )?)
}

/// Adds `bias` (broadcast) into a contiguous `out` in place; both already in the output dtype.
fn add_bias(out: Tensor, bias: &Tensor, beta: Number, alpha: Number) -> Result<Tensor> {
    let dt = out.dtype();
    let compute = dt.compute_dtype();
    let (o, b) = (as_dtype(&out, compute), as_dtype(bias, compute));
    let sizes = o.sizes().to_vec();
    let r = crate::dispatch_dtype!(compute, T => {
        let (be, al): (f64, f64) = (beta.to_f64(), alpha.to_f64());
        crate::tensor::kernels::elementwise::binary_map::<T, T, T>(&o, &b, &sizes, move |x, y| {
            if be == 1.0 && al == 1.0 {
                T::from_f64(x.to_f64() + y.to_f64())
            } else {
                T::from_f64(al * x.to_f64() + be * y.to_f64())
            }
        })
    });
    Ok(as_dtype(&r, dt))
}

fn addmm(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let prod = batched_matmul(a.tensor("mat1")?, a.tensor("mat2")?, dt)?;
    let (beta, alpha) = (a.scalar("beta")?, a.scalar("alpha")?);
    if beta.to_f64() == 0.0 {
        // PyTorch ignores `self` entirely (NaN included) when beta == 0.
        return out1(if alpha.to_f64() == 1.0 {
            prod
        } else {
            let z = Tensor::scalar_of(Number::Int(0), dt);
            add_bias(prod, &z, Number::Int(0), alpha)?
        });
    }
    out1(add_bias(prod, a.tensor("self")?, beta, alpha)?)
}

fn linear(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let x = a.tensor("input")?;
    let w = a.tensor("weight")?;
    let w = if w.dim() == 2 {
        w.transpose_untraced(0, 1)
    } else {
        w.clone()
    };
    let sizes = out_sizes(outs, 0)?;
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
    let r = matmul_tensors(x, &w, dt, &mm_sizes)?;
    let r =
        if mm_sizes != sizes && r.numel() == sizes.iter().product::<usize>() && r.is_contiguous() {
            r.restride(
                &sizes,
                &crate::tensor::contiguous_strides(&sizes),
                r.storage_offset(),
            )?
        } else {
            r
        };
    let mm_sizes = r.sizes().to_vec();
    match a.opt_tensor("bias")? {
        Some(b) => {
            let r = if mm_sizes == sizes {
                r
            } else {
                r.restride(
                    &sizes,
                    &crate::tensor::kernels::elementwise::broadcast_strides(&r, &sizes),
                    0,
                )?
                .contiguous_untraced()
            };
            out1(add_bias(r, b, Number::Int(1), Number::Int(1))?)
        }
        None => out1(r),
    }
}

//! Transposed convolution: `convolution(.., transposed=True, ..)` (Core ATen) and `conv_transpose1d/2d`,
//! which decompose to it. Each input pixel scatters `x * w` into the output window it maps to — the
//! adjoint of the direct convolution — computed in f64 for every floating dtype.
use super::nn::expand_param;
use super::*;

pub(super) fn register(r: &mut Builder) {
    r.out_op(
        "aten.conv_transpose2d.input",
        meta_conv_transpose,
        conv_transpose,
    )
    .decomposition(decompositions::conv_transpose);
    r.out_op(
        "aten.conv_transpose1d.default",
        meta_conv_transpose,
        conv_transpose,
    )
    .decomposition(decompositions::conv_transpose);
}

/// Stride, padding, output padding, dilation (one per spatial dim) and groups of a transposed call.
pub(super) struct TransposeArgs {
    stride: Vec<i64>,
    padding: Vec<i64>,
    output_padding: Vec<i64>,
    dilation: Vec<i64>,
    groups: i64,
}

fn transpose_args<T>(a: &Args<T>, spatial: usize) -> Result<TransposeArgs> {
    let t = TransposeArgs {
        stride: expand_param(a.ints("stride")?, spatial, "stride")?,
        padding: expand_param(a.ints("padding")?, spatial, "padding")?,
        output_padding: expand_param(a.ints("output_padding")?, spatial, "output_padding")?,
        dilation: expand_param(a.ints("dilation")?, spatial, "dilation")?,
        groups: a.int("groups")?,
    };
    if t.stride.iter().any(|&s| s <= 0) {
        return Err(Error::value("non-positive stride is not supported"));
    }
    if t.padding.iter().any(|&s| s < 0) {
        return Err(Error::value("negative padding is not supported"));
    }
    if t.output_padding.iter().any(|&s| s < 0) {
        return Err(Error::value("negative output padding is not supported"));
    }
    if t.dilation.iter().any(|&s| s <= 0) {
        return Err(Error::value("dilation should be greater than zero"));
    }
    if t.groups <= 0 {
        return Err(Error::value("non-positive groups is not supported"));
    }
    let hw = |v: &[i64], unit: i64| -> (i64, i64) {
        if spatial == 1 {
            (unit, v[0])
        } else {
            (v[0], v[1])
        }
    };
    let (oph, opw) = hw(&t.output_padding, 0);
    let (sh, sw) = hw(&t.stride, 1);
    let (dh, dw) = hw(&t.dilation, 1);
    if (oph >= sh && oph >= dh) || (opw >= sw && opw >= dw) {
        return Err(Error::value(format!(
            "output padding must be smaller than either stride or dilation, but got output_padding_height: {oph} output_padding_width: {opw} stride_height: {sh} stride_width: {sw} dilation_height: {dh} dilation_width: {dw}"
        )));
    }
    Ok(t)
}

/// The meta of a transposed convolution (also `convolution` with `transposed=True`): weight
/// `[C_in, C_out / groups, k...]`, output `(in - 1) * stride - 2 * padding + dilation * (k - 1) +
/// output_padding + 1` per spatial dim.
pub(super) fn meta_conv_transpose(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    let nd = w.dim();
    if !(3..=4).contains(&nd) {
        return Err(Error::shape(format!(
            "oxport supports 1-D and 2-D transposed convolution; weight has {nd} dims"
        )));
    }
    let spatial = nd - 2;
    let unbatched = x.dim() == nd - 1;
    if x.dim() != nd && !unbatched {
        return Err(Error::shape(format!(
            "Expected {}D (unbatched) or {}D (batched) input to conv_transpose{}d, but got input of size: {}",
            nd - 1,
            nd,
            spatial,
            fmt_shape(&x.sizes)
        )));
    }
    if x.dtype != w.dtype {
        return Err(Error::DType(format!(
            "Input type ({}) and weight type ({}) should be the same",
            x.dtype, w.dtype
        )));
    }
    if !x.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: "slow_conv_transpose2d_out_cpu".into(),
            dtype: x.dtype,
        });
    }
    let t = transpose_args(a, spatial)?;
    let off = usize::from(!unbatched);
    let cin = &x.sizes[off];
    if !w.sizes[0].guard_eq(cin) {
        return Err(Error::shape(format!(
            "Given transposed=1, weight of size {}, expected input{} to have {} channels, but got {} channels instead",
            fmt_shape(&w.sizes),
            fmt_shape(&x.sizes),
            w.sizes[0],
            cin
        )));
    }
    if !w.sizes[0]
        .modulo(&SymInt::Int(t.groups))
        .guard_eq(&SymInt::Int(0))
    {
        return Err(Error::shape(format!(
            "Given groups={}, expected weight to be divisible by {} at dimension 0, but got weight of size {} instead",
            t.groups,
            t.groups,
            fmt_shape(&w.sizes)
        )));
    }
    let cout = w.sizes[1].mul(&SymInt::Int(t.groups));
    if let Some(b) = a.opt_tensor("bias")? {
        if b.dim() != 1 || !b.sizes[0].guard_eq(&cout) {
            return Err(Error::shape(format!(
                "Given transposed=1, weight of size {}, expected bias to be 1-dimensional with {} elements, but got bias of size {} instead",
                fmt_shape(&w.sizes),
                cout,
                fmt_shape(&b.sizes)
            )));
        }
    }
    let mut out = vec![];
    if !unbatched {
        out.push(x.sizes[0].clone());
    }
    out.push(cout);
    for i in 0..spatial {
        let o = x.sizes[off + 1 + i]
            .sub(&SymInt::Int(1))
            .mul(&SymInt::Int(t.stride[i]))
            .sub(&SymInt::Int(2 * t.padding[i]))
            .add(
                &w.sizes[2 + i]
                    .sub(&SymInt::Int(1))
                    .mul(&SymInt::Int(t.dilation[i])),
            )
            .add(&SymInt::Int(t.output_padding[i] + 1));
        if o.guard_lt(&SymInt::Int(1)) {
            return Err(Error::shape(format!(
                "Given input size per channel: ({}). Calculated output size per channel: ({}). Output size is too small",
                x.sizes[off + 1..].iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" x "),
                o
            )));
        }
        out.push(o);
    }
    one(x.dtype, out)
}

/// The transposed convolution into `o[0]`.
pub(super) fn conv_transpose(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    let spatial = w.dim() - 2;
    let t = transpose_args(a, spatial)?;
    let batched = x.dim() == w.dim();
    let xs = x.sizes_untraced();
    let ws = w.sizes_untraced();
    let os = o[0].sizes_untraced().to_vec();
    let off = usize::from(batched);
    // 1-D runs as 2-D with a height of 1.
    let dims = |s: &[usize], lead: usize| -> [usize; 2] {
        if spatial == 1 {
            [1, s[lead]]
        } else {
            [s[lead], s[lead + 1]]
        }
    };
    let n = if batched { xs[0] } else { 1 };
    let (cin, [ih, iw]) = (xs[off], dims(xs, off + 1));
    let (coutg, [kh, kw]) = (ws[1], dims(ws, 2));
    let [oh, ow] = dims(&os, off + 1);
    // Per (height, width); 1-D has a unit height.
    let p2 = |v: &[i64], unit: i64| -> [i64; 2] {
        if spatial == 1 {
            [unit, v[0]]
        } else {
            [v[0], v[1]]
        }
    };
    let (stride, pad, dil) = (p2(&t.stride, 1), p2(&t.padding, 0), p2(&t.dilation, 1));
    let g = t.groups as usize;
    let cing = cin / g;
    let cout = coutg * g;
    let xd = x.to_vec_f64();
    let wd = w.to_vec_f64();
    let mut out = vec![0f64; n * cout * oh * ow];
    if let Some(b) = a.opt_tensor("bias")? {
        let b = b.to_vec_f64();
        for (i, v) in out.iter_mut().enumerate() {
            *v = b[(i / (oh * ow)) % cout];
        }
    }
    for b in 0..n {
        for ci in 0..cin {
            let grp = ci / cing;
            for y in 0..ih {
                for xx in 0..iw {
                    let v = xd[((b * cin + ci) * ih + y) * iw + xx];
                    for co in 0..coutg {
                        let oc = grp * coutg + co;
                        for ky in 0..kh {
                            let oy = y as i64 * stride[0] - pad[0] + ky as i64 * dil[0];
                            if oy < 0 || oy >= oh as i64 {
                                continue;
                            }
                            for kx in 0..kw {
                                let ox = xx as i64 * stride[1] - pad[1] + kx as i64 * dil[1];
                                if ox < 0 || ox >= ow as i64 {
                                    continue;
                                }
                                let wv = wd[((ci * coutg + co) * kh + ky) * kw + kx];
                                out[((b * cout + oc) * oh + oy as usize) * ow + ox as usize] +=
                                    v * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    let r = Tensor::from_vec(out, &os)?;
    o[0].assign_untraced(&as_dtype(&r, o[0].dtype()))
}

//! Neural-network ops: convolution, pooling, batch/layer norm, attention, embedding, LSTM.
use super::linalg::{batched_matmul, matmul_tensors};
use super::*;
use crate::dtype::Scalar;
use crate::tensor::kernels::conv::{conv2d, Conv2dParams};
use crate::tensor::kernels::matmul::Scalar as FloatScalar;
use crate::tensor::kernels::pool;
use crate::tensor::Element;

pub(super) fn register(r: &mut Builder) {
    r.out_op(
        "aten.conv2d.default",
        |a| meta_conv(a, ConvOp::Conv(2)),
        |a, o| conv_kernel(a, o, ConvOp::Conv(2)),
    )
    .decomposition(decompositions::conv2d);
    r.out_op(
        "aten.conv3d.default",
        |a| meta_conv(a, ConvOp::Conv(3)),
        |a, o| conv_kernel(a, o, ConvOp::Conv(3)),
    )
    .decomposition(decompositions::conv3d);
    r.out_op(
        "aten.conv1d.default",
        |a| meta_conv(a, ConvOp::Conv(1)),
        |a, o| conv_kernel(a, o, ConvOp::Conv(1)),
    )
    .decomposition(decompositions::conv1d);
    r.out_op(
        "aten.convolution.default",
        |a| meta_conv(a, ConvOp::Convolution),
        |a, o| conv_kernel(a, o, ConvOp::Convolution),
    );
    r.out_op(
        "aten.max_pool2d.default",
        |a| meta_pool(a, Pool2d::Max),
        |a, o| max_pool(a, o, false),
    )
    .decomposition(decompositions::max_pool2d);
    r.out_op(
        "aten.max_pool2d_with_indices.default",
        |a| meta_pool(a, Pool2d::MaxWithIndices),
        |a, o| max_pool(a, o, true),
    );
    r.out_op(
        "aten.avg_pool2d.default",
        |a| meta_pool(a, Pool2d::Avg),
        avg_pool,
    );
    r.out_op(
        "aten.adaptive_avg_pool2d.default",
        meta_adaptive,
        adaptive_avg_pool,
    )
    .decomposition(decompositions::adaptive_avg_pool2d);
    r.out_op(
        "aten._adaptive_avg_pool2d.default",
        meta_adaptive,
        adaptive_avg_pool,
    );
    r.out_op(
        "aten.batch_norm.default",
        |a| meta_batch_norm(a, BatchNormOp::BatchNorm),
        batch_norm,
    )
    .decomposition(decompositions::batch_norm);
    r.out_op(
        "aten._native_batch_norm_legit_no_training.default",
        |a| meta_batch_norm(a, BatchNormOp::NoTraining),
        batch_norm,
    );
    for name in [
        "aten._native_batch_norm_legit.default",
        "aten._native_batch_norm_legit.no_stats",
    ] {
        r.out_op(
            name,
            |a| meta_batch_norm(a, BatchNormOp::Legit),
            batch_norm_legit,
        );
    }
    r.out_op(
        "aten._native_batch_norm_legit_functional.default",
        meta_batch_norm_functional,
        batch_norm_functional,
    );
    r.out_op(
        "aten.layer_norm.default",
        |a| meta_layer_norm(a, false),
        layer_norm,
    )
    .decomposition(decompositions::layer_norm);
    r.out_op(
        "aten.native_layer_norm.default",
        |a| meta_layer_norm(a, true),
        layer_norm,
    );
    r.out_op("aten.scaled_dot_product_attention.default", meta_sdpa, sdpa)
        .decomposition(decompositions::scaled_dot_product_attention);
    r.out_op("aten.embedding.default", meta_embedding, embedding);
    r.out_op("aten.lstm.input", meta_lstm, lstm)
        .decomposition(decompositions::lstm_input);
    // No kernels of their own: the runtime runs PyTorch's decompositions (cells unrolled per step).
    r.decomposed(
        "aten.gru.input",
        |a| meta_rnn(a, 3),
        decompositions::gru_input,
    );
    r.decomposed(
        "aten.rnn_tanh.input",
        |a| meta_rnn(a, 1),
        decompositions::rnn_tanh_input,
    );
    r.decomposed(
        "aten.rnn_relu.input",
        |a| meta_rnn(a, 1),
        decompositions::rnn_relu_input,
    );
}

fn require_float(op: &str, t: &TensorMeta) -> Result<()> {
    if !t.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: op.to_string(),
            dtype: t.dtype,
        });
    }
    Ok(())
}

/// Expands an `int[N]` argument given as one value (`[3]`) to N values, like PyTorch's `expand_param_if_needed`.
pub(super) fn expand_param(v: Vec<i64>, n: usize, name: &str) -> Result<Vec<i64>> {
    match v.len() {
        1 => Ok(vec![v[0]; n]),
        l if l == n => Ok(v),
        l => Err(Error::value(format!("expected {name} to be a single integer value or a list of {n} values to match the convolution dimensions, but got {name}={v:?} (len {l})"))),
    }
}

// ---- convolution -------------------------------------------------------------------------------------

struct ConvArgs {
    stride: Vec<i64>,
    padding: Vec<i64>,
    dilation: Vec<i64>,
    groups: i64,
}

fn conv_args<T>(a: &Args<T>, spatial: usize) -> Result<ConvArgs> {
    let c = ConvArgs {
        stride: expand_param(a.ints("stride")?, spatial, "stride")?,
        padding: expand_param(a.ints("padding")?, spatial, "padding")?,
        dilation: expand_param(a.ints("dilation")?, spatial, "dilation")?,
        groups: a.int("groups")?,
    };
    if c.stride.iter().any(|&s| s <= 0) {
        return Err(Error::value("non-positive stride is not supported"));
    }
    if c.padding.iter().any(|&s| s < 0) {
        return Err(Error::value("negative padding is not supported"));
    }
    if c.dilation.iter().any(|&s| s <= 0) {
        return Err(Error::value("dilation should be greater than zero"));
    }
    if c.groups <= 0 {
        return Err(Error::value("non-positive groups is not supported"));
    }
    Ok(c)
}

/// Which convolution overload: `conv1d/2d/3d` (their spatial rank) or the general `convolution`.
#[derive(Clone, Copy, PartialEq)]
enum ConvOp {
    Conv(usize),
    Convolution,
}

/// True for `convolution(.., transposed=True, ..)`.
fn is_transposed<T>(a: &Args<T>, op: ConvOp) -> Result<bool> {
    Ok(op == ConvOp::Convolution && a.bool("transposed")?)
}

fn meta_conv(a: &Args<TensorMeta>, op: ConvOp) -> Result<Vec<Value<TensorMeta>>> {
    if is_transposed(a, op)? {
        return super::conv_transpose::meta_conv_transpose(a);
    }
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    let nd = w.dim();
    if !(3..=5).contains(&nd) {
        return Err(Error::shape(format!(
            "oxport supports 1-D, 2-D and 3-D convolution; weight has {nd} dims"
        )));
    }
    let spatial = nd - 2;
    let op_spatial = match op {
        ConvOp::Conv(k) => Some(k),
        ConvOp::Convolution => None,
    };
    if op_spatial.is_some_and(|k| k != spatial) && x.dim() != nd {
        return Err(Error::shape(format!(
            "Expected {nd}-dimensional input for {nd}-dimensional weight {}, but got {}-dimensional input of size {} instead",
            fmt_shape(&w.sizes),
            x.dim(),
            fmt_shape(&x.sizes)
        )));
    }
    if w.sizes[2..].iter().any(|k| k.guard_lt(&SymInt::Int(1))) && spatial == 2 {
        return Err(Error::shape(format!(
            "kernel size should be greater than zero, but got kernel_height: {} kernel_width: {}",
            w.sizes[2], w.sizes[3]
        )));
    }
    let unbatched = x.dim() == nd - 1;
    if x.dim() != nd && !unbatched {
        return Err(Error::shape(format!(
            "Expected {}D (unbatched) or {}D (batched) input to conv{}d, but got input of size: {}",
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
    require_float("conv2d", x)?;
    let c = conv_args(a, spatial)?;
    let xs: Vec<SymInt> = if unbatched {
        std::iter::once(SymInt::Int(1))
            .chain(x.sizes.iter().cloned())
            .collect()
    } else {
        x.sizes.clone()
    };
    let g = SymInt::Int(c.groups);
    let cin = xs[1].clone();
    if !w.sizes[1].mul(&g).guard_eq(&cin) {
        let ws = fmt_shape(&w.sizes);
        return Err(Error::shape(format!(
            "Given groups={}, weight of size {ws}, expected input{} to have {} channels, but got {} channels instead",
            c.groups,
            fmt_shape(&xs),
            w.sizes[1].mul(&g),
            cin
        )));
    }
    if !w.sizes[0].modulo(&g).guard_eq(&SymInt::Int(0)) {
        return Err(Error::shape(format!("Given groups={}, expected weight to be divisible by {} at dimension 0, but got weight of size {} instead", c.groups, c.groups, fmt_shape(&w.sizes))));
    }
    if let Some(b) = a.opt_tensor("bias")? {
        if b.dim() != 1 || !b.sizes[0].guard_eq(&w.sizes[0]) {
            return Err(Error::shape(format!(
                "Given weight of size {}, expected bias to be 1-dimensional with {} elements, but got bias of size {} instead",
                fmt_shape(&w.sizes),
                w.sizes[0],
                fmt_shape(&b.sizes)
            )));
        }
    }
    let mut out = vec![xs[0].clone(), w.sizes[0].clone()];
    for i in 0..spatial {
        let padded = xs[2 + i].add(&SymInt::Int(2 * c.padding[i]));
        let eff = w.sizes[2 + i]
            .sub(&SymInt::Int(1))
            .mul(&SymInt::Int(c.dilation[i]))
            .add(&SymInt::Int(1));
        if padded.guard_lt(&eff) {
            let pads: Vec<String> = (0..spatial)
                .map(|j| xs[2 + j].add(&SymInt::Int(2 * c.padding[j])).to_string())
                .collect();
            let ks: Vec<String> = (0..spatial)
                .map(|j| {
                    w.sizes[2 + j]
                        .sub(&SymInt::Int(1))
                        .mul(&SymInt::Int(c.dilation[j]))
                        .add(&SymInt::Int(1))
                        .to_string()
                })
                .collect();
            return Err(Error::shape(format!(
                "Calculated padded input size per channel: ({}). Kernel size: ({}). Kernel size can't be greater than actual input size",
                pads.join(" x "),
                ks.join(" x ")
            )));
        }
        out.push(
            padded
                .sub(&eff)
                .floor_div(&SymInt::Int(c.stride[i]))
                .add(&SymInt::Int(1)),
        );
    }
    if unbatched {
        out.remove(0);
    }
    one(x.dtype, out)
}

/// 2-d convolution into `out` (row-major), computing in `T`: straight into its buffer when it has
/// dtype `T`, else into a `T` scratch cast into it. Contiguous inputs, weights and bias are read in
/// place (`with_contiguous` copies only strided ones).
fn conv_typed_into<T: Element + FloatScalar>(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    xs: [usize; 4],
    ws: [usize; 4],
    p: &Conv2dParams,
    out: &Tensor,
) -> Result<()> {
    let run = |o: &mut [T]| -> Result<()> {
        x.with_contiguous::<T, _>(|xd| {
            w.with_contiguous::<T, _>(|wd| match b {
                Some(b) => b.with_contiguous::<T, _>(|bd| conv2d(xd, xs, wd, ws, Some(bd), p, o)),
                None => {
                    conv2d(xd, xs, wd, ws, None, p, o);
                    Ok(())
                }
            })
        })???;
        Ok(())
    };
    if out.dtype() == T::DTYPE {
        out.with_contiguous_mut::<T, _>(run)?
    } else {
        let mut o = vec![T::default(); out.numel()];
        run(&mut o)?;
        out.write_contiguous(&o)
    }
}

fn conv_kernel(a: &Args<Tensor>, o: &mut [Tensor], op: ConvOp) -> Result<()> {
    if is_transposed(a, op)? {
        return super::conv_transpose::conv_transpose(a, o);
    }
    let out = &o[0];
    let dt = out.dtype();
    let sizes = out.sizes().to_vec();
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    let spatial = w.dim() - 2;
    let c = conv_args(a, spatial)?;
    if spatial == 3 {
        // TODO(issue 11): conv3d computes into its own tensor, copied into the output.
        return out.assign_untraced(&conv3d(a, &c, &sizes, dt)?);
    }
    let batched = x.dim() == w.dim();
    let n = if batched { x.sizes()[0] } else { 1 };
    let off = usize::from(batched);
    // 1-D convolution runs as 2-D with H = 1.
    let (xs, ws, p) = if spatial == 1 {
        (
            [n, x.sizes()[off], 1, x.sizes()[off + 1]],
            [w.sizes()[0], w.sizes()[1], 1, w.sizes()[2]],
            Conv2dParams {
                stride: [1, c.stride[0] as usize],
                padding: [0, c.padding[0] as usize],
                dilation: [1, c.dilation[0] as usize],
                groups: c.groups as usize,
            },
        )
    } else {
        (
            [n, x.sizes()[off], x.sizes()[off + 1], x.sizes()[off + 2]],
            [w.sizes()[0], w.sizes()[1], w.sizes()[2], w.sizes()[3]],
            Conv2dParams {
                stride: [c.stride[0] as usize, c.stride[1] as usize],
                padding: [c.padding[0] as usize, c.padding[1] as usize],
                dilation: [c.dilation[0] as usize, c.dilation[1] as usize],
                groups: c.groups as usize,
            },
        )
    };
    let compute = if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let (xc, wc) = (as_dtype(x, compute), as_dtype(w, compute));
    let bc = a.opt_tensor("bias")?.map(|b| as_dtype(b, compute));
    if compute == DType::F64 {
        conv_typed_into::<f64>(&xc, &wc, bc.as_ref(), xs, ws, &p, out)
    } else {
        conv_typed_into::<f32>(&xc, &wc, bc.as_ref(), xs, ws, &p, out)
    }
}

/// 3-d convolution: per sample and group, the input unfolded (im2col over depth, height, width) times
/// the flattened weights, on the gemm-backed matmul.
fn conv3d(a: &Args<Tensor>, c: &ConvArgs, out_sizes: &[usize], dt: DType) -> Result<Tensor> {
    let (x, w) = (a.tensor("input")?, a.tensor("weight")?);
    let batched = x.dim() == 5;
    let xs = x.sizes_untraced();
    let off = usize::from(batched);
    let n = if batched { xs[0] } else { 1 };
    let cin = xs[off];
    let [id, ih, iw] = [xs[off + 1], xs[off + 2], xs[off + 3]];
    let ws = w.sizes_untraced();
    let (cout, cing, [kd, kh, kw]) = (ws[0], ws[1], [ws[2], ws[3], ws[4]]);
    let os = &out_sizes[out_sizes.len() - 3..];
    let [od, oh, ow] = [os[0], os[1], os[2]];
    let g = c.groups as usize;
    let coutg = cout / g.max(1);
    let compute = if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let xd = as_dtype(x, DType::F64).to_vec::<f64>()?;
    let wflat = as_dtype(w, compute).contiguous_untraced();
    let k = cing * kd * kh * kw;
    let cols = od * oh * ow;
    let mut out = vec![0f64; n * cout * cols];
    let p = |i: usize| (c.stride[i], c.padding[i], c.dilation[i]);
    let (pd, ph, pw) = (p(0), p(1), p(2));
    for b in 0..n {
        for grp in 0..g {
            let mut col = vec![0f64; k * cols];
            for ci in 0..cing {
                let chan = grp * cing + ci;
                for zd in 0..kd {
                    for zh in 0..kh {
                        for zw in 0..kw {
                            let row = ((ci * kd + zd) * kh + zh) * kw + zw;
                            for o_d in 0..od {
                                let sd = o_d as i64 * pd.0 - pd.1 + zd as i64 * pd.2;
                                if sd < 0 || sd >= id as i64 {
                                    continue;
                                }
                                for o_h in 0..oh {
                                    let sh = o_h as i64 * ph.0 - ph.1 + zh as i64 * ph.2;
                                    if sh < 0 || sh >= ih as i64 {
                                        continue;
                                    }
                                    for o_w in 0..ow {
                                        let sw = o_w as i64 * pw.0 - pw.1 + zw as i64 * pw.2;
                                        if sw < 0 || sw >= iw as i64 {
                                            continue;
                                        }
                                        let src = (((b * cin + chan) * id + sd as usize) * ih
                                            + sh as usize)
                                            * iw
                                            + sw as usize;
                                        col[row * cols + (o_d * oh + o_h) * ow + o_w] = xd[src];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let colt = as_dtype(&Tensor::from_vec(col, &[k, cols])?, compute);
            let wg = wflat
                .restride(&[coutg, k], &[k, 1], grp * coutg * k)?
                .contiguous_untraced();
            let prod = batched_matmul(&wg, &colt, compute)?.to_vec_f64();
            let base = (b * cout + grp * coutg) * cols;
            out[base..base + coutg * cols].copy_from_slice(&prod);
        }
    }
    if let Some(bias) = a.opt_tensor("bias")? {
        let bias = bias.to_vec_f64();
        for (i, v) in out.iter_mut().enumerate() {
            *v += bias[(i / cols) % cout];
        }
    }
    Ok(as_dtype(&Tensor::from_vec(out, out_sizes)?, dt))
}

// ---- pooling -----------------------------------------------------------------------------------------

struct PoolArgs {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
}

fn pair(v: Vec<i64>, name: &str, default: Option<[usize; 2]>) -> Result<[usize; 2]> {
    let bad = || {
        Error::value(format!(
            "{name} must either be a single int, or a tuple of two ints"
        ))
    };
    match v.len() {
        0 => default.ok_or_else(bad),
        1 | 2 => {
            let (x, y) = (v[0], *v.last().expect("non-empty"));
            if x < 0 || y < 0 {
                return Err(Error::value(format!("{name} must be non-negative")));
            }
            Ok([x as usize, y as usize])
        }
        _ => Err(bad()),
    }
}

fn pool_args<T>(a: &Args<T>) -> Result<PoolArgs> {
    let kernel = pair(a.ints("kernel_size")?, "kernel_size", None)?;
    let stride = pair(a.ints("stride")?, "stride", Some(kernel))?;
    let padding = pair(a.ints("padding")?, "padding", None)?;
    let dilation = if a.schema.arg_index("dilation").is_some() {
        pair(a.ints("dilation")?, "dilation", None)?
    } else {
        [1, 1]
    };
    if kernel.contains(&0) {
        return Err(Error::value("kernel size should be greater than zero"));
    }
    if stride.contains(&0) {
        return Err(Error::value("stride should be greater than zero"));
    }
    if dilation.contains(&0) {
        return Err(Error::value("dilation should be greater than zero"));
    }
    for i in 0..2 {
        let eff = dilation[i] * (kernel[i] - 1) + 1;
        if padding[i] * 2 > eff {
            return Err(Error::value(format!(
                "pad should be at most half of effective kernel size, but got pad={}, kernel_size={} and dilation={}",
                padding[i], kernel[i], dilation[i]
            )));
        }
    }
    Ok(PoolArgs {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode: a.bool("ceil_mode")?,
    })
}

/// The 2-d pooling overloads sharing [`meta_pool`].
#[derive(Clone, Copy, PartialEq)]
enum Pool2d {
    Max,
    MaxWithIndices,
    Avg,
}

fn meta_pool(a: &Args<TensorMeta>, pool: Pool2d) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    if x.dim() != 3 && x.dim() != 4 {
        return Err(Error::shape(format!(
            "non-empty 3D or 4D (batch mode) tensor expected for input, but got: {}",
            fmt_shape(&x.sizes)
        )));
    }
    if x.dtype == DType::Bool
        || (pool == Pool2d::Avg && x.dtype.is_integral() && x.dtype != DType::I64)
    {
        return Err(Error::DTypeNotSupported {
            op: a.schema.name.clone(),
            dtype: x.dtype,
        });
    }
    let first = x.dim() - 3; // the batch dim (4-D input) may be empty, the others may not
    if x.sizes[first..].iter().any(|s| s.guard_eq(&SymInt::Int(0))) {
        return Err(Error::shape(format!(
            "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:{}",
            fmt_shape(&x.sizes)
        )));
    }
    let p = pool_args(a)?;
    let nd = x.dim();
    let mut out = x.sizes.clone();
    for i in 0..2 {
        let size = x.sizes[nd - 2 + i].hint() as usize;
        let o = pool::pool_out_size(
            size,
            p.kernel[i],
            p.stride[i],
            p.padding[i],
            p.dilation[i],
            p.ceil_mode,
        );
        if o == 0 || o > size + 2 * p.padding[i] {
            return Err(Error::shape(format!(
                "Given input size: ({}). Calculated output size: ({}). Output size is too small",
                x.sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("x"),
                o
            )));
        }
        out[nd - 2 + i] = SymInt::from(o);
    }
    let m = TensorMeta::contiguous(x.dtype, out.clone());
    if pool == Pool2d::MaxWithIndices {
        Ok(vec![
            Value::Tensor(m),
            Value::Tensor(TensorMeta::contiguous(DType::I64, out)),
        ])
    } else {
        Ok(vec![Value::Tensor(m)])
    }
}

/// `[N, C, H, W]` of a 3-D or 4-D pooling input.
fn nchw(x: &Tensor) -> [usize; 4] {
    let s = x.sizes();
    if s.len() == 3 {
        [1, s[0], s[1], s[2]]
    } else {
        [s[0], s[1], s[2], s[3]]
    }
}

/// Which pooling kernel to run.
enum Pool<'a> {
    Max {
        args: &'a PoolArgs,
    },
    Avg {
        args: &'a PoolArgs,
        count_include_pad: bool,
        divisor_override: Option<i64>,
    },
    Adaptive {
        out_hw: [usize; 2],
    },
}

/// Runs a pooling kernel in compute type `T` on a contiguous copy of `x`; returns the values (in `T`)
/// and, for max pooling with indices, the flat indices.
/// Pools `x` into `out` (and the argmax `indices`, max pooling only), computing in `T`: straight into
/// `out`'s buffer when it has dtype `T`, else into a `T` scratch cast into it.
fn pool_into<T: Element + FloatScalar>(
    x: &Tensor,
    pool: &Pool,
    out: &Tensor,
    indices: Option<&Tensor>,
) -> Result<()> {
    let xt = as_dtype(x, T::DTYPE);
    let s = nchw(x);
    let run = |o: &mut [T], idx: Option<&mut [i64]>| -> Result<()> {
        xt.with_contiguous::<T, _>(|d| match pool {
            Pool::Max { args: p, .. } => pool::max_pool2d(
                d,
                s,
                p.kernel,
                p.stride,
                p.padding,
                p.dilation,
                p.ceil_mode,
                o,
                idx,
            ),
            Pool::Avg {
                args: p,
                count_include_pad,
                divisor_override,
            } => pool::avg_pool2d(
                d,
                s,
                p.kernel,
                p.stride,
                p.padding,
                p.ceil_mode,
                *count_include_pad,
                *divisor_override,
                o,
            ),
            Pool::Adaptive { out_hw } => pool::adaptive_avg_pool2d(d, s, *out_hw, o),
        })
    };
    // Indices cost ~2.7x in max pooling: computed only when asked for.
    let run_with = |o: &mut [T]| -> Result<()> {
        match indices {
            Some(it) => it.with_contiguous_mut::<i64, _>(|i| run(o, Some(i)))?,
            None => run(o, None),
        }
    };
    if out.dtype() == T::DTYPE {
        out.with_contiguous_mut::<T, _>(run_with)?
    } else {
        let mut o = vec![T::default(); out.numel()];
        run_with(&mut o)?;
        out.write_contiguous(&o)
    }
}

/// Pools in f32 for f32/f16/bf16 outputs and in f64 otherwise (f64 holds integers up to 2^53 exactly),
/// casting the values to `out`'s dtype as they are stored (integer average pooling truncates, like
/// PyTorch).
fn run_pool(x: &Tensor, pool: &Pool, out: &Tensor, indices: Option<&Tensor>) -> Result<()> {
    if matches!(out.dtype(), DType::F32 | DType::F16 | DType::BF16) {
        pool_into::<f32>(x, pool, out, indices)
    } else {
        pool_into::<f64>(x, pool, out, indices)
    }
}

fn max_pool(a: &Args<Tensor>, o: &mut [Tensor], with_indices: bool) -> Result<()> {
    let p = pool_args(a)?;
    let pool = Pool::Max { args: &p };
    let indices = if with_indices { o.get(1) } else { None };
    run_pool(a.tensor("self")?, &pool, &o[0], indices)
}

fn avg_pool(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let p = pool_args(a)?;
    let divisor_override = a.opt_int("divisor_override")?;
    if divisor_override == Some(0) {
        return Err(Error::value("divisor must be not zero"));
    }
    let pool = Pool::Avg {
        args: &p,
        count_include_pad: a.bool("count_include_pad")?,
        divisor_override,
    };
    run_pool(a.tensor("self")?, &pool, &o[0], None)
}

fn meta_adaptive(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    if x.dim() != 3 && x.dim() != 4 {
        return Err(Error::shape(format!(
            "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {}",
            fmt_shape(&x.sizes)
        )));
    }
    require_float("adaptive_avg_pool2d", x)?;
    for d in 1..x.dim() {
        if x.sizes[d].guard_eq(&SymInt::Int(0)) {
            return Err(Error::shape(format!(
                "adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch dimensions, but input has sizes {} with dimension {d} being empty",
                fmt_shape(&x.sizes)
            )));
        }
    }
    let os = expand_param(a.ints("output_size")?, 2, "output_size")?;
    if os.iter().any(|&v| v < 0) {
        return Err(Error::value(
            "adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0",
        ));
    }
    let mut out = x.sizes.clone();
    let nd = out.len();
    out[nd - 2] = SymInt::Int(os[0]);
    out[nd - 1] = SymInt::Int(os[1]);
    one(x.dtype, out)
}

fn adaptive_avg_pool(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let sizes = o[0].sizes().to_vec();
    let nd = sizes.len();
    let pool = Pool::Adaptive {
        out_hw: [sizes[nd - 2], sizes[nd - 1]],
    };
    run_pool(a.tensor("self")?, &pool, &o[0], None)
}

// ---- normalisation -----------------------------------------------------------------------------------

/// An optional tensor argument that some overloads do not have (`_native_batch_norm_legit.no_stats` has
/// no running statistics).
fn opt_tensor_arg<'a, T>(a: &'a Args<T>, name: &str) -> Result<Option<&'a T>> {
    if a.schema.arg_index(name).is_none() {
        return Ok(None);
    }
    a.opt_tensor(name)
}

/// The batch-norm overloads sharing [`meta_batch_norm`].
#[derive(Clone, Copy, PartialEq)]
enum BatchNormOp {
    /// `batch_norm`: one output.
    BatchNorm,
    /// `_native_batch_norm_legit` (with or without stats): saves the batch statistics in training.
    Legit,
    /// `_native_batch_norm_legit_no_training` / `_functional`: empty saved statistics in eval.
    NoTraining,
}

fn meta_batch_norm(a: &Args<TensorMeta>, op: BatchNormOp) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    require_float("batch_norm", x)?;
    if x.dim() < 2 {
        return Err(Error::shape(format!(
            "batch_norm: expected at least 2-D input, got {}-D",
            x.dim()
        )));
    }
    let c = &x.sizes[1];
    for name in ["running_mean", "running_var", "weight", "bias"] {
        if let Some(t) = opt_tensor_arg(a, name)? {
            if t.dim() != 1 || !t.sizes[0].guard_eq(c) {
                return Err(Error::shape(
                    format!("running_mean should contain {c} elements not {}", t.numel())
                        .replace("running_mean", name),
                ));
            }
        }
    }
    let training = a.schema.arg_index("training").is_some() && a.bool("training")?;
    if !training
        && (opt_tensor_arg(a, "running_mean")?.is_none()
            || opt_tensor_arg(a, "running_var")?.is_none())
    {
        return Err(Error::value(if op == BatchNormOp::Legit {
            "running_mean must be defined in evaluation mode"
        } else {
            "running_mean and running_var must be defined in evaluation mode"
        }));
    }
    let out = TensorMeta::contiguous(x.dtype, x.sizes.clone());
    if op == BatchNormOp::BatchNorm {
        return Ok(vec![Value::Tensor(out)]);
    }
    // `_native_batch_norm_legit` saves the batch mean and inverse std in training, nothing in eval.
    let saved = if training && op == BatchNormOp::Legit {
        vec![c.clone()]
    } else {
        vec![SymInt::Int(0)]
    };
    let saved = TensorMeta::contiguous(x.dtype, saved);
    Ok(vec![
        Value::Tensor(out),
        Value::Tensor(saved.clone()),
        Value::Tensor(saved),
    ])
}

/// `_native_batch_norm_legit_functional`: batch norm whose running-stat updates are returned
/// (`running_mean_out`, `running_var_out`) instead of written in place; in training it also returns
/// the batch mean and inverse std.
fn meta_batch_norm_functional(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let outs = meta_batch_norm(a, BatchNormOp::NoTraining)?;
    let x = a.tensor("input")?;
    let stat = |n: &str| -> Result<TensorMeta> {
        let t = a.tensor(n)?;
        Ok(TensorMeta::contiguous(t.dtype, t.sizes.clone()))
    };
    let saved = if a.bool("training")? {
        TensorMeta::contiguous(x.dtype, vec![x.sizes[1].clone()])
    } else {
        TensorMeta::contiguous(x.dtype, vec![SymInt::Int(0)])
    };
    Ok(vec![
        outs[0].clone(),
        Value::Tensor(saved.clone()),
        Value::Tensor(saved),
        Value::Tensor(stat("running_mean")?),
        Value::Tensor(stat("running_var")?),
    ])
}

fn batch_norm_functional(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    // Run the in-place computation on the outputs `running_mean_out` / `running_var_out`, which
    // start as copies of the running statistics.
    let mut values = a.values.clone();
    for (k, name) in ["running_mean", "running_var"].into_iter().enumerate() {
        let i = a
            .schema
            .arg_index(name)
            .ok_or_else(|| Error::value(format!("no argument {name}")))?;
        let out = &o[3 + k];
        out.assign_untraced(a.tensor(name)?)?;
        values[i] = Value::Tensor(out.clone());
    }
    let args = Args {
        schema: a.schema,
        values,
    };
    let (y, mean, var) = batch_norm_compute(&args)?;
    let (save_mean, save_rstd) = saved_stats(a, mean, var, a.tensor("input")?.dtype())?;
    o[0].assign_untraced(&y)?;
    o[1].assign_untraced(&save_mean)?;
    o[2].assign_untraced(&save_rstd)
}

/// What batch norm saves for backward: the batch mean and inverse std in training, empty tensors in eval.
fn saved_stats(
    a: &Args<Tensor>,
    mean: Vec<f64>,
    var: Vec<f64>,
    dt: DType,
) -> Result<(Tensor, Tensor)> {
    if !a.bool("training")? {
        let empty = Tensor::filled(&[0], Scalar::Int(0), dt);
        return Ok((empty.clone(), empty));
    }
    let c = mean.len();
    let eps = a.float("eps")?;
    let rstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    Ok((
        as_dtype(&Tensor::from_vec(mean, &[c])?, dt),
        as_dtype(&Tensor::from_vec(rstd, &[c])?, dt),
    ))
}

/// Per-channel affine `y = x * scale[c] + shift[c]` over dim 1, computed in f64, into a contiguous
/// `out` of `x`'s sizes (each element cast as it is stored).
fn channel_affine_into(x: &Tensor, scale: &[f64], shift: &[f64], out: &Tensor) -> Result<()> {
    let sizes = x.sizes().to_vec();
    let c = sizes[1];
    let inner: usize = sizes[2..].iter().product();
    let v = as_dtype(x, DType::F64).to_vec::<f64>()?;
    crate::dispatch_dtype!(out.dtype(), T => out.with_contiguous_mut::<T, _>(|o| {
        for (i, (d, e)) in o.iter_mut().zip(&v).enumerate() {
            let ch = (i / inner.max(1)) % c.max(1);
            *d = crate::tensor::cast_element::<f64, T>(*e * scale[ch] + shift[ch]);
        }
    }))
}

/// `_native_batch_norm_legit` (with running statistics updated in place in training, or without any):
/// the output, then the batch mean and inverse std in training (empty in eval).
fn batch_norm_legit(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let (mean, var) = batch_norm_compute_into(a, &o[0])?;
    if a.bool("training")? {
        let eps = a.float("eps")?;
        let rstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        o[1].write_contiguous(&mean)?;
        o[2].write_contiguous(&rstd)?;
    }
    Ok(())
}

fn batch_norm(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    // The statistics outputs of `_native_batch_norm_legit_no_training` are empty.
    batch_norm_compute_into(a, &o[0]).map(|_| ())
}

/// Batch norm: the output and the (batch or running) mean and variance it used; in training the
/// running statistics passed in are updated in place, as PyTorch does.
fn batch_norm_compute(a: &Args<Tensor>) -> Result<(Tensor, Vec<f64>, Vec<f64>)> {
    let x = a.tensor("input")?;
    let y = Tensor::filled(x.sizes(), Scalar::Int(0), x.dtype());
    let (mean, var) = batch_norm_compute_into(a, &y)?;
    Ok((y, mean, var))
}

/// [`batch_norm_compute`] writing the output into `y` (contiguous, the input's sizes).
fn batch_norm_compute_into(a: &Args<Tensor>, y: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let x = a.tensor("input")?;
    let c = x.sizes()[1];
    let eps = a.float("eps")?;
    let training = a.schema.arg_index("training").is_some() && a.bool("training")?;
    let vec_or = |name: &str, d: f64| -> Result<Vec<f64>> {
        Ok(match opt_tensor_arg(a, name)? {
            Some(t) => as_dtype(t, DType::F64).to_vec::<f64>()?,
            None => vec![d; c],
        })
    };
    let (w, b) = (vec_or("weight", 1.0)?, vec_or("bias", 0.0)?);
    let (mean, var) = if training {
        // Batch statistics over all dims but 1; running stats are updated in place like PyTorch.
        let (data, seg) = crate::tensor::kernels::reduce::segments::<f64>(
            &as_dtype(x, DType::F64),
            &std::iter::once(0).chain(2..x.dim()).collect::<Vec<_>>(),
        );
        let n = seg as f64;
        // One segment per channel (`segments` moved dim 1 first); an empty batch gives NaN statistics.
        let chan = |ch: usize| &data[ch * seg..(ch + 1) * seg];
        let mean: Vec<f64> = (0..c).map(|ch| chan(ch).iter().sum::<f64>() / n).collect();
        let var: Vec<f64> = (0..c)
            .map(|ch| {
                chan(ch)
                    .iter()
                    .map(|v| (v - mean[ch]) * (v - mean[ch]))
                    .sum::<f64>()
                    / n
            })
            .collect();
        let mom = a.float("momentum")?;
        if let (Some(rm), Some(rv)) = (
            opt_tensor_arg(a, "running_mean")?,
            opt_tensor_arg(a, "running_var")?,
        ) {
            let old_m = as_dtype(rm, DType::F64).to_vec::<f64>()?;
            let old_v = as_dtype(rv, DType::F64).to_vec::<f64>()?;
            let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
            let nm: Vec<f64> = old_m
                .iter()
                .zip(&mean)
                .map(|(o, m)| (1.0 - mom) * o + mom * m)
                .collect();
            let nv: Vec<f64> = old_v
                .iter()
                .zip(&var)
                .map(|(o, v)| (1.0 - mom) * o + mom * v * unbias)
                .collect();
            rm.assign_untraced(&Tensor::from_vec(nm, &[c])?)?;
            rv.assign_untraced(&Tensor::from_vec(nv, &[c])?)?;
        }
        (mean, var)
    } else {
        (vec_or("running_mean", 0.0)?, vec_or("running_var", 1.0)?)
    };
    let scale: Vec<f64> = (0..c).map(|i| w[i] / (var[i] + eps).sqrt()).collect();
    let shift: Vec<f64> = (0..c).map(|i| b[i] - mean[i] * scale[i]).collect();
    channel_affine_into(x, &scale, &shift, y)?;
    Ok((mean, var))
}

/// `layer_norm` and `native_layer_norm` (`native`: also the mean and rstd).
fn meta_layer_norm(a: &Args<TensorMeta>, native: bool) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    require_float("layer_norm", x)?;
    let ns = a.symints("normalized_shape")?;
    let nd = x.dim();
    let bad =
        || {
            Error::shape(format!(
            "Given normalized_shape={}, expected input with shape [*, {}], but got input of size{}",
            fmt_shape(ns),
            ns.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
            fmt_shape(&x.sizes)
        ))
        };
    if ns.is_empty() || ns.len() > nd {
        return Err(bad());
    }
    for (i, s) in ns.iter().enumerate() {
        if !x.sizes[nd - ns.len() + i].guard_eq(s) {
            return Err(bad());
        }
    }
    for name in ["weight", "bias"] {
        if let Some(t) = a.opt_tensor(name)? {
            if t.sizes != ns {
                return Err(Error::shape(format!(
                    "Expected {name} to be of same shape as normalized_shape, but got {name} of shape {} and normalized_shape = {}",
                    fmt_shape(&t.sizes),
                    fmt_shape(ns)
                )));
            }
        }
    }
    let out = TensorMeta::contiguous(x.dtype, x.sizes.clone());
    if !native {
        return Ok(vec![Value::Tensor(out)]);
    }
    let mut stat = x.sizes[..nd - ns.len()].to_vec();
    stat.extend(std::iter::repeat_n(SymInt::Int(1), ns.len()));
    let stat_dt = x.dtype;
    Ok(vec![
        Value::Tensor(out),
        Value::Tensor(TensorMeta::contiguous(stat_dt, stat.clone())),
        Value::Tensor(TensorMeta::contiguous(stat_dt, stat)),
    ])
}

fn layer_norm(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("input")?;
    let ns = a.ints("normalized_shape")?;
    let eps = a.float("eps")?;
    let seg: usize = ns.iter().map(|&v| v as usize).product();
    let (w, b) = (a.opt_tensor("weight")?, a.opt_tensor("bias")?);
    if layer_norm_f32(x, seg, eps, w, b, o)? {
        return Ok(());
    }
    let data = as_dtype(x, DType::F64).to_vec::<f64>()?;
    let w = a
        .opt_tensor("weight")?
        .map(|t| as_dtype(t, DType::F64).to_vec::<f64>())
        .transpose()?;
    let b = a
        .opt_tensor("bias")?
        .map(|t| as_dtype(t, DType::F64).to_vec::<f64>())
        .transpose()?;
    let nseg = data.len().checked_div(seg).unwrap_or(0);
    let mut means = Vec::with_capacity(nseg);
    let mut rstds = Vec::with_capacity(nseg);
    let y = &o[0];
    crate::dispatch_dtype!(y.dtype(), T => y.with_contiguous_mut::<T, _>(|out| {
        if seg == 0 {
            return;
        }
        for (s, os) in data.chunks(seg).zip(out.chunks_mut(seg)) {
            let m = s.iter().sum::<f64>() / seg as f64;
            let v = s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / seg as f64;
            let r = 1.0 / (v + eps).sqrt();
            for (i, (e, d)) in s.iter().zip(os.iter_mut()).enumerate() {
                let mut y = (*e - m) * r;
                if let Some(w) = &w {
                    y *= w[i];
                }
                if let Some(b) = &b {
                    y += b[i];
                }
                *d = crate::tensor::cast_element::<f64, T>(y);
            }
            means.push(m);
            rstds.push(r);
        }
    }))?;
    if let [_, mean, rstd] = o {
        mean.write_contiguous(&means)?;
        rstd.write_contiguous(&rstds)?;
    }
    Ok(())
}

/// [`layer_norm`]'s f32 path: an f32 input, weight and bias into f32 outputs, each row normalised by
/// the vectorised [`vmath::layer_norm_row`](crate::tensor::kernels::vmath::layer_norm_row) (two
/// passes, f32 arithmetic as PyTorch's CPU kernel), rows in parallel when large. Returns false,
/// writing nothing, for other dtypes.
fn layer_norm_f32(
    x: &Tensor,
    seg: usize,
    eps: f64,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    o: &[Tensor],
) -> Result<bool> {
    use crate::tensor::kernels::{elementwise::PAR_THRESHOLD, simd, vmath};
    use rayon::prelude::*;
    let is_f32 = |t: &Tensor| t.dtype() == DType::F32;
    let all_f32 = is_f32(x) && o.iter().all(is_f32) && w.is_none_or(is_f32) && b.is_none_or(is_f32);
    // (An output sharing the input's storage would be locked for writing while it is read.)
    if seg == 0 || !all_f32 || o.iter().any(|t| t.shares_storage(x)) {
        return Ok(false);
    }
    let w = w.map(|t| t.to_vec::<f32>()).transpose()?;
    let b = b.map(|t| t.to_vec::<f32>()).transpose()?;
    let (w, b) = (w.as_deref(), b.as_deref());
    let mut stats = vec![(0f32, 0f32); x.numel() / seg];
    let isa = simd::active();
    x.with_contiguous::<f32, _>(|src| {
        o[0].with_contiguous_mut::<f32, _>(|dst| {
            let row = |s: &[f32], d: &mut [f32]| vmath::layer_norm_row(isa, s, w, b, eps as f32, d);
            if src.len() >= PAR_THRESHOLD && stats.len() > 1 {
                src.par_chunks(seg)
                    .zip(dst.par_chunks_mut(seg))
                    .zip(stats.par_iter_mut())
                    .for_each(|((s, d), st)| *st = row(s, d));
            } else {
                for ((s, d), st) in src.chunks(seg).zip(dst.chunks_mut(seg)).zip(&mut stats) {
                    *st = row(s, d);
                }
            }
        })
    })??;
    if let [_, mean, rstd] = o {
        mean.write_contiguous(&stats.iter().map(|s| s.0).collect::<Vec<f32>>())?;
        rstd.write_contiguous(&stats.iter().map(|s| s.1).collect::<Vec<f32>>())?;
    }
    Ok(true)
}

// ---- attention ---------------------------------------------------------------------------------------

fn meta_sdpa(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (q, k, v) = (a.tensor("query")?, a.tensor("key")?, a.tensor("value")?);
    if q.dtype != k.dtype || q.dtype != v.dtype {
        return Err(Error::DType(format!(
            "Expected query, key, and value to have the same dtype, but got query.dtype: {} key.dtype: {} and value.dtype: {} instead.",
            q.dtype.name(), k.dtype.name(), v.dtype.name()
        )));
    }
    require_float("scaled_dot_product_attention", q)?;
    if q.dim() < 2 || k.dim() < 2 || v.dim() < 2 {
        return Err(Error::shape(
            "scaled_dot_product_attention: query, key and value must be at least 2-D",
        ));
    }
    if a.bool("is_causal")? && a.opt_tensor("attn_mask")?.is_some() {
        return Err(Error::value("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True"));
    }
    let p = a.float("dropout_p")?;
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::value(format!(
            "dropout probability has to be between 0 and 1, but got {p}"
        )));
    }
    let (dq, dk) = (q.dim(), k.dim());
    if !q.sizes[dq - 1].guard_eq(&k.sizes[dk - 1]) {
        return Err(Error::shape(format!(
            "mat1 and mat2 shapes cannot be multiplied: query last dim {} != key last dim {}",
            q.sizes[dq - 1],
            k.sizes[dk - 1]
        )));
    }
    let mut out = q.sizes.clone();
    let nd = out.len();
    out[nd - 1] = v.sizes[v.dim() - 1].clone();
    one(q.dtype, out)
}

/// `t.repeat_interleave(rep, dim=-3)` as an expand of a new unit dim, then a contiguous copy.
fn repeat_heads(t: &Tensor, rep: usize) -> Result<Tensor> {
    let nd = t.dim();
    let mut sizes = t.sizes().to_vec();
    let mut strides = t.strides().to_vec();
    sizes.insert(nd - 2, rep);
    strides.insert(nd - 2, 0);
    let expanded = t
        .restride(&sizes, &strides, t.storage_offset())?
        .contiguous_untraced();
    let mut merged = t.sizes().to_vec();
    merged[nd - 3] *= rep;
    expanded.restride(&merged, &crate::tensor::contiguous_strides(&merged), 0)
}

/// The f32 path of `scaled_dot_product_attention` without dropout: q, k, v with the same batch dims,
/// no head repetition ([`attention_f32`]). `Ok(false)`: not this case.
///
/// [`attention_f32`]: crate::tensor::kernels::attention::attention_f32
fn sdpa_f32(a: &Args<Tensor>, out: &Tensor) -> Result<bool> {
    use crate::tensor::kernels::attention::{attention_f32, AttentionParams};
    let (q, k, v) = (a.tensor("query")?, a.tensor("key")?, a.tensor("value")?);
    if a.float("dropout_p")? != 0.0 || q.dim() < 2 {
        return Ok(false);
    }
    let e = q.sizes()[q.dim() - 1];
    let p = AttentionParams {
        scale: a.opt_float("scale")?.unwrap_or(1.0 / (e as f64).sqrt()) as f32,
        causal: a.bool("is_causal")?,
    };
    attention_f32(q, k, v, a.opt_tensor("attn_mask")?, p, out)
}

fn sdpa(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    if !a.bool("enable_gqa")? && sdpa_f32(a, &o[0])? {
        return Ok(());
    }
    let dt = o[0].dtype();
    let compute = if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let q = as_dtype(a.tensor("query")?, compute);
    let mut k = as_dtype(a.tensor("key")?, compute);
    let mut v = as_dtype(a.tensor("value")?, compute);
    let e = *q.sizes().last().expect("at least 2-D");
    let scale = a.opt_float("scale")?.unwrap_or(1.0 / (e as f64).sqrt());
    if a.bool("enable_gqa")? && q.dim() >= 3 && k.dim() >= 3 {
        // Repeat key/value heads to match the query heads (dim -3).
        let (hq, hk) = (q.sizes()[q.dim() - 3], k.sizes()[k.dim() - 3]);
        if hk != 0 && hq != hk && hq % hk == 0 {
            let rep = (hq / hk) as i64;
            k = repeat_heads(&k, rep as usize)?;
            v = repeat_heads(&v, rep as usize)?;
        }
    }
    let kt = k.transpose_untraced(k.dim() - 1, k.dim() - 2);
    let qs: Vec<SymInt> = q.sizes().iter().map(|&s| SymInt::from(s)).collect();
    let ks: Vec<SymInt> = kt.sizes().iter().map(|&s| SymInt::from(s)).collect();
    let qb: &[SymInt] = &qs[..qs.len() - 2];
    let kb: &[SymInt] = &ks[..ks.len() - 2];
    let batch = concrete_usizes(&broadcast_shapes(&[qb, kb])?)?;
    let (l, s) = (q.sizes()[q.dim() - 2], kt.sizes()[kt.dim() - 1]);
    let mut score_sizes = batch.clone();
    score_sizes.extend([l, s]);
    let scores = matmul_tensors(&q, &kt, compute, &score_sizes)?;
    let mut sc = as_dtype(&scores, DType::F64).to_vec::<f64>()?;
    for x in sc.iter_mut() {
        *x *= scale;
    }
    // Additive bias from the mask and causality.
    let mut bias = vec![0f64; l * s];
    let mut has_bias = false;
    if a.bool("is_causal")? {
        has_bias = true;
        for i in 0..l {
            for j in 0..s {
                if j > i {
                    bias[i * s + j] = f64::NEG_INFINITY;
                }
            }
        }
    }
    if has_bias {
        for chunk in sc.chunks_mut(l * s) {
            for (x, b) in chunk.iter_mut().zip(&bias) {
                *x += b;
            }
        }
    }
    if let Some(m) = a.opt_tensor("attn_mask")? {
        let mb = if m.dtype() == DType::Bool {
            let mm = m.to_vec::<bool>()?;
            Tensor::from_vec(
                mm.into_iter()
                    .map(|b| if b { 0.0 } else { f64::NEG_INFINITY })
                    .collect::<Vec<f64>>(),
                m.sizes(),
            )?
        } else {
            as_dtype(m, DType::F64)
        };
        let st = crate::tensor::kernels::elementwise::broadcast_strides(&mb, &score_sizes);
        let mv = mb
            .restride(&score_sizes, &st, mb.storage_offset())?
            .to_vec::<f64>()?;
        for (x, b) in sc.iter_mut().zip(mv) {
            *x += b;
        }
    }
    // Softmax over the last dim; fully masked rows give 0 (PyTorch's math kernel on CPU).
    for row in sc.chunks_mut(s.max(1)) {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            row.iter_mut().for_each(|x| *x = 0.0);
            continue;
        }
        let mut sum = 0.0;
        for x in row.iter_mut() {
            *x = (*x - m).exp();
            sum += *x;
        }
        row.iter_mut().for_each(|x| *x /= sum);
    }
    let dropout_p = a.float("dropout_p")?;
    if dropout_p > 0.0 {
        // Dropout on the attention weights, with this thread's default generator.
        let mask = crate::tensor::dropout_mask(sc.len(), dropout_p);
        sc.iter_mut().zip(mask).for_each(|(x, m)| *x *= m);
    }
    let attn = as_dtype(&Tensor::from_vec(sc, &score_sizes)?, compute);
    let r = batched_matmul(&attn, &v, compute)?;
    let sizes = o[0].sizes().to_vec();
    o[0].assign_untraced(&r.restride(&sizes, &crate::tensor::contiguous_strides(&sizes), 0)?)
}

// ---- embedding ---------------------------------------------------------------------------------------

fn meta_embedding(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (w, idx) = (a.tensor("weight")?, a.tensor("indices")?);
    if w.dim() != 2 {
        return Err(Error::shape("'weight' must be 2-D"));
    }
    if idx.dtype != DType::I64 && idx.dtype != DType::I32 {
        return Err(Error::DType(format!(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got torch.{}Tensor instead (while checking arguments for embedding)",
            idx.dtype
        )));
    }
    let mut sizes = idx.sizes.clone();
    sizes.push(w.sizes[1].clone());
    one(w.dtype, sizes)
}

fn embedding(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let (w, idx) = (a.tensor("weight")?, a.tensor("indices")?);
    let out = &o[0];
    let (rows, d) = (w.sizes()[0], w.sizes()[1]);
    let ids = as_dtype(idx, DType::I64).to_vec::<i64>()?;
    if ids.iter().any(|&id| id < 0 || id as usize >= rows) {
        return Err(Error::value("index out of range in self"));
    }
    let (rs, cs, off) = (w.strides()[0], w.strides()[1], w.storage_offset());
    let ws = w.storage().read();
    crate::dispatch_dtype!(out.dtype(), T => {
        let src = T::slice(&ws).ok_or_else(|| Error::DType("embedding: weight dtype".into()))?;
        out.with_contiguous_mut::<T, _>(|o| {
            if d == 0 {
                return;
            }
            for (row, &id) in o.chunks_mut(d).zip(&ids) {
                let base = off + id as usize * rs;
                if cs == 1 {
                    row.clone_from_slice(&src[base..base + d]);
                    continue;
                }
                for (j, x) in row.iter_mut().enumerate() {
                    *x = src[base + j * cs];
                }
            }
        })
    })
}

// ---- LSTM --------------------------------------------------------------------------------------------

/// `gru.input` / `rnn_*.input`: (output [seq, batch, dirs * H] (batch first if asked), h_n [layers *
/// dirs, batch, H]); `gates` is 3 for GRU, 1 for plain RNNs (the rows of w_ih per hidden unit).
fn meta_rnn(a: &Args<TensorMeta>, gates: i64) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    let hx = a.tensor("hx")?;
    if x.dim() != 3 || hx.dim() != 3 {
        return Err(Error::shape(format!(
            "{}: expected 3-D input and hx, got input of shape {} and hx of shape {}",
            a.schema.name.trim_start_matches("aten::"),
            fmt_shape(&x.sizes),
            fmt_shape(&hx.sizes)
        )));
    }
    require_float("rnn", x)?;
    let layers = a.int("num_layers")?;
    let dirs = if a.bool("bidirectional")? { 2 } else { 1 };
    let per = if a.bool("has_biases")? { 4 } else { 2 };
    let params = a.tensors("params")?;
    if layers < 1 || params.len() as i64 != layers * dirs * per {
        return Err(Error::value(format!(
            "{}: expected {} parameter tensors, got {}",
            a.schema.name.trim_start_matches("aten::"),
            layers.max(0) * dirs * per,
            params.len()
        )));
    }
    let hidden = hx.sizes[2].clone();
    let batch_first = a.bool("batch_first")?;
    let (seq, batch) = if batch_first {
        (x.sizes[1].clone(), x.sizes[0].clone())
    } else {
        (x.sizes[0].clone(), x.sizes[1].clone())
    };
    if !hx.sizes[0].guard_eq(&SymInt::Int(layers * dirs)) || !hx.sizes[1].guard_eq(&batch) {
        return Err(Error::shape(format!(
            "Expected hidden size ({}, {}, {}), got {}",
            layers * dirs,
            batch,
            hidden,
            fmt_shape(&hx.sizes)
        )));
    }
    for (k, w) in params.iter().enumerate() {
        let rows = hidden.mul(&SymInt::Int(gates));
        if !w.sizes.first().is_some_and(|r| r.guard_eq(&rows)) {
            return Err(Error::shape(format!(
                "{}: parameter {k} has shape {}, expected {} rows",
                a.schema.name.trim_start_matches("aten::"),
                fmt_shape(&w.sizes),
                rows
            )));
        }
    }
    let feat = hidden.mul(&SymInt::Int(dirs));
    let out = if batch_first {
        vec![batch.clone(), seq, feat]
    } else {
        vec![seq, batch.clone(), feat]
    };
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(x.dtype, out)),
        Value::Tensor(TensorMeta::contiguous(
            x.dtype,
            vec![SymInt::Int(layers * dirs), batch, hidden],
        )),
    ])
}

fn meta_lstm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    let hx = a.tensors("hx")?;
    if hx.len() != 2 {
        return Err(Error::value(format!(
            "lstm expects two hidden states (h0, c0), got {}",
            hx.len()
        )));
    }
    if x.dim() != 3 {
        // aten.lstm takes batched input only (nn.LSTM unsqueezes unbatched input); PyTorch fails indexing
        // the batch dim.
        let d = x.dim() as i64;
        return Err(Error::shape(format!(
            "Dimension out of range (expected to be in range of [{}, {}], but got 2)",
            -d.max(1),
            d.max(1) - 1
        )));
    }
    let layers = a.int("num_layers")?;
    let dirs = if a.bool("bidirectional")? { 2 } else { 1 };
    let per = if a.bool("has_biases")? { 4 } else { 2 };
    let params = a.tensors("params")?;
    if params.len() as i64 != layers * dirs * per {
        return Err(Error::value(format!(
            "lstm: expected {} parameter tensors, got {}",
            layers * dirs * per,
            params.len()
        )));
    }
    let h = &hx[0];
    let Some(hidden) = h.sizes.last().cloned() else {
        return Err(Error::shape("lstm: h0 must have at least one dimension"));
    };
    // Weights per (layer, direction): w_ih [4H, in], w_hh [4H, H], b_ih [4H], b_hh [4H].
    let four_h = hidden.mul(&SymInt::Int(4));
    let in_size = x.sizes[x.dim() - 1].clone();
    let batched = x.dim() == 3;
    let batch = if batched {
        Some(x.sizes[if a.bool("batch_first")? { 0 } else { 1 }].clone())
    } else {
        None
    };
    let mut state: Vec<SymInt> = vec![SymInt::Int(layers * dirs)];
    state.extend(batch);
    state.push(hidden.clone());
    for (name, s) in ["h0", "c0"].iter().zip(hx) {
        if s.sizes.len() != state.len() || !s.sizes.iter().zip(&state).all(|(a, b)| a.guard_eq(b)) {
            return Err(Error::shape(format!(
                "Expected hidden size {}, got {} for {name}",
                fmt_shape(&state),
                fmt_shape(&s.sizes)
            )));
        }
    }
    for (k, p) in params.iter().enumerate() {
        let layer = k as i64 / (dirs * per);
        let want: Vec<SymInt> = match k as i64 % per {
            0 => vec![
                four_h.clone(),
                if layer == 0 {
                    in_size.clone()
                } else {
                    hidden.mul(&SymInt::Int(dirs))
                },
            ],
            1 => vec![four_h.clone(), hidden.clone()],
            _ => vec![four_h.clone()],
        };
        if p.dtype != x.dtype
            || p.sizes.len() != want.len()
            || !p.sizes.iter().zip(&want).all(|(a, b)| a.guard_eq(b))
        {
            return Err(Error::shape(format!(
                "lstm: parameter {k} should be {} of shape {}, got {} of shape {}",
                x.dtype.name(),
                fmt_shape(&want),
                p.dtype.name(),
                fmt_shape(&p.sizes)
            )));
        }
    }
    let mut out = x.sizes.clone();
    let nd = out.len();
    out[nd - 1] = hidden.mul(&SymInt::Int(dirs));
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(x.dtype, out)),
        Value::Tensor(TensorMeta::contiguous(x.dtype, hx[0].sizes.clone())),
        Value::Tensor(TensorMeta::contiguous(x.dtype, hx[1].sizes.clone())),
    ])
}

/// `Σ a[i] · b[i]` over four lanes (vectorized).
fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let rest: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + rest
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// [`lstm_direction`] of an f32 LSTM, in f32 as PyTorch computes it: the weights packed once per
/// call for the AVX-512 / AVX2 GEMM, the gates through the vectorized sigmoid and tanh.
fn lstm_direction_f32(
    x: &Tensor,
    h0: Vec<f64>,
    c0: Vec<f64>,
    w: &[Tensor],
    reverse: bool,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    use crate::tensor::kernels::sgemm::{sgemm_packed_b, PackedB};
    use crate::tensor::kernels::{simd, vmath};
    let (t_len, b, n_in) = (x.sizes()[0], x.sizes()[1], x.sizes()[2]);
    let hsz = h0.len() / b.max(1);
    let g4 = 4 * hsz;
    // W [4H, K] as the K × 4H matrix the GEMM multiplies by.
    let packed = |w: &Tensor, k: usize| -> Result<PackedB> {
        let w = w.to_vec::<f32>()?;
        let mut t = vec![0f32; k * g4];
        for (r, row) in w.chunks_exact(k.max(1)).enumerate().take(g4) {
            for (j, &v) in row.iter().enumerate() {
                t[j * g4 + r] = v;
            }
        }
        Ok(PackedB::new(&t, g4, k, g4))
    };
    let (w_ih, w_hh) = (packed(&w[0], n_in)?, packed(&w[1], hsz)?);
    let bias: Vec<f32> = if w.len() == 4 {
        let (bi, bh) = (w[2].to_vec::<f32>()?, w[3].to_vec::<f32>()?);
        bi.iter().zip(&bh).map(|(p, q)| p + q).collect()
    } else {
        vec![0.0; g4]
    };
    let isa = simd::active();
    let xs: Vec<f32> = x.to_vec_f64().iter().map(|&v| v as f32).collect();
    let mut gx = vec![0f32; t_len * b * g4];
    sgemm_packed_b(isa, t_len * b, &xs, n_in, &w_ih, &mut gx, false, false);
    let mut h: Vec<f32> = h0.iter().map(|&v| v as f32).collect();
    let mut c: Vec<f32> = c0.iter().map(|&v| v as f32).collect();
    let (mut gates, mut tc) = (vec![0f32; b * g4], vec![0f32; hsz]);
    let mut out = vec![0f64; t_len * b * hsz];
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        sgemm_packed_b(isa, b, &h, hsz, &w_hh, &mut gates, false, false);
        for bi in 0..b {
            let row = &mut gates[bi * g4..(bi + 1) * g4];
            let gxr = &gx[(t * b + bi) * g4..(t * b + bi + 1) * g4];
            for ((g, &x), &bv) in row.iter_mut().zip(gxr).zip(&bias) {
                *g += x + bv;
            }
            // Gates i, f, g, o (PyTorch's order).
            let (ifg, o) = row.split_at_mut(3 * hsz);
            let (i_f, g) = ifg.split_at_mut(2 * hsz);
            vmath::unary_inplace(isa, vmath::Unary::Sigmoid, i_f);
            vmath::unary_inplace(isa, vmath::Unary::Tanh, g);
            vmath::unary_inplace(isa, vmath::Unary::Sigmoid, o);
            let (i, f) = i_f.split_at(hsz);
            let cr = &mut c[bi * hsz..(bi + 1) * hsz];
            for (((cv, &iv), &fv), &gv) in cr.iter_mut().zip(i).zip(f).zip(&*g) {
                *cv = fv * *cv + iv * gv;
            }
            tc.copy_from_slice(cr);
            vmath::unary_inplace(isa, vmath::Unary::Tanh, &mut tc);
            let hr = &mut h[bi * hsz..(bi + 1) * hsz];
            for ((hv, &ov), &tv) in hr.iter_mut().zip(&*o).zip(&tc) {
                *hv = ov * tv;
            }
            let dst = &mut out[(t * b + bi) * hsz..(t * b + bi + 1) * hsz];
            dst.iter_mut().zip(&*hr).for_each(|(d, &v)| *d = v as f64);
        }
    }
    let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect();
    Ok((out, widen(h), widen(c)))
}

/// One direction of one layer: x is [T, B, In] (time-major, f64), returns ([T, B, H], h_T, c_T).
fn lstm_direction(
    x: &Tensor,
    h0: Vec<f64>,
    c0: Vec<f64>,
    w: &[Tensor],
    reverse: bool,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    if w.iter().all(|w| w.dtype() == DType::F32) {
        return lstm_direction_f32(x, h0, c0, w, reverse);
    }
    let (t_len, b, _) = (x.sizes()[0], x.sizes()[1], x.sizes()[2]);
    let hsz = h0.len() / b.max(1);
    let w_ih = as_dtype(&w[0], DType::F64);
    let w_hh = as_dtype(&w[1], DType::F64);
    let bias: Vec<f64> = if w.len() == 4 {
        let (bi, bh) = (
            as_dtype(&w[2], DType::F64).to_vec::<f64>()?,
            as_dtype(&w[3], DType::F64).to_vec::<f64>()?,
        );
        bi.iter().zip(&bh).map(|(p, q)| p + q).collect()
    } else {
        vec![0.0; 4 * hsz]
    };
    // Input projections for all steps at once: [T*B, In] @ W_ih^T; then per step h @ W_hh^T. Both
    // as row dot products (the weights are row-major [4H, In] and [4H, H]): at an LSTM's sizes
    // a matmul call and a tensor per step cost more than the arithmetic.
    let n_in = x.sizes()[2];
    let (xs, w_ih, w_hh) = (
        x.to_vec::<f64>()?,
        w_ih.to_vec::<f64>()?,
        w_hh.to_vec::<f64>()?,
    );
    let rows_times = |a: &[f64], w: &[f64], k: usize, out: &mut [f64]| {
        if k == 0 {
            out.fill(0.0);
            return;
        }
        for (arow, orow) in a.chunks_exact(k).zip(out.chunks_exact_mut(4 * hsz)) {
            for (o, wrow) in orow.iter_mut().zip(w.chunks_exact(k)) {
                *o = dot_f64(arow, wrow);
            }
        }
    };
    let mut gx = vec![0f64; t_len * b * 4 * hsz];
    rows_times(&xs, &w_ih, n_in, &mut gx);
    let (mut h, mut c) = (h0, c0);
    let mut gh = vec![0f64; b * 4 * hsz];
    let mut out = vec![0f64; t_len * b * hsz];
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        rows_times(&h, &w_hh, hsz, &mut gh);
        for bi in 0..b {
            for j in 0..hsz {
                let g = |k: usize| {
                    gx[(t * b + bi) * 4 * hsz + k * hsz + j]
                        + gh[bi * 4 * hsz + k * hsz + j]
                        + bias[k * hsz + j]
                };
                let (i_g, f_g, g_g, o_g) =
                    (sigmoid(g(0)), sigmoid(g(1)), g(2).tanh(), sigmoid(g(3)));
                let cn = f_g * c[bi * hsz + j] + i_g * g_g;
                c[bi * hsz + j] = cn;
                h[bi * hsz + j] = o_g * cn.tanh();
                out[(t * b + bi) * hsz + j] = h[bi * hsz + j];
            }
        }
    }
    Ok((out, h, c))
}

fn lstm(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("input")?;
    let train_dropout = if a.bool("train")? {
        a.float("dropout")?
    } else {
        0.0
    };
    let batch_first = a.bool("batch_first")?;
    let unbatched = x.dim() == 2;
    let layers = a.int("num_layers")? as usize;
    let dirs = if a.bool("bidirectional")? { 2 } else { 1 };
    let per = if a.bool("has_biases")? { 4 } else { 2 };
    let params = a.tensors("params")?;
    let hx = a.tensors("hx")?;
    // Time-major [T, B, In] in f64.
    let mut cur = as_dtype(x, DType::F64);
    if unbatched {
        cur = cur.restride(
            &[cur.sizes()[0], 1, cur.sizes()[1]],
            &[cur.strides()[0], 0, cur.strides()[1]],
            cur.storage_offset(),
        )?;
    } else if batch_first {
        let (s, st) = (cur.sizes().to_vec(), cur.strides().to_vec());
        cur = cur.restride(
            &[s[1], s[0], s[2]],
            &[st[1], st[0], st[2]],
            cur.storage_offset(),
        )?;
    }
    let mut cur = cur.contiguous_untraced();
    let (t_len, b) = (cur.sizes()[0], cur.sizes()[1]);
    let h0 = as_dtype(&hx[0], DType::F64).to_vec::<f64>()?;
    let c0 = as_dtype(&hx[1], DType::F64).to_vec::<f64>()?;
    let hsz = *hx[0].sizes().last().expect("hidden has a last dim");
    let mut hn = Vec::new();
    let mut cn = Vec::new();
    for layer in 0..layers {
        let mut outs_dir = Vec::new();
        for d in 0..dirs {
            let idx = layer * dirs + d;
            let w = &params[idx * per..(idx + 1) * per];
            let sl = |v: &[f64]| v[idx * b * hsz..(idx + 1) * b * hsz].to_vec();
            let (o, h, c) = lstm_direction(&cur, sl(&h0), sl(&c0), w, d == 1)?;
            outs_dir.push(o);
            hn.extend(h);
            cn.extend(c);
        }
        let mut next = vec![0f64; t_len * b * hsz * dirs];
        for t in 0..t_len {
            for bi in 0..b {
                for (d, o) in outs_dir.iter().enumerate() {
                    let dst = ((t * b + bi) * dirs + d) * hsz;
                    next[dst..dst + hsz]
                        .copy_from_slice(&o[(t * b + bi) * hsz..(t * b + bi + 1) * hsz]);
                }
            }
        }
        if train_dropout > 0.0 && layer + 1 < layers {
            // Dropout on each layer's output but the last, in training mode.
            let mask = crate::tensor::dropout_mask(next.len(), train_dropout);
            next.iter_mut().zip(mask).for_each(|(x, m)| *x *= m);
        }
        cur = Tensor::from_vec(next, &[t_len, b, hsz * dirs])?;
    }
    let out_sz = o[0].sizes().to_vec();
    let output = if unbatched {
        cur.restride(&out_sz, &crate::tensor::contiguous_strides(&out_sz), 0)?
    } else if batch_first {
        cur.restride(&[b, t_len, hsz * dirs], &[hsz * dirs, b * hsz * dirs, 1], 0)?
            .contiguous_untraced()
    } else {
        cur
    };
    o[0].assign_untraced(&output)?;
    o[1].write_contiguous(&hn)?;
    o[2].write_contiguous(&cn)
}

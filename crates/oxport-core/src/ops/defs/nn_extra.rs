//! More neural-network ops: 3-d pooling (`avg_pool3d`, `max_pool3d_with_indices`, `_adaptive_avg_pool3d`),
//! `grid_sampler_2d`, `_embedding_bag`, `col2im`, `_cdist_forward`, `_pdist_forward`.
//! Kernels compute over f64 (floats) or i64 (integers) copies, which hold every input value exactly;
//! f32 sums are rounded to f32 after each step to follow PyTorch's accumulation.
use super::*;
use crate::tensor::Element;

pub(super) fn register(r: &mut Builder) {
    // Non-Core forms that decompose to the Core ops below; the runtime runs them through it.
    r.decomposed(
        "aten.grid_sampler.default",
        |a| {
            let x = a.tensor("input")?;
            if x.dim() != 4 {
                return Err(Error::shape(format!(
                    "grid_sampler(): expected 4D input (5D grid_sampler_3d is not in oxport yet), but got input of shape {}",
                    fmt_shape(&x.sizes)
                )));
            }
            let def = crate::op_def!("aten.grid_sampler_2d.default")?;
            (def.meta)(&Args::bind(&def.schema, a.values.clone(), vec![])?)
        },
        decompositions::grid_sampler,
    );
    for name in [
        "aten.embedding_bag.default",
        "aten.embedding_bag.padding_idx",
    ] {
        r.decomposed(
            name,
            |a| {
                let def = crate::op_def!("aten._embedding_bag.default")?;
                let args = decompositions::embedding_bag_args(a)?;
                (def.meta)(&Args::bind(&def.schema, args, vec![])?)
            },
            decompositions::embedding_bag,
        );
    }
    r.out_op("aten.avg_pool3d.default", meta_avg_pool3d, avg_pool3d);
    r.out_op(
        "aten.max_pool3d_with_indices.default",
        meta_max_pool3d,
        max_pool3d,
    );
    r.out_op(
        "aten._adaptive_avg_pool3d.default",
        meta_adaptive_avg_pool3d,
        adaptive_avg_pool3d,
    );
    r.out_op(
        "aten.adaptive_avg_pool3d.default",
        meta_adaptive_avg_pool3d,
        adaptive_avg_pool3d,
    )
    .decomposition(decompositions::adaptive_avg_pool3d);
    r.out_op(
        "aten.grid_sampler_2d.default",
        meta_grid_sampler_2d,
        grid_sampler_2d,
    );
    r.out_op(
        "aten._embedding_bag.default",
        meta_embedding_bag,
        embedding_bag,
    );
    r.out_op("aten.col2im.default", meta_col2im, col2im);
    r.out_op("aten.im2col.default", meta_im2col, im2col);
    r.out_op("aten._cdist_forward.default", meta_cdist, cdist);
    r.out_op("aten._pdist_forward.default", meta_pdist, pdist);
}

// ---- shared helpers -----------------------------------------------------------------------------------

/// Concrete sizes of a meta (pooling and sampling need them to check windows).
fn concrete(x: &TensorMeta, op: &str) -> Result<Vec<i64>> {
    x.sizes
        .iter()
        .map(|s| s.as_int())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Symbolic(format!("{op} over symbolic sizes")))
}

/// PyTorch's `safe_downcast<int, int64_t>`.
fn to_int32(v: i64) -> Result<i64> {
    if i32::try_from(v).is_err() {
        return Err(Error::value(
            "value cannot be converted to type int without overflow",
        ));
    }
    Ok(v)
}

/// Rounds an f64 to the compute precision of `dt` (f32 for f32 and the 16-bit floats, whose CPU kernels
/// accumulate in float).
fn rounder(dt: DType) -> fn(f64) -> f64 {
    match dt {
        DType::F64 => |v| v,
        _ => |v| v as f32 as f64,
    }
}

/// Rounds an f64 to `dt` itself (kernels that compute in the element type, 16-bit floats included).
fn dtype_rounder(dt: DType) -> fn(f64) -> f64 {
    match dt {
        DType::F64 => |v| v,
        DType::F16 => |v| half::f16::from_f64(v).to_f64(),
        DType::BF16 => |v| half::bf16::from_f64(v).to_f64(),
        _ => |v| v as f32 as f64,
    }
}

/// Writes f64 values (exact in the output dtype) into an out tensor.
fn write_f64(o: &Tensor, v: Vec<f64>) -> Result<()> {
    o.assign_untraced(&Tensor::from_vec(v, o.sizes_untraced())?)
}

fn write_i64(o: &Tensor, v: Vec<i64>) -> Result<()> {
    o.assign_untraced(&Tensor::from_vec(v, o.sizes_untraced())?)
}

/// The elements of an integer tensor as i64.
fn to_vec_i64(t: &Tensor) -> Result<Vec<i64>> {
    crate::dispatch_dtype!(t.dtype(), T => Ok(t.to_vec::<T>()?.into_iter().map(|v| v.to_i64()).collect()))
}

// ---- 3-d pooling --------------------------------------------------------------------------------------

/// Window geometry of a 3-d pooling: `[T, H, W]` triples.
#[derive(Clone, Copy)]
struct Pool3 {
    k: [i64; 3],
    s: [i64; 3],
    p: [i64; 3],
    d: [i64; 3],
}

/// Reads a `1 or 3` int list as PyTorch's pool3d does (`stride` empty means the kernel size).
fn triple(v: &[i64], default: Option<[i64; 3]>, msg: &str) -> Result<[i64; 3]> {
    match (v.len(), default) {
        (0, Some(d)) => Ok(d),
        (1, _) => {
            let x = to_int32(v[0])?;
            Ok([x; 3])
        }
        (3, _) => Ok([to_int32(v[0])?, to_int32(v[1])?, to_int32(v[2])?]),
        _ => Err(Error::value(msg.to_string())),
    }
}

fn div_rtn(a: i128, b: i128) -> i128 {
    a.div_euclid(b) - if b < 0 && a.rem_euclid(b) != 0 { 1 } else { 0 }
}

/// PyTorch's `pooling_output_shape` (with its checks), in i128 so absurd sizes cannot overflow.
fn pooling_output_shape(input: i64, k: i64, pad: i64, s: i64, d: i64, ceil: bool) -> Result<i64> {
    if s == 0 {
        return Err(Error::value("stride should not be zero"));
    }
    if pad < 0 {
        return Err(Error::value(format!(
            "pad must be non-negative, but got pad: {pad}"
        )));
    }
    // C++ integer division truncates toward zero, as Rust's.
    if pad > ((k - 1) * d + 1) / 2 {
        return Err(Error::value(format!(
            "pad should be at most half of effective kernel size, but got pad={pad}, kernel_size={k} and dilation={d}"
        )));
    }
    let (i, k, p, s, d) = (input as i128, k as i128, pad as i128, s as i128, d as i128);
    let mut out = div_rtn(
        i + 2 * p - d * (k - 1) - 1 + if ceil { s - 1 } else { 0 },
        s,
    ) + 1;
    if ceil && (out - 1) * s >= i + p {
        out -= 1;
    }
    Ok(out.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// Parses the pooling arguments, checks them in PyTorch's order and returns the geometry and the output's
/// `[T, H, W]`.
fn pool3_check(a: &Args<TensorMeta>, max: bool) -> Result<(Pool3, [i64; 3])> {
    let x = meta_self(a)?;
    let (name, either, be) = if max {
        ("max_pool3d", " either", " either")
    } else {
        ("avg_pool3d", "", "")
    };
    let k = triple(
        &a.ints("kernel_size")?,
        None,
        &format!("{name}: kernel_size must{either} be a single int, or a tuple of three ints"),
    )?;
    let s = triple(
        &a.ints("stride")?,
        Some(k),
        &format!("{name}: stride must{either} be omitted, a single int, or a tuple of three ints"),
    )?;
    let p = triple(
        &a.ints("padding")?,
        None,
        &format!("{name}: padding must{either} be a single int, or a tuple of three ints"),
    )?;
    let d = if max {
        triple(
            &a.ints("dilation")?,
            None,
            &format!("{name}: dilation must be{be} a single int, or a tuple of three ints"),
        )?
    } else {
        [1; 3]
    };
    if x.dim() != 4 && x.dim() != 5 {
        return Err(Error::shape(
            "non-empty 4D or 5D (batch mode) tensor expected for input",
        ));
    }
    if !max && a.opt_int("divisor_override")? == Some(0) {
        return Err(Error::value("divisor must be not zero"));
    }
    let sizes = concrete(x, name)?;
    let nd = sizes.len();
    let ins = [sizes[nd - 3], sizes[nd - 2], sizes[nd - 1]];
    let ceil_mode = a.bool("ceil_mode")?;
    let mut out = [0i64; 3];
    for i in 0..3 {
        out[i] = pooling_output_shape(ins[i], k[i], p[i], s[i], d[i], ceil_mode)?;
    }
    // pool3d_shape_check
    if k.iter().any(|&v| v <= 0) {
        return Err(Error::value(format!(
            "kernel size should be greater than zero, but got kT: {} kH: {} kW: {}",
            k[0], k[1], k[2]
        )));
    }
    if s.iter().any(|&v| v <= 0) {
        return Err(Error::value(format!(
            "stride should be greater than zero, but got dT: {} dH: {} dW: {}",
            s[0], s[1], s[2]
        )));
    }
    if d.iter().any(|&v| v <= 0) {
        return Err(Error::value(format!(
            "dilation should be greater than zero, but got dilationT: {} dilationH: {} dilationW: {}",
            d[0], d[1], d[2]
        )));
    }
    let fn_name = if max {
        "max_pool3d_with_indices_out_cpu_template()"
    } else {
        "avg_pool3d()"
    };
    for (i, &v) in sizes.iter().enumerate() {
        if !(nd == 5 && i == 0) && v <= 0 {
            return Err(Error::shape(format!(
                "{fn_name}: Expected input to have non-zero size for non-batch dimensions, but input has sizes {} with dimension {i} being empty",
                fmt_shape(&x.sizes)
            )));
        }
    }
    if !max && (ins[0] < k[0] || ins[1] < k[1] || ins[2] < k[2]) {
        return Err(Error::shape(format!(
            "input image (T: {} H: {} W: {}) smaller than kernel size (kT: {} kH: {} kW: {})",
            ins[0], ins[1], ins[2], k[0], k[1], k[2]
        )));
    }
    if k[0] / 2 < p[0] || k[2] / 2 < p[2] || k[1] / 2 < p[1] {
        return Err(Error::value(format!(
            "pad should be smaller than or equal to half of kernel size, but got kT: {} kW: {} kH: {} padT: {} padW: {} padH: {}",
            k[0], k[2], k[1], p[0], p[2], p[1]
        )));
    }
    if out.iter().any(|&v| v < 1) {
        let c = sizes[nd - 4];
        return Err(Error::shape(format!(
            "Given input size: ({c}x{}x{}x{}). Calculated output size: ({c}x{}x{}x{}). Output size is too small",
            ins[0], ins[1], ins[2], out[0], out[1], out[2]
        )));
    }
    Ok((Pool3 { k, s, p, d }, out))
}

fn pool3_out_sizes(x: &TensorMeta, out: [i64; 3]) -> Vec<SymInt> {
    let nd = x.dim();
    let mut sizes = x.sizes[..nd - 3].to_vec();
    sizes.extend(out.iter().map(|&v| SymInt::Int(v)));
    sizes
}

fn meta_avg_pool3d(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    let (_, out) = pool3_check(a, false)?;
    // The CPU kernel (avg_pool3d_out_frame) takes float, double and long only.
    if !matches!(x.dtype, DType::F32 | DType::F64 | DType::I64) {
        return Err(Error::DTypeNotSupported {
            op: "avg_pool3d_out_frame".into(),
            dtype: x.dtype,
        });
    }
    one(x.dtype, pool3_out_sizes(x, out))
}

fn meta_max_pool3d(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    let (_, out) = pool3_check(a, true)?;
    if x.dtype == DType::Bool {
        return Err(Error::DTypeNotSupported {
            op: "max_pool3d".into(),
            dtype: x.dtype,
        });
    }
    let sizes = pool3_out_sizes(x, out);
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(x.dtype, sizes.clone())),
        Value::Tensor(TensorMeta::contiguous(DType::I64, sizes)),
    ])
}

/// Planes (N*C), input `[T, H, W]` and output `[T, H, W]` of a 4-d or 5-d pooling input and output.
fn dims3(x: &Tensor, o: &Tensor) -> (usize, [usize; 3], [usize; 3]) {
    let (xs, os) = (x.sizes_untraced(), o.sizes_untraced());
    let (nx, no) = (xs.len(), os.len());
    let planes = xs[..nx.saturating_sub(3)].iter().product();
    let tail = |s: &[usize], n: usize| [s[n - 3], s[n - 2], s[n - 1]];
    (planes, tail(xs, nx), tail(os, no))
}

#[allow(clippy::too_many_arguments)]
/// Sums each window (clipped to the input) in loop order (t, h, w), as PyTorch's avg_pool3d_out_frame.
fn avg_pool3d_frames<V: Copy>(
    data: &[V],
    planes: usize,
    ins: [usize; 3],
    outs: [usize; 3],
    p: &Pool3,
    zero: V,
    add: impl Fn(V, V) -> V,
    divide: impl Fn(V, i64) -> V,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> Vec<V> {
    let [it, ih, iw] = ins.map(|v| v as i64);
    let plane_in = ins.iter().product::<usize>();
    let mut out = Vec::with_capacity(planes * outs.iter().product::<usize>());
    for pl in 0..planes {
        let base = &data[pl * plane_in..(pl + 1) * plane_in];
        for ot in 0..outs[0] as i64 {
            for oh in 0..outs[1] as i64 {
                for ow in 0..outs[2] as i64 {
                    let start = [
                        ot * p.s[0] - p.p[0],
                        oh * p.s[1] - p.p[1],
                        ow * p.s[2] - p.p[2],
                    ];
                    let lim = [it + p.p[0], ih + p.p[1], iw + p.p[2]];
                    let end: [i64; 3] = std::array::from_fn(|i| (start[i] + p.k[i]).min(lim[i]));
                    let pool_size: i64 = (0..3).map(|i| end[i] - start[i]).product();
                    let st = start.map(|v| v.max(0));
                    let en = [end[0].min(it), end[1].min(ih), end[2].min(iw)];
                    if (0..3).any(|i| st[i] >= en[i]) {
                        out.push(zero);
                        continue;
                    }
                    let div = divisor_override.unwrap_or(if count_include_pad {
                        pool_size
                    } else {
                        (0..3).map(|i| en[i] - st[i]).product()
                    });
                    let mut sum = zero;
                    for t in st[0]..en[0] {
                        for h in st[1]..en[1] {
                            for w in st[2]..en[2] {
                                sum = add(sum, base[((t * ih + h) * iw + w) as usize]);
                            }
                        }
                    }
                    out.push(divide(sum, div));
                }
            }
        }
    }
    out
}

fn avg_pool3d(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("self")?;
    let p = pool3_of(a, false)?;
    let (planes, ins, outs) = dims3(x, &o[0]);
    let cip = a.bool("count_include_pad")?;
    let dov = a.opt_int("divisor_override")?;
    if x.dtype() == DType::I64 {
        let v = avg_pool3d_frames(
            &x.to_vec::<i64>()?,
            planes,
            ins,
            outs,
            &p,
            0i64,
            |s, v| s.wrapping_add(v),
            |s, d| s.checked_div(d).unwrap_or(0),
            cip,
            dov,
        );
        return write_i64(&o[0], v);
    }
    let r = rounder(x.dtype());
    let v = avg_pool3d_frames(
        &x.to_vec_f64(),
        planes,
        ins,
        outs,
        &p,
        0.0,
        |s, v| r(s + v),
        |s, d| r(s / r(d as f64)),
        cip,
        dov,
    );
    write_f64(&o[0], v)
}

/// Re-parses the pooling geometry in a kernel (the meta function validated it).
fn pool3_of(a: &Args<Tensor>, max: bool) -> Result<Pool3> {
    let k = triple(&a.ints("kernel_size")?, None, "kernel_size")?;
    Ok(Pool3 {
        k,
        s: triple(&a.ints("stride")?, Some(k), "stride")?,
        p: triple(&a.ints("padding")?, None, "padding")?,
        d: if max {
            triple(&a.ints("dilation")?, None, "dilation")?
        } else {
            [1; 3]
        },
    })
}

/// Max over each dilated window; the index is the flat offset in the (T, H, W) plane. NaN wins (the last
/// one), and an all `-inf` window reports its first in-bounds tap, as PyTorch's cpu_max_pool.
fn max_pool3d_frames<V: Copy + PartialOrd>(
    data: &[V],
    planes: usize,
    ins: [usize; 3],
    outs: [usize; 3],
    p: &Pool3,
    lowest: V,
    is_nan: impl Fn(V) -> bool,
) -> (Vec<V>, Vec<i64>) {
    let [it, ih, iw] = ins.map(|v| v as i64);
    let plane_in = ins.iter().product::<usize>();
    let n = planes * outs.iter().product::<usize>();
    let (mut vals, mut idx) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for pl in 0..planes {
        let base = &data[pl * plane_in..(pl + 1) * plane_in];
        for ot in 0..outs[0] as i64 {
            for oh in 0..outs[1] as i64 {
                for ow in 0..outs[2] as i64 {
                    let o = [ot, oh, ow];
                    let lim = [it, ih, iw];
                    let mut st = [0i64; 3];
                    let mut en = [0i64; 3];
                    for i in 0..3 {
                        let mut s0 = o[i] * p.s[i] - p.p[i];
                        en[i] = (s0 + (p.k[i] - 1) * p.d[i] + 1).min(lim[i]);
                        while s0 < 0 {
                            s0 += p.d[i];
                        }
                        st[i] = s0;
                    }
                    let mut best = lowest;
                    let mut best_i = (st[0] * ih + st[1]) * iw + st[2];
                    let mut t = st[0];
                    while t < en[0] {
                        let mut h = st[1];
                        while h < en[1] {
                            let mut w = st[2];
                            while w < en[2] {
                                let j = (t * ih + h) * iw + w;
                                let v = base[j as usize];
                                if v > best || is_nan(v) {
                                    best = v;
                                    best_i = j;
                                }
                                w += p.d[2];
                            }
                            h += p.d[1];
                        }
                        t += p.d[0];
                    }
                    vals.push(best);
                    idx.push(best_i);
                }
            }
        }
    }
    (vals, idx)
}

fn max_pool3d(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("self")?;
    let p = pool3_of(a, true)?;
    let (planes, ins, outs) = dims3(x, &o[0]);
    let idx = if x.dtype().is_floating_point() {
        let (v, i) = max_pool3d_frames(
            &x.to_vec_f64(),
            planes,
            ins,
            outs,
            &p,
            f64::NEG_INFINITY,
            f64::is_nan,
        );
        write_f64(&o[0], v)?;
        i
    } else {
        let (v, i) = max_pool3d_frames(&to_vec_i64(x)?, planes, ins, outs, &p, i64::MIN, |_| false);
        write_i64(&o[0], v)?;
        i
    };
    write_i64(&o[1], idx)
}

fn meta_adaptive_avg_pool3d(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    let os = a.ints("output_size")?;
    if os.len() != 3 {
        return Err(Error::value("adaptive_avg_pool3d: output_size must be 3"));
    }
    if x.dim() != 4 && x.dim() != 5 {
        return Err(Error::shape(format!(
            "adaptive_avg_pool3d(): Expected 4D or 5D tensor, but got {}",
            fmt_shape(&x.sizes)
        )));
    }
    let sizes = concrete(x, "adaptive_avg_pool3d")?;
    for (i, &v) in sizes.iter().enumerate().skip(1) {
        if v <= 0 {
            return Err(Error::shape(format!(
                "adaptive_avg_pool3d(): Expected input to have non-zero size for non-batch dimensions, but input has sizes {} with dimension {i} being empty",
                fmt_shape(&x.sizes)
            )));
        }
    }
    // A negative size reaches PyTorch's allocator as a huge unsigned one.
    let out: Vec<i64> = sizes[..sizes.len() - 3].iter().copied().chain(os).collect();
    if out.iter().any(|&v| v < 0)
        || crate::tensor::checked_numel(&out.iter().map(|&v| v as usize).collect::<Vec<_>>())
            .is_err()
    {
        return Err(Error::value("numel: integer multiplication overflow"));
    }
    if !x.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: "adaptive_avg_pool3d_cpu".into(),
            dtype: x.dtype,
        });
    }
    one(x.dtype, out.into_iter().map(SymInt::Int).collect())
}

fn adaptive_avg_pool3d(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("self")?;
    let (planes, ins, outs) = dims3(x, &o[0]);
    let r = rounder(x.dtype());
    let data = x.to_vec_f64();
    let start = |i: usize, o: usize, n: usize| (i * n) / o;
    let end = |i: usize, o: usize, n: usize| ((i + 1) * n).div_ceil(o);
    let plane_in = ins.iter().product::<usize>();
    let mut out = Vec::with_capacity(planes * outs.iter().product::<usize>());
    for pl in 0..planes {
        let base = &data[pl * plane_in..(pl + 1) * plane_in];
        for ot in 0..outs[0] {
            let (t0, t1) = (start(ot, outs[0], ins[0]), end(ot, outs[0], ins[0]));
            for oh in 0..outs[1] {
                let (h0, h1) = (start(oh, outs[1], ins[1]), end(oh, outs[1], ins[1]));
                for ow in 0..outs[2] {
                    let (w0, w1) = (start(ow, outs[2], ins[2]), end(ow, outs[2], ins[2]));
                    let mut sum = 0.0;
                    for t in t0..t1 {
                        for h in h0..h1 {
                            for w in w0..w1 {
                                sum = r(sum + base[(t * ins[1] + h) * ins[2] + w]);
                            }
                        }
                    }
                    let v = r(r(r(sum / (t1 - t0) as f64) / (h1 - h0) as f64) / (w1 - w0) as f64);
                    out.push(v);
                }
            }
        }
    }
    write_f64(&o[0], out)
}

// ---- grid_sampler_2d ----------------------------------------------------------------------------------

fn meta_grid_sampler_2d(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    let g = a.tensor("grid")?;
    if x.dim() == 0 || g.dim() == 0 {
        return Err(Error::value(
            "Dimension specified as 0 but tensor has no dimensions",
        ));
    }
    let xs = concrete(x, "grid_sampler_2d")?;
    let gs = concrete(g, "grid_sampler_2d")?;
    let both = format!(
        "input with sizes {} and grid with sizes {}",
        fmt_shape(&x.sizes),
        fmt_shape(&g.sizes)
    );
    if xs[0] != gs[0] {
        return Err(Error::shape(format!(
            "grid_sampler(): expected grid and input to have same batch size, but got {both}"
        )));
    }
    if gs[gs.len() - 1] != x.dim() as i64 - 2 {
        return Err(Error::shape(format!(
            "grid_sampler(): expected grid to have size {} in last dimension, but got grid with sizes {}",
            x.dim() as i64 - 2,
            fmt_shape(&g.sizes)
        )));
    }
    for (i, &v) in xs.iter().enumerate().skip(2) {
        if v <= 0 {
            return Err(Error::shape(format!(
                "grid_sampler(): expected input to have non-empty spatial dimensions, but input has sizes {} with dimension {i} being empty",
                fmt_shape(&x.sizes)
            )));
        }
    }
    if x.dim() != 4 || g.dim() != 4 {
        return Err(Error::shape(format!(
            "grid_sampler(): expected 4D input and grid with same number of dimensions, but got {both}"
        )));
    }
    if !x.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: "grid_sampler_2d_cpu_kernel_impl".into(),
            dtype: x.dtype,
        });
    }
    if g.dtype != x.dtype {
        return Err(Error::DType(format!(
            "expected scalar type {} but found {}",
            x.dtype, g.dtype
        )));
    }
    // Other values are undefined behaviour in PyTorch (it reads an out-of-range enum).
    let (mode, pad) = (a.int("interpolation_mode")?, a.int("padding_mode")?);
    if !(0..=2).contains(&mode) || !(0..=2).contains(&pad) {
        return Err(Error::value(format!(
            "grid_sampler(): interpolation_mode {mode} and padding_mode {pad} must be 0, 1 or 2"
        )));
    }
    one(
        x.dtype,
        vec![
            x.sizes[0].clone(),
            x.sizes[1].clone(),
            g.sizes[1].clone(),
            g.sizes[2].clone(),
        ],
    )
}

/// One spatial axis of a grid sample: PyTorch's vectorized CPU ComputeLocation.
struct Axis {
    size: f64,
    align: bool,
    pad: i64,
    r: fn(f64) -> f64,
}

impl Axis {
    fn unnormalize(&self, c: f64) -> f64 {
        let r = self.r;
        if self.align {
            r(r(c + 1.0) * r((self.size - 1.0) / 2.0))
        } else {
            r(r(r(c + 1.0) * r(self.size / 2.0)) - 0.5)
        }
    }
    fn clip(&self, c: f64) -> f64 {
        c.max(0.0).min(self.size - 1.0)
    }
    fn reflect(&self, c: f64) -> f64 {
        let r = self.r;
        let (twice_span, shift) = if self.align {
            (2.0 * (self.size - 1.0), 0.0)
        } else {
            (2.0 * self.size, 0.5)
        };
        if twice_span == 0.0 {
            return 0.0;
        }
        let abs = r(c + shift).abs();
        let flips = r(abs / twice_span).trunc();
        let extra = r(abs - r(flips * twice_span));
        r(extra.min(r(twice_span - extra)) - shift)
    }
    /// Applies the padding mode to a source coordinate.
    fn compute(&self, c: f64) -> f64 {
        match self.pad {
            1 => self.clip(c),
            2 => self.clip(self.reflect(c)),
            _ => c,
        }
    }
}

/// Cubic convolution weights (A = -0.75), each step rounded to the element type.
fn cubic_coefficients(t: f64, r: fn(f64) -> f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let c1 = |x: f64| r(r(r(r(r(r((A + 2.0) * x) - (A + 3.0)) * x) * x)) + 1.0);
    let c2 = |x: f64| r(r(r(r(r(r(r(A * x) - 5.0 * A) * x) + 8.0 * A) * x)) - 4.0 * A);
    [c2(r(t + 1.0)), c1(t), c1(r(1.0 - t)), c2(r(2.0 - t))]
}

fn grid_sampler_2d(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("input")?;
    let g = a.tensor("grid")?;
    let (mode, pad) = (a.int("interpolation_mode")?, a.int("padding_mode")?);
    let align = a.bool("align_corners")?;
    let xs = x.sizes_untraced();
    let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let gs = g.sizes_untraced();
    let (gh, gw) = (gs[1], gs[2]);
    let r = dtype_rounder(x.dtype());
    let data = x.to_vec_f64();
    let grid = g.to_vec_f64();
    let ax_w = Axis {
        size: w as f64,
        align,
        pad,
        r,
    };
    let ax_h = Axis {
        size: h as f64,
        align,
        pad,
        r,
    };
    let mut out = vec![0f64; n * c * gh * gw];
    for b in 0..n {
        for i in 0..gh * gw {
            let gi = (b * gh * gw + i) * 2;
            let (gx, gy) = (grid[gi], grid[gi + 1]);
            for ch in 0..c {
                let plane = &data[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
                // Taps are whole numbers; out-of-bounds (and non-finite) ones read zero.
                let at = |xi: f64, yi: f64| -> f64 {
                    if xi > -1.0 && xi < w as f64 && yi > -1.0 && yi < h as f64 {
                        plane[yi as usize * w + xi as usize]
                    } else {
                        0.0
                    }
                };
                let v = match mode {
                    0 => {
                        let (px, py) = (
                            ax_w.compute(ax_w.unnormalize(gx)),
                            ax_h.compute(ax_h.unnormalize(gy)),
                        );
                        let (x0, y0) = (px.floor(), py.floor());
                        let (we, no) = (r(px - x0), r(py - y0));
                        let (ea, so) = (r(1.0 - we), r(1.0 - no));
                        let (nw, ne, sw, se) = (r(so * ea), r(so * we), r(no * ea), r(no * we));
                        let s = r(r(at(x0, y0) * nw) + r(at(x0 + 1.0, y0) * ne));
                        let s = r(s + r(at(x0, y0 + 1.0) * sw));
                        r(s + r(at(x0 + 1.0, y0 + 1.0) * se))
                    }
                    1 => {
                        let px = ax_w.compute(ax_w.unnormalize(gx)).round_ties_even();
                        let py = ax_h.compute(ax_h.unnormalize(gy)).round_ties_even();
                        at(px, py)
                    }
                    _ => {
                        let (px, py) = (ax_w.unnormalize(gx), ax_h.unnormalize(gy));
                        let (x0, y0) = (px.floor(), py.floor());
                        let cx = cubic_coefficients(r(px - x0), r);
                        let cy = cubic_coefficients(r(py - y0), r);
                        let mut acc = 0.0;
                        for (i, wy) in cy.iter().enumerate() {
                            let yy = ax_h.compute(y0 - 1.0 + i as f64);
                            let mut row = 0.0;
                            for (j, wx) in cx.iter().enumerate() {
                                let v = at(ax_w.compute(x0 - 1.0 + j as f64), yy);
                                row = if j == 0 {
                                    r(wx * v)
                                } else {
                                    r(row + r(wx * v))
                                };
                            }
                            acc = r(acc + r(wy * row));
                        }
                        acc
                    }
                };
                out[((b * c + ch) * gh * gw) + i] = v;
            }
        }
    }
    write_f64(&o[0], out)
}

// ---- _embedding_bag -----------------------------------------------------------------------------------

const BAG_INDEX_ERROR: &str = "Expected i < index_size to be true, but got false.  (Could this error message be improved?  If so, please report an enhancement request to PyTorch.)";

fn tensor_type_name(dt: DType) -> String {
    format!("torch.{dt}Tensor")
}

/// PyTorch's CPU fast path (`is_fast_path`): sum and mean bags then follow the offsets, not offset2bag,
/// and the sum mode returns an empty offset2bag.
fn bag_fast_path(
    dt: DType,
    weight_stride1: i64,
    padding_idx: i64,
    psw_stride0: Option<i64>,
) -> bool {
    matches!(dt, DType::F32 | DType::F16 | DType::BF16)
        && weight_stride1 == 1
        && padding_idx < 0
        && psw_stride0.is_none_or(|s| s == 1)
}

fn meta_embedding_bag(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let w = a.tensor("weight")?;
    let idx = a.tensor("indices")?;
    let off = a.tensor("offsets")?;
    let it = crate::dtype::promote_types(idx.dtype, off.dtype);
    if idx.dim() != 1 && idx.dim() != 2 {
        return Err(Error::shape(format!(
            "input has to be a 1D or 2D Tensor, but got Tensor of dimension {}",
            idx.dim()
        )));
    }
    if idx.dim() == 1 && off.dim() != 1 {
        return Err(Error::shape(format!(
            "offsets has to be a 1D Tensor, but got Tensor of dimension {}",
            off.dim()
        )));
    }
    if w.dim() != 2 {
        return Err(Error::shape(format!(
            "weight has to be a 2D Tensor, but got Tensor of dimension {}",
            w.dim()
        )));
    }
    if idx.dim() == 2 {
        // PyTorch's CPU paths disagree on 2-D indices (the slow path fails a check); not supported.
        return Err(Error::shape(
            "embedding_bag: oxport supports 1-D indices only (flatten them and pass offsets)",
        ));
    }
    if !matches!(it, DType::I64 | DType::I32) {
        return Err(Error::DType(format!(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got {} instead (while checking arguments for embedding_bag)",
            tensor_type_name(it)
        )));
    }
    if !w.dtype.is_floating_point() {
        return Err(Error::DType(format!(
            "Expected tensor for argument #1 'weight' to have one of the following scalar types: Half, BFloat16, Float, Double; but got {} instead (while checking arguments for embedding_bag)",
            tensor_type_name(w.dtype)
        )));
    }
    let mode = a.int("mode")?;
    let psw = a.opt_tensor("per_sample_weights")?;
    if let Some(p) = psw {
        if mode != 0 {
            return Err(Error::value(
                "embedding_bag: per_sample_weights only supported with mode='sum'",
            ));
        }
        if p.dtype != w.dtype {
            return Err(Error::DType(format!(
                "Expected tensor for argument #1 'weight' to have the same type as tensor for argument #1 'per_sample_weights'; but type {} does not equal {} (while checking arguments for embedding_bag)",
                tensor_type_name(w.dtype),
                tensor_type_name(p.dtype)
            )));
        }
        if p.dim() != 1 {
            return Err(Error::shape("Expected per_sample_weights.value().dim() == 1 to be true, but got false.  (Could this error message be improved?  If so, please report an enhancement request to PyTorch.)"));
        }
        if !p.numel().guard_eq(&idx.numel()) {
            return Err(Error::shape("Expected per_sample_weights.value().numel() == indices.numel() to be true, but got false.  (Could this error message be improved?  If so, please report an enhancement request to PyTorch.)"));
        }
    }
    let n_off = off.sizes[0]
        .as_int()
        .ok_or_else(|| Error::Symbolic("embedding_bag over symbolic offsets".into()))?;
    let include_last = a.bool("include_last_offset")?;
    if include_last && n_off < 1 {
        return Err(Error::shape(
            "include_last_offset: number of offset should be at least 1",
        ));
    }
    if !(0..=2).contains(&mode) {
        return Err(Error::value("`mode` must be sum, mean, or max."));
    }
    let nb = SymInt::Int(n_off - include_last as i64);
    let d = w.sizes[1].clone();
    let fast = bag_fast_path(
        w.dtype,
        w.strides[1].as_int().unwrap_or(0),
        a.int("padding_idx")?,
        psw.map(|p| p.strides[0].as_int().unwrap_or(0)),
    );
    let o2b = if mode == 0 && fast {
        SymInt::Int(0)
    } else {
        idx.sizes[0].clone()
    };
    let max_idx = if mode == 2 {
        vec![nb.clone(), d.clone()]
    } else {
        vec![nb.clone()]
    };
    let m = |dt, s| Value::Tensor(TensorMeta::contiguous(dt, s));
    Ok(vec![
        m(w.dtype, vec![nb.clone(), d]),
        m(it, vec![o2b]),
        m(it, vec![nb]),
        m(it, max_idx),
    ])
}

fn embedding_bag(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let w = a.tensor("weight")?;
    let idx = to_vec_i64(a.tensor("indices")?)?;
    let off = to_vec_i64(a.tensor("offsets")?)?;
    let mode = a.int("mode")?;
    let padding_idx = a.int("padding_idx")?;
    let include_last = a.bool("include_last_offset")?;
    let psw_t = a.opt_tensor("per_sample_weights")?;
    let n = idx.len();
    if let (Some(&first), Some(&last)) = (off.first(), off.last()) {
        if first != 0 {
            return Err(Error::value(format!(
                "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. However, got {first}"
            )));
        }
        if last > n as i64 {
            return Err(Error::value(format!(
                "offsets[-1] can not be greater than input's length {n} but got offsets[-1] of {last}"
            )));
        }
    }
    let (num_w, d) = (w.sizes_untraced()[0], w.sizes_untraced()[1]);
    let nb = off.len() - include_last as usize;
    let fast = bag_fast_path(
        w.dtype(),
        w.strides()[1] as i64,
        padding_idx,
        psw_t.map(|p| p.strides()[0] as i64),
    );
    let weights = w.to_vec_f64();
    let psw = psw_t.map(|p| p.to_vec_f64());
    let r = rounder(w.dtype());
    let mut out = vec![0f64; nb * d];
    // offset2bag: the bag of each index (a cumulative count of the offsets after the first).
    let counted = off.len() - include_last as usize;
    let mut o2b = vec![0i64; n + 1];
    for &v in off.iter().take(counted).skip(1) {
        match o2b.get_mut(v as usize) {
            Some(c) if v >= 0 => *c += 1,
            // PyTorch's index_add_ into offset2bag (the slow path builds it first).
            _ if mode == 2 || !fast => return Err(Error::value("index out of range in self")),
            _ => {}
        }
    }
    for i in 1..o2b.len() {
        o2b[i] += o2b[i - 1];
    }
    o2b.truncate(n);
    // bag_size: offset differences (the last bag runs to the end), less padding entries.
    let mut bag_size: Vec<i64> = (0..nb)
        .map(|b| {
            if b + 1 < nb {
                off[b + 1].wrapping_sub(off[b])
            } else {
                (n as i64).wrapping_sub(off[b])
            }
        })
        .collect();
    let in_range = |v: i64| v >= 0 && (v as usize) < num_w;
    let slow_index_error = |v: i64| {
        Error::value(format!(
            "embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be {v}"
        ))
    };
    let mut max_idx = vec![0i64; if mode == 2 { nb * d } else { 0 }];
    if mode != 2 && fast {
        // Bags follow the offsets; indices past the last offset (include_last_offset) are not read.
        for b in 0..nb {
            let start = off[b];
            let end = if b + 1 < off.len() {
                off[b + 1]
            } else {
                n as i64
            };
            if end < start || start < 0 || end > n as i64 {
                // Single-threaded PyTorch reads out of bounds here; its parallel path raises this.
                return Err(Error::value(BAG_INDEX_ERROR));
            }
            for i in start as usize..end as usize {
                if !in_range(idx[i]) {
                    return Err(Error::value(format!(
                        "Index {i} of input takes value {} which is not in the valid range [0, {num_w})",
                        idx[i]
                    )));
                }
                let row = idx[i] as usize * d;
                let s = psw.as_ref().map(|p| p[i]);
                for j in 0..d {
                    let v = weights[row + j];
                    let acc = &mut out[b * d + j];
                    *acc = r(*acc + s.map_or(v, |s| r(v * s)));
                }
            }
        }
    } else {
        let mut seen = vec![false; nb];
        for i in 0..n {
            let v = idx[i];
            if !in_range(v) {
                return Err(slow_index_error(v));
            }
            let b = o2b[i] as usize;
            if b >= nb {
                continue;
            }
            if v == padding_idx {
                bag_size[b] -= 1;
                continue;
            }
            let row = v as usize * d;
            for j in 0..d {
                let x = weights[row + j];
                let acc = &mut out[b * d + j];
                if mode == 2 {
                    if !seen[b] || x > *acc {
                        *acc = x;
                        max_idx[b * d + j] = v;
                    }
                } else {
                    let s = psw.as_ref().map(|p| p[i]);
                    *acc = r(*acc + s.map_or(x, |s| r(x * s)));
                }
            }
            seen[b] = true;
        }
    }
    if mode == 1 {
        for (b, &c) in bag_size.iter().enumerate() {
            let div = c.max(1) as f64;
            for v in &mut out[b * d..(b + 1) * d] {
                *v = r(*v / div);
            }
        }
    }
    write_f64(&o[0], out)?;
    if o[1].numel() == n {
        write_i64(&o[1], o2b)?;
    }
    if mode == 0 {
        // bag_size and max_indices are zeros (outputs are not zeroed for us: a planner reuses buffers)
        write_i64(&o[2], vec![0; o[2].numel()])?;
        return write_i64(&o[3], vec![0; o[3].numel()]);
    }
    write_i64(&o[2], bag_size.clone())?;
    write_i64(&o[3], if mode == 2 { max_idx } else { bag_size })
}

// ---- col2im -------------------------------------------------------------------------------------------

/// `int[2]` arguments by name (col2im's and im2col's), in PyTorch's order of checks.
fn int2_params<T, const N: usize>(a: &Args<T>, names: [&str; N]) -> Result<[[i64; 2]; N]> {
    let mut out = [[0i64; 2]; N];
    for (i, name) in names.iter().enumerate() {
        let v = a.ints(name)?;
        if v.len() != 2 {
            return Err(Error::value(format!(
                "It is expected {name} equals to 2, but got size {}",
                v.len()
            )));
        }
        out[i] = [v[0], v[1]];
    }
    Ok(out)
}

/// The five `int[2]` arguments of col2im.
fn col2im_params<T>(a: &Args<T>) -> Result<[[i64; 2]; 5]> {
    int2_params(
        a,
        [
            "output_size",
            "kernel_size",
            "dilation",
            "padding",
            "stride",
        ],
    )
}

/// One of PyTorch's fold/unfold argument checks: both values at least `min`.
fn check_fold_arg(v: [i64; 2], what: &str, field: &str, min: i64) -> Result<()> {
    if v[0] < min || v[1] < min {
        let rule = if min > 0 {
            "be greater than zero"
        } else {
            "be non-negative"
        };
        return Err(Error::value(format!(
            "{what} should {rule}, but got {field}_height: {} {field}_width: {}",
            v[0], v[1]
        )));
    }
    Ok(())
}

/// `[N?, C*kh*kw, L]` checked as PyTorch's col2im_shape_check; returns the number of blocks `[bh, bw]`.
fn meta_col2im(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    let [os, k, d, p, s] = col2im_params(a)?;
    check_fold_arg(k, "kernel size", "kernel", 1)?;
    check_fold_arg(s, "stride", "stride", 1)?;
    check_fold_arg(d, "dilation", "dilation", 1)?;
    check_fold_arg(p, "padding", "pad", 0)?;
    let sizes = concrete(x, "col2im")?;
    let nd = sizes.len();
    if !((nd == 2 && sizes[0] != 0 && sizes[1] != 0) || (nd == 3 && sizes[1] != 0 && sizes[2] != 0))
    {
        return Err(Error::shape(format!(
            "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero dimensions for input, but got: {}",
            fmt_shape(&x.sizes)
        )));
    }
    let bd = 0; // PyTorch names the dims of the batched (unsqueezed) input
    let planes = sizes[nd - 2];
    let kk = k[0] as i128 * k[1] as i128;
    if planes as i128 % kk != 0 {
        return Err(Error::shape(format!(
            "Expected size of input's dimension {} to be divisible by the product of kernel_size, but got input.size({})={planes} and kernel_size=({}, {}).",
            bd + 1,
            bd + 1,
            k[0],
            k[1]
        )));
    }
    let blocks: [i128; 2] = std::array::from_fn(|i| {
        let num = os[i] as i128 + 2 * p[i] as i128 - d[i] as i128 * (k[i] as i128 - 1) - 1;
        div_rtn(num, s[i] as i128) + 1
    });
    let len = sizes[nd - 1];
    let head = format!(
        "Given output_size=({}, {}), kernel_size=({}, {}), dilation=({}, {}), padding=({}, {}), stride=({}, {}), ",
        os[0], os[1], k[0], k[1], d[0], d[1], p[0], p[1], s[0], s[1]
    );
    if len as i128 != blocks[0] * blocks[1] {
        return Err(Error::shape(format!(
            "{head}expected size of input's dimension {} to match the calculated number of sliding blocks {} * {} = {}, but got input.size({})={len}.",
            bd + 2,
            blocks[0],
            blocks[1],
            blocks[0] * blocks[1],
            bd + 2
        )));
    }
    if blocks[0] < 1 || blocks[1] < 1 {
        return Err(Error::shape(format!(
            "{head}calculated shape of the array of sliding blocks as ({}, {}), which is too small (non-positive)",
            blocks[0], blocks[1]
        )));
    }
    if os[0] < 1 || os[1] < 1 {
        return Err(Error::shape(format!(
            "Expected output spatial size to be positive, but got: output_size=({}, {}).",
            os[0], os[1]
        )));
    }
    if !(x.dtype.is_floating_point() || x.dtype == DType::Bool) {
        return Err(Error::DTypeNotSupported {
            op: "col2im_out_cpu".into(),
            dtype: x.dtype,
        });
    }
    let mut out: Vec<SymInt> = x.sizes[..nd - 2].to_vec();
    out.push(SymInt::Int((planes as i128 / kk) as i64));
    out.extend([SymInt::Int(os[0]), SymInt::Int(os[1])]);
    one(x.dtype, out)
}

fn col2im(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("self")?;
    let [os, k, d, p, s] = col2im_params(a)?;
    let xs = x.sizes_untraced();
    let nd = xs.len();
    let (batch, planes, len) = (
        xs[..nd - 2].iter().product::<usize>(),
        xs[nd - 2],
        xs[nd - 1],
    );
    let (oh, ow) = (os[0], os[1]);
    let bw = (ow + 2 * p[1] - d[1] * (k[1] - 1) - 1) / s[1] + 1;
    let (kh, kw) = (k[0] as usize, k[1] as usize);
    let channels = planes / (kh * kw);
    let r = dtype_rounder(x.dtype());
    let data = x.to_vec_f64();
    let plane_out = (oh * ow) as usize;
    let mut out = vec![0f64; batch * channels * plane_out];
    // PyTorch's col2im loop order (c_col, h_col, w_col), accumulating in the element type.
    for b in 0..batch {
        let src = &data[b * planes * len..(b + 1) * planes * len];
        let dst = &mut out[b * channels * plane_out..(b + 1) * channels * plane_out];
        for c_col in 0..planes {
            let (w_off, h_off, c_im) = (c_col % kw, (c_col / kw) % kh, c_col / kh / kw);
            for l in 0..len {
                let (h_col, w_col) = (l as i64 / bw, l as i64 % bw);
                let h = h_col * s[0] - p[0] + h_off as i64 * d[0];
                let w = w_col * s[1] - p[1] + w_off as i64 * d[1];
                if (0..oh).contains(&h) && (0..ow).contains(&w) {
                    let j = c_im * plane_out + (h * ow + w) as usize;
                    dst[j] = r(dst[j] + src[c_col * len + l]);
                }
            }
        }
    }
    write_f64(&o[0], out)
}

// ---- im2col (F.unfold) ---------------------------------------------------------------------------------

/// kernel_size, dilation, padding, stride of im2col.
fn im2col_params<T>(a: &Args<T>) -> Result<[[i64; 2]; 4]> {
    int2_params(a, ["kernel_size", "dilation", "padding", "stride"])
}

/// `[N?, C, H, W]` -> `[N?, C*kh*kw, L]`, checked as PyTorch's im2col_shape_check.
fn meta_im2col(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    let [k, d, p, s] = im2col_params(a)?;
    check_fold_arg(k, "kernel size", "kernel", 1)?;
    check_fold_arg(d, "dilation", "dilation", 1)?;
    check_fold_arg(p, "padding", "pad", 0)?;
    check_fold_arg(s, "stride", "stride", 1)?;
    let sizes = concrete(x, "im2col")?;
    let nd = sizes.len();
    if nd < 3 {
        // PyTorch reads size(2) before its shape check.
        let n = nd.max(1) as i64;
        return Err(Error::value(format!(
            "Dimension out of range (expected to be in range of [{}, {}], but got 2)",
            -n,
            n - 1
        )));
    }
    if !(nd == 3 || nd == 4) || sizes[nd - 3..].contains(&0) {
        return Err(Error::shape(format!(
            "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for input, but got: {}",
            fmt_shape(&x.sizes)
        )));
    }
    let (h, w) = (sizes[nd - 2] as i64, sizes[nd - 1] as i64);
    let blocks: [i64; 2] = std::array::from_fn(|i| {
        let n = [h, w][i];
        (n + 2 * p[i] - (d[i] * (k[i] - 1) + 1)) / s[i] + 1
    });
    if blocks[0] < 1 || blocks[1] < 1 {
        return Err(Error::shape(format!(
            "Given input with spatial size ({h}, {w}), kernel_size=({}, {}), dilation=({}, {}), padding=({}, {}), calculated shape of the array of sliding blocks as ({}, {}), but its components must be at least one.",
            k[0], k[1], d[0], d[1], p[0], p[1], blocks[0], blocks[1]
        )));
    }
    if !x.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: "im2col_out_cpu".into(),
            dtype: x.dtype,
        });
    }
    let mut out: Vec<SymInt> = x.sizes[..nd - 3].to_vec();
    out.push(SymInt::Int(sizes[nd - 3] as i64 * k[0] * k[1]));
    out.push(SymInt::Int(blocks[0] * blocks[1]));
    one(x.dtype, out)
}

fn im2col(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("self")?;
    let [k, d, p, s] = im2col_params(a)?;
    let xs = x.sizes_untraced();
    let nd = xs.len();
    let (batch, channels, h, w) = (
        xs[..nd - 3].iter().product::<usize>(),
        xs[nd - 3],
        xs[nd - 2] as i64,
        xs[nd - 1] as i64,
    );
    let (kh, kw) = (k[0] as usize, k[1] as usize);
    let bh = (h + 2 * p[0] - (d[0] * (k[0] - 1) + 1)) / s[0] + 1;
    let bw = (w + 2 * p[1] - (d[1] * (k[1] - 1) + 1)) / s[1] + 1;
    let len = (bh * bw) as usize;
    let planes = channels * kh * kw;
    let data = x.to_vec_f64();
    let plane_in = (h * w) as usize;
    let mut out = vec![0f64; batch * planes * len];
    for b in 0..batch {
        let src = &data[b * channels * plane_in..(b + 1) * channels * plane_in];
        let dst = &mut out[b * planes * len..(b + 1) * planes * len];
        for c_col in 0..planes {
            let (w_off, h_off, c_im) = (c_col % kw, (c_col / kw) % kh, c_col / kh / kw);
            for l in 0..len {
                let (h_col, w_col) = (l as i64 / bw, l as i64 % bw);
                let y = h_col * s[0] - p[0] + h_off as i64 * d[0];
                let xx = w_col * s[1] - p[1] + w_off as i64 * d[1];
                if (0..h).contains(&y) && (0..w).contains(&xx) {
                    dst[c_col * len + l] = src[c_im * plane_in + (y * w + xx) as usize];
                }
            }
        }
    }
    write_f64(&o[0], out)
}

// ---- _cdist_forward / _pdist_forward ------------------------------------------------------------------

/// The p-norm distance of two rows, computed in f64 (PyTorch's CPU kernel vectorizes the sum).
fn dist(a: &[f64], b: &[f64], p: f64) -> f64 {
    let diffs = a.iter().zip(b).map(|(x, y)| (x - y).abs());
    if p == 0.0 {
        diffs.filter(|&v| v != 0.0).count() as f64
    } else if p == 1.0 {
        diffs.sum()
    } else if p == 2.0 {
        diffs.map(|v| v * v).sum::<f64>().sqrt()
    } else if p == f64::INFINITY {
        diffs.fold(0.0, |m, v| if v > m || v.is_nan() { v } else { m })
    } else {
        diffs.map(|v| v.powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

/// Whether cdist takes its matrix-multiplication path (`_euclidean_dist`).
fn cdist_uses_mm(p: f64, mode: i64, r1: i64, r2: i64) -> bool {
    p == 2.0 && (mode == 1 || (mode == 0 && (r1 > 25 || r2 > 25)))
}

fn meta_cdist(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x1, x2) = (a.tensor("x1")?, a.tensor("x2")?);
    for (t, name) in [(x1, "X1"), (x2, "X2")] {
        if t.dim() < 2 {
            return Err(Error::shape(format!(
                "cdist only supports at least 2D tensors, {name} got: {}D",
                t.dim()
            )));
        }
    }
    let (s1, s2) = (concrete(x1, "cdist")?, concrete(x2, "cdist")?);
    let (n1, n2) = (s1.len(), s2.len());
    if s1[n1 - 1] != s2[n2 - 1] {
        return Err(Error::shape(format!(
            "X1 and X2 must have the same number of columns. X1: {} X2: {}",
            s1[n1 - 1],
            s2[n2 - 1]
        )));
    }
    for (t, name) in [(x1, "X1"), (x2, "X2")] {
        if !t.dtype.is_floating_point() {
            return Err(Error::DType(format!(
                "cdist only supports floating-point dtypes, {name} got: {}",
                t.dtype
            )));
        }
    }
    let p = a.float("p")?;
    // PyTorch's `p >= 0` is false for NaN too.
    if p.is_nan() || p < 0.0 {
        return Err(Error::value("cdist only supports non-negative p values"));
    }
    let mode = a.opt_int("compute_mode")?.unwrap_or(0);
    if !(0..=2).contains(&mode) {
        return Err(Error::value(format!(
            "possible modes: 0, 1, 2, but was: {mode}"
        )));
    }
    let mut out = broadcast_shapes(&[&x1.sizes[..n1 - 2], &x2.sizes[..n2 - 2]])?;
    let (r1, r2, c) = (s1[n1 - 2], s2[n2 - 2], s1[n1 - 1]);
    let batch: i64 = out.iter().map(|v| v.as_int().unwrap_or(0)).product();
    let empty = r1 == 0 || r2 == 0 || batch == 0 || c == 0;
    if !empty {
        if cdist_uses_mm(p, mode, r1, r2) {
            if x1.dtype != x2.dtype {
                return Err(Error::DType(format!(
                    "expected m1 and m2 to have the same dtype, but got: {} != {}",
                    x1.dtype.name(),
                    x2.dtype.name()
                )));
            }
        } else {
            if matches!(x1.dtype, DType::F16 | DType::BF16) {
                return Err(Error::DTypeNotSupported {
                    op: "cdist".into(),
                    dtype: x1.dtype,
                });
            }
            if x1.dtype != x2.dtype {
                return Err(Error::DType(format!(
                    "expected scalar type {} but found {}",
                    x1.dtype, x2.dtype
                )));
            }
        }
    }
    out.extend([SymInt::Int(r1), SymInt::Int(r2)]);
    one(x1.dtype, out)
}

fn cdist(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let (x1, x2) = (a.tensor("x1")?, a.tensor("x2")?);
    let p = a.float("p")?;
    let mode = a.opt_int("compute_mode")?.unwrap_or(0);
    let os = o[0].sizes_untraced().to_vec();
    let nd = os.len();
    let (r1, r2) = (os[nd - 2], os[nd - 1]);
    let c = x1.sizes_untraced()[x1.dim() - 1];
    if o[0].numel() == 0 || c == 0 {
        return write_f64(&o[0], vec![0.0; o[0].numel()]); // zeros
    }
    // Broadcast the batch dims by restriding (stride 0 where a size is 1 or missing).
    let expand = |t: &Tensor, rows: usize| -> Result<Vec<f64>> {
        let (ts, st) = (t.sizes_untraced(), t.strides());
        let tb = t.dim() - 2;
        let mut sizes = os[..nd - 2].to_vec();
        let mut strides = vec![0usize; nd - 2];
        for i in 0..tb {
            let j = nd - 2 - tb + i;
            strides[j] = if ts[i] == 1 { 0 } else { st[i] };
        }
        sizes.extend([rows, c]);
        strides.extend([st[tb], st[tb + 1]]);
        Ok(t.restride(&sizes, &strides, t.storage_offset())?
            .to_vec_f64())
    };
    let (a1, a2) = (expand(x1, r1)?, expand(x2, r2)?);
    let batch = o[0].numel() / (r1 * r2);
    let mm = cdist_uses_mm(p, mode, r1 as i64, r2 as i64);
    let r = rounder(x1.dtype());
    let mut out = Vec::with_capacity(o[0].numel());
    for b in 0..batch {
        for i in 0..r1 {
            let u = &a1[(b * r1 + i) * c..(b * r1 + i + 1) * c];
            for j in 0..r2 {
                let v = &a2[(b * r2 + j) * c..(b * r2 + j + 1) * c];
                out.push(if mm {
                    // _euclidean_dist: [-2u, |u|², 1] · [v, 1, |v|²], clamped at 0, in the element type.
                    let n1 = u.iter().fold(0.0, |acc, x| r(acc + r(x * x)));
                    let n2 = v.iter().fold(0.0, |acc, x| r(acc + r(x * x)));
                    let dot = u
                        .iter()
                        .zip(v)
                        .fold(0.0, |acc, (x, y)| r(acc + r(r(-2.0 * x) * y)));
                    r(r(r(dot + n1) + n2).max(0.0).sqrt())
                } else {
                    dist(u, v, p)
                });
            }
        }
    }
    write_f64(&o[0], out)
}

fn meta_pdist(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = meta_self(a)?;
    let contiguous = crate::ops::value::contiguous_sym_strides(&x.sizes);
    let sizes = concrete(x, "_pdist_forward")?;
    let is_contig = sizes.contains(&0)
        || x.sizes
            .iter()
            .zip(x.strides.iter().zip(&contiguous))
            .all(|(n, (s, c))| n.as_int() == Some(1) || s.as_int() == c.as_int());
    if !is_contig {
        return Err(Error::value("_pdist_forward requires contiguous input"));
    }
    if sizes.is_empty() {
        return Err(Error::value(
            "Dimension specified as 0 but tensor has no dimensions",
        ));
    }
    let n = sizes[0];
    if n <= 1 {
        return one(x.dtype, vec![SymInt::Int(0)]);
    }
    if sizes.len() < 2 {
        return Err(Error::DimOutOfRange {
            dim: 1,
            min: -1,
            max: 0,
        });
    }
    // PyTorch reads N rows of size(1) elements from the start of the data (any rank); with an empty
    // later dim that is past the end.
    let numel: i128 = sizes.iter().map(|&v| v as i128).product();
    if numel < n as i128 * sizes[1] as i128 {
        return Err(Error::shape(format!(
            "_pdist_forward: an input of shape {} has fewer than size(0) * size(1) elements",
            fmt_shape(&x.sizes)
        )));
    }
    if sizes[1] != 0 && !matches!(x.dtype, DType::F32 | DType::F64) {
        return Err(Error::DTypeNotSupported {
            op: "pdist".into(),
            dtype: x.dtype,
        });
    }
    one(x.dtype, vec![SymInt::Int(n * (n - 1) / 2)])
}

fn pdist(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("self")?;
    if o[0].numel() == 0 || x.sizes_untraced()[1] == 0 {
        return write_f64(&o[0], vec![0.0; o[0].numel()]); // empty, or zeros
    }
    let p = a.float("p")?;
    let (n, m) = (x.sizes_untraced()[0], x.sizes_untraced()[1]);
    // Rows of `m` elements over the flat data, as PyTorch's kernel reads a (contiguous) input of any rank.
    let data = x.to_vec_f64();
    let mut out = Vec::with_capacity(o[0].numel());
    for i in 0..n {
        for j in i + 1..n {
            out.push(dist(
                &data[i * m..(i + 1) * m],
                &data[j * m..(j + 1) * m],
                p,
            ));
        }
    }
    write_f64(&o[0], out)
}

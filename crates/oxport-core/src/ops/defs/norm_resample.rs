//! Group normalization (`native_group_norm`, and `group_norm`, which decomposes to it) and 2-d resampling
//! (`upsample_nearest2d.vec`, `upsample_bilinear2d.vec`, what `F.interpolate` records).
use super::*;

pub(super) fn register(r: &mut Builder) {
    r.out_op(
        "aten.native_group_norm.default",
        meta_native_group_norm,
        native_group_norm,
    );
    r.out_op("aten.group_norm.default", meta_group_norm, |a, o| {
        let (n, c, hxw) = group_norm_dims(a.tensor("input")?.sizes_untraced());
        let outs = group_norm_into(a, n, c, hxw, a.int("num_groups")?, a.float("eps")?)?;
        o[0].assign_untraced(&outs.0)
    })
    .decomposition(decompositions::group_norm);
    // The name is PyTorch's CPU kernel that refuses an unsupported dtype (its error message).
    r.out_op(
        "aten.upsample_nearest2d.vec",
        |a| meta_upsample(a, "upsample_nearest2d_channels_last"),
        upsample_nearest,
    );
    r.out_op(
        "aten.upsample_bilinear2d.vec",
        |a| meta_upsample(a, "upsample_bilinear2d_channels_last"),
        upsample_bilinear,
    );
    r.out_op(
        "aten.upsample_bicubic2d.vec",
        |a| meta_upsample(a, "compute_indices_weights_cubic"),
        upsample_bicubic,
    );
}

/// (N, C, H*W...) of a group-norm input.
fn group_norm_dims(sizes: &[usize]) -> (usize, usize, usize) {
    let n = sizes.first().copied().unwrap_or(1);
    let c = sizes.get(1).copied().unwrap_or(1);
    (n, c, sizes.iter().skip(2).product())
}

fn check_group_norm(
    input: &TensorMeta,
    weight: Option<&TensorMeta>,
    bias: Option<&TensorMeta>,
    groups: i64,
) -> Result<()> {
    if input.dim() < 2 {
        return Err(Error::shape(format!(
            "Expected at least 2 dimensions for input tensor but received {}",
            input.dim()
        )));
    }
    let c = input.sizes[1]
        .as_int()
        .ok_or_else(|| Error::Symbolic("group_norm over a symbolic channel count".into()))?;
    if groups <= 0 || c % groups != 0 {
        return Err(Error::shape(format!(
            "Expected number of channels in input to be divisible by num_groups, but got input of shape {} and num_groups={groups}",
            fmt_shape(&input.sizes)
        )));
    }
    for (what, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.dim() != 1 || t.sizes[0].as_int() != Some(c) {
                return Err(Error::shape(format!(
                    "Expected {what} to be a vector of size equal to the number of channels in input, but got {what} of shape {} and input of shape {}",
                    fmt_shape(&t.sizes),
                    fmt_shape(&input.sizes)
                )));
            }
        }
    }
    if !input.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: "GroupNormKernelImpl".into(),
            dtype: input.dtype,
        });
    }
    Ok(())
}

fn meta_group_norm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    check_group_norm(
        x,
        a.opt_tensor("weight")?,
        a.opt_tensor("bias")?,
        a.int("num_groups")?,
    )?;
    one(x.dtype, x.sizes.clone())
}

fn meta_native_group_norm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    let group = a.int("group")?;
    check_group_norm(x, a.opt_tensor("weight")?, a.opt_tensor("bias")?, group)?;
    // N, C and HxW must describe the input (PyTorch checks N * C * HxW == input.numel()).
    let (n, c, hxw) = (a.int("N")?, a.int("C")?, a.int("HxW")?);
    let numel = x.numel().as_int();
    let product = [n, c, hxw].iter().try_fold(
        1i64,
        |acc, &v| if v < 0 { None } else { acc.checked_mul(v) },
    );
    if product.is_none() || (numel.is_some() && product != numel) || x.sizes[1].as_int() != Some(c)
    {
        return Err(Error::shape(format!(
            "Expected input to have N * C * HxW elements with C channels, but got N={n}, C={c}, HxW={hxw} and input of shape {}",
            fmt_shape(&x.sizes)
        )));
    }
    let stats = vec![SymInt::Int(n), SymInt::Int(group)];
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(x.dtype, x.sizes.clone())),
        Value::Tensor(TensorMeta::contiguous(x.dtype, stats.clone())),
        Value::Tensor(TensorMeta::contiguous(x.dtype, stats)),
    ])
}

fn native_group_norm(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let (n, c, hxw) = (
        a.int("N")? as usize,
        a.int("C")? as usize,
        a.int("HxW")? as usize,
    );
    let (out, mean, rstd) = group_norm_into(a, n, c, hxw, a.int("group")?, a.float("eps")?)?;
    o[0].assign_untraced(&out)?;
    o[1].assign_untraced(&mean)?;
    o[2].assign_untraced(&rstd)
}

/// Normalizes each (sample, group) over its C/group channels and spatial positions (biased variance,
/// computed in f64), then applies the per-channel affine. Returns (output, mean, rstd).
fn group_norm_into(
    a: &Args<Tensor>,
    n: usize,
    c: usize,
    hxw: usize,
    groups: i64,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let x = a.tensor("input")?;
    let dt = x.dtype();
    let g = groups as usize;
    let total = n.checked_mul(c).and_then(|v| v.checked_mul(hxw));
    if g == 0 || !c.is_multiple_of(g) || total != Some(x.numel()) {
        return Err(Error::shape(format!(
            "native_group_norm: N={n}, C={c}, HxW={hxw} and group={groups} do not describe an input of shape {}",
            fmt_shape(x.sizes_untraced())
        )));
    }
    let data = x.to_vec_f64();
    let weight = a.opt_tensor("weight")?.map(|w| w.to_vec_f64());
    let bias = a.opt_tensor("bias")?.map(|b| b.to_vec_f64());
    let per_group = c / g * hxw;
    let mut out = vec![0f64; data.len()];
    let (mut means, mut rstds) = (vec![0f64; n * g], vec![0f64; n * g]);
    for (k, chunk) in data.chunks(per_group.max(1)).enumerate().take(n * g) {
        let len = chunk.len().max(1) as f64;
        let mean = chunk.iter().sum::<f64>() / len;
        let var = chunk.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / len;
        let rstd = 1.0 / (var + eps).sqrt();
        means[k] = mean;
        rstds[k] = rstd;
        for (i, v) in chunk.iter().enumerate() {
            let ch = (k % g) * (c / g) + i / hxw.max(1);
            let w = weight.as_ref().map_or(1.0, |w| w[ch]);
            let b = bias.as_ref().map_or(0.0, |b| b[ch]);
            out[k * per_group + i] = (v - mean) * rstd * w + b;
        }
    }
    let to = |v: Vec<f64>, sizes: &[usize]| -> Result<Tensor> {
        Ok(as_dtype(&Tensor::from_vec(v, sizes)?, dt))
    };
    Ok((
        to(out, x.sizes_untraced())?,
        to(means, &[n, g])?,
        to(rstds, &[n, g])?,
    ))
}

// ---- upsampling --------------------------------------------------------------------------------------

fn meta_upsample(a: &Args<TensorMeta>, cpu_kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    // upsample_compute_output_size: one size or scale per spatial dim, exactly one of the two given.
    let spatial = x.dim().saturating_sub(2);
    let mismatch = |what: &str| {
        Error::shape(format!(
            "Expected static_cast<int64_t>({what}->size()) == spatial_dimensions to be true, but got false.  (Could this error message be improved?  If so, please report an enhancement request to PyTorch.)"
        ))
    };
    let sizes = match (a.get("output_size")?, a.get("scale_factors")?) {
        (Value::Ints(s), Value::None) => {
            if s.len() != spatial {
                return Err(mismatch("output_size"));
            }
            s.clone()
        }
        (Value::None, Value::Floats(f)) => {
            if f.len() != spatial {
                return Err(mismatch("scale_factors"));
            }
            let mut out = vec![];
            for (i, &s) in f.iter().enumerate() {
                let d = x.sizes[2 + i]
                    .as_int()
                    .ok_or_else(|| Error::Symbolic("upsampling a symbolic size".into()))?;
                out.push(SymInt::Int((d as f64 * s).floor() as i64));
            }
            out
        }
        _ => {
            return Err(Error::value(
                "Must specify exactly one of output_size and scale_factors",
            ))
        }
    };
    if x.dim() != 4 {
        return Err(Error::shape(format!(
            "Expected 4D input (got {}D input)",
            x.dim()
        )));
    }
    for s in sizes.iter().chain(&x.sizes[2..]) {
        if s.guard_lt(&SymInt::Int(1)) {
            return Err(Error::shape(format!(
                "Input and output sizes should be greater than 0, but got input (H: {}, W: {}) output (H: {}, W: {})",
                x.sizes[2], x.sizes[3], sizes[0], sizes.get(1).unwrap_or(&SymInt::Int(0))
            )));
        }
    }
    // PyTorch's CPU kernels take floating types and uint8 (images) only.
    if !x.dtype.is_floating_point() && x.dtype != DType::U8 {
        return Err(Error::DTypeNotSupported {
            op: cpu_kernel.into(),
            dtype: x.dtype,
        });
    }
    let mut out = x.sizes[..2].to_vec();
    out.extend(sizes);
    one(x.dtype, out)
}

/// PyTorch's `area_pixel_compute_scale`: the source step per output pixel.
fn pixel_scale(input: usize, output: usize, align_corners: bool, scale: Option<f64>) -> f64 {
    if align_corners {
        if output > 1 {
            (input as f64 - 1.0) / (output as f64 - 1.0)
        } else {
            0.0
        }
    } else {
        match scale {
            Some(s) if s > 0.0 => 1.0 / s,
            _ => input as f64 / output as f64,
        }
    }
}

fn scale_factor(a: &Args<Tensor>, i: usize) -> Result<Option<f64>> {
    Ok(match a.get("scale_factors")? {
        Value::Floats(f) => f.get(i).copied(),
        _ => None,
    })
}

/// Resamples each (N, C) plane with `f(plane, in_h, in_w, out_h, out_w) -> out plane`, in f64.
fn resample(x: &Tensor, out: &Tensor, f: impl Fn(&[f64], &mut [f64]) + Sync + Send) -> Result<()> {
    let (is, os) = (x.sizes_untraced(), out.sizes_untraced().to_vec());
    let plane_in = is[2] * is[3];
    let plane_out = os[2] * os[3];
    let data = x.to_vec_f64();
    let mut res = vec![0f64; os.iter().product()];
    if plane_in > 0 && plane_out > 0 {
        for (src, dst) in data.chunks(plane_in).zip(res.chunks_mut(plane_out)) {
            f(src, dst);
        }
    }
    if !out.dtype().is_floating_point() {
        // Integer images round to the nearest value, as PyTorch's uint8 kernels do.
        res.iter_mut().for_each(|v| *v = v.round());
    }
    out.assign_untraced(&as_dtype(&Tensor::from_vec(res, &os)?, out.dtype()))
}

fn upsample_nearest(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("input")?;
    let (ih, iw) = (x.sizes_untraced()[2], x.sizes_untraced()[3]);
    let (oh, ow) = (o[0].sizes_untraced()[2], o[0].sizes_untraced()[3]);
    let (sh, sw) = (
        pixel_scale(ih, oh, false, scale_factor(a, 0)?),
        pixel_scale(iw, ow, false, scale_factor(a, 1)?),
    );
    // nearest_idx: floor(dst * scale), clamped to the last source pixel.
    let src = |d: usize, s: f64, n: usize| ((d as f64 * s).floor() as usize).min(n - 1);
    let rows: Vec<usize> = (0..oh).map(|y| src(y, sh, ih)).collect();
    let cols: Vec<usize> = (0..ow).map(|x| src(x, sw, iw)).collect();
    resample(x, &o[0], |p, q| {
        for (y, &sy) in rows.iter().enumerate() {
            for (x, &sx) in cols.iter().enumerate() {
                q[y * ow + x] = p[sy * iw + sx];
            }
        }
    })
}

/// One output pixel's source indices and weights along one axis (`N` taps).
type Taps<const N: usize> = ([usize; N], [f64; N]);

/// The lower and upper source index and their weights per output pixel of a linear resampling.
fn linear_taps(n_in: usize, n_out: usize, align: bool, scale: Option<f64>) -> Vec<Taps<2>> {
    let s = pixel_scale(n_in, n_out, align, scale);
    (0..n_out)
        .map(|d| {
            let real = if align {
                s * d as f64
            } else {
                (s * (d as f64 + 0.5) - 0.5).max(0.0)
            };
            let lo = (real.floor() as usize).min(n_in - 1);
            let hi = (lo + 1).min(n_in - 1);
            let w = real - lo as f64;
            ([lo, hi], [1.0 - w, w])
        })
        .collect()
}

/// A separable 2-d filter over each (N, C) plane: along rows with `cols` taps, then along columns with
/// `rows` taps. With `uint8_separable`, integer images are rounded between the passes, as PyTorch's
/// separable uint8 bilinear kernel does.
fn resample_separable<const N: usize>(
    a: &Args<Tensor>,
    o: &mut [Tensor],
    taps: fn(usize, usize, bool, Option<f64>) -> Vec<Taps<N>>,
    uint8_separable: bool,
) -> Result<()> {
    let x = a.tensor("input")?;
    let align = a.bool("align_corners")?;
    let (ih, iw) = (x.sizes_untraced()[2], x.sizes_untraced()[3]);
    let (oh, ow) = (o[0].sizes_untraced()[2], o[0].sizes_untraced()[3]);
    if ih == 0 || iw == 0 {
        return Ok(());
    }
    let rows = taps(ih, oh, align, scale_factor(a, 0)?);
    let cols = taps(iw, ow, align, scale_factor(a, 1)?);
    let round_between = uint8_separable && !o[0].dtype().is_floating_point();
    resample(x, &o[0], |p, q| {
        let mut rowbuf = vec![0f64; ih * ow];
        for yi in 0..ih {
            for (xo, (xs, wx)) in cols.iter().enumerate() {
                let v: f64 = (0..N).map(|k| p[yi * iw + xs[k]] * wx[k]).sum();
                rowbuf[yi * ow + xo] = if round_between { v.round() } else { v };
            }
        }
        for (yo, (ys, wy)) in rows.iter().enumerate() {
            for xo in 0..ow {
                q[yo * ow + xo] = (0..N).map(|k| rowbuf[ys[k] * ow + xo] * wy[k]).sum();
            }
        }
    })
}

fn upsample_bilinear(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    resample_separable(a, o, linear_taps, true)
}

/// PyTorch's cubic convolution weights (`get_cubic_upsample_coefficients`, A = -0.75) at offset `t`.
fn cubic_weights(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// The four source indices (clamped to the input, as `upsample_get_value_bounded` reads) and their
/// weights, per output index.
fn cubic_taps(n_in: usize, n_out: usize, align: bool, scale: Option<f64>) -> Vec<Taps<4>> {
    let step = pixel_scale(n_in, n_out, align, scale);
    (0..n_out)
        .map(|o| {
            // area_pixel_compute_source_index with cubic = true: not clamped at 0.
            let real = if align {
                step * o as f64
            } else {
                step * (o as f64 + 0.5) - 0.5
            };
            let base = real.floor();
            let idx = |k: i64| (base as i64 - 1 + k).clamp(0, n_in as i64 - 1) as usize;
            ([idx(0), idx(1), idx(2), idx(3)], cubic_weights(real - base))
        })
        .collect()
}

fn upsample_bicubic(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    resample_separable(a, o, cubic_taps, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_taps_stay_inside_the_input() {
        for &(n_in, n_out) in &[(1, 5), (4, 9), (7, 3)] {
            for align in [false, true] {
                for ([lo, hi], [_, w]) in linear_taps(n_in, n_out, align, None) {
                    assert!(lo < n_in && hi < n_in && (0.0..=1.0).contains(&w));
                }
            }
        }
    }
}

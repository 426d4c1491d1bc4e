//! 2-D pooling over contiguous NCHW tensors with PyTorch's CPU semantics
//! (`aten/src/ATen/native/cpu/{MaxPoolKernel,AvgPoolKernel,AdaptiveAvgPoolKernel}.cpp`).
//!
//! All kernels work plane by plane (`N × C` planes of `H × W`) and run the
//! planes in parallel on the rayon pool when the total work is large enough.
//!
//! Window widths 2, 3 and 5 with horizontal stride 1 or 2 and dilation 1 (resnet's 3×3 / 2 max
//! pool, 2×2 average pools, SPP's 5×5 / 1) run a specialised row kernel: the interior output
//! columns fold all taps of a kernel row in one vectorisable pass without bounds checks, the
//! border columns are handled separately. Global average pooling (`adaptive_avg_pool2d` to
//! 1×1) sums each plane with independent partial sums.

use rayon::prelude::*;

use super::conv::{interior_cols, isa_dispatch, row_taps};
use super::matmul::{Scalar, PARALLEL_THRESHOLD};
use super::simd::{self, Isa};

/// Work (output elements × window size) above which planes run in parallel.
const POOL_PARALLEL_MIN: usize = PARALLEL_THRESHOLD / 4;

/// Output length of one pooled dimension, PyTorch's
/// `pooling_output_shape(input, k, p, s, d, ceil_mode)`:
///
/// ```text
/// out = floor_div(input + 2p − d·(k − 1) − 1 + (ceil_mode ? s − 1 : 0), s) + 1
/// if ceil_mode && (out − 1)·s >= input + p { out -= 1 }   // last window must start inside
/// ```
///
/// A negative result (window larger than the padded input) is returned as 0;
/// PyTorch rejects any output size below 1, and so do the pooling functions
/// here.
///
/// # Panics
/// If `s == 0`.
pub fn pool_out_size(
    input: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    ceil_mode: bool,
) -> usize {
    assert!(s > 0, "pooling stride must be positive");
    let (i, k, s, p, d) = (input as i128, k as i128, s as i128, p as i128, d as i128);
    let num = i + 2 * p - d * (k - 1) - 1 + if ceil_mode { s - 1 } else { 0 };
    let mut out = num.div_euclid(s) + 1;
    if ceil_mode && (out - 1) * s >= i + p {
        out -= 1;
    }
    usize::try_from(out.max(0)).expect("pool_out_size: result overflows usize")
}

fn numel(dims: &[usize], what: &str) -> usize {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or_else(|| panic!("{what}: element count overflows usize"))
}

/// Shared argument checks of `max_pool2d` / `avg_pool2d`; returns `[oH, oW]`.
#[allow(clippy::too_many_arguments)]
fn check_pool_args(
    what: &str,
    in_len: usize,
    in_shape: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
    out_len: usize,
) -> [usize; 2] {
    let [n, c, h, w] = in_shape;
    assert_eq!(
        in_len,
        numel(&in_shape, what),
        "{what}: input length does not match shape {in_shape:?}"
    );
    assert!(
        kernel[0] > 0 && kernel[1] > 0,
        "{what}: kernel size must be positive, got {kernel:?}"
    );
    assert!(
        stride[0] > 0 && stride[1] > 0,
        "{what}: stride must be positive, got {stride:?}"
    );
    assert!(
        dilation[0] > 0 && dilation[1] > 0,
        "{what}: dilation must be positive, got {dilation:?}"
    );
    for i in 0..2 {
        let effective = (kernel[i] - 1) * dilation[i] + 1;
        assert!(
            padding[i] <= effective / 2,
            "{what}: pad should be at most half of effective kernel size, got pad={:?}, kernel={kernel:?}, dilation={dilation:?}",
            padding
        );
    }
    assert!(
        h > 0 && w > 0,
        "{what}: input height and width must be positive, got {h}x{w}"
    );
    let oh = pool_out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode);
    let ow = pool_out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode);
    assert!(
        oh >= 1 && ow >= 1,
        "{what}: output size is too small for input {h}x{w} (computed {oh}x{ow})"
    );
    assert_eq!(
        out_len,
        numel(&[n, c, oh, ow], what),
        "{what}: output length does not match shape [{n}, {c}, {oh}, {ow}]"
    );
    [oh, ow]
}

/// Runs `f(input_plane, output_plane)` over all planes, in parallel if `par`.
fn for_each_plane<T, F>(
    input: &[T],
    in_plane: usize,
    out: &mut [T],
    out_plane: usize,
    par: bool,
    f: F,
) where
    T: Scalar,
    F: Fn(&[T], &mut [T]) + Sync,
{
    if par {
        out.par_chunks_mut(out_plane)
            .zip(input.par_chunks(in_plane))
            .for_each(|(o, i)| f(i, o));
    } else {
        out.chunks_mut(out_plane)
            .zip(input.chunks(in_plane))
            .for_each(|(o, i)| f(i, o));
    }
}

// ------------------------------------------------------------ shared taps

/// Indices `j` in `0..out_len` for which `j * stride + off` lies in
/// `0..in_len`, as a half-open range `(lo, hi)` (empty ranges have `lo == hi`).
fn valid_range(out_len: usize, in_len: usize, stride: usize, off: isize) -> (usize, usize) {
    let lo = if off >= 0 {
        0
    } else {
        off.unsigned_abs().div_ceil(stride)
    };
    let lim = in_len as isize - off;
    let hi = if lim <= 0 {
        0
    } else {
        (lim as usize).div_ceil(stride).min(out_len)
    };
    (lo.min(hi), hi)
}

/// Geometry of a (dilated) pooling window sweep over one plane.
///
/// The kernels below walk the window taps in PyTorch's order (rows, then
/// columns) but vectorise across the output columns: for each output row,
/// each tap `(ky, kx)` is applied to all output columns at once. Per output
/// element the taps are still visited in exactly PyTorch's order, so
/// max/argmax tie-breaking, NaN handling and summation order are identical.
struct Sweep {
    h: usize,
    w: usize,
    ow: usize,
    kh: usize,
    sh: usize,
    ph: usize,
    dh: usize,
    sw: usize,
    kw: usize,
    dw: usize,
    pw: usize,
    /// Output columns whose taps all lie inside the input (dilation 1), see [`interior_cols`].
    interior: (usize, usize),
    /// For each kernel column `kx`: output columns `lo..hi` whose tap lies
    /// inside the input, and the input column offset (`ix = x·sw + off`).
    xtaps: Vec<(usize, usize, isize)>,
}

impl Sweep {
    #[allow(clippy::too_many_arguments)]
    fn new(
        h: usize,
        w: usize,
        ow: usize,
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
        d: [usize; 2],
    ) -> Self {
        let xtaps = (0..k[1])
            .map(|kx| {
                let off = (kx * d[1]) as isize - p[1] as isize;
                let (lo, hi) = valid_range(ow, w, s[1], off);
                (lo, hi, off)
            })
            .collect();
        Sweep {
            h,
            w,
            ow,
            kh: k[0],
            sh: s[0],
            ph: p[0],
            dh: d[0],
            sw: s[1],
            kw: k[1],
            dw: d[1],
            pw: p[1],
            interior: interior_cols(w, ow, k[1], s[1], p[1]),
            xtaps,
        }
    }

    /// Input row of tap `ky` for output row `y`, if inside the input.
    #[inline(always)]
    fn input_row(&self, y: usize, ky: usize) -> Option<usize> {
        let iy = (y * self.sh + ky * self.dh) as isize - self.ph as isize;
        (iy >= 0 && (iy as usize) < self.h).then_some(iy as usize)
    }

    /// Folds the window taps of output row `y` into `orow`, in PyTorch's order (kernel rows,
    /// then columns): `orow[x] = f(orow[x], kx, input tap)` for every tap inside the input.
    #[inline(always)]
    fn row<T: Scalar, F: Fn(T, usize, T) -> T + Copy>(
        &self,
        inp: &[T],
        y: usize,
        orow: &mut [T],
        f: F,
    ) {
        match (self.kw, self.sw, self.dw) {
            (2, 1, 1) => self.row_k::<T, F, 2, 1>(inp, y, orow, f),
            (2, 2, 1) => self.row_k::<T, F, 2, 2>(inp, y, orow, f),
            (3, 1, 1) => self.row_k::<T, F, 3, 1>(inp, y, orow, f),
            (3, 2, 1) => self.row_k::<T, F, 3, 2>(inp, y, orow, f),
            (5, 1, 1) => self.row_k::<T, F, 5, 1>(inp, y, orow, f),
            (5, 2, 1) => self.row_k::<T, F, 5, 2>(inp, y, orow, f),
            _ => {
                let step = self.sw;
                for ky in 0..self.kh {
                    let Some(iy) = self.input_row(y, ky) else {
                        continue;
                    };
                    let irow = &inp[iy * self.w..(iy + 1) * self.w];
                    for (kx, &(lo, hi, off)) in self.xtaps.iter().enumerate() {
                        if lo >= hi {
                            continue;
                        }
                        let start = ((lo * step) as isize + off) as usize;
                        let dst = &mut orow[lo..hi];
                        if step == 1 {
                            for (o, &v) in dst.iter_mut().zip(&irow[start..start + (hi - lo)]) {
                                *o = f(*o, kx, v);
                            }
                        } else {
                            for (o, &v) in dst.iter_mut().zip(irow[start..].iter().step_by(step)) {
                                *o = f(*o, kx, v);
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`Sweep::row`] for kernel width `K`, stride `S`, dilation 1: interior columns through
    /// [`row_taps`] (all `K × K` taps in one pass when the kernel is square and every kernel row
    /// lies inside the input), border columns with bounds checks.
    #[inline(always)]
    fn row_k<T: Scalar, F: Fn(T, usize, T) -> T + Copy, const K: usize, const S: usize>(
        &self,
        inp: &[T],
        y: usize,
        orow: &mut [T],
        f: F,
    ) {
        let (xa, xb) = self.interior;
        let start = (xa * S).saturating_sub(self.pw);
        let w = self.w;
        let all_rows = self.kh == K
            && y * self.sh >= self.ph
            && y * self.sh + (K - 1) * self.dh - self.ph < self.h;
        if all_rows && xa < xb {
            let iy0 = y * self.sh - self.ph;
            let rows: [&[T]; K] =
                std::array::from_fn(|ky| &inp[(iy0 + ky * self.dh) * w + start..][..w - start]);
            // Tap t = ky·K + kx; the kernel column is t % K.
            row_taps::<T, K, K, S>(&mut orow[xa..xb], rows, |a, t, v| f(a, t % K, v));
        }
        let border = if xa < xb {
            (0..xa).chain(xb..self.ow)
        } else {
            (0..0).chain(0..self.ow)
        };
        for ky in 0..self.kh {
            let Some(iy) = self.input_row(y, ky) else {
                continue;
            };
            let irow = &inp[iy * w..(iy + 1) * w];
            if xa < xb && !all_rows {
                row_taps::<T, 1, K, S>(&mut orow[xa..xb], [&irow[start..]], f);
            }
            for x in border.clone() {
                let mut a = orow[x];
                for kx in 0..K {
                    let ix = (x * S + kx) as isize - self.pw as isize;
                    if ix >= 0 && (ix as usize) < w {
                        a = f(a, kx, irow[ix as usize]);
                    }
                }
                orow[x] = a;
            }
        }
    }
}

// ---------------------------------------------------------------- max pool

/// PyTorch's first window element along one axis: `o·s − p`, stepped
/// forward by the dilation while negative. It is the index reported when no
/// element of the window beats `-inf`.
fn first_taps(out_len: usize, s: usize, p: usize, d: usize) -> Vec<i64> {
    (0..out_len)
        .map(|o| {
            let start = (o * s) as i64 - p as i64;
            if start < 0 {
                start + (start.unsigned_abs().div_ceil(d as u64) * d as u64) as i64
            } else {
                start
            }
        })
        .collect()
}

/// PyTorch's max-pool update: a later tap wins when larger or NaN (so NaN propagates and ties keep
/// the first element).
#[inline(always)]
fn max_sel<T: Scalar>(a: T, _kx: usize, v: T) -> T {
    if v > a || v.is_nan() {
        v
    } else {
        a
    }
}

/// Max pooling of one plane, values only: the taps folded row by row in PyTorch's order.
#[inline(always)]
fn max_values_plane<T: Scalar>(inp: &[T], sw: &Sweep, out: &mut [T]) {
    for (y, orow) in out.chunks_exact_mut(sw.ow).enumerate() {
        orow.fill(T::NEG_INFINITY);
        sw.row(inp, y, orow, max_sel);
    }
}

isa_dispatch!(
    /// [`max_values_plane`], built for the given ISA.
    fn max_values_run<T>(inp: &[T], sw: &Sweep, out: &mut [T]) => max_values_plane
);

/// Max pooling of one plane with the argmax `ind` (also used without, for reference).
fn max_pool_plane<T: Scalar>(
    inp: &[T],
    sw: &Sweep,
    first: (&[i64], &[i64]),
    out: &mut [T],
    mut ind: Option<&mut [i64]>,
) {
    let (w, ow, step) = (sw.w, sw.ow, sw.sw);
    for (y, orow) in out.chunks_exact_mut(ow).enumerate() {
        orow.fill(T::NEG_INFINITY);
        let mut irow_ind = ind.as_deref_mut().map(|ind| &mut ind[y * ow..(y + 1) * ow]);
        if let Some(ir) = irow_ind.as_deref_mut() {
            let base = first.0[y] * w as i64;
            for (v, &fx) in ir.iter_mut().zip(first.1) {
                *v = base + fx;
            }
        }
        for ky in 0..sw.kh {
            let Some(iy) = sw.input_row(y, ky) else {
                continue;
            };
            let irow = &inp[iy * w..(iy + 1) * w];
            for &(lo, hi, off) in &sw.xtaps {
                if lo >= hi {
                    continue;
                }
                let start = ((lo * step) as isize + off) as usize;
                let dst = &mut orow[lo..hi];
                match irow_ind.as_deref_mut() {
                    None if step == 1 => {
                        for (o, &v) in dst.iter_mut().zip(&irow[start..start + (hi - lo)]) {
                            *o = if v > *o || v.is_nan() { v } else { *o };
                        }
                    }
                    None => {
                        for (o, &v) in dst.iter_mut().zip(irow[start..].iter().step_by(step)) {
                            *o = if v > *o || v.is_nan() { v } else { *o };
                        }
                    }
                    Some(ir) => {
                        let row_base = (iy * w + start) as i64;
                        let src = irow[start..].iter().step_by(step);
                        let mut idx = row_base;
                        for ((o, id), &v) in dst.iter_mut().zip(&mut ir[lo..hi]).zip(src) {
                            // Branch-free select: the outcome is data dependent.
                            let take = v > *o || v.is_nan();
                            *o = if take { v } else { *o };
                            *id = if take { idx } else { *id };
                            idx += step as i64;
                        }
                    }
                }
            }
        }
    }
}

/// Max pooling (`aten.max_pool2d_with_indices` semantics) of a contiguous NCHW input into
/// `out`, and the flat argmax per plane into `indices` when given.
#[allow(clippy::too_many_arguments)]
pub fn max_pool2d<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
    out: &mut [T],
    indices: Option<&mut [i64]>,
) {
    max_pool2d_with(
        input,
        in_shape,
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        out,
        indices,
        simd::active(),
    )
}

/// [`max_pool2d`]; `isa`: the instruction set of the row kernels.
#[allow(clippy::too_many_arguments)]
fn max_pool2d_with<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
    out: &mut [T],
    indices: Option<&mut [i64]>,
    isa: Isa,
) {
    let [oh, ow] = check_pool_args(
        "max_pool2d",
        input.len(),
        in_shape,
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        out.len(),
    );
    if let Some(ind) = indices.as_deref() {
        assert_eq!(
            ind.len(),
            out.len(),
            "max_pool2d: indices length must equal output length"
        );
    }
    if out.is_empty() {
        return;
    }
    let [_, _, h, w] = in_shape;
    let sweep = Sweep::new(h, w, ow, kernel, stride, padding, dilation);
    let fy = first_taps(oh, stride[0], padding[0], dilation[0]);
    let fx = first_taps(ow, stride[1], padding[1], dilation[1]);
    let first = (&fy[..], &fx[..]);
    let (hw, ohw) = (h * w, oh * ow);
    let par = out.len().saturating_mul(kernel[0] * kernel[1]) > POOL_PARALLEL_MIN;
    match indices {
        None => for_each_plane(input, hw, out, ohw, par, |i, o| {
            max_values_run(isa, i, &sweep, o)
        }),
        Some(ind) => {
            let f = |((o, id), i): ((&mut [T], &mut [i64]), &[T])| {
                max_pool_plane(i, &sweep, first, o, Some(id))
            };
            if par {
                out.par_chunks_mut(ohw)
                    .zip(ind.par_chunks_mut(ohw))
                    .zip(input.par_chunks(hw))
                    .for_each(f);
            } else {
                out.chunks_mut(ohw)
                    .zip(ind.chunks_mut(ohw))
                    .zip(input.chunks(hw))
                    .for_each(f);
            }
        }
    }
}

// ---------------------------------------------------------------- avg pool

/// Divisor factors along one axis for average pooling, per output position:
/// `(padded, real)` = the window length clipped to the padded input
/// `[−p, in + p)` and to the real input `[0, in)`.
fn avg_extents(out_len: usize, in_len: usize, k: usize, s: usize, p: usize) -> Vec<(i64, i64)> {
    (0..out_len)
        .map(|o| {
            let start = (o * s) as i64 - p as i64;
            let end = (start + k as i64).min((in_len + p) as i64);
            let real = end.min(in_len as i64) - start.max(0);
            (end - start, real.max(0))
        })
        .collect()
}

/// The divisor of every output position of an average pool (the same for all planes), and the
/// positions whose window holds no real input element (their output is 0).
fn avg_divisors<T: Scalar>(
    ey: &[(i64, i64)],
    ex: &[(i64, i64)],
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> (Vec<T>, Vec<usize>) {
    let mut divs = Vec::with_capacity(ey.len() * ex.len());
    let mut empty = Vec::new();
    for &(yp, yr) in ey {
        for &(xp, xr) in ex {
            if yr == 0 || xr == 0 {
                empty.push(divs.len());
            }
            let divisor = match divisor_override {
                Some(d) => d,
                None if count_include_pad => yp * xp,
                None => yr * xr,
            };
            divs.push(T::from_i64(divisor));
        }
    }
    (divs, empty)
}

#[inline(always)]
fn avg_pool_plane<T: Scalar>(inp: &[T], sw: &Sweep, divs: &[T], empty: &[usize], out: &mut [T]) {
    let ow = sw.ow;
    for (y, orow) in out.chunks_exact_mut(ow).enumerate() {
        orow.fill(T::ZERO);
        sw.row(inp, y, orow, |a, _, v| a + v);
        for (o, &d) in orow.iter_mut().zip(&divs[y * ow..(y + 1) * ow]) {
            *o = *o / d;
        }
    }
    // Windows without any real input element.
    for &i in empty {
        out[i] = T::ZERO;
    }
}

isa_dispatch!(
    /// [`avg_pool_plane`], built for the given ISA.
    fn avg_pool_run<T>(inp: &[T], sw: &Sweep, divs: &[T], empty: &[usize], out: &mut [T])
        => avg_pool_plane
);

/// Average pooling (`aten.avg_pool2d` semantics) of a contiguous NCHW input into `out`.
#[allow(clippy::too_many_arguments)]
pub fn avg_pool2d<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
    out: &mut [T],
) {
    avg_pool2d_with(
        input,
        in_shape,
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        out,
        simd::active(),
    )
}

/// [`avg_pool2d`]; `isa`: the instruction set of the row kernels.
#[allow(clippy::too_many_arguments)]
fn avg_pool2d_with<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
    out: &mut [T],
    isa: Isa,
) {
    let [oh, ow] = check_pool_args(
        "avg_pool2d",
        input.len(),
        in_shape,
        kernel,
        stride,
        padding,
        [1, 1],
        ceil_mode,
        out.len(),
    );
    assert!(
        divisor_override != Some(0),
        "avg_pool2d: divisor must be not zero"
    );
    if out.is_empty() {
        return;
    }
    let [_, _, h, w] = in_shape;
    let sweep = Sweep::new(h, w, ow, kernel, stride, padding, [1, 1]);
    let ey = avg_extents(oh, h, kernel[0], stride[0], padding[0]);
    let ex = avg_extents(ow, w, kernel[1], stride[1], padding[1]);
    let (divs, empty) = avg_divisors::<T>(&ey, &ex, count_include_pad, divisor_override);
    let par = out.len().saturating_mul(kernel[0] * kernel[1]) > POOL_PARALLEL_MIN;
    for_each_plane(input, h * w, out, oh * ow, par, |i, o| {
        avg_pool_run(isa, i, &sweep, &divs, &empty, o)
    });
}

// ------------------------------------------------------- adaptive avg pool

/// `floor(i * in / out)`.
fn adaptive_start(i: usize, out: usize, input: usize) -> usize {
    (i / out) * input + ((i % out) * input) / out
}

/// `ceil((i + 1) * in / out)`.
fn adaptive_end(i: usize, out: usize, input: usize) -> usize {
    1 + ((i + 1) * input - 1) / out
}

/// Sum of `x` with 16 independent partial sums (vectorisable), combined pairwise.
fn plane_sum<T: Scalar>(x: &[T]) -> T {
    const L: usize = 16;
    let mut acc = [T::ZERO; L];
    let chunks = x.chunks_exact(L);
    let rest = chunks.remainder();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += v;
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a += v;
    }
    let mut n = L;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            acc[i] += acc[i + n];
        }
    }
    acc[0]
}

/// Generic adaptive average pooling; see [`adaptive_avg_pool2d`].
pub fn adaptive_avg_pool2d<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    out_hw: [usize; 2],
    out: &mut [T],
) {
    let [n, c, h, w] = in_shape;
    let [oh, ow] = out_hw;
    assert_eq!(
        input.len(),
        numel(&in_shape, "adaptive_avg_pool2d"),
        "adaptive_avg_pool2d: input length does not match shape {in_shape:?}"
    );
    assert_eq!(
        out.len(),
        numel(&[n, c, oh, ow], "adaptive_avg_pool2d"),
        "adaptive_avg_pool2d: output length does not match shape [{n}, {c}, {oh}, {ow}]"
    );
    if out.is_empty() {
        return;
    }
    assert!(
        h > 0 && w > 0,
        "adaptive_avg_pool2d: input height and width must be positive, got {h}x{w}"
    );
    let ys: Vec<(usize, usize)> = (0..oh)
        .map(|i| (adaptive_start(i, oh, h), adaptive_end(i, oh, h)))
        .collect();
    let xs: Vec<(usize, usize)> = (0..ow)
        .map(|i| (adaptive_start(i, ow, w), adaptive_end(i, ow, w)))
        .collect();
    let max_win = h.div_ceil(oh).saturating_add(1) * w.div_ceil(ow).saturating_add(1);
    let par = out.len().saturating_mul(max_win) > POOL_PARALLEL_MIN;
    if oh == 1 && ow == 1 {
        // Global average pooling: one sum per plane, with independent partial sums so that the
        // loop vectorises. PyTorch divides twice: `sum / h / w`.
        let (fh, fw) = (T::from_i64(h as i64), T::from_i64(w as i64));
        for_each_plane(input, h * w, out, 1, par, |inp, o| {
            o[0] = plane_sum(inp) / fh / fw;
        });
        return;
    }
    for_each_plane(input, h * w, out, oh * ow, par, |inp, o| {
        for (y, &(y0, y1)) in ys.iter().enumerate() {
            let kh = T::from_i64((y1 - y0) as i64);
            for (x, &(x0, x1)) in xs.iter().enumerate() {
                let kw = T::from_i64((x1 - x0) as i64);
                let mut sum = T::ZERO;
                for iy in y0..y1 {
                    for &v in &inp[iy * w + x0..iy * w + x1] {
                        sum += v;
                    }
                }
                // PyTorch divides twice: `sum / kh / kw`.
                o[y * ow + x] = sum / kh / kw;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::matmul::test_util::*;
    use super::*;

    // ---- naive references (written independently of the kernels above)

    fn out_size_ref(i: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
        let span = (i + 2 * p) as f64 - (d * (k - 1)) as f64 - 1.0;
        let q = span / s as f64;
        let mut o = if ceil { q.ceil() } else { q.floor() } as i64 + 1;
        if ceil && ((o - 1) * s as i64) >= (i + p) as i64 {
            o -= 1;
        }
        o as usize
    }

    #[allow(clippy::too_many_arguments)]
    fn max_ref(
        input: &[f64],
        is: [usize; 4],
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
        d: [usize; 2],
        ceil: bool,
    ) -> (Vec<f64>, Vec<i64>) {
        let [n, c, h, w] = is;
        let oh = out_size_ref(h, k[0], s[0], p[0], d[0], ceil);
        let ow = out_size_ref(w, k[1], s[1], p[1], d[1], ceil);
        let mut out = vec![];
        let mut ind = vec![];
        for plane in 0..n * c {
            let base = plane * h * w;
            for y in 0..oh {
                for x in 0..ow {
                    let mut best: Option<(f64, i64)> = None;
                    for ky in 0..k[0] {
                        for kx in 0..k[1] {
                            let iy = (y * s[0] + ky * d[0]) as i64 - p[0] as i64;
                            let ix = (x * s[1] + kx * d[1]) as i64 - p[1] as i64;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                continue;
                            }
                            let idx = iy * w as i64 + ix;
                            let v = input[base + idx as usize];
                            best = match best {
                                None => Some((v, idx)),
                                Some((bv, _)) if v > bv || v.is_nan() => Some((v, idx)),
                                keep => keep,
                            };
                        }
                    }
                    let (v, i) = best.expect("empty max-pool window");
                    out.push(v);
                    ind.push(i);
                }
            }
        }
        (out, ind)
    }

    #[allow(clippy::too_many_arguments)]
    fn avg_ref(
        input: &[f64],
        is: [usize; 4],
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
        ceil: bool,
        count_include_pad: bool,
        divisor_override: Option<i64>,
    ) -> Vec<f64> {
        let [n, c, h, w] = is;
        let oh = out_size_ref(h, k[0], s[0], p[0], 1, ceil);
        let ow = out_size_ref(w, k[1], s[1], p[1], 1, ceil);
        let mut out = vec![];
        for plane in 0..n * c {
            for y in 0..oh {
                for x in 0..ow {
                    let (mut sum, mut real, mut padded) = (0.0, 0i64, 0i64);
                    let (mut rows_padded, mut cols_padded) = (0i64, 0i64);
                    for ky in 0..k[0] {
                        let iy = (y * s[0] + ky) as i64 - p[0] as i64;
                        if iy < (h + p[0]) as i64 {
                            rows_padded += 1;
                        }
                    }
                    for kx in 0..k[1] {
                        let ix = (x * s[1] + kx) as i64 - p[1] as i64;
                        if ix < (w + p[1]) as i64 {
                            cols_padded += 1;
                        }
                    }
                    padded += rows_padded * cols_padded;
                    for ky in 0..k[0] {
                        for kx in 0..k[1] {
                            let iy = (y * s[0] + ky) as i64 - p[0] as i64;
                            let ix = (x * s[1] + kx) as i64 - p[1] as i64;
                            if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                                sum += input[plane * h * w + iy as usize * w + ix as usize];
                                real += 1;
                            }
                        }
                    }
                    let div =
                        divisor_override.unwrap_or(if count_include_pad { padded } else { real });
                    out.push(if real == 0 { 0.0 } else { sum / div as f64 });
                }
            }
        }
        out
    }

    fn adaptive_ref(input: &[f64], is: [usize; 4], o: [usize; 2]) -> Vec<f64> {
        let [n, c, h, w] = is;
        let mut out = vec![];
        for plane in 0..n * c {
            for y in 0..o[0] {
                let y0 = ((y * h) as f64 / o[0] as f64).floor() as usize;
                let y1 = (((y + 1) * h) as f64 / o[0] as f64).ceil() as usize;
                for x in 0..o[1] {
                    let x0 = ((x * w) as f64 / o[1] as f64).floor() as usize;
                    let x1 = (((x + 1) * w) as f64 / o[1] as f64).ceil() as usize;
                    let mut sum = 0.0;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            sum += input[plane * h * w + iy * w + ix];
                        }
                    }
                    out.push(sum / ((y1 - y0) * (x1 - x0)) as f64);
                }
            }
        }
        out
    }

    // ---- tests

    #[test]
    fn out_size_matches_pytorch() {
        // (input, k, s, p, d, ceil) -> expected (values checked against PyTorch's formula)
        let cases = [
            ((7, 2, 2, 0, 1, false), 3),
            ((7, 2, 2, 0, 1, true), 4),
            ((6, 2, 2, 0, 1, true), 3),
            ((112, 3, 2, 0, 1, true), 56),
            ((112, 3, 2, 0, 1, false), 55),
            ((112, 3, 2, 1, 1, false), 56),
            ((4, 2, 3, 1, 1, true), 2), // last-window adjustment kicks in
            ((4, 2, 3, 1, 1, false), 2),
            ((1, 1, 1, 0, 1, false), 1),
            ((1, 1, 2, 0, 1, true), 1),
            ((10, 3, 1, 0, 3, false), 4), // dilation
            ((2, 3, 1, 0, 1, false), 0),  // window larger than input
            ((5, 3, 2, 1, 2, true), 2),
        ];
        for ((i, k, s, p, d, ceil), want) in cases {
            assert_eq!(
                pool_out_size(i, k, s, p, d, ceil),
                want,
                "{:?}",
                (i, k, s, p, d, ceil)
            );
        }
        for i in 1..20 {
            for k in 1..5 {
                for s in 1..4 {
                    for d in 1..3 {
                        let effective = (k - 1) * d + 1;
                        for p in 0..=effective / 2 {
                            if i + 2 * p < d * (k - 1) + 1 {
                                continue;
                            }
                            for ceil in [false, true] {
                                assert_eq!(
                                    pool_out_size(i, k, s, p, d, ceil),
                                    out_size_ref(i, k, s, p, d, ceil),
                                    "{:?}",
                                    (i, k, s, p, d, ceil)
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// (in_shape, kernel, stride, padding, dilation, ceil_mode)
    type MaxCase = (
        [usize; 4],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        bool,
    );

    fn max_cases() -> Vec<MaxCase> {
        vec![
            ([1, 1, 4, 4], [2, 2], [2, 2], [0, 0], [1, 1], false),
            ([2, 3, 7, 7], [2, 2], [2, 2], [0, 0], [1, 1], true),
            ([2, 3, 9, 8], [3, 3], [2, 2], [1, 1], [1, 1], false),
            ([2, 3, 9, 8], [3, 3], [2, 2], [1, 1], [1, 1], true),
            ([1, 2, 10, 9], [3, 2], [1, 2], [1, 1], [2, 1], false),
            ([1, 2, 11, 11], [3, 3], [2, 3], [2, 1], [2, 2], true),
            ([1, 1, 1, 1], [1, 1], [1, 1], [0, 0], [1, 1], false),
            ([1, 1, 1, 1], [1, 1], [2, 2], [0, 0], [1, 1], true),
            ([1, 2, 1, 9], [1, 3], [1, 2], [0, 1], [1, 1], true), // 1-D style
            ([1, 1, 4, 4], [2, 2], [3, 3], [1, 1], [1, 1], true),
            ([2, 64, 32, 32], [3, 3], [2, 2], [1, 1], [1, 1], false), // parallel
            // specialised row kernels: widths 2, 3, 5, strides 1, 2, odd sizes, long rows
            ([1, 2, 9, 300], [3, 3], [2, 2], [1, 1], [1, 1], false),
            ([1, 2, 9, 301], [3, 3], [2, 2], [1, 1], [1, 1], true),
            ([1, 2, 7, 135], [2, 2], [2, 2], [0, 0], [1, 1], true),
            ([1, 2, 7, 11], [2, 2], [1, 1], [1, 1], [1, 1], false),
            ([1, 2, 8, 13], [5, 5], [1, 1], [2, 2], [1, 1], false),
            ([1, 2, 13, 14], [5, 5], [2, 2], [2, 2], [1, 1], true),
            ([1, 2, 9, 9], [3, 3], [1, 1], [0, 0], [2, 1], false), // vertical dilation only
            ([1, 2, 3, 3], [3, 3], [2, 2], [1, 1], [1, 1], true),  // no interior columns
            ([1, 2, 2, 2], [5, 5], [1, 1], [2, 2], [1, 1], false),
            ([1, 2, 6, 9], [3, 4], [2, 2], [1, 2], [1, 1], false), // width 4: generic
            ([1, 64, 112, 112], [3, 3], [2, 2], [1, 1], [1, 1], false), // resnet
        ]
    }

    #[test]
    fn max_pool_matches_naive() {
        let mut rng = Lcg::new(3);
        for (is, k, s, p, d, ceil) in max_cases() {
            let mut input = rng.vec_f64(is.iter().product());
            // sprinkle special values
            let len = input.len();
            if len > 5 {
                input[1] = f64::NEG_INFINITY;
                input[len / 2] = f64::INFINITY;
                input[len - 2] = f64::NAN;
            }
            let (want, want_ind) = max_ref(&input, is, k, s, p, d, ceil);
            let ctx = format!("{is:?} k={k:?} s={s:?} p={p:?} d={d:?} ceil={ceil}");

            let mut out = vec![0.0; want.len()];
            let mut ind = vec![-7; want.len()];
            max_pool2d::<f64>(&input, is, k, s, p, d, ceil, &mut out, Some(&mut ind));
            assert_close_f64(&out, &want, &ctx);
            assert_eq!(ind, want_ind, "{ctx}");

            let input32: Vec<f32> = input.iter().map(|&x| x as f32).collect();
            let mut out32 = vec![0.0f32; want.len()];
            max_pool2d::<f32>(&input32, is, k, s, p, d, ceil, &mut out32, None);
            assert_close_f32(&out32, &want, &ctx);
            // values only, baseline build of the row kernels
            let mut out32 = vec![0.0f32; want.len()];
            max_pool2d_with::<f32>(
                &input32,
                is,
                k,
                s,
                p,
                d,
                ceil,
                &mut out32,
                None,
                Isa::Portable,
            );
            assert_close_f32(&out32, &want, &ctx);
            let mut out = vec![0.0; want.len()];
            max_pool2d::<f64>(&input, is, k, s, p, d, ceil, &mut out, None);
            assert_close_f64(&out, &want, &ctx);
            let mut ind32 = vec![-7; want.len()];
            max_pool2d::<f32>(&input32, is, k, s, p, d, ceil, &mut out32, Some(&mut ind32));
            assert_eq!(ind32, want_ind, "{ctx}");
        }
    }

    #[test]
    fn max_pool_nan_and_ties() {
        // NaN wins over larger values and later NaNs win over earlier ones;
        // ties keep the first index.
        let input = [1.0f32, f32::NAN, 5.0, f32::NAN, 2.0, 2.0, 2.0, 2.0];
        let mut out = [0.0f32; 2];
        let mut ind = [0i64; 2];
        max_pool2d::<f32>(
            &input,
            [1, 1, 2, 4],
            [2, 2],
            [2, 2],
            [0, 0],
            [1, 1],
            false,
            &mut out,
            Some(&mut ind),
        );
        assert!(out[0].is_nan());
        assert_eq!(ind[0], 1);
        assert!(out[1].is_nan());
        assert_eq!(ind[1], 3);
        let input = [2.0f32, 2.0, 2.0, 2.0];
        max_pool2d::<f32>(
            &input,
            [1, 1, 2, 2],
            [2, 2],
            [1, 1],
            [0, 0],
            [1, 1],
            false,
            &mut out[..1],
            Some(&mut ind[..1]),
        );
        assert_eq!((out[0], ind[0]), (2.0, 0));
        // all -inf: index is the first element of the window
        let input = [f32::NEG_INFINITY; 9];
        let mut out = [0.0f32; 4];
        let mut ind = [0i64; 4];
        max_pool2d::<f32>(
            &input,
            [1, 1, 3, 3],
            [2, 2],
            [2, 2],
            [1, 1],
            [1, 1],
            false,
            &mut out,
            Some(&mut ind),
        );
        assert_eq!(out, [f32::NEG_INFINITY; 4]);
        assert_eq!(ind, [0, 1, 3, 4]);
    }

    /// (in_shape, kernel, stride, padding, ceil_mode)
    type AvgCase = ([usize; 4], [usize; 2], [usize; 2], [usize; 2], bool);

    fn avg_cases() -> Vec<AvgCase> {
        vec![
            ([1, 1, 4, 4], [2, 2], [2, 2], [0, 0], false),
            ([2, 3, 7, 7], [2, 2], [2, 2], [0, 0], true),
            ([2, 3, 9, 8], [3, 3], [2, 2], [1, 1], false),
            ([2, 3, 9, 8], [3, 3], [2, 2], [1, 1], true),
            ([1, 2, 10, 9], [3, 2], [1, 2], [1, 1], false),
            ([1, 2, 5, 5], [3, 3], [3, 3], [1, 1], true), // window past padded input
            ([1, 2, 6, 6], [4, 4], [3, 3], [2, 2], true),
            ([1, 1, 1, 1], [1, 1], [1, 1], [0, 0], false),
            ([1, 1, 1, 1], [1, 1], [2, 2], [0, 0], true),
            ([1, 2, 1, 9], [1, 3], [1, 2], [0, 1], true),
            ([2, 64, 32, 32], [3, 3], [1, 1], [1, 1], false), // parallel
            ([1, 2, 7, 135], [2, 2], [2, 2], [0, 0], true),
            ([1, 2, 9, 300], [3, 3], [2, 2], [1, 1], false),
            ([1, 2, 8, 13], [5, 5], [1, 1], [2, 2], true),
            ([1, 2, 13, 14], [5, 5], [2, 2], [2, 2], true),
            ([1, 2, 3, 3], [3, 3], [2, 2], [1, 1], true),
            ([1, 2, 6, 9], [3, 4], [2, 2], [1, 2], false),
        ]
    }

    #[test]
    fn avg_pool_matches_naive() {
        let mut rng = Lcg::new(5);
        for (is, k, s, p, ceil) in avg_cases() {
            let input = rng.vec_f64(is.iter().product());
            let input32: Vec<f32> = input.iter().map(|&x| x as f32).collect();
            for cip in [false, true] {
                for dov in [None, Some(3), Some(-2)] {
                    let want = avg_ref(&input, is, k, s, p, ceil, cip, dov);
                    let ctx =
                        format!("{is:?} k={k:?} s={s:?} p={p:?} ceil={ceil} cip={cip} div={dov:?}");
                    let mut out = vec![f64::NAN; want.len()];
                    avg_pool2d::<f64>(&input, is, k, s, p, ceil, cip, dov, &mut out);
                    assert_close_f64(&out, &want, &ctx);
                    let mut out32 = vec![f32::NAN; want.len()];
                    avg_pool2d::<f32>(&input32, is, k, s, p, ceil, cip, dov, &mut out32);
                    assert_close_f32(&out32, &want, &ctx);
                    let mut out32 = vec![f32::NAN; want.len()];
                    avg_pool2d_with::<f32>(
                        &input32,
                        is,
                        k,
                        s,
                        p,
                        ceil,
                        cip,
                        dov,
                        &mut out32,
                        Isa::Portable,
                    );
                    assert_close_f32(&out32, &want, &ctx);
                }
            }
        }
    }

    #[test]
    fn avg_pool_known_values() {
        // 3x3 of ones, k=2 s=2 p=1: corner windows hold one real element.
        let input = [1.0f32; 9];
        let mut out = [0.0f32; 4];
        avg_pool2d::<f32>(
            &input,
            [1, 1, 3, 3],
            [2, 2],
            [2, 2],
            [1, 1],
            false,
            true,
            None,
            &mut out,
        );
        assert_eq!(out, [0.25, 0.5, 0.5, 1.0]);
        avg_pool2d::<f32>(
            &input,
            [1, 1, 3, 3],
            [2, 2],
            [2, 2],
            [1, 1],
            false,
            false,
            None,
            &mut out,
        );
        assert_eq!(out, [1.0; 4]);
    }

    #[test]
    fn adaptive_avg_pool_matches_naive() {
        let mut rng = Lcg::new(9);
        let cases: &[([usize; 4], [usize; 2])] = &[
            ([1, 1, 4, 4], [2, 2]),
            ([2, 3, 7, 5], [3, 2]),
            ([2, 3, 5, 7], [7, 9]), // upsampling-like: overlapping windows
            ([1, 2, 10, 10], [1, 1]),
            ([1, 1, 1, 1], [1, 1]),
            ([1, 1, 1, 1], [3, 2]),
            ([1, 2, 13, 1], [5, 1]),
            ([2, 64, 28, 28], [7, 7]), // parallel
            ([0, 3, 4, 4], [2, 2]),
            // global average pooling (partial sums, remainders)
            ([2, 3, 7, 7], [1, 1]),
            ([1, 2, 1, 37], [1, 1]),
            ([1, 2, 5, 5], [1, 1]),
            ([1, 600, 14, 14], [1, 1]), // parallel
            ([1, 3, 4, 4], [0, 2]),
        ];
        for &(is, o) in cases {
            let input = rng.vec_f64(is.iter().product());
            let want = adaptive_ref(&input, is, o);
            let ctx = format!("{is:?} -> {o:?}");
            let mut out = vec![f64::NAN; want.len()];
            adaptive_avg_pool2d::<f64>(&input, is, o, &mut out);
            assert_close_f64(&out, &want, &ctx);
            let input32: Vec<f32> = input.iter().map(|&x| x as f32).collect();
            let mut out32 = vec![f32::NAN; want.len()];
            adaptive_avg_pool2d::<f32>(&input32, is, o, &mut out32);
            assert_close_f32(&out32, &want, &ctx);
        }
    }

    #[test]
    fn max_pool_values_only_keeps_first_of_ties() {
        // Without indices the row kernels run; ties keep the first element in PyTorch's window
        // order (rows, then columns), visible in the sign of zero.
        let input = [0.0f32, -0.0, -0.0, 0.0, -1.0, -1.0, -1.0, -1.0, -1.0];
        let mut out = [1.0f32; 1];
        max_pool2d::<f32>(
            &input,
            [1, 1, 3, 3],
            [3, 3],
            [1, 1],
            [0, 0],
            [1, 1],
            false,
            &mut out,
            None,
        );
        assert_eq!(out[0].to_bits(), 0.0f32.to_bits());
        // (0, 1) comes before (1, 0) in row-major order.
        let input = [-1.0f32, -0.0, -1.0, 0.0, -1.0, -1.0, -1.0, -1.0, -1.0];
        max_pool2d::<f32>(
            &input,
            [1, 1, 3, 3],
            [3, 3],
            [1, 1],
            [0, 0],
            [1, 1],
            false,
            &mut out,
            None,
        );
        assert_eq!(out[0].to_bits(), (-0.0f32).to_bits());
        let input = [1.0f32, f32::NAN, 5.0, 2.0];
        max_pool2d::<f32>(
            &input,
            [1, 1, 2, 2],
            [2, 2],
            [2, 2],
            [0, 0],
            [1, 1],
            false,
            &mut out,
            None,
        );
        assert!(out[0].is_nan());
    }

    #[test]
    #[should_panic(expected = "pad should be at most half")]
    fn max_pool_rejects_large_padding() {
        let mut out = vec![0.0f32; 16];
        max_pool2d::<f32>(
            &[0.0; 4],
            [1, 1, 2, 2],
            [2, 2],
            [1, 1],
            [2, 2],
            [1, 1],
            false,
            &mut out,
            None,
        );
    }

    #[test]
    #[should_panic(expected = "divisor must be not zero")]
    fn avg_pool_rejects_zero_divisor() {
        let mut out = vec![0.0f32; 1];
        avg_pool2d::<f32>(
            &[0.0; 4],
            [1, 1, 2, 2],
            [2, 2],
            [2, 2],
            [0, 0],
            false,
            true,
            Some(0),
            &mut out,
        );
    }
}

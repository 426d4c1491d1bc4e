//! 2-D convolution (PyTorch `aten.convolution` semantics, forward only, not
//! transposed) for contiguous NCHW tensors.
//!
//! Strategy:
//! * **Depthwise-like** (`C / groups == 1`, `groups > 1`, which includes the
//!   classic depthwise case `groups == C == O`): direct loops over each output
//!   plane, parallel over `N × O` planes.
//! * **Everything else** is a GEMM per `(batch, group)` item:
//!   `out[og × P] = W[og × K] · col[K × P]` with `K = C/groups · kH · kW` and
//!   `P = oH · oW`. `col` is the im2col matrix, except for point-wise
//!   convolutions (1×1, stride 1, no padding) whose input block already is
//!   that matrix and is read in place.
//! * The `P` columns are split into tiles whose im2col block fits in L2
//!   (≈ 512 KiB); every `(item, tile)` unit does im2col + a single-threaded
//!   GEMM into a scratch tile that is then copied (with the bias) into the
//!   output. Units run in parallel on the rayon pool when the convolution is
//!   big enough; with few items the tiles are made finer so that every thread
//!   gets work. Cache-resident tiles make this markedly faster than one big
//!   im2col + multi-threaded GEMM.
//! * When an item is a single tile (small `P`), items are computed in place,
//!   either in parallel over items or, with fewer items than threads, one
//!   after the other with a multi-threaded GEMM. Tiny convolutions never
//!   touch the thread pool.
//!
//! 1-D convolutions are expected to be expressed as 2-D with `H == 1`.

use rayon::prelude::*;

use super::matmul::{gemm_strided, Scalar, PARALLEL_THRESHOLD};

/// Hyper-parameters of a 2-D convolution, `[height, width]` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Stride per spatial dim.
    pub stride: [usize; 2],
    /// Zero padding on each side, per spatial dim.
    pub padding: [usize; 2],
    /// Kernel dilation per spatial dim.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// stride 1, no padding, dilation 1, one group.
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Output `[oH, oW]` of a convolution over an `[H, W]` input with a
/// `[kH, kW]` kernel, per PyTorch:
/// `o = (i + 2·pad − dil·(k − 1) − 1) / stride + 1`.
///
/// Returns `None` when the parameters are invalid (zero stride, dilation or
/// kernel size) or the dilated kernel does not fit in the padded input
/// (PyTorch raises an error in these cases).
pub fn conv2d_out_hw(
    in_hw: [usize; 2],
    kernel_hw: [usize; 2],
    p: &Conv2dParams,
) -> Option<[usize; 2]> {
    let dim = |i: usize| -> Option<usize> {
        if p.stride[i] == 0 || p.dilation[i] == 0 || kernel_hw[i] == 0 {
            return None;
        }
        let padded = in_hw[i].checked_add(p.padding[i].checked_mul(2)?)?;
        let effective = p.dilation[i]
            .checked_mul(kernel_hw[i] - 1)?
            .checked_add(1)?;
        if padded < effective {
            return None;
        }
        Some((padded - effective) / p.stride[i] + 1)
    };
    Some([dim(0)?, dim(1)?])
}

/// Per-group geometry shared by the inner kernels.
#[derive(Clone, Copy, Debug)]
struct Geom {
    /// Input channels per group.
    cg: usize,
    /// Output channels per group.
    og: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    dh: usize,
    dw: usize,
}

impl Geom {
    /// Rows of the im2col matrix (= GEMM `k`).
    fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }
    /// Columns of the im2col matrix (= GEMM `n`).
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    /// 1×1, stride 1, no padding: the input plane block already is the
    /// im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
}

/// Indices `j` in `0..out_len` for which `j * stride + off` lies in
/// `0..in_len`, as a half-open range `(lo, hi)` (empty ranges have `lo == hi`).
#[inline]
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

/// Fill `col` (`K × (q1 − q0)`, row-major) with columns `q0..q1` of one
/// group's im2col matrix, built from its input channels (`cg × H × W`).
/// Row `r = (ci, ky, kx)`, column `q = y · oW + x`.
fn im2col<T: Scalar>(inp: &[T], g: &Geom, q0: usize, q1: usize, col: &mut [T], parallel: bool) {
    let width = q1 - q0;
    let hw = g.h * g.w;
    let khw = g.kh * g.kw;
    let fill_row = |r: usize, row: &mut [T]| {
        let ci = r / khw;
        let ky = (r / g.kw) % g.kh;
        let kx = r % g.kw;
        let plane = &inp[ci * hw..(ci + 1) * hw];
        let offx = (kx * g.dw) as isize - g.pw as isize;
        let (lo, hi) = valid_range(g.ow, g.w, g.sw, offx);
        let mut q = q0;
        while q < q1 {
            // One (partial) output row: x in xa..xb of output row y.
            let (y, xa) = (q / g.ow, q % g.ow);
            let xb = g.ow.min(xa + (q1 - q));
            let seg = &mut row[q - q0..q - q0 + (xb - xa)];
            q += xb - xa;
            let iy = (y * g.sh + ky * g.dh) as isize - g.ph as isize;
            if iy < 0 || iy as usize >= g.h {
                seg.fill(T::ZERO);
                continue;
            }
            let irow = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
            let a = lo.clamp(xa, xb);
            let b = hi.clamp(a, xb);
            seg[..a - xa].fill(T::ZERO);
            seg[b - xa..].fill(T::ZERO);
            if a < b {
                let dst = &mut seg[a - xa..b - xa];
                let start = ((a * g.sw) as isize + offx) as usize;
                if g.sw == 1 {
                    dst.copy_from_slice(&irow[start..start + (b - a)]);
                } else {
                    for (o, &i) in dst.iter_mut().zip(irow[start..].iter().step_by(g.sw)) {
                        *o = i;
                    }
                }
            }
        }
    };
    if parallel {
        col.par_chunks_mut(width)
            .enumerate()
            .for_each(|(r, row)| fill_row(r, row));
    } else {
        col.chunks_mut(width)
            .enumerate()
            .for_each(|(r, row)| fill_row(r, row));
    }
}

/// im2col buffers at least this large are filled in parallel (when the
/// caller allows parallelism).
const IM2COL_PARALLEL_MIN: usize = 1 << 15;

/// Target size of one im2col tile (K × tile columns), chosen to stay in a
/// core's L2 cache together with the GEMM packing buffers.
const COL_TILE_BYTES: usize = 512 * 1024;
/// Narrowest column tile used to fit the cache budget (narrower tiles make
/// the GEMM micro-kernel inefficient).
const MIN_TILE: usize = 64;
/// Narrowest column tile used to create parallelism.
const MIN_PARALLEL_TILE: usize = 32;

/// One whole `(batch, group)` item of the GEMM path, written in place.
/// `inp`: `cg × H × W`; `wgt`: `og × K`; `bias`: `og`; `out`: `og × P`.
fn conv_group_gemm<T: Scalar>(
    inp: &[T],
    wgt: &[T],
    bias: Option<&[T]>,
    g: &Geom,
    out: &mut [T],
    col: &mut Vec<T>,
    parallel: bool,
) {
    let k = g.k();
    let p = g.p();
    let accumulate = match bias {
        Some(b) => {
            for (row, &bv) in out.chunks_exact_mut(p).zip(b) {
                row.fill(bv);
            }
            true
        }
        None => false,
    };
    if g.is_pointwise() {
        // P == H * W here; the group's input block is the K × P matrix.
        gemm_strided(
            g.og, k, p, wgt, k as isize, 1, inp, p as isize, 1, out, accumulate, parallel,
        );
    } else {
        let len = k * p;
        if col.len() < len {
            col.resize(len, T::ZERO);
        }
        let col = &mut col[..len];
        im2col(inp, g, 0, p, col, parallel && len >= IM2COL_PARALLEL_MIN);
        gemm_strided(
            g.og, k, p, wgt, k as isize, 1, col, p as isize, 1, out, accumulate, parallel,
        );
    }
}

/// Scratch buffers of one worker for [`conv_tile`].
#[derive(Default)]
struct TileScratch<T> {
    col: Vec<T>,
    out: Vec<T>,
}

/// Columns `q0..q1` of one `(batch, group)` item: `rows[o]` is the
/// `q0..q1` segment of output row `o` of the item. Computes the tile into a
/// contiguous scratch buffer with a single-threaded GEMM, then copies it out
/// (adding the bias).
#[allow(clippy::too_many_arguments)]
fn conv_tile<T: Scalar>(
    inp: &[T],
    wgt: &[T],
    bias: Option<&[T]>,
    g: &Geom,
    q0: usize,
    q1: usize,
    rows: &mut [&mut [T]],
    scratch: &mut TileScratch<T>,
) {
    let k = g.k();
    let width = q1 - q0;
    let out_len = g.og * width;
    if scratch.out.len() < out_len {
        scratch.out.resize(out_len, T::ZERO);
    }
    let tile = &mut scratch.out[..out_len];
    if g.is_pointwise() {
        // Columns q0..q1 of the K × (H·W) input block, read in place.
        let b = &inp[q0..];
        gemm_strided(
            g.og,
            k,
            width,
            wgt,
            k as isize,
            1,
            b,
            (g.h * g.w) as isize,
            1,
            tile,
            false,
            false,
        );
    } else {
        let len = k * width;
        if scratch.col.len() < len {
            scratch.col.resize(len, T::ZERO);
        }
        let col = &mut scratch.col[..len];
        im2col(inp, g, q0, q1, col, false);
        gemm_strided(
            g.og,
            k,
            width,
            wgt,
            k as isize,
            1,
            col,
            width as isize,
            1,
            tile,
            false,
            false,
        );
    }
    for (o, (dst, src)) in rows.iter_mut().zip(tile.chunks_exact(width)).enumerate() {
        match bias {
            Some(b) => {
                let bv = b[o];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = s + bv;
                }
            }
            None => dst.copy_from_slice(src),
        }
    }
}

/// One output plane of a convolution whose groups have a single input
/// channel (depthwise). `inp`: `H × W`; `wk`: `kH × kW`; `out`: `oH × oW`.
fn depthwise_plane<T: Scalar>(inp: &[T], wk: &[T], bias: T, g: &Geom, out: &mut [T]) {
    out.fill(bias);
    for (y, orow) in out.chunks_exact_mut(g.ow).enumerate() {
        for ky in 0..g.kh {
            let iy = (y * g.sh + ky * g.dh) as isize - g.ph as isize;
            if iy < 0 || iy as usize >= g.h {
                continue;
            }
            let irow = &inp[iy as usize * g.w..(iy as usize + 1) * g.w];
            for kx in 0..g.kw {
                let wv = wk[ky * g.kw + kx];
                let offx = (kx * g.dw) as isize - g.pw as isize;
                let (lo, hi) = valid_range(g.ow, g.w, g.sw, offx);
                if lo >= hi {
                    continue;
                }
                let start = ((lo * g.sw) as isize + offx) as usize;
                if g.sw == 1 {
                    for (o, &i) in orow[lo..hi].iter_mut().zip(&irow[start..start + (hi - lo)]) {
                        *o += wv * i;
                    }
                } else {
                    for (o, &i) in orow[lo..hi]
                        .iter_mut()
                        .zip(irow[start..].iter().step_by(g.sw))
                    {
                        *o += wv * i;
                    }
                }
            }
        }
    }
}

fn checked_numel(dims: &[usize], what: &str) -> usize {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or_else(|| panic!("conv2d: {what} element count overflows usize"))
}

/// Generic 2-D convolution; see [`conv2d`].
pub fn conv2d<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    weight: &[T],
    w_shape: [usize; 4],
    bias: Option<&[T]>,
    p: &Conv2dParams,
    out: &mut [T],
) {
    let [n, c, h, w] = in_shape;
    let [o, cg, kh, kw] = w_shape;
    let groups = p.groups;
    assert!(groups > 0, "conv2d: groups must be positive");
    assert!(
        c % groups == 0 && o % groups == 0,
        "conv2d: in_channels ({c}) and out_channels ({o}) must be divisible by groups ({groups})"
    );
    assert_eq!(
        cg,
        c / groups,
        "conv2d: weight expects {cg} input channels per group, input has {c} channels in {groups} groups"
    );
    assert_eq!(
        input.len(),
        checked_numel(&in_shape, "input"),
        "conv2d: input length does not match shape {in_shape:?}"
    );
    assert_eq!(
        weight.len(),
        checked_numel(&w_shape, "weight"),
        "conv2d: weight length does not match shape {w_shape:?}"
    );
    if let Some(b) = bias {
        assert_eq!(
            b.len(),
            o,
            "conv2d: bias has {} elements, expected {o}",
            b.len()
        );
    }
    let [oh, ow] = conv2d_out_hw([h, w], [kh, kw], p).unwrap_or_else(|| {
        panic!(
            "conv2d: invalid parameters {p:?} or kernel {kh}x{kw} larger than padded input {h}x{w}"
        )
    });
    assert_eq!(
        out.len(),
        checked_numel(&[n, o, oh, ow], "output"),
        "conv2d: output length does not match shape [{n}, {o}, {oh}, {ow}]"
    );
    if out.is_empty() {
        return;
    }

    let g = Geom {
        cg,
        og: o / groups,
        h,
        w,
        kh,
        kw,
        oh,
        ow,
        sh: p.stride[0],
        sw: p.stride[1],
        ph: p.padding[0],
        pw: p.padding[1],
        dh: p.dilation[0],
        dw: p.dilation[1],
    };
    let hw = h * w;
    let plane = g.p();
    let macs = out.len().saturating_mul(g.k());
    let big = macs > PARALLEL_THRESHOLD;

    if cg == 1 && groups > 1 {
        // Depthwise (possibly with a channel multiplier): output channel `oc`
        // reads input channel `oc / og`.
        let khw = kh * kw;
        let run = |idx: usize, out_plane: &mut [T]| {
            let (b_i, oc) = (idx / o, idx % o);
            let ci = oc / g.og;
            let inp = &input[(b_i * c + ci) * hw..(b_i * c + ci + 1) * hw];
            let wk = &weight[oc * khw..(oc + 1) * khw];
            let bv = bias.map_or(T::ZERO, |b| b[oc]);
            depthwise_plane(inp, wk, bv, &g, out_plane);
        };
        if big {
            out.par_chunks_mut(plane)
                .enumerate()
                .for_each(|(idx, op)| run(idx, op));
        } else {
            out.chunks_mut(plane)
                .enumerate()
                .for_each(|(idx, op)| run(idx, op));
        }
        return;
    }

    let k = g.k();
    let block = g.og * plane;
    let items = n * groups;
    // Slices of one (batch, group) item: input channels, weights, bias.
    let item_args = |idx: usize| {
        let (b_i, gi) = (idx / groups, idx % groups);
        let in_off = (b_i * c + gi * cg) * hw;
        (
            &input[in_off..in_off + cg * hw],
            &weight[gi * g.og * k..(gi + 1) * g.og * k],
            bias.map(|b| &b[gi * g.og..(gi + 1) * g.og]),
        )
    };

    // Split the output columns (pixels) of every item into tiles whose
    // im2col block fits in cache; with few items, split finer so that every
    // thread gets work.
    let threads = rayon::current_num_threads().max(1);
    let tile_cap = (COL_TILE_BYTES / std::mem::size_of::<T>() / k.max(1)).max(MIN_TILE);
    let mut ntiles = plane.div_ceil(tile_cap);
    if big && items * ntiles < 2 * threads {
        let max_tiles = plane.div_ceil(MIN_PARALLEL_TILE).max(1);
        ntiles = ntiles.max((2 * threads).div_ceil(items)).min(max_tiles);
    }
    let tile = plane.div_ceil(ntiles);
    let ntiles = plane.div_ceil(tile);
    let units = items * ntiles;

    if ntiles == 1 {
        // Whole items, computed in place: in parallel over items when there
        // are enough of them, otherwise one after the other with the GEMM
        // (and im2col) itself running in parallel if the work is big.
        let run = |col: &mut Vec<T>, (idx, ob): (usize, &mut [T]), parallel: bool| {
            let (inp, wgt, b) = item_args(idx);
            conv_group_gemm(inp, wgt, b, &g, ob, col, parallel);
        };
        if big && items >= threads {
            out.par_chunks_mut(block)
                .enumerate()
                .for_each_init(Vec::new, |col, item| run(col, item, false));
        } else {
            let mut col = Vec::new();
            out.chunks_mut(block)
                .enumerate()
                .for_each(|item| run(&mut col, item, big));
        }
        return;
    }

    // Work units: (item, tile, output row segments of that tile).
    let mut work: Vec<(usize, usize, Vec<&mut [T]>)> = Vec::with_capacity(units);
    for (idx, ob) in out.chunks_mut(block).enumerate() {
        let first = work.len();
        work.extend((0..ntiles).map(|t| (idx, t, Vec::with_capacity(g.og))));
        for row in ob.chunks_exact_mut(plane) {
            for (t, seg) in row.chunks_mut(tile).enumerate() {
                work[first + t].2.push(seg);
            }
        }
    }
    let run = |scratch: &mut TileScratch<T>, (idx, t, mut rows): (usize, usize, Vec<&mut [T]>)| {
        let (inp, wgt, b) = item_args(idx);
        let q0 = t * tile;
        let q1 = (q0 + tile).min(plane);
        conv_tile(inp, wgt, b, &g, q0, q1, &mut rows, scratch);
    };
    if big && units >= threads {
        work.into_par_iter()
            .for_each_init(TileScratch::default, run);
    } else {
        let mut scratch = TileScratch::default();
        work.into_iter().for_each(|u| run(&mut scratch, u));
    }
}

#[cfg(test)]
mod tests {
    use super::super::matmul::test_util::*;
    use super::*;

    fn naive(
        input: &[f64],
        is: [usize; 4],
        weight: &[f64],
        ws: [usize; 4],
        bias: Option<&[f64]>,
        p: &Conv2dParams,
    ) -> Vec<f64> {
        let [n, c, h, w] = is;
        let [o, cg, kh, kw] = ws;
        let og = o / p.groups;
        let oh = (h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
        let ow = (w + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
        let mut out = vec![0.0; n * o * oh * ow];
        for b in 0..n {
            for oc in 0..o {
                let grp = oc / og;
                for y in 0..oh {
                    for x in 0..ow {
                        let mut s = bias.map_or(0.0, |bb| bb[oc]);
                        for ci in 0..cg {
                            let cin = grp * cg + ci;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (y * p.stride[0] + ky * p.dilation[0]) as isize
                                        - p.padding[0] as isize;
                                    let ix = (x * p.stride[1] + kx * p.dilation[1]) as isize
                                        - p.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let iv =
                                        input[((b * c + cin) * h + iy as usize) * w + ix as usize];
                                    let wv = weight[((oc * cg + ci) * kh + ky) * kw + kx];
                                    s += iv * wv;
                                }
                            }
                        }
                        out[((b * o + oc) * oh + y) * ow + x] = s;
                    }
                }
            }
        }
        assert_eq!(conv2d_out_hw([h, w], [kh, kw], p), Some([oh, ow]));
        out
    }

    fn params(
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Conv2dParams {
        Conv2dParams {
            stride,
            padding,
            dilation,
            groups,
        }
    }

    fn cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams)> {
        vec![
            // basic 3x3, pad 1
            (
                [1, 3, 8, 8],
                [4, 3, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            // batch 2, stride 2, odd sizes
            (
                [2, 4, 9, 7],
                [6, 4, 3, 3],
                params([2, 2], [1, 1], [1, 1], 1),
            ),
            // dilation, asymmetric padding/stride
            (
                [1, 2, 10, 11],
                [3, 2, 3, 3],
                params([1, 2], [2, 1], [2, 2], 1),
            ),
            // non-square kernel, no padding
            (
                [2, 3, 9, 8],
                [5, 3, 2, 4],
                params([1, 1], [0, 0], [1, 1], 1),
            ),
            // groups = 2
            (
                [2, 4, 6, 6],
                [6, 2, 3, 3],
                params([1, 1], [1, 1], [1, 1], 2),
            ),
            // groups = 3 with stride and dilation
            (
                [1, 6, 11, 9],
                [9, 2, 3, 3],
                params([2, 1], [1, 2], [1, 2], 3),
            ),
            // 1-D conv as H = 1
            (
                [2, 3, 1, 16],
                [5, 3, 1, 3],
                params([1, 1], [0, 1], [1, 1], 1),
            ),
            (
                [2, 3, 1, 16],
                [4, 3, 1, 5],
                params([1, 2], [0, 2], [1, 2], 1),
            ),
            // 1x1 point-wise (no im2col)
            (
                [2, 8, 5, 5],
                [16, 8, 1, 1],
                params([1, 1], [0, 0], [1, 1], 1),
            ),
            // 1x1 point-wise, grouped
            (
                [2, 8, 5, 3],
                [8, 2, 1, 1],
                params([1, 1], [0, 0], [1, 1], 4),
            ),
            // 1x1 with stride 2 and with padding (im2col path)
            (
                [1, 8, 7, 7],
                [4, 8, 1, 1],
                params([2, 2], [0, 0], [1, 1], 1),
            ),
            (
                [1, 3, 4, 4],
                [2, 3, 1, 1],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            // depthwise
            (
                [2, 8, 7, 7],
                [8, 1, 3, 3],
                params([1, 1], [1, 1], [1, 1], 8),
            ),
            (
                [2, 8, 8, 9],
                [8, 1, 3, 3],
                params([2, 2], [1, 1], [1, 1], 8),
            ),
            (
                [1, 4, 9, 9],
                [4, 1, 3, 3],
                params([1, 2], [2, 2], [2, 2], 4),
            ),
            (
                [1, 4, 9, 9],
                [4, 1, 5, 5],
                params([1, 1], [2, 2], [1, 1], 4),
            ),
            // depthwise with channel multiplier 2
            (
                [1, 4, 6, 6],
                [8, 1, 3, 3],
                params([1, 1], [1, 1], [1, 1], 4),
            ),
            // single input channel, groups = 1 (GEMM path with K = kH*kW)
            (
                [2, 1, 6, 6],
                [4, 1, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            // sizes of 1
            (
                [1, 1, 1, 1],
                [1, 1, 1, 1],
                params([1, 1], [0, 0], [1, 1], 1),
            ),
            (
                [1, 1, 1, 1],
                [1, 1, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            (
                [1, 2, 1, 1],
                [2, 1, 3, 3],
                params([1, 1], [1, 1], [1, 1], 2),
            ),
            // kernel wider than input, large stride
            (
                [1, 2, 2, 2],
                [3, 2, 3, 3],
                params([3, 3], [1, 1], [1, 1], 1),
            ),
            // zero input channels: output is the bias (or zeros)
            (
                [1, 0, 3, 3],
                [2, 0, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            // empty batch
            (
                [0, 3, 5, 5],
                [2, 3, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            // large enough to take the parallel paths:
            // one item, parallel GEMM + parallel im2col
            (
                [1, 16, 20, 20],
                [32, 16, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            // many items, parallel over (batch, group)
            (
                [4, 8, 12, 12],
                [8, 8, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            (
                [3, 12, 24, 24],
                [12, 4, 3, 3],
                params([1, 1], [1, 1], [1, 1], 3),
            ),
            // point-wise, big
            (
                [1, 64, 16, 16],
                [64, 64, 1, 1],
                params([1, 1], [0, 0], [1, 1], 1),
            ),
            // tiled, parallel, tiles not aligned to output rows
            (
                [1, 16, 21, 19],
                [32, 16, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            (
                [1, 8, 33, 35],
                [16, 8, 3, 3],
                params([2, 2], [1, 1], [1, 1], 1),
            ),
            (
                [1, 64, 15, 17],
                [128, 64, 1, 1],
                params([1, 1], [0, 0], [1, 1], 1),
            ),
            // tiled (im2col larger than the cache budget) but serial
            (
                [1, 32, 29, 31],
                [1, 32, 3, 3],
                params([1, 1], [1, 1], [1, 1], 1),
            ),
            // big, one item, too few columns to tile: multi-threaded GEMM
            (
                [1, 256, 4, 4],
                [64, 256, 3, 3],
                params([1, 1], [0, 0], [1, 1], 1),
            ),
            // depthwise, parallel over planes
            (
                [2, 32, 32, 32],
                [32, 1, 3, 3],
                params([1, 1], [1, 1], [1, 1], 32),
            ),
        ]
    }

    #[test]
    fn conv2d_matches_naive() {
        let mut rng = Lcg::new(42);
        for (is, ws, p) in cases() {
            let input = rng.vec_f64(is.iter().product());
            let weight = rng.vec_f64(ws.iter().product());
            let bias = rng.vec_f64(ws[0]);
            let [oh, ow] = conv2d_out_hw([is[2], is[3]], [ws[2], ws[3]], &p).unwrap();
            let out_len = is[0] * ws[0] * oh * ow;
            let input32: Vec<f32> = input.iter().map(|&x| x as f32).collect();
            let weight32: Vec<f32> = weight.iter().map(|&x| x as f32).collect();
            let bias32: Vec<f32> = bias.iter().map(|&x| x as f32).collect();
            for with_bias in [false, true] {
                let ctx = format!("in={is:?} w={ws:?} {p:?} bias={with_bias}");
                let want = naive(&input, is, &weight, ws, with_bias.then_some(&bias[..]), &p);

                let mut out = vec![f64::NAN; out_len];
                conv2d::<f64>(
                    &input,
                    is,
                    &weight,
                    ws,
                    with_bias.then_some(&bias[..]),
                    &p,
                    &mut out,
                );
                assert_close_f64(&out, &want, &ctx);

                let mut out32 = vec![f32::NAN; out_len];
                conv2d::<f32>(
                    &input32,
                    is,
                    &weight32,
                    ws,
                    with_bias.then_some(&bias32[..]),
                    &p,
                    &mut out32,
                );
                assert_close_f32(&out32, &want, &ctx);
            }
        }
    }

    #[test]
    fn out_hw() {
        let p = Conv2dParams {
            padding: [1, 1],
            stride: [2, 2],
            ..Default::default()
        };
        assert_eq!(conv2d_out_hw([224, 224], [3, 3], &p), Some([112, 112]));
        assert_eq!(
            conv2d_out_hw([2, 2], [5, 5], &Conv2dParams::default()),
            None
        );
        let p0 = Conv2dParams {
            stride: [0, 1],
            ..Default::default()
        };
        assert_eq!(conv2d_out_hw([4, 4], [1, 1], &p0), None);
    }

    #[test]
    #[should_panic(expected = "divisible by groups")]
    fn bad_groups_panics() {
        let p = Conv2dParams {
            groups: 2,
            ..Default::default()
        };
        let mut out = vec![0.0f32; 4];
        conv2d::<f32>(
            &[0.0; 3],
            [1, 3, 1, 1],
            &[0.0; 4],
            [4, 1, 1, 1],
            None,
            &p,
            &mut out,
        );
    }
}

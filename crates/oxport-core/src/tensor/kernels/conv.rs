//! 2-D convolution (PyTorch `aten.convolution` semantics, forward only, not
//! transposed) for contiguous NCHW tensors.
//!
//! Strategy:
//! * **Depthwise-like** (`C / groups == 1`, `groups > 1`, which includes the
//!   classic depthwise case `groups == C == O`): direct loops over each output
//!   plane (see *Depthwise fast path* below), parallel over `N × O` planes.
//! * **Everything else** is a GEMM per `(batch, group)` item:
//!   `out[og × P] = W[og × K] · col[K × P]` with `K = C/groups · kH · kW` and
//!   `P = oH · oW`. `col` is the im2col matrix, except for point-wise
//!   convolutions (1×1, stride 1, no padding) whose input block already is
//!   that matrix and is read in place.
//! * The `P` columns are split into tiles whose im2col block fits in L2
//!   (≈ 512 KiB); every `(item, tile)` unit does im2col + a single-threaded
//!   GEMM into a scratch tile that is then copied through the epilogue (bias,
//!   residual, activation) into the output. Units run in parallel on the rayon pool when the convolution is
//!   big enough; with few items the tiles are made finer so that every thread
//!   gets work. Cache-resident tiles make this markedly faster than one big
//!   im2col + multi-threaded GEMM.
//! * When an item is a single tile (small `P`), items are computed in place,
//!   either in parallel over items or, with fewer items than threads, one
//!   after the other with a multi-threaded GEMM. Tiny convolutions never
//!   touch the thread pool.
//!
//! 1-D convolutions are expected to be expressed as 2-D with `H == 1`.
//!
//! # Fused epilogue
//!
//! [`conv2d_fused`] computes `activation(conv(input, weight) + bias[o] + residual)` (a folded
//! BatchNorm is a conv with a bias). The epilogue is applied while the output is hot in cache:
//! when a GEMM tile is copied out of its scratch buffer, right after an item's in-place GEMM, and
//! after each output row of a depthwise plane — never as a second pass over the whole output.
//!
//! # Depthwise
//!
//! Each depthwise output plane is computed band by band of output rows: the band's input rows
//! are copied into zero-padded *phase planes* (one per stride phase, see `DepthwiseLayout`), laid
//! out so that every kernel tap reads one contiguous run covering all the band's output rows at
//! once (the few padding columns are computed and dropped). Blocks of output lanes then
//! accumulate every tap in registers with fused multiply-adds — no border special cases, so a
//! 7×7 plane with a 5×5 kernel vectorises like a 112×112 one (`cargo bench -p oxport-core --bench
//! conv -- dw_`: 1.9–3.8× the row-by-row kernel this replaced on MobileNet/EfficientNet shapes).

use rayon::prelude::*;

use super::activation::Activation;
use super::matmul::{gemm_strided, Scalar, PARALLEL_THRESHOLD};
use super::simd::{self, Isa};

/// `fn $name<T: Scalar>(isa: Isa, args…)` running `$inner(args…)` compiled for `isa` (see
/// [`simd::dispatch`](super::simd)): AVX-512's 16 or AVX2's 8 f32 lanes where the baseline x86-64
/// build has SSE2's 4. `$inner` and what it calls in its hot loops must be `#[inline(always)]` so
/// that they are compiled into each copy. Tests run every available ISA.
macro_rules! isa_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$T:ident>($($a:ident: $t:ty),* $(,)?) => $inner:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$T: Scalar>(isa: $crate::tensor::kernels::simd::Isa, $($a: $t),*) {
            $crate::tensor::kernels::simd::dispatch!(isa, _FMA => $inner($($a),*))
        }
    };
}
pub(super) use isa_dispatch;

/// What a fused convolution does to its output before storing it:
/// `out = activation(conv + bias[o] + residual)`.
#[derive(Debug)]
pub struct Epilogue<'a, T> {
    /// Per-output-channel bias (`O` values; a folded BatchNorm's shift).
    pub bias: Option<&'a [T]>,
    /// A tensor added to the output, contiguous with the output's NCHW shape (the skip
    /// connection of a residual block).
    pub residual: Option<&'a [T]>,
    /// Applied last, after the bias and the residual.
    pub activation: Activation,
}

impl<T> Clone for Epilogue<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Epilogue<'_, T> {}

impl<T> Default for Epilogue<'_, T> {
    /// No bias, no residual, identity activation (a plain convolution).
    fn default() -> Self {
        Epilogue {
            bias: None,
            residual: None,
            activation: Activation::Identity,
        }
    }
}

impl<'a, T> Epilogue<'a, T> {
    /// Just a bias (what [`conv2d`] does).
    pub fn with_bias(bias: Option<&'a [T]>) -> Self {
        Epilogue {
            bias,
            ..Epilogue::default()
        }
    }

    /// True when only the bias (if any) is applied: no residual, identity activation.
    pub(super) fn bias_only(&self) -> bool {
        self.residual.is_none() && self.activation.is_identity()
    }
}

impl<T: Scalar> Epilogue<'_, T> {
    /// Finishes one output row segment `dst` of global output channel `oc`, whose first element
    /// is at flat output index `at`: `dst = src + bias[oc] + residual[at..]`, then the
    /// activation. With `src == None`, `dst` already holds the convolution, including the bias
    /// when `bias_done`.
    #[inline]
    pub(super) fn finish(
        &self,
        oc: usize,
        at: usize,
        src: Option<&[T]>,
        bias_done: bool,
        dst: &mut [T],
    ) {
        self.add_terms(oc, at, src, bias_done, dst);
        self.activation.apply(dst);
    }

    /// [`Self::finish`] of consecutive rows of `row_len` elements at flat indices `at, at +
    /// row_len, ..`, of channels `(k0 + r) % channels` for row `r` (rows of several batch items
    /// wrap around), with the activation applied once over all of them: rows of a few elements
    /// cost no call each.
    fn finish_rows(
        &self,
        k0: usize,
        at: usize,
        bias_done: bool,
        dst: &mut [T],
        row_len: usize,
        channels: usize,
    ) {
        for (r, row) in dst.chunks_mut(row_len.max(1)).enumerate() {
            self.add_terms((k0 + r) % channels, at + r * row_len, None, bias_done, row);
        }
        self.activation.apply(dst);
    }

    /// The bias and residual terms of [`Self::finish`].
    #[inline]
    fn add_terms(&self, oc: usize, at: usize, src: Option<&[T]>, bias_done: bool, dst: &mut [T]) {
        let bv = if bias_done {
            None
        } else {
            self.bias.map(|b| b[oc])
        };
        let res = self.residual.map(|r| &r[at..at + dst.len()]);
        match (src, bv, res) {
            (Some(s), Some(b), Some(r)) => {
                for ((d, &s), &r) in dst.iter_mut().zip(s).zip(r) {
                    *d = s + b + r;
                }
            }
            (Some(s), Some(b), None) => {
                for (d, &s) in dst.iter_mut().zip(s) {
                    *d = s + b;
                }
            }
            (Some(s), None, Some(r)) => {
                for ((d, &s), &r) in dst.iter_mut().zip(s).zip(r) {
                    *d = s + r;
                }
            }
            (Some(s), None, None) => dst.copy_from_slice(&s[..dst.len()]),
            (None, Some(b), Some(r)) => {
                for (d, &r) in dst.iter_mut().zip(r) {
                    *d = *d + b + r;
                }
            }
            (None, Some(b), None) => {
                for d in dst.iter_mut() {
                    *d += b;
                }
            }
            (None, None, Some(r)) => {
                for (d, &r) in dst.iter_mut().zip(r) {
                    *d += r;
                }
            }
            (None, None, None) => {}
        }
    }
}

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
pub(super) struct Geom {
    /// Input channels per group.
    pub(super) cg: usize,
    /// Output channels per group.
    pub(super) og: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) sh: usize,
    pub(super) sw: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    pub(super) dh: usize,
    pub(super) dw: usize,
}

impl Geom {
    /// Rows of the im2col matrix (= GEMM `k`).
    pub(super) fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }
    /// Columns of the im2col matrix (= GEMM `n`).
    pub(super) fn p(&self) -> usize {
        self.oh * self.ow
    }
    /// 1×1, stride 1, no padding: the input plane block already is the
    /// im2col matrix.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
}

/// Indices `j` in `0..out_len` for which `j * stride + off` lies in
/// `0..in_len`, as a half-open range `(lo, hi)` (empty ranges have `lo == hi`).
#[inline]
pub(super) fn valid_range(
    out_len: usize,
    in_len: usize,
    stride: usize,
    off: isize,
) -> (usize, usize) {
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

/// Fills `seg` with columns `qa..qa + seg.len()` of row `r = (ci, ky, kx)` of one group's im2col
/// matrix, built from its input channels (`cg × H × W`); column `q = y · oW + x`.
#[inline]
fn im2col_segment<T: Scalar>(inp: &[T], g: &Geom, r: usize, qa: usize, seg: &mut [T]) {
    let hw = g.h * g.w;
    let khw = g.kh * g.kw;
    let ci = r / khw;
    let plane = &inp[ci * hw..(ci + 1) * hw];
    if g.is_pointwise() {
        seg.copy_from_slice(&plane[qa..qa + seg.len()]);
        return;
    }
    let ky = (r / g.kw) % g.kh;
    let kx = r % g.kw;
    let offx = (kx * g.dw) as isize - g.pw as isize;
    let (lo, hi) = valid_range(g.ow, g.w, g.sw, offx);
    let q1 = qa + seg.len();
    let mut q = qa;
    while q < q1 {
        // One (partial) output row: x in xa..xb of output row y.
        let (y, xa) = (q / g.ow, q % g.ow);
        let xb = g.ow.min(xa + (q1 - q));
        let seg = &mut seg[q - qa..q - qa + (xb - xa)];
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
}

/// Fill `col` (`K × (q1 − q0)`, row-major) with columns `q0..q1` of one
/// group's im2col matrix (see [`im2col_segment`]).
fn im2col<T: Scalar>(inp: &[T], g: &Geom, q0: usize, q1: usize, col: &mut [T], parallel: bool) {
    let width = q1 - q0;
    let fill_row = |r: usize, row: &mut [T]| im2col_segment(inp, g, r, q0, row);
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

/// Where one `(batch, group)` item sits in the output: its first global output channel and the
/// flat index of its first output element (for the bias and the residual of the epilogue).
#[derive(Clone, Copy, Debug)]
struct ItemPos {
    oc0: usize,
    at: usize,
}

/// One whole `(batch, group)` item of the GEMM path, written in place.
/// `inp`: `cg × H × W`; `wgt`: `og × K`; `out`: `og × P`. The epilogue is applied to the item's
/// output rows right after its GEMM.
#[allow(clippy::too_many_arguments)]
fn conv_group_gemm<T: Scalar>(
    inp: &[T],
    wgt: &[T],
    epi: &Epilogue<'_, T>,
    pos: ItemPos,
    g: &Geom,
    out: &mut [T],
    col: &mut Vec<T>,
    parallel: bool,
) {
    let k = g.k();
    let p = g.p();
    // With only a bias, the GEMM accumulates onto it; otherwise the bias is added by the
    // epilogue pass together with the residual and the activation.
    let accumulate = match epi.bias {
        Some(b) if epi.bias_only() => {
            for (row, &bv) in out.chunks_exact_mut(p).zip(&b[pos.oc0..pos.oc0 + g.og]) {
                row.fill(bv);
            }
            true
        }
        _ => false,
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
    if !epi.bias_only() {
        // Whole channel rows, at least EPILOGUE_CHUNK elements per call when the rows are short.
        let rows = (EPILOGUE_CHUNK / p.max(1)).max(1);
        let finish = |(c, block): (usize, &mut [T])| {
            let o = c * rows;
            epi.finish_rows(
                pos.oc0 + o,
                pos.at + o * p,
                accumulate,
                block,
                p,
                usize::MAX,
            )
        };
        if parallel && out.len() >= EPILOGUE_PARALLEL_MIN {
            out.par_chunks_mut(rows * p).enumerate().for_each(finish);
        } else {
            out.chunks_mut(rows * p).enumerate().for_each(finish);
        }
    }
}

/// Outputs of at least this many elements finish their epilogue in parallel when the GEMM ran in
/// parallel.
const EPILOGUE_PARALLEL_MIN: usize = 1 << 14;

/// Epilogues run over runs of at least this many elements where rows are shorter (whole rows; in
/// L1 still): a call per row of 2 or 4 elements costs more than its arithmetic.
const EPILOGUE_CHUNK: usize = 1024;

/// Scratch buffers of one worker for [`conv_tile`].
#[derive(Default)]
struct TileScratch<T> {
    col: Vec<T>,
    out: Vec<T>,
}

/// Columns `q0..q1` of one `(batch, group)` item: `rows[o]` is the
/// `q0..q1` segment of output row `o` of the item. Computes the tile into a
/// contiguous scratch buffer with a single-threaded GEMM, then copies it out
/// through the epilogue (bias, residual, activation) while it is in cache.
#[allow(clippy::too_many_arguments)]
fn conv_tile<T: Scalar>(
    inp: &[T],
    wgt: &[T],
    epi: &Epilogue<'_, T>,
    pos: ItemPos,
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
    let p = g.p();
    for (o, (dst, src)) in rows.iter_mut().zip(tile.chunks_exact(width)).enumerate() {
        epi.finish(pos.oc0 + o, pos.at + o * p + q0, Some(src), false, dst);
    }
}

/// How [`depthwise_plane`] lays out one band of an input plane, fixed by the geometry: the
/// band's padded input rows split into `sh × sw` phase planes (phase `(a, b)` holds padded rows
/// `a, a + sh, …` and columns `b, b + sw, …`), each `hq × wq`. Output lane `q = y·wq + x` of a
/// band (columns `x >= ow` are computed and dropped) then reads tap `t`'s input at
/// `phases[taps[t] + q]`: every tap is one contiguous run over all of the band's output rows,
/// whatever the stride, dilation or padding, and no lane needs a bounds test.
#[derive(Debug)]
struct DepthwiseLayout {
    /// Columns of a phase plane (= of an output lane row).
    wq: usize,
    /// Output rows per band.
    band_rows: usize,
    /// Elements of one phase plane (`hq × wq`, one slack row for the dropped columns).
    phase_len: usize,
    /// Per tap, in `kh × kw` order: its phase plane's offset plus its row and column shift.
    taps: Vec<usize>,
    /// Per padded row `j` of a band: where its phase row starts.
    row_at: Vec<usize>,
    /// Per column phase `b`: the first input column it holds and where that goes in a phase row.
    col_at: Vec<(usize, usize)>,
}

/// Depthwise planes with at most this many (output element, tap) pairs run [`TinyDepthwise`]: the
/// lane kernel's per-plane setup (phase planes, 16-lane vectors) costs more than a 2×2 plane's few
/// dozen products (EfficientNet's last stages).
const TINY_DEPTHWISE_TAPS: usize = 256;

/// A depthwise convolution of small planes as a table, made once for all channels: per output
/// element, its in-bounds taps (input index, weight index) in `kh × kw` order.
#[derive(Debug)]
struct TinyDepthwise {
    /// Output element `o`'s taps are `taps[starts[o]..starts[o + 1]]`.
    starts: Vec<usize>,
    taps: Vec<(usize, usize)>,
}

impl TinyDepthwise {
    fn new(g: &Geom) -> TinyDepthwise {
        let (mut starts, mut taps) = (vec![0], vec![]);
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let iy = (oy * g.sh + ky * g.dh)
                            .checked_sub(g.ph)
                            .filter(|&y| y < g.h);
                        let ix = (ox * g.sw + kx * g.dw)
                            .checked_sub(g.pw)
                            .filter(|&x| x < g.w);
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            taps.push((iy * g.w + ix, ky * g.kw + kx));
                        }
                    }
                }
                starts.push(taps.len());
            }
        }
        TinyDepthwise { starts, taps }
    }

    /// One channel: `out[o] = bias + Σ inp[i] · wk[k]` over output element `o`'s taps (plain
    /// multiply and add: `mul_add` without the FMA target feature is a library call).
    fn run<T: Scalar>(&self, inp: &[T], wk: &[T], bias: T, out: &mut [T]) {
        for (o, v) in out.iter_mut().enumerate() {
            *v = self.taps[self.starts[o]..self.starts[o + 1]]
                .iter()
                .fold(bias, |acc, &(i, k)| acc + wk[k] * inp[i]);
        }
    }
}

/// Output lanes (band rows × `wq`) per band: its phase planes and lanes stay in L1.
const DW_BAND_LANES: usize = 2048;

/// Output lanes per accumulator of [`depthwise_lanes`] (one AVX-512 vector of f32).
const DW_VEC: usize = 16;

/// `B` accumulators of [`DW_VEC`] output lanes from `c0` on: the bias plus every tap's weight
/// times its run of the phase planes. Each accumulator is a fixed-size array the compiler keeps in
/// a register across the taps. Fewer than four accumulators would leave the FMA unit waiting on
/// each one's previous tap (4 cycles of latency), so those sum even and odd taps separately.
#[inline(always)]
fn depthwise_lanes<T: Scalar, const FMA: bool, const B: usize>(
    phases: &[T],
    taps: &[usize],
    wk: &[T],
    bias: T,
    c0: usize,
) -> [[T; DW_VEC]; B] {
    let mut acc = [[bias; DW_VEC]; B];
    #[inline(always)]
    fn tap<T: Scalar, const FMA: bool, const B: usize>(
        acc: &mut [[T; DW_VEC]; B],
        src: &[T],
        wv: T,
    ) {
        for (a, v) in acc.iter_mut().zip(src[..B * DW_VEC].chunks_exact(DW_VEC)) {
            for i in 0..DW_VEC {
                a[i] = madd::<T, FMA>(wv, v[i], a[i]);
            }
        }
    }
    if B >= 4 {
        for (&off, &wv) in taps.iter().zip(wk) {
            tap::<T, FMA, B>(&mut acc, &phases[off + c0..], wv);
        }
        return acc;
    }
    let mut odd = [[T::ZERO; DW_VEC]; B];
    let mut pairs = taps.chunks_exact(2).zip(wk.chunks_exact(2));
    for (o, w) in &mut pairs {
        tap::<T, FMA, B>(&mut acc, &phases[o[0] + c0..], w[0]);
        tap::<T, FMA, B>(&mut odd, &phases[o[1] + c0..], w[1]);
    }
    if taps.len() % 2 == 1 {
        let last = taps.len() - 1;
        tap::<T, FMA, B>(&mut acc, &phases[taps[last] + c0..], wk[last]);
    }
    for (a, o) in acc.iter_mut().zip(&odd) {
        for i in 0..DW_VEC {
            a[i] += o[i];
        }
    }
    acc
}

impl DepthwiseLayout {
    fn new(g: &Geom) -> Self {
        let (sh, sw) = (g.sh, g.sw);
        let khe = (g.kh - 1) * g.dh + 1;
        let wp = (g.w + 2 * g.pw).next_multiple_of(sw);
        let wq = wp / sw;
        let band_rows = (DW_BAND_LANES / wq).clamp(1, g.oh.max(1));
        // The band's input rows, spread over `sh` phases, and a slack row: lanes past `ow` of the
        // band's last row read up to `wq - 1` elements beyond its last phase row.
        let hq = ((band_rows - 1) * sh + khe).div_ceil(sh) + 1;
        let phase_len = hq * wq;
        let mut taps = Vec::with_capacity(g.kh * g.kw);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let (dy, dx) = (ky * g.dh, kx * g.dw);
                let phase = (dy % sh) * sw + dx % sw;
                taps.push(phase * phase_len + (dy / sh) * wq + dx / sw);
            }
        }
        let row_at = (0..(band_rows - 1) * sh + khe)
            .map(|j| (j % sh) * sw * phase_len + (j / sh) * wq)
            .collect();
        // Padded column px = ix + pw goes to phase px % sw, column px / sw.
        let col_at = (0..sw)
            .map(|b| {
                let first = (b + sw - g.pw % sw) % sw;
                (first, b * phase_len + (first + g.pw) / sw)
            })
            .collect();
        DepthwiseLayout {
            wq,
            band_rows,
            phase_len,
            taps,
            row_at,
            col_at,
        }
    }

    /// Elements of the phase planes, with [`DW_VEC`] of slack for the last vector of lanes.
    fn phases_len(&self, g: &Geom) -> usize {
        g.sh * g.sw * self.phase_len + DW_VEC
    }

    /// Scratch elements [`depthwise_plane`] needs: the phase planes and one band of lanes.
    fn scratch_len(&self, g: &Geom) -> usize {
        self.phases_len(g) + (self.band_rows * self.wq).next_multiple_of(DW_VEC)
    }
}

/// `a + w · v`, fused into one rounding when `FMA` (the build has the instruction).
#[inline(always)]
fn madd<T: Scalar, const FMA: bool>(w: T, v: T, a: T) -> T {
    if FMA {
        w.mul_add(v, a)
    } else {
        a + w * v
    }
}

/// One output plane of a convolution whose groups have a single input channel (depthwise), any
/// stride, padding and dilation. `inp`: `H × W`; `wk`: `kH × kW`; `out`: `oH × oW`;
/// `finish(y, row)` is called on each output row once it is complete (it holds the convolution
/// plus `bias`). Band by band of output rows: the band's input rows are copied into
/// zero-padded phase planes ([`DepthwiseLayout`]), then each vector of output lanes
/// accumulates all taps in a register (one contiguous load per tap), so that small planes (7×7
/// with a 5×5 kernel: most columns are border columns) vectorise as well as large ones.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn depthwise_plane<T: Scalar, const FMA: bool>(
    inp: &[T],
    wk: &[T],
    bias: T,
    g: &Geom,
    layout: &DepthwiseLayout,
    out: &mut [T],
    finish: &dyn Fn(usize, &mut [T]),
    scratch: &mut Vec<T>,
) {
    let (sh, sw, wq) = (g.sh, g.sw, layout.wq);
    let khe = (g.kh - 1) * g.dh + 1;
    scratch.resize(layout.scratch_len(g), T::ZERO);
    let (phases, lanes) = scratch.split_at_mut(layout.phases_len(g));
    for y0 in (0..g.oh).step_by(layout.band_rows) {
        let rows = layout.band_rows.min(g.oh - y0);
        phases.fill(T::ZERO);
        // Padded rows y0·sh .. y0·sh + (rows − 1)·sh + khe of the input, by phase.
        for (j, &row0) in layout.row_at[..(rows - 1) * sh + khe].iter().enumerate() {
            let Some(iy) = (y0 * sh + j).checked_sub(g.ph).filter(|&iy| iy < g.h) else {
                continue;
            };
            let irow = &inp[iy * g.w..][..g.w];
            match sw {
                1 => phases[row0 + g.pw..][..g.w].copy_from_slice(irow),
                2 => {
                    // Input columns 2t and 2t + 1 go to column t of the phase rows `col_at` gives
                    // for first columns 0 and 1: deinterleaved in pairs (vectorises).
                    let [(first, at_a), (_, at_b)] = layout.col_at[..] else {
                        unreachable!("two column phases for stride 2")
                    };
                    let (at_even, at_odd) = if first == 0 {
                        (at_a, at_b)
                    } else {
                        (at_b, at_a)
                    };
                    let (lo, hi) = phases[row0..].split_at_mut(at_even.max(at_odd));
                    let (even, odd) = if at_even < at_odd {
                        (&mut lo[at_even..], hi)
                    } else {
                        (hi, &mut lo[at_odd..])
                    };
                    let pairs = irow.chunks_exact(2);
                    if let [v] = pairs.remainder() {
                        even[g.w / 2] = *v;
                    }
                    for ((pr, e), o) in pairs.zip(even.iter_mut()).zip(odd.iter_mut()) {
                        *e = pr[0];
                        *o = pr[1];
                    }
                }
                _ => {
                    for &(first, at) in &layout.col_at {
                        let Some(src) = irow.get(first..) else {
                            continue;
                        };
                        for (d, &v) in phases[row0 + at..].iter_mut().zip(src.iter().step_by(sw)) {
                            *d = v;
                        }
                    }
                }
            }
        }
        // Whole vectors of lanes: past `rows · wq` they read the phases' slack and are dropped.
        let n = (rows * wq).next_multiple_of(DW_VEC);
        let mut c0 = 0;
        while c0 + 4 * DW_VEC <= n {
            let acc = depthwise_lanes::<T, FMA, 4>(phases, &layout.taps, wk, bias, c0);
            for (dst, a) in lanes[c0..].chunks_exact_mut(DW_VEC).zip(&acc) {
                dst.copy_from_slice(a);
            }
            c0 += 4 * DW_VEC;
        }
        while c0 < n {
            let [acc] = depthwise_lanes::<T, FMA, 1>(phases, &layout.taps, wk, bias, c0);
            lanes[c0..c0 + DW_VEC].copy_from_slice(&acc);
            c0 += DW_VEC;
        }
        for (yy, lane_row) in lanes.chunks_exact(wq).take(rows).enumerate() {
            let orow = &mut out[(y0 + yy) * g.ow..][..g.ow];
            orow.copy_from_slice(&lane_row[..g.ow]);
            finish(y0 + yy, orow);
        }
    }
}

/// Output columns per chunk of the stride-2 row kernel (its deinterleaved input lives in stack
/// buffers of about this size).
const ROW_CHUNK: usize = 64;

/// Folds the `R × K` taps of `R` kernel rows into interior output columns:
/// `o[x] = f(… f(f(o[x], 0, rows[0][x·S]), 1, rows[0][x·S + 1]) …, R·K − 1, rows[R − 1][x·S + K − 1])`,
/// taps in row-major order (tap `t = r·K + kx`), for `S` = 1 or 2 and `K <= 7`. Every tap must
/// be in bounds: `rows[r].len() >= S · (o.len() − 1) + K`. The accumulator stays in a register
/// across all taps. Stride 2 deinterleaves the inputs (even / odd columns) chunk by chunk into
/// stack buffers, so that every tap reads contiguous memory and the loop over `x` vectorises.
/// Shared with the pooling kernels.
#[inline(always)]
pub(super) fn row_taps<T: Scalar, const R: usize, const K: usize, const S: usize>(
    o: &mut [T],
    rows: [&[T]; R],
    f: impl Fn(T, usize, T) -> T,
) {
    debug_assert!((1..=7).contains(&K) && (S == 1 || S == 2));
    if o.is_empty() {
        return;
    }
    if S == 1 {
        let n = o.len();
        let src: [[&[T]; K]; R] =
            std::array::from_fn(|r| std::array::from_fn(|kx| &rows[r][kx..kx + n]));
        for (x, ov) in o.iter_mut().enumerate() {
            let mut a = *ov;
            for (r, srow) in src.iter().enumerate() {
                for (kx, s) in srow.iter().enumerate() {
                    a = f(a, r * K + kx, s[x]);
                }
            }
            *ov = a;
        }
        return;
    }
    let mut even = [[T::ZERO; ROW_CHUNK + 4]; R];
    let mut odd = [[T::ZERO; ROW_CHUNK + 4]; R];
    for (c, oc) in o.chunks_mut(ROW_CHUNK).enumerate() {
        let n = oc.len();
        let base = 2 * c * ROW_CHUNK;
        for r in 0..R {
            let seg = &rows[r][base..base + 2 * (n - 1) + K];
            // Even columns 0..ceil(len / 2), odd columns 0..len / 2.
            let pairs = seg.len() / 2;
            for ((e, od), pr) in even[r][..pairs]
                .iter_mut()
                .zip(odd[r][..pairs].iter_mut())
                .zip(seg.chunks_exact(2))
            {
                *e = pr[0];
                *od = pr[1];
            }
            if seg.len() % 2 == 1 {
                even[r][pairs] = seg[seg.len() - 1];
            }
        }
        // Tap kx of output x reads seg[2x + kx]: even[x + kx/2] or odd[x + kx/2].
        let src: [[&[T]; K]; R] = std::array::from_fn(|r| {
            std::array::from_fn(|kx| {
                let j = kx / 2;
                if kx % 2 == 0 {
                    &even[r][j..j + n]
                } else {
                    &odd[r][j..j + n]
                }
            })
        });
        for (x, ov) in oc.iter_mut().enumerate() {
            let mut a = *ov;
            for (r, srow) in src.iter().enumerate() {
                for (kx, s) in srow.iter().enumerate() {
                    a = f(a, r * K + kx, s[x]);
                }
            }
            *ov = a;
        }
    }
}

/// Interior output columns `xa..xb` of a row sweep with kernel width `k`, stride `s`,
/// dilation 1 and left padding `p` over `w` input columns into `ow` outputs: those whose taps
/// `x·s − p .. x·s − p + k` all lie in `0..w`. `(0, 0)` when there are none.
pub(super) fn interior_cols(w: usize, ow: usize, k: usize, s: usize, p: usize) -> (usize, usize) {
    let xa = p.div_ceil(s).min(ow);
    let xb = if w + p >= k {
        ((w + p - k) / s + 1).min(ow)
    } else {
        0
    };
    if xa < xb {
        (xa, xb)
    } else {
        (0, 0)
    }
}

/// [`depthwise_plane`] compiled for `isa`, with fused multiply-adds where it has them.
#[allow(clippy::too_many_arguments)]
fn depthwise_run<T: Scalar>(
    isa: Isa,
    inp: &[T],
    wk: &[T],
    bias: T,
    g: &Geom,
    layout: &DepthwiseLayout,
    out: &mut [T],
    finish: &dyn Fn(usize, &mut [T]),
    scratch: &mut Vec<T>,
) {
    simd::dispatch!(isa, FMA => depthwise_plane::<T, FMA>(inp, wk, bias, g, layout, out, finish, scratch))
}

fn checked_numel(dims: &[usize], what: &str) -> usize {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or_else(|| panic!("conv2d: {what} element count overflows usize"))
}

/// 2-D convolution (`aten.convolution`, not transposed) of a contiguous NCHW `input` with an
/// `[O, C / groups, kH, kW]` `weight`, plus a bias: `conv2d_fused` with just a bias.
///
/// # Panics
/// On inconsistent shapes, lengths or parameters (see [`conv2d_fused`]).
pub fn conv2d<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    weight: &[T],
    w_shape: [usize; 4],
    bias: Option<&[T]>,
    p: &Conv2dParams,
    out: &mut [T],
) {
    conv2d_fused(
        input,
        in_shape,
        weight,
        w_shape,
        p,
        &Epilogue::with_bias(bias),
        out,
    )
}

/// Fused 2-D convolution: `out = activation(conv(input, weight) + bias[o] + residual)`, with
/// `residual` contiguous with the output's NCHW shape. `input` is contiguous NCHW
/// (`in_shape`), `weight` is `[O, C / groups, kH, kW]` (`w_shape`), `out` is the contiguous
/// `[N, O, oH, oW]` output (see [`conv2d_out_hw`]). The epilogue is applied while each output
/// block is in cache, never as a separate pass over the output.
///
/// # Panics
/// If the channel counts do not divide into `groups`, the weight's input channels do not match,
/// a slice length does not match its shape (bias: `O`, residual: the output's), or the
/// parameters are invalid / the dilated kernel does not fit in the padded input.
pub fn conv2d_fused<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    weight: &[T],
    w_shape: [usize; 4],
    p: &Conv2dParams,
    epilogue: &Epilogue<'_, T>,
    out: &mut [T],
) {
    conv2d_fused_with(
        input,
        in_shape,
        weight,
        w_shape,
        p,
        epilogue,
        out,
        simd::active(),
    )
}

/// Checks a convolution's shapes, lengths and parameters (see [`conv2d_fused`]'s panics) and
/// returns its per-group geometry.
#[allow(clippy::too_many_arguments)]
pub(super) fn geometry<T>(
    input_len: usize,
    in_shape: [usize; 4],
    weight_len: usize,
    w_shape: [usize; 4],
    p: &Conv2dParams,
    epilogue: &Epilogue<'_, T>,
    out_len: usize,
) -> Geom {
    let bias = epilogue.bias;
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
        input_len,
        checked_numel(&in_shape, "input"),
        "conv2d: input length does not match shape {in_shape:?}"
    );
    assert_eq!(
        weight_len,
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
        out_len,
        checked_numel(&[n, o, oh, ow], "output"),
        "conv2d: output length does not match shape [{n}, {o}, {oh}, {ow}]"
    );
    if let Some(r) = epilogue.residual {
        assert_eq!(
            r.len(),
            out_len,
            "conv2d: residual has {} elements, expected the output's {}",
            r.len(),
            out_len
        );
    }

    Geom {
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
    }
}

/// [`conv2d_fused`]; `isa`: the instruction set of the depthwise kernels.
#[allow(clippy::too_many_arguments)]
fn conv2d_fused_with<T: Scalar>(
    input: &[T],
    in_shape: [usize; 4],
    weight: &[T],
    w_shape: [usize; 4],
    p: &Conv2dParams,
    epilogue: &Epilogue<'_, T>,
    out: &mut [T],
    isa: Isa,
) {
    let g = geometry(
        input.len(),
        in_shape,
        weight.len(),
        w_shape,
        p,
        epilogue,
        out.len(),
    );
    let epi = epilogue;
    if out.is_empty() {
        return;
    }
    let bias = epilogue.bias;
    let ([n, c, h, w], [o, _, kh, kw], groups) = (in_shape, w_shape, p.groups);
    let (cg, ow) = (g.cg, g.ow);
    let hw = h * w;
    let plane = g.p();
    let macs = out.len().saturating_mul(g.k());
    let big = macs > PARALLEL_THRESHOLD;

    if cg == 1 && groups > 1 {
        // Depthwise (possibly with a channel multiplier): output channel `oc`
        // reads input channel `oc / og`.
        let khw = kh * kw;
        let layout = DepthwiseLayout::new(&g);
        // Large planes finish row by row while each row is in cache; small ones a run of planes
        // at a time (a net's last stages have 2×2 planes: a call per row would cost more than it).
        let by_row = plane > EPILOGUE_CHUNK;
        let planes = if by_row { 1 } else { EPILOGUE_CHUNK / plane };
        let tiny = (plane * khw <= TINY_DEPTHWISE_TAPS).then(|| TinyDepthwise::new(&g));
        let run = |chunk: usize, out_planes: &mut [T], scratch: &mut Vec<T>| {
            let first = chunk * planes;
            for (k, out_plane) in out_planes.chunks_mut(plane).enumerate() {
                let idx = first + k;
                let (b_i, oc) = (idx / o, idx % o);
                let ci = oc / g.og;
                let inp = &input[(b_i * c + ci) * hw..(b_i * c + ci + 1) * hw];
                let wk = &weight[oc * khw..(oc + 1) * khw];
                let bv = bias.map_or(T::ZERO, |b| b[oc]);
                if let Some(t) = &tiny {
                    t.run(inp, wk, bv, out_plane);
                    continue;
                }
                let finish = |y: usize, row: &mut [T]| {
                    if by_row && !epi.bias_only() {
                        epi.finish(oc, idx * plane + y * ow, None, true, row)
                    }
                };
                depthwise_run(isa, inp, wk, bv, &g, &layout, out_plane, &finish, scratch);
            }
            if !by_row && !epi.bias_only() {
                epi.finish_rows(first, first * plane, true, out_planes, plane, o);
            }
        };
        if big {
            out.par_chunks_mut(plane * planes)
                .enumerate()
                .for_each_init(Vec::new, |scratch, (i, op)| run(i, op, scratch));
        } else {
            let mut scratch = Vec::new();
            for (i, op) in out.chunks_mut(plane * planes).enumerate() {
                run(i, op, &mut scratch);
            }
        }
        return;
    }

    let k = g.k();
    let block = g.og * plane;
    let items = n * groups;
    // Slices of one (batch, group) item: input channels, weights; and its output position.
    let item_args = |idx: usize| {
        let (b_i, gi) = (idx / groups, idx % groups);
        let in_off = (b_i * c + gi * cg) * hw;
        (
            &input[in_off..in_off + cg * hw],
            &weight[gi * g.og * k..(gi + 1) * g.og * k],
            ItemPos {
                oc0: gi * g.og,
                at: idx * block,
            },
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
            let (inp, wgt, pos) = item_args(idx);
            conv_group_gemm(inp, wgt, epi, pos, &g, ob, col, parallel);
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
        let (inp, wgt, pos) = item_args(idx);
        let q0 = t * tile;
        let q1 = (q0 + tile).min(plane);
        conv_tile(inp, wgt, epi, pos, &g, q0, q1, &mut rows, scratch);
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
            // 1x1 on 2x2 planes (EfficientNet's last stages): epilogue rows of 4, batched
            (
                [2, 24, 2, 2],
                [300, 24, 1, 1],
                params([1, 1], [0, 0], [1, 1], 1),
            ),
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

    /// Depthwise geometries for the specialised row kernels and their borders.
    fn depthwise_cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams)> {
        let dw = |is: [usize; 4], k: [usize; 2], s, p, d| {
            let c = is[1];
            (is, [c, 1, k[0], k[1]], params(s, p, d, c))
        };
        vec![
            dw([1, 3, 13, 11], [3, 3], [2, 2], [1, 1], [1, 1]),
            dw([2, 2, 12, 12], [3, 3], [2, 2], [1, 1], [1, 1]),
            dw([1, 3, 9, 10], [5, 5], [2, 2], [2, 2], [1, 1]),
            dw([1, 2, 11, 13], [5, 5], [1, 1], [2, 2], [1, 1]),
            dw([1, 2, 10, 9], [7, 7], [1, 1], [3, 3], [1, 1]),
            dw([1, 2, 15, 16], [7, 7], [2, 2], [3, 3], [1, 1]),
            dw([1, 2, 6, 7], [3, 3], [1, 1], [0, 0], [1, 1]),
            dw([1, 2, 8, 9], [5, 5], [1, 1], [1, 1], [1, 1]),
            dw([1, 2, 8, 9], [3, 3], [2, 2], [0, 0], [1, 1]),
            dw([1, 2, 8, 9], [5, 5], [2, 1], [0, 2], [1, 1]),
            // kernel as wide as / wider than the input: no interior columns
            dw([1, 3, 2, 2], [3, 3], [2, 2], [1, 1], [1, 1]),
            dw([1, 2, 3, 3], [5, 5], [1, 1], [2, 2], [1, 1]),
            dw([1, 2, 5, 1], [3, 3], [1, 1], [1, 1], [1, 1]),
            dw([1, 2, 4, 4], [5, 5], [2, 2], [2, 2], [1, 1]),
            // vertical stride / dilation only (horizontal still takes the fast path)
            dw([1, 2, 12, 9], [3, 3], [3, 1], [2, 1], [2, 1]),
            dw([1, 2, 12, 9], [3, 5], [2, 1], [1, 2], [1, 1]),
            // horizontal dilation: generic path
            dw([1, 2, 12, 13], [3, 3], [1, 2], [2, 2], [1, 2]),
            // rows wider than the stride-2 chunk (several chunks and a remainder)
            dw([1, 2, 3, 301], [3, 3], [2, 2], [1, 1], [1, 1]),
            dw([1, 2, 3, 300], [5, 5], [2, 2], [2, 2], [1, 1]),
            dw([1, 2, 2, 200], [3, 3], [1, 1], [1, 1], [1, 1]),
            // MobileNet-like, parallel
            dw([1, 16, 56, 56], [3, 3], [2, 2], [1, 1], [1, 1]),
            dw([2, 24, 14, 14], [5, 5], [1, 1], [2, 2], [1, 1]),
            // several bands of output rows (DW_BAND_LANES), a partial last band
            dw([1, 2, 70, 70], [3, 3], [1, 1], [1, 1], [1, 1]),
            dw([1, 2, 131, 33], [5, 5], [2, 2], [2, 2], [1, 1]),
            // phase planes for stride 3 and for stride with dilation
            dw([1, 2, 17, 19], [3, 3], [3, 3], [1, 1], [1, 1]),
            dw([1, 2, 20, 21], [3, 3], [2, 2], [2, 2], [2, 2]),
            dw([1, 2, 20, 21], [3, 5], [2, 3], [1, 3], [3, 2]),
            // tiny planes (TinyDepthwise), runs of planes crossing a batch item's end
            dw([2, 300, 2, 2], [5, 5], [1, 1], [2, 2], [1, 1]),
            dw([1, 40, 4, 4], [3, 3], [2, 2], [1, 1], [1, 1]),
            // channel multiplier 2
            (
                [1, 3, 9, 9],
                [6, 1, 3, 3],
                params([2, 2], [1, 1], [1, 1], 3),
            ),
        ]
    }

    const ACTIVATIONS: [Activation; 11] = [
        Activation::Identity,
        Activation::Relu,
        Activation::RELU6,
        Activation::Clamp {
            min: -0.5,
            max: 0.25,
        },
        Activation::HardSwish,
        Activation::HardSigmoid,
        Activation::Silu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
        Activation::GeluTanh,
    ];

    #[test]
    fn depthwise_matches_naive() {
        let mut rng = Lcg::new(7);
        for (is, ws, p) in depthwise_cases() {
            let input = rng.vec_f64(is.iter().product());
            let weight = rng.vec_f64(ws.iter().product());
            let bias = rng.vec_f64(ws[0]);
            let want = naive(&input, is, &weight, ws, Some(&bias), &p);
            let ctx = format!("in={is:?} w={ws:?} {p:?}");
            let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                let ctx = format!("{ctx} {isa:?}");
                let mut out = vec![f64::NAN; want.len()];
                let epi = Epilogue::with_bias(Some(&bias[..]));
                conv2d_fused_with::<f64>(&input, is, &weight, ws, &p, &epi, &mut out, isa);
                assert_close_f64(&out, &want, &ctx);
                let mut out32 = vec![f32::NAN; want.len()];
                let bias32 = f(&bias);
                let epi32 = Epilogue::with_bias(Some(&bias32[..]));
                conv2d_fused_with::<f32>(
                    &f(&input),
                    is,
                    &f(&weight),
                    ws,
                    &p,
                    &epi32,
                    &mut out32,
                    isa,
                );
                assert_close_f32(&out32, &want, &ctx);
            }
        }
    }

    /// Every path (depthwise fast / generic, GEMM in place, tiled, point-wise) with each
    /// activation, with and without bias and residual, against the naive convolution followed by
    /// the residual add and the activation.
    #[test]
    fn conv2d_fused_matches_naive() {
        let mut rng = Lcg::new(11);
        let mut all = cases();
        all.extend(depthwise_cases());
        for (i, (is, ws, p)) in all.into_iter().enumerate() {
            let input = rng.vec_f64(is.iter().product());
            let weight = rng.vec_f64(ws.iter().product());
            let bias = rng.vec_f64(ws[0]);
            let [oh, ow] = conv2d_out_hw([is[2], is[3]], [ws[2], ws[3]], &p).unwrap();
            let out_len = is[0] * ws[0] * oh * ow;
            let residual = rng.vec_f64(out_len);
            let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let (input32, weight32, bias32, residual32) =
                (f(&input), f(&weight), f(&bias), f(&residual));
            for (j, act) in ACTIVATIONS.into_iter().enumerate() {
                // All four bias / residual combinations for a few activations, else both.
                let combos: &[(bool, bool)] = if (i + j) % 4 == 0 {
                    &[(false, false), (true, false), (false, true), (true, true)]
                } else {
                    &[(true, true)]
                };
                for &(with_bias, with_res) in combos {
                    let ctx =
                        format!("in={is:?} w={ws:?} {p:?} {act:?} bias={with_bias} res={with_res}");
                    let mut want = naive(&input, is, &weight, ws, with_bias.then_some(&bias), &p);
                    if with_res {
                        for (w, r) in want.iter_mut().zip(&residual) {
                            *w += r;
                        }
                    }
                    act.apply_f64(&mut want);

                    let epi = Epilogue {
                        bias: with_bias.then_some(&bias[..]),
                        residual: with_res.then_some(&residual[..]),
                        activation: act,
                    };
                    let mut out = vec![f64::NAN; out_len];
                    conv2d_fused::<f64>(&input, is, &weight, ws, &p, &epi, &mut out);
                    assert_close_f64(&out, &want, &ctx);

                    let epi32 = Epilogue {
                        bias: with_bias.then_some(&bias32[..]),
                        residual: with_res.then_some(&residual32[..]),
                        activation: act,
                    };
                    let mut out32 = vec![f32::NAN; out_len];
                    conv2d_fused::<f32>(&input32, is, &weight32, ws, &p, &epi32, &mut out32);
                    assert_close_f32(&out32, &want, &ctx);
                    // The portable build of the depthwise kernels.
                    let mut out32 = vec![f32::NAN; out_len];
                    conv2d_fused_with::<f32>(
                        &input32,
                        is,
                        &weight32,
                        ws,
                        &p,
                        &epi32,
                        &mut out32,
                        Isa::Portable,
                    );
                    assert_close_f32(&out32, &want, &ctx);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "residual has")]
    fn bad_residual_panics() {
        let mut out = vec![0.0f32; 4];
        let res = [0.0f32; 3];
        let epi = Epilogue {
            residual: Some(&res[..]),
            ..Epilogue::default()
        };
        conv2d_fused::<f32>(
            &[0.0; 4],
            [1, 1, 2, 2],
            &[1.0],
            [1, 1, 1, 1],
            &Conv2dParams::default(),
            &epi,
            &mut out,
        );
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

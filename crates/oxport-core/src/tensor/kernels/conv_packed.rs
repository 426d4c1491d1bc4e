//! f32 convolution as a GEMM on the AVX-512 micro-kernel of [`sgemm`](super::sgemm), with the
//! weight packed once: `out[og × P] = W[og × K] · col[K × P]` per `(batch, group)` item.
//!
//! The `gemm` crate packs both operands on every call, the weight included, after im2col wrote the
//! `K × P` matrix (9× the input for a 3×3 kernel) — on resnet18's 3×3 layers it runs at ~150–170
//! GFLOP/s here. Here the weight is packed when a plan is made ([`PackedConvWeight`]: K block by
//! K block, `MR` output channels per panel, `[step][MR]`, so a step broadcasts eight consecutive
//! values and a block of A is one run in memory), and B is not copied at all for stride 1:
//!
//! * **Stride 1** (any kernel, padding, dilation, groups): the input is copied once into
//!   zero-padded `Hp × Wp` planes. Output pixel `(y, x)` at padded position `q = y·Wp + x` reads
//!   tap `(ci, ky, kx)` at `q + ci·Hp·Wp + ky·dH·Wp + kx·dW`, so for any panel of `NR`
//!   consecutive positions each step of K is one run of input values, which the micro-kernel reads
//!   in place through a table of per-step offsets. The `Wp − oW` positions past each output row
//!   are computed and dropped when the block is copied out through the epilogue.
//! * **Other strides**: B is packed straight from the input into the micro-kernel's panel order
//!   (`[k][NR]` per panel of `NR` output pixels: the im2col, written once), 16 columns per masked
//!   load and store, padding lanes masked off; strided taps gather.
//!
//! A narrow last panel is 16 or 32 wide and its kernel stores through a mask. Work units are
//! `(item, tile of positions, range of output-channel panels)`; per K block of [`KC`], per B panel,
//! every A panel of the range. Units run on the rayon pool when the convolution is big; with too
//! few tiles for the threads, the channels split too. Measured (`cargo bench -p oxport-core
//! --bench conv -- 'conv/'`, 2 threads, against the `gemm` path): resnet18's 3×3 layers 1.05–1.4×,
//! its 7×7/2 stem 1.5×, resnext's grouped 3×3 1.7×, 512×7×7 even; 1×1 convolutions lose (0.6–0.9×)
//! and stay on the `gemm` crate.
use rayon::prelude::*;

use super::conv::{geometry, Conv2dParams, Epilogue, Geom};
use super::matmul::PARALLEL_THRESHOLD;
use super::sgemm::{MR, NR};

/// Depth of one K block: a B panel (`KC × NR`, 12 KiB) and the A panels of up to 64 channels
/// (16 KiB) stay in L1 together.
const KC: usize = 64;
use super::simd::Isa;

/// A convolution weight `[O, C / groups, kH, kW]` packed for [`conv2d_fused_packed`].
#[derive(Debug, Clone)]
pub struct PackedConvWeight {
    w_shape: [usize; 4],
    groups: usize,
    /// Output channels per group.
    og: usize,
    /// `C / groups · kH · kW`.
    k: usize,
    /// `[group][K block of KC][panel of MR output channels][step][MR]`, the channels past `og`
    /// zero.
    data: Vec<f32>,
}

impl PackedConvWeight {
    /// Packs a contiguous `[O, C / groups, kH, kW]` weight.
    ///
    /// # Panics
    /// If `groups` does not divide `O` or `weight` is not `w_shape`'s length.
    pub fn new(weight: &[f32], w_shape: [usize; 4], groups: usize) -> PackedConvWeight {
        let [o, cg, kh, kw] = w_shape;
        assert!(
            groups > 0 && o % groups == 0,
            "PackedConvWeight: {o} output channels in {groups} groups"
        );
        let k = cg * kh * kw;
        assert_eq!(
            weight.len(),
            o * k,
            "PackedConvWeight: weight is not {w_shape:?}"
        );
        let og = o / groups;
        let mp = og.div_ceil(MR);
        let mut data = vec![0f32; groups * mp * k * MR];
        for (oc, row) in weight.chunks_exact(k.max(1)).enumerate().take(o) {
            let (gi, ol) = (oc / og, oc % og);
            for (kk, &v) in row.iter().enumerate() {
                let pc = kk / KC * KC;
                let kc = KC.min(k - pc);
                data[Self::at(gi, mp, k, ol / MR, pc, kc) + (kk - pc) * MR + ol % MR] = v;
            }
        }
        PackedConvWeight {
            w_shape,
            groups,
            og,
            k,
            data,
        }
    }

    /// The weight's shape, `[O, C / groups, kH, kW]`.
    pub fn w_shape(&self) -> [usize; 4] {
        self.w_shape
    }

    /// Where steps `pc..pc + kc` (a K block) of panel `ip` start: K block by K block, all panels
    /// of a block in a row, so a block of A streams from memory as one run.
    fn at(gi: usize, mp: usize, k: usize, ip: usize, pc: usize, kc: usize) -> usize {
        (gi * mp * k + pc * mp + ip * kc) * MR
    }

    /// Steps `pc..pc + kc` (a K block of [`KC`], or the last) of panel `ip` of group `gi`.
    fn panel(&self, gi: usize, ip: usize, pc: usize, kc: usize) -> &[f32] {
        let mp = self.og.div_ceil(MR);
        &self.data[Self::at(gi, mp, self.k, ip, pc, kc)..][..kc * MR]
    }
}

/// Largest packed B tile of a work unit: a tile's panels are streamed through L1 one at a time,
/// so it need not stay in L2; larger tiles read the weight fewer times.
const B_TILE_BYTES: usize = 2 << 20;

/// Width of a B panel holding `cols` pixels: the micro-kernel's 16-lane vectors it needs.
fn panel_width(cols: usize) -> usize {
    cols.div_ceil(16) * 16
}

/// Fused 2-D convolution ([`conv2d_fused`](super::conv::conv2d_fused)'s contract) with a packed
/// weight, on the AVX-512 micro-kernel; `isa` below AVX-512 runs the generic kernel on the
/// unpacked weight it is given instead.
///
/// # Panics
/// As [`conv2d_fused`](super::conv::conv2d_fused), or if `packed` is not `weight` packed for
/// `p.groups`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_fused_packed(
    isa: Isa,
    input: &[f32],
    in_shape: [usize; 4],
    weight: &[f32],
    packed: &PackedConvWeight,
    p: &Conv2dParams,
    epilogue: &Epilogue<'_, f32>,
    out: &mut [f32],
) {
    let w_shape = packed.w_shape;
    assert_eq!(
        packed.groups, p.groups,
        "conv2d_fused_packed: weight packed for other groups"
    );
    if isa.usable() != Isa::Avx512 {
        return super::conv::conv2d_fused(input, in_shape, weight, w_shape, p, epilogue, out);
    }
    let g = geometry(
        input.len(),
        in_shape,
        weight.len(),
        w_shape,
        p,
        epilogue,
        out.len(),
    );
    if out.is_empty() {
        return;
    }
    run(input, in_shape, packed, &g, epilogue, out);
}

/// One work unit: item, pixel columns `q0..q1`, output-channel panels `ips`.
#[derive(Clone, Debug)]
struct Unit {
    item: usize,
    q0: usize,
    q1: usize,
    ips: std::ops::Range<usize>,
}

thread_local! {
    /// Each thread's B tile or C block, kept between calls: a fresh one costs page faults and
    /// zeroing.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The calling thread's zero-padded input for the direct path.
    static PADDED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The work units over `items` items of `cols` output columns each, `k` deep, `og` channels.
fn units(items: usize, cols: usize, k: usize, og: usize, threads: usize) -> Vec<Unit> {
    let mp = og.div_ceil(MR);
    // Pixel tiles: whole panels, the packed tile within B_TILE_BYTES, evened out.
    let cap = (B_TILE_BYTES / 4 / k.max(1) / NR).max(1) * NR;
    let mut ntiles = cols.div_ceil(cap);
    let want = 2 * threads;
    if items * ntiles < want {
        // Finer tiles while they stay whole panels; then the channels split.
        ntiles = ntiles.max(want.div_ceil(items)).min(cols.div_ceil(NR));
    }
    let tile = cols.div_ceil(ntiles).div_ceil(NR) * NR;
    let ntiles = cols.div_ceil(tile);
    let chunks = if threads > 1 && items * ntiles < want {
        want.div_ceil(items * ntiles).min(mp)
    } else {
        1
    };
    let per_chunk = mp.div_ceil(chunks);
    let mut units = Vec::with_capacity(items * ntiles * chunks);
    for item in 0..items {
        for t in 0..ntiles {
            for ch in 0..chunks {
                let ips = ch * per_chunk..((ch + 1) * per_chunk).min(mp);
                if !ips.is_empty() {
                    let q0 = t * tile;
                    units.push(Unit {
                        item,
                        q0,
                        q1: (q0 + tile).min(cols),
                        ips,
                    });
                }
            }
        }
    }
    units
}

/// Runs `f` on every unit, on the rayon pool when `threads > 1`, with the thread's scratch.
fn for_units(units: Vec<Unit>, threads: usize, f: impl Fn(&mut Vec<f32>, Unit) + Sync) {
    let f = |u: Unit| SCRATCH.with_borrow_mut(|s| f(s, u));
    if threads > 1 && units.len() > 1 {
        units.into_par_iter().for_each(f);
    } else {
        units.into_iter().for_each(f);
    }
}

fn run(
    input: &[f32],
    in_shape: [usize; 4],
    w: &PackedConvWeight,
    g: &Geom,
    epi: &Epilogue<'_, f32>,
    out: &mut [f32],
) {
    let [n, c, h, wd] = in_shape;
    let groups = w.groups;
    let (k, plane) = (g.k(), g.p());
    let big = out.len().saturating_mul(k) > PARALLEL_THRESHOLD;
    let threads = if big {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    if g.sh == 1 && g.sw == 1 {
        return run_direct(input, in_shape, w, g, epi, out, threads);
    }
    let units = units(n * groups, plane, k, g.og, threads);
    let shared = SharedOut::new(out, plane);
    let hw = h * wd;
    for_units(units, threads, |scratch, u| {
        let (b_i, gi) = (u.item / groups, u.item % groups);
        let in_off = (b_i * c + gi * g.cg) * hw;
        let inp = &input[in_off..in_off + g.cg * hw];
        unit(inp, w, g, epi, gi, u, &shared, scratch);
    });
}

/// Stride-1 convolutions without im2col: the input is copied once into zero-padded planes
/// (`Hp × Wp`), where output pixel `(y, x)` at padded position `q = y·Wp + x` reads tap
/// `(ci, ky, kx)` at `q + ci·Hp·Wp + ky·dH·Wp + kx·dW` — one run of consecutive values per tap for
/// any panel of positions. The micro-kernel reads B there through a table of those offsets; the
/// `Wp − oW` columns past each output row are computed and dropped when the block is copied out
/// through the epilogue.
fn run_direct(
    input: &[f32],
    in_shape: [usize; 4],
    w: &PackedConvWeight,
    g: &Geom,
    epi: &Epilogue<'_, f32>,
    out: &mut [f32],
    threads: usize,
) {
    let [n, _, h, wd] = in_shape;
    let groups = w.groups;
    let (k, og, plane) = (g.k(), g.og, g.p());
    let (hp, wp) = (h + 2 * g.ph, wd + 2 * g.pw);
    let positions = g.oh * wp;
    let khw = g.kh * g.kw;
    let offsets: Vec<usize> = (0..k)
        .map(|r| {
            let (ci, ky, kx) = (r / khw, (r / g.kw) % g.kh, r % g.kw);
            ci * hp * wp + ky * g.dh * wp + kx * g.dw
        })
        .collect();
    let item_len = g.cg * hp * wp;
    let items = n * groups;
    // A last panel reads up to NR positions past the last one (and a vector more).
    let len = items * item_len + NR + 16;
    PADDED.with_borrow_mut(|padded| {
        padded.clear();
        padded.resize(len, 0.0);
        let hw = h * wd;
        for (ch, src) in input.chunks_exact(hw).enumerate() {
            let dst = &mut padded[ch * hp * wp..][..hp * wp];
            for (y, row) in src.chunks_exact(wd).enumerate() {
                dst[(y + g.ph) * wp + g.pw..][..wd].copy_from_slice(row);
            }
        }
        let padded = &padded[..];
        let units = units(items, positions, k, og, threads);
        let shared = SharedOut::new(out, plane);
        for_units(units, threads, |cblock, u| {
            let gi = u.item % groups;
            let base = u.item * item_len;
            let cols = u.q1 - u.q0;
            let panels = cols.div_ceil(NR);
            let (o0, o1) = (u.ips.start * MR, (u.ips.end * MR).min(og));
            let pitch = panels * NR;
            if cblock.len() < (o1 - o0) * pitch {
                cblock.resize((o1 - o0) * pitch, 0.0);
            }
            assert!(
                base + u.q0 + pitch + offsets.last().copied().unwrap_or(0) <= padded.len(),
                "conv2d_fused_packed: a tap reads past the padded input"
            );
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                let offs = &offsets[pc..pc + kc];
                for jp in 0..panels {
                    let qa = u.q0 + jp * NR;
                    let valid = NR.min(u.q1 - qa);
                    let bp = &padded[base + qa..];
                    for ip in u.ips.clone() {
                        let rows = MR.min(og - ip * MR);
                        let ap = w.panel(gi, ip, pc, kc);
                        let at = &mut cblock[(ip * MR - o0) * pitch..][..rows * pitch];
                        // SAFETY: the CPU has AVX-512 (checked by `conv2d_fused_packed`); `ap` is
                        // `kc` steps of MR values; step kk reads B at `bp[offs[kk]..]` for
                        // 16·⌈valid/16⌉ values, inside the padded input (asserted above: the
                        // largest offset plus the unit's last panel end); `at` is `rows` rows of
                        // the unit's C block, `pitch` apart, each with room for the panel.
                        unsafe {
                            micro(
                                rows,
                                valid.div_ceil(16),
                                kc,
                                ap,
                                bp,
                                Some(offs),
                                at[jp * NR..].as_mut_ptr(),
                                pitch,
                                valid,
                                pc > 0,
                            )
                        };
                    }
                }
            }
            // Copy out the output pixels of positions q0..q1, output row by output row.
            let row0 = u.item * og;
            let (y0, y1) = (u.q0 / wp, (u.q1 - 1) / wp + 1);
            for i in 0..o1 - o0 {
                let oc = o0 + i;
                let src = &cblock[i * pitch..][..cols];
                for y in y0..y1 {
                    let (qa, qb) = ((y * wp).max(u.q0), (y * wp + g.ow).min(u.q1));
                    if qa >= qb {
                        continue;
                    }
                    let at = (row0 + oc) * plane + y * g.ow + (qa - y * wp);
                    shared.rows_mut(
                        row0 + oc,
                        row0 + oc + 1,
                        at % plane,
                        at % plane + qb - qa,
                        |_, dst| {
                            epi.finish(
                                gi * og + oc,
                                at,
                                Some(&src[qa - u.q0..qb - u.q0]),
                                false,
                                dst,
                            )
                        },
                    );
                }
            }
        });
    });
}

/// Packs columns `q0..q1` of one item's im2col matrix into `b`: panels of `NR` pixels (the last
/// one [`panel_width`] wide, its padding columns zero), each `[k][width]`.
fn pack_b(inp: &[f32], g: &Geom, q0: usize, q1: usize, b: &mut Vec<f32>) {
    let k = g.k();
    let cols = q1 - q0;
    let (full, rest) = (cols / NR, cols % NR);
    let len = k * (full * NR + panel_width(rest));
    if b.len() < len {
        b.resize(len, 0.0);
    }
    let b = &mut b[..len];
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only reached on AVX-512 CPUs (`conv2d_fused_packed` checks); `b` holds the tile's
    // panels (sized above).
    unsafe {
        pack_b_avx512(inp, g, q0, q1, b)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (inp, g, b);
        unreachable!("conv2d_fused_packed packs only on AVX-512");
    }
}

/// Where column `q` (from the tile's first) of row `r` lives in the packed tile, and how many
/// columns of that row follow it in the same panel.
#[inline(always)]
fn packed_at(q: usize, r: usize, k: usize, cols: usize) -> (usize, usize) {
    let (jp, lane) = (q / NR, q % NR);
    let width = panel_width(NR.min(cols - jp * NR));
    (
        jp * NR * k + r * width + lane,
        NR.min(cols - jp * NR) - lane,
    )
}

/// Lanes `a..b` (clipped to `0..16`) as a mask.
#[inline(always)]
fn lanes(a: isize, b: isize) -> u16 {
    let (a, b) = (a.clamp(0, 16) as u32, b.clamp(0, 16) as u32);
    let upto = |n: u32| ((1u32 << n) - 1) as u16;
    upto(b) & !upto(a)
}

/// [`pack_b`] on AVX-512: row by row of the im2col matrix, output row by output row, 16 columns
/// at a time with one masked load (lanes outside the input read nothing and are zero: the
/// padding) and one masked store; runs split at panel edges. Strided convolutions gather.
///
/// # Safety
/// The CPU must have avx512f; `b` must hold the tile's panels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_b_avx512(inp: &[f32], g: &Geom, q0: usize, q1: usize, b: &mut [f32]) {
    use std::arch::x86_64::*;
    let k = g.k();
    let cols = q1 - q0;
    let (hw, khw) = (g.h * g.w, g.kh * g.kw);
    let dst = b.as_mut_ptr();
    let stride = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(g.sw as i32),
    );
    for r in 0..k {
        let ci = r / khw;
        let plane = inp[ci * hw..(ci + 1) * hw].as_ptr();
        if g.is_pointwise() {
            let mut t = 0;
            while t < cols {
                let (at, room) = packed_at(t, r, k, cols);
                let n = room.min(cols - t);
                for c in (0..n).step_by(16) {
                    let m = lanes(0, (n - c) as isize);
                    // SAFETY: lanes `m` are columns q0 + t + c.. of the plane (< q1 <= H·W) and of
                    // the panel row at `at` (`packed_at`: within `b`).
                    let v = _mm512_maskz_loadu_ps(m, plane.add(q0 + t + c));
                    _mm512_mask_storeu_ps(dst.add(at + c), m, v);
                }
                t += n;
            }
            continue;
        }
        let (ky, kx) = ((r / g.kw) % g.kh, r % g.kw);
        let offx = (kx * g.dw) as isize - g.pw as isize;
        let (lo, hi) = super::conv::valid_range(g.ow, g.w, g.sw, offx);
        let mut q = q0;
        while q < q1 {
            // One (partial) output row: x in xa..xb of output row y.
            let (y, xa) = (q / g.ow, q % g.ow);
            let xb = g.ow.min(xa + (q1 - q));
            let iy = (y * g.sh + ky * g.dh) as isize - g.ph as isize;
            let row_ok = iy >= 0 && (iy as usize) < g.h;
            let mut x = xa;
            while x < xb {
                let (at, room) = packed_at(q - q0 + (x - xa), r, k, cols);
                let n = room.min(xb - x);
                for c in (0..n).step_by(16) {
                    let xc = (x + c) as isize;
                    let m = lanes(0, (n - c) as isize);
                    let valid = if row_ok {
                        m & lanes(lo as isize - xc, hi as isize - xc)
                    } else {
                        0
                    };
                    // Input column of lane 0 (lanes `valid` are inside the row, the others are
                    // not read: the pointer itself may lie outside the plane).
                    let ix = xc * g.sw as isize + offx;
                    let src = plane.wrapping_offset(iy * g.w as isize + ix);
                    // SAFETY: only lanes `valid` are read, and they lie in input row `iy` (in
                    // `0..H`) at columns in `0..W`; the store is the panel row's lanes `m`.
                    let v = if g.sw == 1 {
                        _mm512_maskz_loadu_ps(valid, src)
                    } else {
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), valid, stride, src)
                    };
                    _mm512_mask_storeu_ps(dst.add(at + c), m, v);
                }
                x += n;
            }
            q += xb - xa;
        }
    }
    // Padding columns of a narrow last panel.
    let rest = cols % NR;
    if rest > 0 {
        let width = panel_width(rest);
        let last = &mut b[(cols / NR) * NR * k..];
        for row in last.chunks_exact_mut(width) {
            row[rest..].fill(0.0);
        }
    }
}

/// Computes one work unit into the output and finishes it through the epilogue.
#[allow(clippy::too_many_arguments)]
fn unit(
    inp: &[f32],
    w: &PackedConvWeight,
    g: &Geom,
    epi: &Epilogue<'_, f32>,
    gi: usize,
    u: Unit,
    out: &SharedOut<'_>,
    b: &mut Vec<f32>,
) {
    let (k, og, plane) = (g.k(), g.og, g.p());
    pack_b(inp, g, u.q0, u.q1, b);
    let row0 = u.item * og;
    let (o0, o1) = (u.ips.start * MR, (u.ips.end * MR).min(og));
    // With only a bias, C starts at it; otherwise the epilogue adds it with the rest.
    let bias_first = epi.bias_only();
    if bias_first {
        out.rows_mut(row0 + o0, row0 + o1, u.q0, u.q1, |i, row| {
            row.fill(epi.bias.map_or(0.0, |bv| bv[gi * og + o0 + i]))
        });
    }
    let cols = u.q1 - u.q0;
    let panels = cols.div_ceil(NR);
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        let accumulate = bias_first || pc > 0;
        for jp in 0..panels {
            let qa = u.q0 + jp * NR;
            let valid = NR.min(u.q1 - qa);
            let width = panel_width(valid);
            let bp = &b[jp * NR * k + pc * width..][..kc * width];
            for ip in u.ips.clone() {
                let rows = MR.min(og - ip * MR);
                let ap = w.panel(gi, ip, pc, kc);
                let at = out.block(row0 + ip * MR, qa, rows, valid);
                // SAFETY: the CPU has AVX-512 (checked by `conv2d_fused_packed`); `ap` is `kc`
                // steps of MR values, `bp` `kc` steps of `width` = 16·⌈valid/16⌉ values; `at` is
                // the unit's own `rows × valid` block of the output, `plane` apart
                // (`SharedOut::block` checked it), and the kernel for `rows` touches only those.
                unsafe {
                    micro(
                        rows,
                        width / 16,
                        kc,
                        ap,
                        bp,
                        None,
                        at,
                        plane,
                        valid,
                        accumulate,
                    )
                };
            }
        }
    }
    if !bias_first {
        out.rows_mut(row0 + o0, row0 + o1, u.q0, u.q1, |i, row| {
            let oc = o0 + i;
            epi.finish(gi * og + oc, (row0 + oc) * plane + u.q0, None, false, row)
        });
    }
}

/// Dispatches to the micro-kernel for `rows` rows and `v` vectors; with `b_offsets`, step `kk`
/// of B is read at `b[b_offsets[kk]..]`.
///
/// # Safety
/// As [`super::sgemm::micro_avx512`] with `PACKED_A`.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn micro(
    rows: usize,
    v: usize,
    kc: usize,
    a: &[f32],
    b: &[f32],
    b_offsets: Option<&[usize]>,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::sgemm::micro_avx512 as m;
        let (a, b) = (a.as_ptr(), b.as_ptr());
        macro_rules! by_rows {
            ($v:literal, $o:literal, $off:expr) => {
                match rows {
                    8 => m::<8, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                    7 => m::<7, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                    6 => m::<6, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                    5 => m::<5, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                    4 => m::<4, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                    3 => m::<3, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                    2 => m::<2, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                    _ => m::<1, $v, true, $o>(kc, a, 0, b, $off, c, ldc, cols, accumulate),
                }
            };
        }
        match (v, b_offsets) {
            (3, None) => by_rows!(3, false, std::ptr::null()),
            (2, None) => by_rows!(2, false, std::ptr::null()),
            (_, None) => by_rows!(1, false, std::ptr::null()),
            (3, Some(o)) => by_rows!(3, true, o.as_ptr()),
            (2, Some(o)) => by_rows!(2, true, o.as_ptr()),
            (_, Some(o)) => by_rows!(1, true, o.as_ptr()),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, v, kc, a, b, b_offsets, c, ldc, cols, accumulate);
        unreachable!("conv2d_fused_packed runs its kernel only on AVX-512");
    }
}

/// The output (`rows × plane`, row-major), written by disjoint blocks from several units at once.
struct SharedOut<'a> {
    ptr: *mut f32,
    rows: usize,
    n: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: the units of one call write disjoint blocks of the output (each its own item, pixel
// tile and channel range), so no element is written by two threads, and the borrow of the output
// outlives them (`for_each` returns when they are done).
unsafe impl Send for SharedOut<'_> {}
// SAFETY: as for `Send`: shared access only ever writes disjoint elements.
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    fn new(out: &'a mut [f32], n: usize) -> Self {
        SharedOut {
            ptr: out.as_mut_ptr(),
            rows: out.len() / n.max(1),
            n,
            _out: std::marker::PhantomData,
        }
    }

    /// The first element of the `rows × cols` block at row `i0`, column `j0`, checked to lie in
    /// the output.
    fn block(&self, i0: usize, j0: usize, rows: usize, cols: usize) -> *mut f32 {
        assert!(
            i0 + rows <= self.rows && j0 + cols <= self.n,
            "SharedOut: block out of the output"
        );
        // SAFETY: in bounds (asserted above).
        unsafe { self.ptr.add(i0 * self.n + j0) }
    }

    /// Runs `f(i, row)` on columns `j0..j1` of rows `i0 + i` for `i0 + i < i1`.
    fn rows_mut(&self, i0: usize, i1: usize, j0: usize, j1: usize, f: impl Fn(usize, &mut [f32])) {
        assert!(
            i0 <= i1 && i1 <= self.rows && j0 <= j1 && j1 <= self.n,
            "SharedOut: rows out of the output"
        );
        for i in i0..i1 {
            // SAFETY: row i, columns j0..j1 are inside the output (asserted above); the calling
            // unit owns them (see the `Send`/`Sync` impls).
            let row =
                unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.n + j0), j1 - j0) };
            f(i - i0, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::activation::Activation;
    use super::super::conv::conv2d_fused;
    use super::*;

    /// The packed kernel gives the generic kernel's results (within f32 summation-order error) on
    /// every kind of geometry, epilogue, tile split and channel split.
    #[test]
    fn matches_the_generic_kernel() {
        if !Isa::Avx512.is_available() {
            eprintln!("no AVX-512 on this CPU: the packed path falls back (tested below)");
        }
        let val = |i: usize| ((i * 7919 % 997) as f32 - 498.0) / 400.0;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // (input NCHW, weight OIhw, stride, padding, dilation, groups)
        type Case = ([usize; 4], [usize; 4], usize, usize, usize, usize);
        let cases: &[Case] = &[
            ([1, 3, 9, 9], [5, 3, 3, 3], 1, 1, 1, 1),
            ([2, 16, 14, 14], [24, 16, 3, 3], 1, 1, 1, 1),
            ([1, 64, 56, 56], [64, 64, 3, 3], 1, 1, 1, 1),
            ([1, 32, 7, 7], [70, 32, 3, 3], 1, 1, 1, 1),
            ([1, 8, 7, 7], [9, 8, 1, 1], 1, 0, 1, 1),
            ([1, 3, 40, 40], [16, 3, 7, 7], 2, 3, 1, 1),
            ([1, 16, 20, 20], [32, 16, 1, 1], 2, 0, 1, 1),
            ([2, 32, 12, 12], [32, 4, 3, 3], 1, 1, 1, 8),
            ([1, 12, 11, 13], [12, 4, 3, 3], 2, 2, 2, 3),
            ([1, 600, 6, 6], [20, 600, 3, 3], 1, 1, 1, 1),
        ];
        for &(is, ws, s, pd, d, groups) in cases {
            let p = Conv2dParams {
                stride: [s, s],
                padding: [pd, pd],
                dilation: [d, d],
                groups,
            };
            let [oh, ow] = super::super::conv::conv2d_out_hw([is[2], is[3]], [ws[2], ws[3]], &p)
                .expect("valid case");
            let os = [is[0], ws[0], oh, ow];
            let len = |s: [usize; 4]| s.iter().product::<usize>();
            let x: Vec<f32> = (0..len(is)).map(|i| val(i + 1)).collect();
            let wt: Vec<f32> = (0..len(ws)).map(|i| val(i + 5)).collect();
            let bias: Vec<f32> = (0..ws[0]).map(|i| val(i + 11)).collect();
            let res: Vec<f32> = (0..len(os)).map(|i| val(i + 13)).collect();
            let packed = PackedConvWeight::new(&wt, ws, groups);
            for epi in [
                Epilogue::default(),
                Epilogue::with_bias(Some(&bias)),
                Epilogue {
                    bias: Some(&bias),
                    residual: Some(&res),
                    activation: Activation::Relu,
                },
            ] {
                let mut want = vec![0f32; len(os)];
                conv2d_fused(&x, is, &wt, ws, &p, &epi, &mut want);
                for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                    for threads in [1, 3] {
                        let mut got = vec![f32::NAN; len(os)];
                        let mut go =
                            || conv2d_fused_packed(isa, &x, is, &wt, &packed, &p, &epi, &mut got);
                        if threads == 1 {
                            go()
                        } else {
                            pool.install(go)
                        }
                        for (i, (&a, &b)) in want.iter().zip(&got).enumerate() {
                            assert!(
                                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                                "{is:?} {ws:?} s{s} p{pd} d{d} g{groups} {isa:?} t{threads} at {i}: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}

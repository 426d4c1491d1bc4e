//! f32 matrix products against a constant right-hand side packed once ([`PackedB`]): the weights of
//! a linear layer. The `gemm` crate packs both operands on every call; with few rows (a transformer's
//! tokens) packing the weight costs as much as the product, and streams the whole weight through
//! memory twice. Here the weight is laid out once in the micro-kernel's order and each call reads
//! the small left-hand side in place.
//!
//! Blocking: B as `NR`-column panels, each all of K (`[panel][k][NR]`), walked panel by panel in K
//! blocks of [`KC`] (one block = 24 KiB, in L1 while the A panels stream past it), so a weight is
//! read once, front to back; A is read where it is, `MR` rows at a time (in L2 for the few rows
//! this is for). Edge panels of B are zero-padded; only the valid part of C is written. The
//! micro-kernel keeps an `MR × NR` = 8 × 48 block of C in 24 AVX-512 registers (per step of K:
//! three vector loads of B, eight broadcasts of A, 24 fused multiply-adds), accumulated in place
//! in C; a last partial panel of A runs a kernel for its own row count. Without AVX-512 a
//! portable loop over the same panels runs (plans pack weights only where [`simd::active`] is
//! AVX-512, so that path is for tests and forced ISAs). Calls with enough work split between
//! rayon tasks: by rows of A when B fits in L2 (every task reads all of it), else by column
//! panels (each task streams its part of B).
//!
//! `benches/kernels.rs` (`linear_packed`) compares it with the `gemm` crate on transformer shapes.
use super::simd::Isa;
use rayon::prelude::*;

/// Rows of A (and of C) per micro-kernel call.
pub const MR: usize = 8;
/// Columns of B (and of C) per micro-kernel call: three 16-lane vectors.
pub const NR: usize = 48;
/// Depth of one K block: a packed B panel is `KC × NR` f32 = 24 KiB, half of L1.
pub const KC: usize = 128;

/// A `k × n` matrix packed for [`sgemm_packed_b`].
#[derive(Debug, Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs the row-major `k × n` matrix `b` (row stride `ldb`).
    ///
    /// # Panics
    /// If `b` is too short.
    pub fn new(b: &[f32], ldb: usize, k: usize, n: usize) -> PackedB {
        assert!(
            k == 0 || n == 0 || (b.len() >= (k - 1) * ldb + n && ldb >= n),
            "PackedB: B too short for {k} x {n}"
        );
        let np = n.div_ceil(NR);
        let mut data = vec![0f32; k * np * NR];
        // `max(1)`: an empty B may come with a row stride of 0.
        for (p, row) in b.chunks(ldb.max(1)).take(k).enumerate() {
            for (jp, chunk) in row[..n].chunks(NR).enumerate() {
                data[(jp * k + p) * NR..][..chunk.len()].copy_from_slice(chunk);
            }
        }
        PackedB { k, n, data }
    }

    /// Rows (K).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns (N).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Panel `jp` of the K block starting at `pc` (`kc` deep).
    fn panel(&self, pc: usize, kc: usize, jp: usize) -> &[f32] {
        &self.data[(jp * self.k + pc) * NR..][..kc * NR]
    }
}

/// `C = A·B` (`accumulate`: `C += A·B`) for a row-major `m × k` `A` (row stride `lda`), a packed
/// `B` and a contiguous row-major `m × n` `C`, with the code for `isa`; split between the rayon
/// pool's threads when `parallel` and the product is big enough.
///
/// # Panics
/// If `a` or `c` is too short.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_packed_b(
    isa: Isa,
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedB,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    sgemm_packed_b_then(isa, m, a, lda, b, c, accumulate, parallel, None)
}

/// What [`sgemm_packed_b_then`] runs on each finished part of C: `f(row, j0)` on a run of one
/// row's elements starting at column `j0` (a bias added, an activation applied), by the task that
/// computed it, while it is still in cache.
pub type Epilogue<'a> = &'a (dyn Fn(&mut [f32], usize) + Sync);

/// [`sgemm_packed_b`], then `epilogue` over every element of C once its product is complete.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_packed_b_then(
    isa: Isa,
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedB,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
    epilogue: Option<Epilogue<'_>>,
) {
    let (k, n) = (b.k, b.n);
    assert_eq!(c.len(), m * n, "sgemm_packed_b: C is not {m} x {n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        if let Some(f) = epilogue {
            c.chunks_exact_mut(n).for_each(|row| f(row, 0));
        }
        return;
    }
    assert!(
        a.len() >= (m - 1) * lda + k && lda >= k,
        "sgemm_packed_b: A too short for {m} x {k}"
    );
    let (mp, np) = (m.div_ceil(MR), n.div_ceil(NR));
    let avx512 = isa.usable() == Isa::Avx512;
    // One task: the blocks of C in row panels `ips` × column panels `jps`. Column panel by column
    // panel, all of K: B is read once, front to back (one stream from memory for a weight too big
    // for the caches); the micro-kernel reads A's rows where they are (in L1/L2 for the few rows
    // this is for: packing them cost more than it saved, up to 1.6× at 192×192×192).
    let block = |ips: std::ops::Range<usize>, jps: std::ops::Range<usize>, c: &SharedC<'_>| {
        for jp in jps.clone() {
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                let overwrite = pc == 0 && !accumulate;
                let bp = b.panel(pc, kc, jp);
                let (j0, nr) = (jp * NR, NR.min(n - jp * NR));
                for ip in ips.clone() {
                    let (i0, mr) = (ip * MR, MR.min(m - ip * MR));
                    let a_rows = &a[i0 * lda + pc..(i0 + mr - 1) * lda + pc + kc];
                    c.tile(i0, j0, mr, nr, |tile, ldc| {
                        micro(avx512, mr, kc, a_rows, lda, bp, tile, ldc, !overwrite)
                    });
                }
            }
        }
    };
    let work = m * n * k;
    let shared = SharedC::new(c, n);
    let threads = rayon::current_num_threads();
    // The epilogue over the rows of panels `ips`, columns of panels `jps`, once they are final.
    let finish = |ips: std::ops::Range<usize>, jps: std::ops::Range<usize>, c: &SharedC<'_>| {
        if let Some(f) = epilogue {
            let (j0, j1) = (jps.start * NR, (jps.end * NR).min(n));
            c.rows_mut(ips.start * MR, (ips.end * MR).min(m), j0, j1, |row| {
                f(row, j0)
            });
        }
    };
    if !parallel || work < PARALLEL_MIN_MACS || threads < 2 || (mp < 2 && np < 2) {
        block(0..mp, 0..np, &shared);
        finish(0..mp, 0..np, &shared);
        return;
    }
    // Rows split when B is small enough to be read from cache by every task; otherwise columns
    // (each task streams only its part of B).
    let by_rows = (b.data.len() * 4 <= ROW_SPLIT_MAX_B_BYTES && mp >= 2 * threads) || np < 2;
    let (parts, tasks) = if by_rows {
        (mp, threads.min(mp))
    } else {
        (np, threads.min(np))
    };
    let per = parts.div_ceil(tasks);
    (0..tasks).into_par_iter().for_each(|t| {
        let mine = t * per..((t + 1) * per).min(parts);
        // Each task writes only its own blocks of C.
        if by_rows {
            block(mine.clone(), 0..np, &shared);
            finish(mine, 0..np, &shared);
        } else {
            block(0..mp, mine.clone(), &shared);
            finish(0..mp, mine, &shared);
        }
    });
}

/// B packed up to this size is shared by tasks that split the rows of A (it stays in L2).
const ROW_SPLIT_MAX_B_BYTES: usize = 1 << 20;

/// Products of at least this many multiply-adds are split between rayon tasks.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// A row-major C, written by disjoint blocks from several tasks at once.
struct SharedC<'a> {
    ptr: *mut f32,
    rows: usize,
    n: usize,
    _c: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: a `SharedC` is shared between the tasks of one `sgemm_packed_b` call, which write
// disjoint blocks (each task its own row or column panels), so no element is written by two
// threads, and the borrow of C outlives the tasks (`for_each` returns when they are done).
unsafe impl Send for SharedC<'_> {}
// SAFETY: as for `Send`: shared access only ever writes disjoint elements.
unsafe impl Sync for SharedC<'_> {}

impl<'a> SharedC<'a> {
    fn new(c: &'a mut [f32], n: usize) -> Self {
        SharedC {
            ptr: c.as_mut_ptr(),
            rows: c.len() / n.max(1),
            n,
            _c: std::marker::PhantomData,
        }
    }

    /// Runs `f` on columns `j0..j1` of each of rows `i0..i1` of C.
    fn rows_mut(&self, i0: usize, i1: usize, j0: usize, j1: usize, f: impl Fn(&mut [f32])) {
        assert!(
            i0 <= i1 && i1 <= self.rows && j0 <= j1 && j1 <= self.n,
            "SharedC: out of C"
        );
        for i in i0..i1 {
            // SAFETY: row i, columns j0..j1 are inside C (asserted above); the calling task owns
            // them (see the `Send`/`Sync` impls).
            let row =
                unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.n + j0), j1 - j0) };
            f(row);
        }
    }

    /// Runs `f(tile, ldc)` on the `mr × nr` block of C at row `i0`, column `j0`: in place (row
    /// stride `n`) when the block is `NR` wide (`f` touches only its first `mr` rows), else
    /// through an `MR × NR` buffer whose valid part is copied back (`f` then sees the block's
    /// current values there, for accumulation).
    #[inline(always)]
    fn tile(&self, i0: usize, j0: usize, mr: usize, nr: usize, f: impl FnOnce(*mut f32, usize)) {
        assert!(
            i0 + mr <= self.rows && j0 + nr <= self.n && mr <= MR && nr <= NR,
            "SharedC: out of C"
        );
        // SAFETY: rows i0..i0 + mr and columns j0..j0 + nr are inside C (asserted above); the
        // calling task owns this block (see the `Send`/`Sync` impls).
        let at = unsafe { self.ptr.add(i0 * self.n + j0) };
        if nr == NR {
            f(at, self.n);
            return;
        }
        let mut buf = [0f32; MR * NR];
        for i in 0..mr {
            // SAFETY: as above; row i of the block is nr valid elements.
            let row = unsafe { std::slice::from_raw_parts(at.add(i * self.n), nr) };
            buf[i * NR..i * NR + nr].copy_from_slice(row);
        }
        f(buf.as_mut_ptr(), NR);
        for i in 0..mr {
            // SAFETY: as above.
            let row = unsafe { std::slice::from_raw_parts_mut(at.add(i * self.n), nr) };
            row.copy_from_slice(&buf[i * NR..i * NR + nr]);
        }
    }
}

/// `C[rows × NR] (+)= Σ_k a[i][k] · b[k][j]` over `kc` columns of `rows` rows of A (`a`: from the
/// first row's first column to the last row's last, row stride `lda`) and one packed B panel
/// (`kc × NR`); `c` is the block's first element, `ldc` its row stride. A partial last panel of A
/// runs a kernel for its own row count (no work on padding rows).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn micro(
    avx512: bool,
    rows: usize,
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    assert!(
        (1..=MR).contains(&rows)
            && a.len() == (rows - 1) * lda + kc
            && b.len() == kc * NR
            && ldc >= NR,
        "micro: panel lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        let (a, b) = (a.as_ptr(), b.as_ptr());
        // SAFETY: `avx512` is true only when `Isa::usable` returned Avx512, i.e. the CPU has
        // avx512f; A holds `rows` rows of `kc` values `lda` apart and B `kc` steps of NR values
        // (asserted above); `c` is an `MR × NR` block with row stride `ldc` that the caller owns
        // (`SharedC::tile`), and each kernel touches only its first `R = rows` rows.
        unsafe {
            match rows {
                8 => micro_avx512::<8, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
                7 => micro_avx512::<7, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
                6 => micro_avx512::<6, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
                5 => micro_avx512::<5, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
                4 => micro_avx512::<4, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
                3 => micro_avx512::<3, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
                2 => micro_avx512::<2, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
                _ => micro_avx512::<1, 3, false, false>(
                    kc,
                    a,
                    lda,
                    b,
                    std::ptr::null(),
                    c,
                    ldc,
                    NR,
                    accumulate,
                ),
            }
        }
        return;
    }
    let _ = avx512;
    let mut acc = [[0f32; NR]; MR];
    for (kk, bk) in b.chunks_exact(NR).enumerate() {
        for (i, row) in acc.iter_mut().enumerate().take(rows) {
            let av = a[i * lda + kk];
            for (x, &bv) in row.iter_mut().zip(bk) {
                *x += av * bv;
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(rows) {
        // SAFETY: `c` is an `MR × NR` block with row stride `ldc` owned by the caller.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), NR) };
        for (d, &s) in dst.iter_mut().zip(row) {
            *d = if accumulate { *d + s } else { s };
        }
    }
}

/// The AVX-512 micro-kernel for `R` rows and `V` 16-lane vectors of columns: the `R × 16V` block
/// of C in `R · V` zmm registers, loaded from C when accumulating; per step of K, `V` vector loads
/// of B (a panel of `16V` values per step) and `R` broadcasts from A, `R · V` fused multiply-adds;
/// stored back once. Only the first `cols` columns of C are read and written (the last vector
/// masked), so a narrow last panel writes straight into C. A is read as `R` rows `lda` apart
/// (`PACKED_A == false`) or, packed, as `MR` values per step of K (`PACKED_A == true`, `lda`
/// unused). B is a panel of `16V` values per step of K, or, with `B_OFFSETS` (packed A only), read
/// at `b + b_offsets[kk]` for step `kk` (a convolution's taps read where they are in its input).
///
/// # Safety
/// The CPU must have avx512f; `R <= MR`, `1 <= V`, `16 (V − 1) < cols <= 16 V`; `a` must be valid
/// for reads of the `R × kc` values it is read as, `b` for `kc · 16V` (with `B_OFFSETS`: `b_offsets`
/// for `kc` reads and `b` for `16V` values at each offset), `c` for reads and writes of
/// `R` rows of `cols` elements `ldc` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn micro_avx512<
    const R: usize,
    const V: usize,
    const PACKED_A: bool,
    const B_OFFSETS: bool,
>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    b_offsets: *const usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let w = 16 * V;
    // Lanes of the last vector that are columns of C.
    let tail = cols - 16 * (V - 1);
    let last: __mmask16 = if tail >= 16 {
        0xFFFF
    } else {
        (1u16 << tail) - 1
    };
    // SAFETY (all pointer offsets below): rows i < R of C at i · ldc, vectors 16 · v < cols (the
    // last one masked to its `tail` lanes); steps kk < kc of A (i · lda + kk, or kk · MR + i
    // packed) and of B (16V values each).
    let mut acc: [[__m512; V]; R] = [[_mm512_setzero_ps(); V]; R];
    if accumulate {
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                let p = c.add(i * ldc + 16 * v);
                *x = if v + 1 == V {
                    _mm512_maskz_loadu_ps(last, p)
                } else {
                    _mm512_loadu_ps(p)
                };
            }
        }
    }
    if PACKED_A {
        for kk in 0..kc {
            let bp = if B_OFFSETS {
                b.add(*b_offsets.add(kk))
            } else {
                b.add(kk * w)
            };
            let ap = a.add(kk * MR);
            let bv: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(bp.add(16 * v)));
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(i));
                for (x, &bvv) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(av, bvv, *x);
                }
            }
        }
    } else {
        let rows: [*const f32; R] = std::array::from_fn(|i| a.add(i * lda));
        for kk in 0..kc {
            let bp = b.add(kk * w);
            let bv: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(bp.add(16 * v)));
            for (row, &ar) in acc.iter_mut().zip(&rows) {
                let av = _mm512_set1_ps(*ar.add(kk));
                for (x, &bvv) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(av, bvv, *x);
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            let p = c.add(i * ldc + 16 * v);
            if v + 1 == V {
                _mm512_mask_storeu_ps(p, last, x);
            } else {
                _mm512_storeu_ps(p, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_on_every_isa_shape_and_thread_split() {
        let val = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 250.0;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for (m, k, n) in [
                (1, 1, 1),
                (8, 128, 48),
                (7, 5, 3),
                (9, 129, 49),
                (50, 300, 500),
                (17, 260, 100),
                (3, 0, 4),
                (64, 64, 1000),
                // Every row count of a last, partial A panel; whole and partial B panels.
                (2, 40, 96),
                (11, 33, 50),
                (12, 7, 144),
                (13, 130, 48),
                (14, 20, 200),
                (15, 3, 47),
                // B over the row-split limit: tasks split the columns.
                (20, 600, 600),
            ] {
                let a: Vec<f32> = (0..m * k).map(val).collect();
                // A also with a row stride wider than k.
                let lda = k + 3;
                let mut a_wide = vec![7f32; m * lda];
                for i in 0..m {
                    a_wide[i * lda..i * lda + k].copy_from_slice(&a[i * k..(i + 1) * k]);
                }
                let b: Vec<f32> = (0..k * n).map(|i| val(i + 3)).collect();
                // B with a row stride wider than n.
                let ldb = n + 2;
                let mut bs = vec![9f32; k * ldb];
                for p in 0..k {
                    bs[p * ldb..p * ldb + n].copy_from_slice(&b[p * n..(p + 1) * n]);
                }
                let packed = PackedB::new(&bs, ldb, k, n);
                let want = naive(m, k, n, &a, &b);
                // The epilogue runs once on every element, told its column.
                let twice_plus_column = |row: &mut [f32], j0: usize| {
                    for (t, x) in row.iter_mut().enumerate() {
                        *x = *x * 2.0 + (j0 + t) as f32;
                    }
                };
                for (accumulate, parallel, wide, then) in [
                    (false, false, false, false),
                    (true, false, false, true),
                    (false, true, false, true),
                    (true, true, true, false),
                    (true, true, false, true),
                ] {
                    let mut c = vec![1.5f32; m * n];
                    let (a, lda) = if wide { (&a_wide, lda) } else { (&a, k) };
                    let epilogue: Option<Epilogue> = then.then_some(&twice_plus_column);
                    pool.install(|| {
                        sgemm_packed_b_then(
                            isa, m, a, lda, &packed, &mut c, accumulate, parallel, epilogue,
                        )
                    });
                    for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                        let w = if accumulate { w + 1.5 } else { w };
                        let w = if then { w * 2.0 + (idx % n) as f64 } else { w };
                        assert!(
                            (got as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                            "{isa:?} {m}x{k}x{n} acc={accumulate} par={parallel} lda={lda} at {idx}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

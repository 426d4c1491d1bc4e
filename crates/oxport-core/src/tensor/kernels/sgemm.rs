//! f32 matrix products against a constant right-hand side packed once ([`PackedB`]): the weights of
//! a linear layer. The `gemm` crate packs both operands on every call; with few rows (a transformer's
//! tokens) packing the weight costs as much as the product, and streams the whole weight through
//! memory twice. Here the weight is laid out once in the micro-kernel's order and each call packs
//! only the small left-hand side.
//!
//! Blocking (BLIS's): K in blocks of [`KC`]; B as `NR`-column panels per K block
//! (`[k block][panel][k][NR]`, one panel = 24 KiB, in L1 while the A panels stream past it); A
//! packed per call into `MR`-row panels (`[k block][panel][k][MR]`). Edge panels are zero-padded;
//! only the valid part of C is written. The micro-kernel keeps an `MR × NR` = 8 × 48 block of C in
//! 24 AVX-512 registers (per step of K: three vector loads of B, eight broadcasts of A, 24 fused
//! multiply-adds); without AVX-512 a portable loop over the same panels runs (plans pack weights
//! only where [`simd::active`] is AVX-512, so that path is for tests and forced ISAs). Calls with
//! enough work split the column panels between two rayon tasks.
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
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let block = &mut data[pc * np * NR..(pc + kc) * np * NR];
            for kk in 0..kc {
                let src = &b[(pc + kk) * ldb..][..n];
                for (jp, chunk) in src.chunks(NR).enumerate() {
                    block[(jp * kc + kk) * NR..][..chunk.len()].copy_from_slice(chunk);
                }
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
        let np = self.n.div_ceil(NR);
        &self.data[pc * np * NR + jp * kc * NR..][..kc * NR]
    }
}

/// `C = A·B` (`accumulate`: `C += A·B`) for a row-major `m × k` `A` (row stride `lda`), a packed
/// `B` and a contiguous row-major `m × n` `C`, with the code for `isa`; in two tasks on the rayon
/// pool when `parallel` and the product is big enough.
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
    let (k, n) = (b.k, b.n);
    assert_eq!(c.len(), m * n, "sgemm_packed_b: C is not {m} x {n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    assert!(
        a.len() >= (m - 1) * lda + k && lda >= k,
        "sgemm_packed_b: A too short for {m} x {k}"
    );
    // A, packed for every K block: [k block][panel][kc][MR].
    let mp = m.div_ceil(MR);
    let mut ap = vec![0f32; k * mp * MR];
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        let block = &mut ap[pc * mp * MR..(pc + kc) * mp * MR];
        for (ip, panel) in block.chunks_exact_mut(kc * MR).enumerate() {
            for i in 0..MR.min(m - ip * MR) {
                let src = &a[(ip * MR + i) * lda + pc..][..kc];
                for (kk, &v) in src.iter().enumerate() {
                    panel[kk * MR + i] = v;
                }
            }
        }
    }
    let np = n.div_ceil(NR);
    let avx512 = isa.usable() == Isa::Avx512;
    let panels = |jps: std::ops::Range<usize>, c: &mut ColumnsOf<'_>| {
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let overwrite = pc == 0 && !accumulate;
            for jp in jps.clone() {
                let bp = b.panel(pc, kc, jp);
                let (j0, nr) = (jp * NR, NR.min(n - jp * NR));
                for ip in 0..mp {
                    let a_panel = &ap[pc * mp * MR + ip * kc * MR..][..kc * MR];
                    let acc = micro(avx512, a_panel, bp);
                    let (i0, mr) = (ip * MR, MR.min(m - ip * MR));
                    for (i, acc_row) in acc.iter().enumerate().take(mr) {
                        c.write(i0 + i, j0, &acc_row[..nr], overwrite);
                    }
                }
            }
        }
    };
    let work = m * n * k;
    if parallel && np >= 2 && work >= PARALLEL_MIN_MACS && rayon::current_num_threads() > 1 {
        let tasks = rayon::current_num_threads().min(np);
        let per = np.div_ceil(tasks);
        let cols = ColumnsOf::new(c, n);
        (0..tasks).into_par_iter().for_each(|t| {
            let jps = t * per..((t + 1) * per).min(np);
            // Each task writes only the columns of its own panels.
            let mut mine = cols.share();
            panels(jps, &mut mine);
        });
    } else {
        panels(0..np, &mut ColumnsOf::new(c, n));
    }
}

/// Products of at least this many multiply-adds split their columns between rayon tasks.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// Writes into the rows of a row-major C by column range, from several tasks at once.
struct ColumnsOf<'a> {
    ptr: *mut f32,
    len: usize,
    n: usize,
    _c: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: a `ColumnsOf` is shared between the tasks of one `sgemm_packed_b` call, which write
// disjoint column ranges (each task its own panels), so no element is written by two threads, and
// the borrow of C outlives the tasks (`for_each` returns when they are done).
unsafe impl Send for ColumnsOf<'_> {}
// SAFETY: as for `Send`: shared access only ever writes disjoint elements.
unsafe impl Sync for ColumnsOf<'_> {}

impl<'a> ColumnsOf<'a> {
    fn new(c: &'a mut [f32], n: usize) -> Self {
        ColumnsOf {
            ptr: c.as_mut_ptr(),
            len: c.len(),
            n,
            _c: std::marker::PhantomData,
        }
    }

    fn share(&self) -> ColumnsOf<'a> {
        ColumnsOf {
            ptr: self.ptr,
            len: self.len,
            n: self.n,
            _c: std::marker::PhantomData,
        }
    }

    /// `C[i][j0..j0 + src.len()] = src` (or `+=`).
    #[inline(always)]
    fn write(&mut self, i: usize, j0: usize, src: &[f32], overwrite: bool) {
        let at = i * self.n + j0;
        assert!(
            j0 + src.len() <= self.n && at + src.len() <= self.len,
            "ColumnsOf: out of C"
        );
        // SAFETY: in bounds (asserted above); the caller's task owns columns j0..j0 + len of
        // every row (see the `Send`/`Sync` impls), so no other thread touches these elements.
        let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), src.len()) };
        if overwrite {
            dst.copy_from_slice(src);
        } else {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }
}

/// `Σ_k a[k][i] · b[k][j]` over one packed A panel (`kc × MR`) and one packed B panel (`kc × NR`).
#[inline(always)]
fn micro(avx512: bool, a: &[f32], b: &[f32]) -> [[f32; NR]; MR] {
    let kc = a.len() / MR;
    assert!(
        a.len() == kc * MR && b.len() == kc * NR,
        "micro: panel lengths"
    );
    let mut acc = [[0f32; NR]; MR];
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: `avx512` is true only when `Isa::usable` returned Avx512, i.e. the CPU has
        // avx512f; the panels hold `kc` steps of MR and NR values (asserted above).
        unsafe { micro_avx512(kc, a.as_ptr(), b.as_ptr(), &mut acc) };
        return acc;
    }
    let _ = avx512;
    for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (row, &av) in acc.iter_mut().zip(ak) {
            for (x, &bv) in row.iter_mut().zip(bk) {
                *x += av * bv;
            }
        }
    }
    acc
}

/// The AVX-512 micro-kernel: the `MR × NR` block of C in 24 zmm registers; per step of K, three
/// vector loads of B and `MR` broadcasts of A, `3 · MR` fused multiply-adds.
///
/// # Safety
/// The CPU must have avx512f; `a` must be valid for `kc · MR` reads, `b` for `kc · NR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro_avx512(kc: usize, a: *const f32, b: *const f32, out: &mut [[f32; NR]; MR]) {
    use std::arch::x86_64::*;
    const V: usize = NR / 16;
    let mut c = [[_mm512_setzero_ps(); V]; MR];
    for kk in 0..kc {
        // SAFETY: kk < kc, so every offset read is below kc · NR (b) or kc · MR (a).
        let bp = b.add(kk * NR);
        let bv: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(bp.add(16 * v)));
        let ap = a.add(kk * MR);
        for (i, row) in c.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*ap.add(i));
            for (acc, &bvv) in row.iter_mut().zip(&bv) {
                *acc = _mm512_fmadd_ps(av, bvv, *acc);
            }
        }
    }
    for (dst, row) in out.iter_mut().zip(&c) {
        for (v, &x) in row.iter().enumerate() {
            // SAFETY: 16 · v + 16 <= NR, inside the row.
            _mm512_storeu_ps(dst.as_mut_ptr().add(16 * v), x);
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
            ] {
                let a: Vec<f32> = (0..m * k).map(val).collect();
                let b: Vec<f32> = (0..k * n).map(|i| val(i + 3)).collect();
                // B with a row stride wider than n.
                let ldb = n + 2;
                let mut bs = vec![9f32; k * ldb];
                for p in 0..k {
                    bs[p * ldb..p * ldb + n].copy_from_slice(&b[p * n..(p + 1) * n]);
                }
                let packed = PackedB::new(&bs, ldb, k, n);
                let want = naive(m, k, n, &a, &b);
                for (accumulate, parallel) in [(false, false), (true, false), (false, true)] {
                    let mut c = vec![1.5f32; m * n];
                    pool.install(|| {
                        sgemm_packed_b(isa, m, &a, k, &packed, &mut c, accumulate, parallel)
                    });
                    for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                        let w = if accumulate { w + 1.5 } else { w };
                        assert!(
                            (got as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                            "{isa:?} {m}x{k}x{n} acc={accumulate} par={parallel} at {idx}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

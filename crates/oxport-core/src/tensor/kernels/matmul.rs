//! Dense matrix multiplication on top of the [`gemm`] crate.
//!
//! # Contract
//!
//! [`gemm_strided`] / [`gemm_strided`] (and the generic [`gemm_strided`]) compute
//!
//! ```text
//! C = A · B            (beta_accumulate == false)
//! C = C + A · B        (beta_accumulate == true)
//! ```
//!
//! * `A` is `m × k`; element `(i, j)` lives at `a[i * a_rs + j * a_cs]`.
//! * `B` is `k × n`; element `(i, j)` lives at `b[i * b_rs + j * b_cs]`.
//! * Strides are in elements, not bytes. Element `(0, 0)` is always `a[0]`
//!   / `b[0]`, so strides must be non-negative (zero is fine, e.g. for a
//!   broadcast row); a negative stride panics unless its dimension has size 1.
//! * `C` is `m × n`, row-major and contiguous (row stride `n`), so
//!   `c.len()` must equal `m * n`.
//! * When `beta_accumulate` is `false` the previous contents of `c` are never
//!   read (NaNs already in `c` do not leak into the result).
//! * `k == 0` makes `A · B` the zero matrix: `c` is zero-filled, or left
//!   untouched when accumulating. `m == 0` or `n == 0` is a no-op. None of
//!   these degenerate cases calls into the `gemm` crate.
//! * `parallel == true` lets the `gemm` crate use the current rayon pool, but
//!   only when `m * n * k > 64³`; smaller products always run on the calling
//!   thread because the threading overhead would dominate.
//!
//! Every index that the multiplication can touch is checked against the slice
//! lengths before the `gemm` crate is called; a violation panics instead of
//! reading out of bounds.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Floating-point element types supported by the kernels in this module and
/// its sibling modules (`conv`, `pool`). Implemented for `f32` and `f64` only
/// (the trait is sealed, because the `gemm` crate only dispatches on a fixed
/// set of types).
pub trait Scalar:
    sealed::Sealed
    + Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + Sum
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// -inf (max pooling's identity).
    const NEG_INFINITY: Self;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// Lossy conversion used for pooling divisors (`C++`'s implicit
    /// `int64_t -> float` conversion).
    fn from_i64(v: i64) -> Self;
    /// `self · a + b` with one rounding (slow without the FMA instruction: kernels use it only in
    /// code built for an ISA that has it).
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl Scalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}

impl Scalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as f64
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}

/// Products with `m * n * k` at or below this are never multi-threaded.
pub const PARALLEL_THRESHOLD: usize = 64 * 64 * 64;

/// Panics unless every offset `i * rs + j * cs` with `i < rows`, `j < cols`
/// lies in `0..len`. Does nothing when the matrix is empty.
fn check_extent(what: &str, len: usize, rows: usize, cols: usize, rs: isize, cs: isize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let span = |dim: usize, stride: isize| -> (isize, isize) {
        let last = isize::try_from(dim - 1)
            .ok()
            .and_then(|d| d.checked_mul(stride))
            .unwrap_or_else(|| panic!("{what}: stride arithmetic overflows"));
        if last < 0 {
            (last, 0)
        } else {
            (0, last)
        }
    };
    let (rmin, rmax) = span(rows, rs);
    let (cmin, cmax) = span(cols, cs);
    let min = rmin
        .checked_add(cmin)
        .unwrap_or_else(|| panic!("{what}: stride arithmetic overflows"));
    let max = rmax
        .checked_add(cmax)
        .unwrap_or_else(|| panic!("{what}: stride arithmetic overflows"));
    assert!(
        min >= 0,
        "{what}: strides ({rs}, {cs}) for a {rows}x{cols} matrix address a negative offset {min}"
    );
    assert!(
        (max as usize) < len,
        "{what}: strides ({rs}, {cs}) for a {rows}x{cols} matrix address offset {max}, \
         but the slice has only {len} elements"
    );
}

/// Generic form of [`gemm_strided`] / [`gemm_strided`]; see the module docs for the
/// contract.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: isize,
    a_cs: isize,
    b: &[T],
    b_rs: isize,
    b_cs: isize,
    c: &mut [T],
    beta_accumulate: bool,
    parallel: bool,
) {
    let mn = m.checked_mul(n).expect("gemm: m * n overflows usize");
    assert_eq!(
        c.len(),
        mn,
        "gemm: output slice has {} elements, expected m * n = {m} * {n}",
        c.len()
    );
    if mn == 0 {
        return;
    }
    if k == 0 {
        if !beta_accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    check_extent("gemm lhs", a.len(), m, k, a_rs, a_cs);
    check_extent("gemm rhs", b.len(), k, n, b_rs, b_cs);
    let n_isize = isize::try_from(n).expect("gemm: n does not fit in isize");

    let work = mn.saturating_mul(k);
    let parallelism = if parallel && work > PARALLEL_THRESHOLD {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };

    // SAFETY:
    // * `check_extent` above proved that for all i < m, j < k the offset
    //   `i * a_rs + j * a_cs` is in `0..a.len()`, and likewise for `b`
    //   (k × n with `b_rs`, `b_cs`), so every read through `lhs`/`rhs` stays
    //   inside the borrowed slices.
    // * `dst` is `c`, an exclusively borrowed slice of exactly `m * n`
    //   elements (asserted above); with column stride 1 and row stride `n`
    //   the largest offset written is `(m - 1) * n + (n - 1) = m * n - 1`.
    // * `c` is a `&mut` borrow, so it cannot alias `a` or `b` (shared
    //   borrows), and nothing else can touch the memory during the call.
    // * `T` is `f32` or `f64` (the trait is sealed), both supported by
    //   `gemm::gemm`, so its type dispatch cannot panic.
    // * m, n, k > 0 here; `read_dst == false` means `dst` is only written.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,               // dst_cs
            n_isize,         // dst_rs
            beta_accumulate, // read_dst
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::ONE, // alpha: factor on the old dst (only used when read_dst)
            T::ONE, // beta: factor on lhs × rhs
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    /// Deterministic pseudo-random numbers in [-1, 1).
    pub struct Lcg(u64);

    impl Lcg {
        pub fn new(seed: u64) -> Self {
            Lcg(seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407))
        }
        pub fn next_f64(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
        pub fn vec_f64(&mut self, n: usize) -> Vec<f64> {
            (0..n).map(|_| self.next_f64()).collect()
        }
    }

    pub fn assert_close_f32(got: &[f32], want: &[f64], ctx: &str) {
        assert_eq!(got.len(), want.len(), "{ctx}: length mismatch");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-4 * w.abs().max(1.0);
            assert!(
                ((g as f64) - w).abs() <= tol || (g.is_nan() && w.is_nan()) || g as f64 == w,
                "{ctx}: index {i}: got {g}, want {w}"
            );
        }
    }

    pub fn assert_close_f64(got: &[f64], want: &[f64], ctx: &str) {
        assert_eq!(got.len(), want.len(), "{ctx}: length mismatch");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-10 * w.abs().max(1.0);
            assert!(
                (g - w).abs() <= tol || (g.is_nan() && w.is_nan()) || g == w,
                "{ctx}: index {i}: got {g}, want {w}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        a_rs: isize,
        a_cs: isize,
        b: &[f64],
        b_rs: isize,
        b_cs: isize,
        c0: Option<&[f64]>,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = c0.map_or(0.0, |c0| c0[i * n + j]);
                for p in 0..k {
                    let ai = (i as isize * a_rs + p as isize * a_cs) as usize;
                    let bi = (p as isize * b_rs + j as isize * b_cs) as usize;
                    s += a[ai] * b[bi];
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    /// (m, k, n, layout of A, layout of B); layout: 0 = row-major,
    /// 1 = column-major, 2 = padded rows (row stride k + 3), 3 = broadcast rows (rs = 0).
    const CASES: &[(usize, usize, usize, u8, u8)] = &[
        (1, 1, 1, 0, 0),
        (3, 5, 7, 0, 0),
        (3, 5, 7, 1, 0),
        (3, 5, 7, 0, 1),
        (3, 5, 7, 1, 1),
        (17, 33, 9, 2, 2),
        (8, 4, 6, 3, 0),
        (1, 64, 100, 0, 1),
        (100, 64, 1, 1, 0),
        (70, 80, 90, 0, 0), // above the parallel threshold
        (65, 130, 67, 1, 2),
    ];

    fn layout(rows: usize, cols: usize, kind: u8) -> (usize, isize, isize) {
        match kind {
            0 => (rows * cols, cols as isize, 1),
            1 => (rows * cols, 1, rows as isize),
            2 => (rows * (cols + 3), (cols + 3) as isize, 1),
            3 => (cols, 0, 1),
            _ => unreachable!(),
        }
    }

    #[test]
    fn gemm_matches_naive_f32_and_f64() {
        let mut rng = Lcg::new(7);
        for &(m, k, n, la, lb) in CASES {
            let (alen, a_rs, a_cs) = layout(m, k, la);
            let (blen, b_rs, b_cs) = layout(k, n, lb);
            let a = rng.vec_f64(alen);
            let b = rng.vec_f64(blen);
            let c0 = rng.vec_f64(m * n);
            for accumulate in [false, true] {
                let want = naive(
                    m,
                    k,
                    n,
                    &a,
                    a_rs,
                    a_cs,
                    &b,
                    b_rs,
                    b_cs,
                    accumulate.then_some(&c0[..]),
                );
                for parallel in [false, true] {
                    let ctx = format!(
                        "m={m} k={k} n={n} la={la} lb={lb} acc={accumulate} par={parallel}"
                    );
                    // f64
                    let mut c = if accumulate {
                        c0.clone()
                    } else {
                        vec![f64::NAN; m * n]
                    };
                    gemm_strided::<f64>(
                        m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs, &mut c, accumulate, parallel,
                    );
                    assert_close_f64(&c, &want, &ctx);
                    // f32
                    let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
                    let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
                    let mut c32: Vec<f32> = if accumulate {
                        c0.iter().map(|&x| x as f32).collect()
                    } else {
                        vec![f32::NAN; m * n]
                    };
                    gemm_strided::<f32>(
                        m, k, n, &a32, a_rs, a_cs, &b32, b_rs, b_cs, &mut c32, accumulate, parallel,
                    );
                    assert_close_f32(&c32, &want, &ctx);
                }
            }
        }
    }

    #[test]
    fn degenerate_sizes() {
        // k == 0: zero-fill, or leave untouched when accumulating.
        let mut c = vec![5.0f32; 6];
        gemm_strided::<f32>(2, 0, 3, &[], 0, 1, &[], 3, 1, &mut c, false, true);
        assert_eq!(c, vec![0.0; 6]);
        let mut c = vec![5.0f32; 6];
        gemm_strided::<f32>(2, 0, 3, &[], 0, 1, &[], 3, 1, &mut c, true, true);
        assert_eq!(c, vec![5.0; 6]);
        // m == 0 / n == 0: nothing to do, even with empty inputs.
        let mut c: Vec<f64> = vec![];
        gemm_strided::<f64>(0, 4, 3, &[], 4, 1, &[0.0; 12], 3, 1, &mut c, false, false);
        gemm_strided::<f64>(3, 4, 0, &[0.0; 12], 4, 1, &[], 0, 1, &mut c, false, false);
    }

    #[test]
    #[should_panic(expected = "gemm lhs")]
    fn out_of_bounds_lhs_panics() {
        let mut c = vec![0.0f32; 4];
        gemm_strided::<f32>(
            2, 2, 2, &[1.0; 3], 2, 1, &[1.0; 4], 2, 1, &mut c, false, false,
        );
    }

    #[test]
    #[should_panic(expected = "output slice")]
    fn wrong_output_len_panics() {
        let mut c = vec![0.0f32; 3];
        gemm_strided::<f32>(
            2, 2, 2, &[1.0; 4], 2, 1, &[1.0; 4], 2, 1, &mut c, false, false,
        );
    }
}

//! Vectorised f32 math: branch-free `exp`, `tanh`, `erf`, `sigmoid` and the activations built on them,
//! applied to slices, plus the softmax and layer-norm row kernels.
//!
//! Every element function is straight-line code (selects, not branches; bit tricks through
//! `f32::to_bits`/`from_bits`), so the slice loops auto-vectorise; [`simd::dispatch!`] compiles them
//! for AVX-512, AVX2+FMA and the portable baseline. Accuracy on every path, checked over a sweep of
//! every exponent and both signs (see the tests): `exp`, `tanh` and `erf` within 1 ulp of the
//! correctly rounded result (and of libm), `sigmoid` and `silu` within 2; NaN, ±inf, overflow,
//! underflow to subnormals and zero, and the sign of zero behave as libm's.
use super::elementwise::Run;
use super::simd::{self, dispatch, Isa};

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `|x|` with the sign bit of `s`.
#[inline(always)]
fn with_sign_of(x: f32, s: f32) -> f32 {
    f32::from_bits((x.to_bits() & 0x7fff_ffff) | (s.to_bits() & 0x8000_0000))
}

#[inline(always)]
fn abs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// `e^(hi + lo)` for a small correction `lo` (`|lo| < 1`), NaN-propagating: Cody–Waite reduction
/// `hi + lo = n ln2 + r`, Cephes' degree-7 polynomial for `e^r`, scaled by `2^n` in two steps so that
/// results in the subnormal range round once and overflow gives inf.
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn exp_hilo<const FMA: bool>(hi: f32, lo: f32) -> f32 {
    // Beyond these, e^x is inf / rounds to 0; the clamps (compares, so NaN passes) keep n in range.
    let hi = if hi > 89.0 { 89.0 } else { hi };
    let hi = if hi < -104.0 { -104.0 } else { hi };
    // n = round((hi + lo) / ln 2): adding 1.5 * 2^23 leaves n in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let t = madd::<FMA>(hi + lo, std::f32::consts::LOG2_E, MAGIC);
    let n = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let nf = t - MAGIC;
    // ln 2 = C1 + C2 with C1 of 9 significant bits: n * C1 is exact and so is hi - n * C1.
    const C1: f32 = 0.693_359_375;
    const C2: f32 = -2.121_944_40e-4;
    let r = madd::<FMA>(nf, -C1, hi);
    let r = madd::<FMA>(nf, -C2, r) + lo;
    let mut p = 1.987_569_150_0e-4;
    p = madd::<FMA>(p, r, 1.398_199_950_7e-3);
    p = madd::<FMA>(p, r, 8.333_451_907_3e-3);
    p = madd::<FMA>(p, r, 4.166_579_589_4e-2);
    p = madd::<FMA>(p, r, 1.666_666_545_9e-1);
    p = madd::<FMA>(p, r, 5.000_000_120_1e-1);
    let y = madd::<FMA>(p, r * r, r) + 1.0;
    // 2^n = 2^n1 * 2^n2, each factor a normal float for n in [-150, 129].
    let n1 = n >> 1;
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32).wrapping_shl(23));
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32).wrapping_shl(23));
    y * s1 * s2
}

#[inline(always)]
fn exp_k<const FMA: bool>(x: f32) -> f32 {
    // `v + -0.0` is `v` for every v (also -0.0), so the correction folds away.
    exp_hilo::<FMA>(x, -0.0)
}

/// tanh: Cephes' odd polynomial below 0.625, `1 - 2 / (e^2|x| + 1)` above; the sign of `x` restored
/// last (so `tanh(-0) = -0`).
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn tanh_k<const FMA: bool>(x: f32) -> f32 {
    let a = abs(x);
    let s = a * a;
    let mut p = -5.704_988_727_45e-3;
    p = madd::<FMA>(p, s, 2.063_908_879_54e-2);
    p = madd::<FMA>(p, s, -5.373_971_555_31e-2);
    p = madd::<FMA>(p, s, 1.333_144_220_36e-1);
    p = madd::<FMA>(p, s, -3.333_328_194_22e-1);
    let small = madd::<FMA>(p * s, a, a);
    let large = 1.0 - 2.0 / (exp_k::<FMA>(2.0 * a) + 1.0);
    with_sign_of(if a < 0.625 { small } else { large }, x)
}

#[inline(always)]
fn sigmoid_k<const FMA: bool>(x: f32) -> f32 {
    // PyTorch's CPU formula: 1 / (1 + e^-x).
    1.0 / (1.0 + exp_k::<FMA>(-x))
}

#[inline(always)]
fn silu_k<const FMA: bool>(x: f32) -> f32 {
    // PyTorch's CPU formula: x / (1 + e^-x) (NaN at -inf, as PyTorch).
    x / (1.0 + exp_k::<FMA>(-x))
}

/// `p(x)` by Horner from the highest coefficient.
#[inline(always)]
fn horner<const FMA: bool, const N: usize>(x: f32, c: [f32; N]) -> f32 {
    let mut p = c[N - 1];
    for i in (0..N - 1).rev() {
        p = madd::<FMA>(p, x, c[i]);
    }
    p
}

/// `f32::from_bits`, for coefficients given exactly.
const fn fb<const N: usize>(bits: [u32; N]) -> [f32; N] {
    let mut out = [0f32; N];
    let mut i = 0;
    while i < N {
        out[i] = f32::from_bits(bits[i]);
        i += 1;
    }
    out
}

// FreeBSD `s_erff.c`'s coefficients (their bit patterns), lowest degree first.
/// erf on [0, 0.84375): `a + a * PP(a^2) / QQ(a^2)`.
const PP: [f32; 5] = fb([0x3e0375d4, 0xbea66beb, 0xbce9528f, 0xbbbd1489, 0xb7c756b1]);
const QQ: [f32; 6] = fb([
    0x3f800000, 0x3ecbbbce, 0x3d852a63, 0x3ba68116, 0x390aee49, 0xb684e21a,
]);
/// erf on [0.84375, 1.25): `erx + PA(a - 1) / QA(a - 1)`.
const ERX: f32 = f32::from_bits(0x3f58560b);
const PA: [f32; 7] = fb([
    0xbb1acdc6, 0x3ed46805, 0xbebe9208, 0x3ea2fe54, 0xbde31cc2, 0x3d1151b3, 0xbb0df9c0,
]);
const QA: [f32; 7] = fb([
    0x3f800000, 0x3dd9f331, 0x3f0a5785, 0x3d931ae7, 0x3e013307, 0x3c5f6e13, 0x3c445aa3,
]);
/// erfc on [1.25, 1/0.35): `e^(-a^2 - 0.5625 + RA(1/a^2) / SA(1/a^2)) / a`.
const RA: [f32; 8] = fb([
    0xbc21a093, 0xbf31a0b7, 0xc128f022, 0xc2798057, 0xc322658c, 0xc3389ae7, 0xc2a2932b, 0xc11d077e,
]);
const SA: [f32; 9] = fb([
    0x3f800000, 0x419d35ce, 0x4309a863, 0x43d9486f, 0x442158c9, 0x43d6810b, 0x42d9451f, 0x40d23f7c,
    0xbd777f97,
]);
/// erfc on [1/0.35, 6) (erf rounds to 1 beyond).
const RB: [f32; 7] = fb([
    0xbc21a092, 0xbf4c9dd4, 0xc18e104b, 0xc320a2ea, 0xc41f6441, 0xc480230b, 0xc3f1c275,
]);
const SB: [f32; 8] = fb([
    0x3f800000, 0x41f2b459, 0x43a2e571, 0x44c01759, 0x4547fdbb, 0x451f90ce, 0x43ed43a7, 0xc1b38712,
]);

/// erf: FreeBSD's `s_erff.c` (libm's `erff`) made branch-free. All four of its rational
/// approximations are evaluated and one numerator/denominator pair selected per lane, so a single
/// division serves them; `1 / |x|` is computed once for the erfc tail, whose two `expf` calls fold
/// into one [`exp_hilo`].
#[inline(always)]
fn erf_k<const FMA: bool>(x: f32) -> f32 {
    let a = abs(x);
    let z = a * a;
    let (pp, qq) = (horner::<FMA, 5>(z, PP), horner::<FMA, 6>(z, QQ));
    let s = a - 1.0;
    let (pa, qa) = (horner::<FMA, 7>(s, PA), horner::<FMA, 7>(s, QA));
    let inv = 1.0 / a;
    let w = inv * inv;
    let (ra, sa) = (horner::<FMA, 8>(w, RA), horner::<FMA, 9>(w, SA));
    let (rb, sb) = (horner::<FMA, 7>(w, RB), horner::<FMA, 8>(w, SB));
    let (num, den) = if a < 0.843_75 {
        (pp, qq)
    } else if a < 1.25 {
        (pa, qa)
    } else if a < f32::from_bits(0x4036db6d) {
        // 1/0.35, as s_erff.c compares it
        (ra, sa)
    } else {
        (rb, sb)
    };
    let q = num / den;
    // e^(-a^2) as e^(-zr^2 - 0.5625) e^((zr - a)(zr + a) + q): zr is a cut to 11 significant bits,
    // so zr^2 + 0.5625 is exact.
    let zr = f32::from_bits(a.to_bits() & 0xffff_e000);
    let erfc = exp_hilo::<FMA>(-zr * zr - 0.5625, madd::<FMA>(zr - a, zr + a, q)) * inv;
    let r = if a < 0.843_75 {
        madd::<FMA>(a, q, a)
    } else if a < 1.25 {
        ERX + q
    } else if a < 6.0 {
        1.0 - erfc
    } else if a >= 6.0 {
        1.0
    } else {
        a // NaN
    };
    with_sign_of(r, x)
}

/// GELU, `approximate="none"`: `x/2 (1 + erf(x/√2))`; NaN at ±inf like PyTorch's CPU kernel.
#[inline(always)]
fn gelu_k<const FMA: bool>(x: f32) -> f32 {
    let g = x * 0.5 * (1.0 + erf_k::<FMA>(x * std::f32::consts::FRAC_1_SQRT_2));
    if abs(x) == f32::INFINITY {
        f32::NAN
    } else {
        g
    }
}

/// GELU, `approximate="tanh"`: `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn gelu_tanh_k<const FMA: bool>(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_560_802_865_4;
    let inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    0.5 * x * (1.0 + tanh_k::<FMA>(inner))
}

/// `clamp(x + 3, 0, 6)`, NaN propagating.
#[inline(always)]
fn hard_clamp(x: f32) -> f32 {
    let v = x + 3.0;
    let v = if v < 0.0 { 0.0 } else { v };
    if v > 6.0 {
        6.0
    } else {
        v
    }
}

/// An f32 → f32 pointwise function with a vectorised slice kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `e^x`.
    Exp,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `x / (1 + e^-x)`.
    Silu,
    /// The error function.
    Erf,
    /// GELU with `approximate="none"`.
    Gelu,
    /// GELU with `approximate="tanh"`.
    GeluTanh,
    /// `max(x, 0)`, NaN propagating.
    Relu,
    /// `clamp(x + 3, 0, 6) / 6`.
    Hardsigmoid,
    /// `x * clamp(x + 3, 0, 6) / 6` (PyTorch's order of operations).
    Hardswish,
    /// `clamp(x, lo, hi)`, NaN propagating.
    Hardtanh {
        /// The lower bound.
        lo: f32,
        /// The upper bound.
        hi: f32,
    },
}

impl Unary {
    /// The function at one value (the portable, unfused code; the vector paths may differ from it
    /// by the FMA roundings).
    pub fn apply(self, x: f32) -> f32 {
        apply::<false>(self, x)
    }

    /// Element counts from which a tensor-wide map of `self` goes parallel: where the sequential
    /// kernel takes some 20 µs (`benches/kernels.rs`, `vmath_par`: on AVX-512 about 0.2 ns an element
    /// for exp, 1 ns for erf-GELU; the clamps are memory-bound), well above rayon's fork-join cost.
    pub fn par_threshold(self) -> usize {
        match self {
            Unary::Relu | Unary::Hardsigmoid | Unary::Hardswish | Unary::Hardtanh { .. } => 1 << 18,
            Unary::Exp | Unary::Sigmoid | Unary::Silu | Unary::Tanh => 1 << 17,
            Unary::Erf | Unary::Gelu | Unary::GeluTanh => 1 << 15,
        }
    }
}

#[inline(always)]
fn apply<const FMA: bool>(op: Unary, x: f32) -> f32 {
    match op {
        Unary::Exp => exp_k::<FMA>(x),
        Unary::Tanh => tanh_k::<FMA>(x),
        Unary::Sigmoid => sigmoid_k::<FMA>(x),
        Unary::Silu => silu_k::<FMA>(x),
        Unary::Erf => erf_k::<FMA>(x),
        Unary::Gelu => gelu_k::<FMA>(x),
        Unary::GeluTanh => gelu_tanh_k::<FMA>(x),
        Unary::Relu => {
            #[allow(clippy::eq_op)]
            let keep = x > 0.0 || x != x;
            if keep {
                x
            } else {
                0.0
            }
        }
        Unary::Hardsigmoid => hard_clamp(x) / 6.0,
        Unary::Hardswish => x * hard_clamp(x) / 6.0,
        Unary::Hardtanh { lo, hi } => {
            let v = if x < lo { lo } else { x };
            if v > hi {
                hi
            } else {
                v
            }
        }
    }
}

/// Where a unary kernel reads and writes.
enum Io<'a> {
    SliceToSlice(&'a [f32], &'a mut [f32]),
    InPlace(&'a mut [f32]),
}

/// One tight loop per function (the `match` outside it). The element expressions are written into
/// the loops (a macro, not a closure or fn item passed down, whose call shims LLVM may keep out of
/// line and so out of the vectorised loop).
#[inline(always)]
fn unary_body<const FMA: bool>(op: Unary, io: Io) {
    macro_rules! each {
        (|$x:ident| $e:expr) => {
            match io {
                Io::SliceToSlice(src, dst) => {
                    for (d, &$x) in dst.iter_mut().zip(src) {
                        *d = $e;
                    }
                }
                Io::InPlace(v) => {
                    for d in v.iter_mut() {
                        let $x = *d;
                        *d = $e;
                    }
                }
            }
        };
    }
    match op {
        Unary::Exp => each!(|x| exp_k::<FMA>(x)),
        Unary::Tanh => each!(|x| tanh_k::<FMA>(x)),
        Unary::Sigmoid => each!(|x| sigmoid_k::<FMA>(x)),
        Unary::Silu => each!(|x| silu_k::<FMA>(x)),
        Unary::Erf => each!(|x| erf_k::<FMA>(x)),
        Unary::Gelu => each!(|x| gelu_k::<FMA>(x)),
        Unary::GeluTanh => each!(|x| gelu_tanh_k::<FMA>(x)),
        Unary::Relu => each!(|x| apply::<FMA>(Unary::Relu, x)),
        Unary::Hardsigmoid => each!(|x| apply::<FMA>(Unary::Hardsigmoid, x)),
        Unary::Hardswish => each!(|x| apply::<FMA>(Unary::Hardswish, x)),
        Unary::Hardtanh { lo, hi } => each!(|x| apply::<FMA>(Unary::Hardtanh { lo, hi }, x)),
    }
}

/// `dst[i] = op(src[i])` with the code for `isa` (see [`simd::active`]). Panics if the lengths differ.
pub fn unary_slice(isa: Isa, op: Unary, src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "unary_slice: lengths differ");
    dispatch!(isa, FMA => unary_body::<FMA>(op, Io::SliceToSlice(src, dst)))
}

/// `x[i] = op(x[i])` with the code for `isa`.
pub fn unary_inplace(isa: Isa, op: Unary, x: &mut [f32]) {
    dispatch!(isa, FMA => unary_body::<FMA>(op, Io::InPlace(x)))
}

/// The f32 arithmetic of [`binary_f32`]: IEEE operations, as PyTorch's (no fused multiply-add).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
}

/// `dst[i] = a[i] ∘ b[i]` over one run ([`Run`]: consecutive, repeated or strided elements), with the
/// code for `isa`.
///
/// ```
/// use oxport_core::tensor::kernels::elementwise::Run;
/// use oxport_core::tensor::kernels::{simd, vmath};
/// let mut d = [0.0f32; 3];
/// vmath::binary_f32(simd::active(), vmath::BinaryOp::Sub, &mut d, Run::Scalar(1.0), Run::Slice(&[1.0, 2.0, 3.0]));
/// assert_eq!(d, [0.0, -1.0, -2.0]);
/// ```
///
/// [`Run`]: super::elementwise::Run
pub fn binary_f32(isa: Isa, op: BinaryOp, dst: &mut [f32], a: Run<f32>, b: Run<f32>) {
    dispatch!(isa, FMA => binary_body(op, dst, a, b))
}

/// One loop per (op, operand forms), the `match`es outside it.
#[inline(always)]
fn binary_body(op: BinaryOp, dst: &mut [f32], a: Run<f32>, b: Run<f32>) {
    macro_rules! each {
        (|$x:ident, $y:ident| $e:expr) => {{
            let len = dst.len();
            match (a, b) {
                (Run::Slice(xs), Run::Slice(ys)) => {
                    for ((d, &$x), &$y) in dst.iter_mut().zip(&xs[..len]).zip(&ys[..len]) {
                        *d = $e;
                    }
                }
                (Run::Slice(xs), Run::Scalar($y)) => {
                    for (d, &$x) in dst.iter_mut().zip(&xs[..len]) {
                        *d = $e;
                    }
                }
                (Run::Scalar($x), Run::Slice(ys)) => {
                    for (d, &$y) in dst.iter_mut().zip(&ys[..len]) {
                        *d = $e;
                    }
                }
                _ => {
                    for (i, d) in dst.iter_mut().enumerate() {
                        let ($x, $y) = (a.get(i), b.get(i));
                        *d = $e;
                    }
                }
            }
        }};
    }
    match op {
        BinaryOp::Add => each!(|x, y| x + y),
        BinaryOp::Sub => each!(|x, y| x - y),
        BinaryOp::Mul => each!(|x, y| x * y),
        BinaryOp::Div => each!(|x, y| x / y),
    }
}

/// `acc[i] = acc[i] ∘ b[i]`, or `b[i] ∘ acc[i]` when `swapped`, with the code for `isa` (a chain of
/// pointwise ops on an accumulator).
pub fn binary_f32_inplace(isa: Isa, op: BinaryOp, acc: &mut [f32], b: Run<f32>, swapped: bool) {
    dispatch!(isa, FMA => binary_inplace_body(op, acc, b, swapped))
}

#[inline(always)]
fn binary_inplace_body(op: BinaryOp, acc: &mut [f32], b: Run<f32>, swapped: bool) {
    macro_rules! each {
        (|$x:ident, $y:ident| $e:expr) => {{
            let len = acc.len();
            match b {
                Run::Slice(ys) => {
                    for (d, &$y) in acc.iter_mut().zip(&ys[..len]) {
                        let $x = *d;
                        *d = $e;
                    }
                }
                Run::Scalar($y) => {
                    for d in acc.iter_mut() {
                        let $x = *d;
                        *d = $e;
                    }
                }
                Run::Strided(..) => {
                    for (i, d) in acc.iter_mut().enumerate() {
                        let ($x, $y) = (*d, b.get(i));
                        *d = $e;
                    }
                }
            }
        }};
    }
    match (op, swapped) {
        (BinaryOp::Add, _) => each!(|x, y| x + y),
        (BinaryOp::Mul, _) => each!(|x, y| x * y),
        (BinaryOp::Sub, false) => each!(|x, y| x - y),
        (BinaryOp::Sub, true) => each!(|x, y| y - x),
        (BinaryOp::Div, false) => each!(|x, y| x / y),
        (BinaryOp::Div, true) => each!(|x, y| y / x),
    }
}

/// `dst[i] = e^src[i]` ([`simd::active`]'s code).
pub fn exp_slice(src: &[f32], dst: &mut [f32]) {
    unary_slice(simd::active(), Unary::Exp, src, dst)
}

/// `dst[i] = tanh(src[i])`.
pub fn tanh_slice(src: &[f32], dst: &mut [f32]) {
    unary_slice(simd::active(), Unary::Tanh, src, dst)
}

/// `dst[i] = erf(src[i])`.
pub fn erf_slice(src: &[f32], dst: &mut [f32]) {
    unary_slice(simd::active(), Unary::Erf, src, dst)
}

/// `dst[i] = 1 / (1 + e^-src[i])`.
pub fn sigmoid_slice(src: &[f32], dst: &mut [f32]) {
    unary_slice(simd::active(), Unary::Sigmoid, src, dst)
}

/// `e^x` (portable code).
pub fn exp(x: f32) -> f32 {
    exp_k::<false>(x)
}

/// `tanh(x)` (portable code).
pub fn tanh(x: f32) -> f32 {
    tanh_k::<false>(x)
}

/// `erf(x)` (portable code).
pub fn erf(x: f32) -> f32 {
    erf_k::<false>(x)
}

/// `1 / (1 + e^-x)` (portable code).
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_k::<false>(x)
}

// ---- reductions and row kernels ----------------------------------------------------------------------

const LANES: usize = 16;

/// A `LANES`-element chunk as an array (the length known statically).
#[inline(always)]
fn lanes(c: &[f32]) -> &[f32; LANES] {
    c.try_into().expect("chunks_exact(LANES)")
}

/// The largest non-NaN element (`-inf` for none).
#[inline(always)]
fn max_lanes(s: &[f32]) -> f32 {
    #[inline(always)]
    fn mx(a: f32, b: f32) -> f32 {
        if b > a {
            b
        } else {
            a
        }
    }
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = s.chunks_exact(LANES);
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a = mx(*a, v);
    }
    for c in chunks {
        let c = lanes(c);
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = mx(*a, v);
        }
    }
    // (Loops, not iterator adaptors, here and below: an adaptor's `fold` may stay out of line,
    // compiled without the caller's target features.)
    let mut m = f32::NEG_INFINITY;
    for v in acc {
        m = mx(m, v);
    }
    m
}

/// `Σ f(s[i])` in `LANES` f32 partial sums (added pairwise at the end).
#[inline(always)]
fn sum_lanes(s: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = s.chunks_exact(LANES);
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v);
    }
    for c in chunks {
        let c = lanes(c);
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            acc[j] += acc[j + w];
        }
    }
    acc[0]
}

/// `Σ f(s[i])`: f32 lane sums over blocks of 256 (16 terms a lane), the blocks added in f64, so
/// long rows keep f32's rounding error of a short sum.
#[inline(always)]
fn sum_blocked(s: &[f32], f: impl Fn(f32) -> f32 + Copy) -> f64 {
    let mut total = 0f64;
    for c in s.chunks(256) {
        total += sum_lanes(c, f) as f64;
    }
    total
}

/// `Σ s[i]` in `LANES` f64 partial sums: exact for a constant row (so its layer norm is exactly 0).
#[inline(always)]
fn sum_f64(s: &[f32]) -> f64 {
    let mut acc = [0f64; LANES];
    let chunks = s.chunks_exact(LANES);
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += v as f64;
    }
    for c in chunks {
        let c = lanes(c);
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64;
        }
    }
    let mut total = 0f64;
    for v in acc {
        total += v;
    }
    total
}

#[inline(always)]
fn softmax_body<const FMA: bool>(s: &mut [f32], log: bool) {
    let m = max_lanes(s);
    if log {
        // (x - max) - ln Σ e^(x - max), as the generic path and PyTorch's log_softmax_lastdim.
        for v in s.iter_mut() {
            *v -= m;
        }
        let mut sum = 0f64;
        let mut buf = [0f32; 512];
        for c in s.chunks(buf.len()) {
            let b = &mut buf[..c.len()];
            for (d, &v) in b.iter_mut().zip(c) {
                *d = exp_k::<FMA>(v);
            }
            sum += sum_lanes(b, |v| v) as f64;
        }
        let ls = (sum as f32).ln();
        for v in s.iter_mut() {
            *v -= ls;
        }
    } else {
        // e^(x - max) times 1 / Σ, as PyTorch's softmax_lastdim.
        for v in s.iter_mut() {
            *v = exp_k::<FMA>(*v - m);
        }
        let inv = 1.0 / sum_blocked(s, |v| v) as f32;
        for v in s.iter_mut() {
            *v *= inv;
        }
    }
}

/// Softmax (`log`: log-softmax) of one contiguous row, in place. A NaN anywhere makes the row NaN;
/// a row of `-inf` is NaN (as PyTorch).
pub fn softmax_inplace(isa: Isa, s: &mut [f32], log: bool) {
    dispatch!(isa, FMA => softmax_body::<FMA>(s, log))
}

#[inline(always)]
fn softmax_block_body<const FMA: bool>(
    x: &[f32],
    y: &mut [f32],
    inner: usize,
    log: bool,
    m: &mut [f32],
    sum: &mut [f32],
) {
    #[inline(always)]
    fn mx(a: f32, b: f32) -> f32 {
        if b > a {
            b
        } else {
            a
        }
    }
    m.fill(f32::NEG_INFINITY);
    sum.fill(0.0);
    for r in x.chunks_exact(inner) {
        for (m, &v) in m.iter_mut().zip(r) {
            *m = mx(*m, v);
        }
    }
    if log {
        for (r, o) in x.chunks_exact(inner).zip(y.chunks_exact_mut(inner)) {
            for (((o, &v), &m), s) in o.iter_mut().zip(r).zip(&*m).zip(sum.iter_mut()) {
                *o = v - m;
                *s += exp_k::<FMA>(*o);
            }
        }
        for s in sum.iter_mut() {
            *s = s.ln();
        }
        for o in y.chunks_exact_mut(inner) {
            for (o, &ls) in o.iter_mut().zip(&*sum) {
                *o -= ls;
            }
        }
    } else {
        for (r, o) in x.chunks_exact(inner).zip(y.chunks_exact_mut(inner)) {
            for (((o, &v), &m), s) in o.iter_mut().zip(r).zip(&*m).zip(sum.iter_mut()) {
                *o = exp_k::<FMA>(v - m);
                *s += *o;
            }
        }
        for s in sum.iter_mut() {
            *s = 1.0 / *s;
        }
        for o in y.chunks_exact_mut(inner) {
            for (o, &inv) in o.iter_mut().zip(&*sum) {
                *o *= inv;
            }
        }
    }
}

/// Softmax (`log`: log-softmax) along the leading dim of a contiguous `[d, inner]` block `x` into
/// `y`, vectorised across `inner` (a softmax over a dim other than the last needs no transpose).
/// Same results as [`softmax_inplace`] on the gathered columns up to the order of the f32 sums.
pub fn softmax_block(isa: Isa, x: &[f32], y: &mut [f32], inner: usize, log: bool) {
    assert!(
        inner > 0 && x.len() == y.len() && x.len().is_multiple_of(inner),
        "softmax_block: bad lengths"
    );
    let (mut m, mut sum) = (vec![0f32; inner], vec![0f32; inner]);
    dispatch!(isa, FMA => softmax_block_body::<FMA>(x, y, inner, log, &mut m, &mut sum))
}

#[inline(always)]
fn layer_norm_body(
    x: &[f32],
    w: Option<&[f32]>,
    b: Option<&[f32]>,
    eps: f32,
    y: &mut [f32],
) -> (f32, f32) {
    let n = x.len() as f64;
    // Two passes: the mean (f64 lanes), then the mean squared deviation (f32 lanes per block).
    let mean = (sum_f64(x) / n) as f32;
    let var = sum_blocked(x, |v| (v - mean) * (v - mean)) / n;
    let rstd = (1.0 / (var.max(0.0) + eps as f64).sqrt()) as f32;
    match (w, b) {
        (Some(w), Some(b)) => {
            for (((d, &v), &g), &h) in y.iter_mut().zip(x).zip(w).zip(b) {
                *d = (v - mean) * rstd * g + h;
            }
        }
        (Some(w), None) => {
            for ((d, &v), &g) in y.iter_mut().zip(x).zip(w) {
                *d = (v - mean) * rstd * g;
            }
        }
        (None, Some(b)) => {
            for ((d, &v), &h) in y.iter_mut().zip(x).zip(b) {
                *d = (v - mean) * rstd + h;
            }
        }
        (None, None) => {
            for (d, &v) in y.iter_mut().zip(x) {
                *d = (v - mean) * rstd;
            }
        }
    }
    (mean, rstd)
}

/// Layer norm of one row `x` into `y` (`(x - mean) * rstd * w + b`, population variance, `rstd =
/// 1 / sqrt(var + eps)`), returning `(mean, rstd)`. `w` and `b`, when given, have `x`'s length.
pub fn layer_norm_row(
    isa: Isa,
    x: &[f32],
    w: Option<&[f32]>,
    b: Option<&[f32]>,
    eps: f32,
    y: &mut [f32],
) -> (f32, f32) {
    let n = x.len();
    assert!(
        y.len() == n && w.is_none_or(|w| w.len() == n) && b.is_none_or(|b| b.len() == n),
        "layer_norm_row: lengths differ"
    );
    dispatch!(isa, FMA => layer_norm_body(x, w, b, eps, y))
}

#[inline(always)]
fn rms_norm_body(x: &[f32], w: Option<&[f32]>, eps: f32, y: &mut [f32]) -> f32 {
    // As the decomposed op computes it: the f32 mean of squares, `+ eps` and `rsqrt` in f32, then
    // `x * rstd` (times `w`).
    let ms = (sum_blocked(x, |v| v * v) / x.len() as f64) as f32;
    let rstd = 1.0 / (ms + eps).sqrt();
    match w {
        Some(w) => {
            for ((d, &v), &g) in y.iter_mut().zip(x).zip(w) {
                *d = (v * rstd) * g;
            }
        }
        None => {
            for (d, &v) in y.iter_mut().zip(x) {
                *d = v * rstd;
            }
        }
    }
    rstd
}

/// RMS norm of one row `x` into `y` (`x * rstd * w`, `rstd = 1 / sqrt(mean(x²) + eps)`), returning
/// `rstd`. `w`, when given, has `x`'s length.
///
/// ```
/// use oxport_core::tensor::kernels::{simd, vmath};
/// let (x, mut y) = ([3f32, 4.0], [0f32; 2]);
/// let rstd = vmath::rms_norm_row(simd::active(), &x, Some(&[1.0, 2.0]), 0.0, &mut y);
/// assert!((rstd - 1.0 / 12.5f32.sqrt()).abs() < 1e-6);
/// assert!((y[1] - 8.0 / 12.5f32.sqrt()).abs() < 1e-5);
/// ```
pub fn rms_norm_row(isa: Isa, x: &[f32], w: Option<&[f32]>, eps: f32, y: &mut [f32]) -> f32 {
    assert!(
        y.len() == x.len() && w.is_none_or(|w| w.len() == x.len()),
        "rms_norm_row: lengths differ"
    );
    dispatch!(isa, FMA => rms_norm_body(x, w, eps, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place (0 for equal values, ±0 equal; u64::MAX when exactly one
    /// is NaN).
    fn ulps(a: f32, b: f32) -> u64 {
        if a.is_nan() || b.is_nan() {
            return if a.is_nan() && b.is_nan() {
                0
            } else {
                u64::MAX
            };
        }
        let key = |x: f32| {
            let i = x.to_bits() as i32;
            if i < 0 {
                -((i & 0x7fff_ffff) as i64)
            } else {
                i as i64
            }
        };
        key(a).abs_diff(key(b))
    }

    /// Inputs: every 2^k-th bit pattern (each exponent, both signs, many mantissas), the specials and
    /// the edges of each function's ranges.
    fn sweep() -> Vec<f32> {
        let mut v: Vec<f32> = (0..=u32::MAX).step_by(4099).map(f32::from_bits).collect();
        let specials = [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::MAX,
            f32::MIN,
            88.722_83,
            88.722_84,
            88.8,
            89.0,
            -87.33,
            -87.34,
            -103.97,
            -103.98,
            -104.0,
            -110.0,
            0.625,
            0.843_75,
            1.25,
            1.0 / 0.35,
            6.0,
            3.92,
            9.0,
            1e-30,
            -1e-30,
        ];
        for s in specials {
            for k in -64i32..=64 {
                let b = (s.to_bits() as i64 + k as i64).clamp(0, u32::MAX as i64) as u32;
                v.push(f32::from_bits(b));
                v.push(-f32::from_bits(b));
            }
        }
        // Dense in the ranges that matter most.
        v.extend((0..200_000).map(|i| -20.0 + i as f32 * 2e-4));
        v
    }

    /// Checks `op` on every ISA this CPU has against `reference` within `max_ulps`.
    fn check(op: Unary, reference: impl Fn(f32) -> f32, max_ulps: u64) {
        let xs = sweep();
        let want: Vec<f32> = xs.iter().map(|&x| reference(x)).collect();
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            let mut got = vec![0f32; xs.len()];
            unary_slice(isa, op, &xs, &mut got);
            let mut worst = (0u64, 0f32);
            for ((&x, &g), &w) in xs.iter().zip(&got).zip(&want) {
                let d = ulps(g, w);
                if d > worst.0 {
                    worst = (d, x);
                }
                // The sign of zero matters too.
                assert!(
                    !(g == 0.0 && w == 0.0) || g.is_sign_negative() == w.is_sign_negative(),
                    "{op:?} {isa:?} at {x:e}: {g:e} vs {w:e}"
                );
            }
            let x = worst.1;
            eprintln!("{op:?} {isa:?}: worst {} ulps at {x:e}", worst.0);
            assert!(
                worst.0 <= max_ulps,
                "{op:?} {isa:?}: {} ulps at {x:e} ({:e} vs {:e})",
                worst.0,
                got[xs.iter().position(|&y| y.to_bits() == x.to_bits()).unwrap()],
                reference(x)
            );
            // The in-place form and the scalar portable function agree with the slice kernel.
            let mut inplace = xs.clone();
            unary_inplace(isa, op, &mut inplace);
            assert!(inplace.iter().zip(&got).all(|(a, b)| ulps(*a, *b) == 0));
            if isa == Isa::Portable {
                assert!(xs
                    .iter()
                    .zip(&got)
                    .all(|(&x, &g)| ulps(op.apply(x), g) == 0));
            }
        }
    }

    fn f64_to_f32(f: impl Fn(f64) -> f64) -> impl Fn(f32) -> f32 {
        move |x| f(x as f64) as f32
    }

    #[test]
    fn exp_matches_libm() {
        check(Unary::Exp, f64_to_f32(f64::exp), 1);
        check(Unary::Exp, libm::expf, 1);
    }

    #[test]
    fn tanh_matches_libm() {
        check(Unary::Tanh, f64_to_f32(f64::tanh), 1);
    }

    #[test]
    fn erf_matches_libm() {
        check(Unary::Erf, f64_to_f32(libm::erf), 1);
        check(Unary::Erf, libm::erff, 1);
    }

    #[test]
    fn sigmoid_and_silu_match_the_pytorch_formulas() {
        // Against the exact values (e^-x's error plus two roundings), except below -88, where the f32
        // formula's e^-x overflows (PyTorch's too): the result is then ±0, not a subnormal.
        let exact_or_f32 = |f: fn(f64) -> f64, g: fn(f32) -> f32| {
            move |x: f32| if x < -88.0 { g(x) } else { f(x as f64) as f32 }
        };
        let sig = exact_or_f32(
            |x| 1.0 / (1.0 + (-x).exp()),
            |x| 1.0 / (1.0 + libm::expf(-x)),
        );
        check(Unary::Sigmoid, sig, 2);
        let silu = exact_or_f32(|x| x / (1.0 + (-x).exp()), |x| x / (1.0 + libm::expf(-x)));
        check(Unary::Silu, silu, 2);
        // PyTorch's f32 evaluation of the same formula.
        check(Unary::Sigmoid, |x| 1.0 / (1.0 + libm::expf(-x)), 4);
    }

    #[test]
    fn gelus_match_the_reference_formulas() {
        check(
            Unary::Gelu,
            |x| {
                if x.is_infinite() {
                    f32::NAN
                } else {
                    (x as f64 * 0.5 * (1.0 + libm::erf(x as f64 * std::f64::consts::FRAC_1_SQRT_2)))
                        as f32
                }
            },
            // Within 3 ulp except where 1 + erf cancels (x < -1), where the error is ≤ 3 ulp of 1
            // times x/2: checked in absolute terms below.
            u64::MAX - 1,
        );
        let near = |op: Unary, r: fn(f64) -> f64| {
            for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
                let xs: Vec<f32> = (0..400_000).map(|i| -20.0 + i as f32 * 1e-4).collect();
                let mut got = vec![0f32; xs.len()];
                unary_slice(isa, op, &xs, &mut got);
                for (&x, &g) in xs.iter().zip(&got) {
                    let w = r(x as f64);
                    let tol = 3.0 * f32::EPSILON as f64 * (w.abs() + 0.5 * (x as f64).abs());
                    assert!(
                        (g as f64 - w).abs() <= tol,
                        "{op:?} {isa:?} at {x}: {g} vs {w}"
                    );
                }
            }
        };
        near(Unary::Gelu, |x| {
            x * 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
        });
        near(Unary::GeluTanh, |x| {
            0.5 * x * (1.0 + (0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x)).tanh())
        });
        // ±inf: NaN for erf-GELU (PyTorch's kernel), the limits for tanh-GELU's formula.
        assert!(Unary::Gelu.apply(f32::INFINITY).is_nan());
        assert_eq!(Unary::GeluTanh.apply(f32::INFINITY), f32::INFINITY);
        assert!(Unary::GeluTanh.apply(f32::NEG_INFINITY).is_nan());
    }

    #[test]
    fn simple_activations_match_the_scalar_definitions() {
        let hc = |x: f32| (x + 3.0).clamp(0.0, 6.0);
        let nan_or = |x: f32, v: f32| if x.is_nan() { x } else { v };
        check(
            Unary::Relu,
            move |x| nan_or(x, if x > 0.0 { x } else { 0.0 }),
            0,
        );
        check(Unary::Hardsigmoid, move |x| nan_or(x, hc(x) / 6.0), 0);
        check(Unary::Hardswish, move |x| nan_or(x, x * hc(x) / 6.0), 0);
        check(
            Unary::Hardtanh { lo: -1.0, hi: 2.0 },
            move |x| nan_or(x, x.clamp(-1.0, 2.0)),
            0,
        );
    }

    fn softmax_ref(s: &[f32], log: bool) -> Vec<f64> {
        let m = s.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let sum: f64 = s.iter().map(|&x| (x as f64 - m).exp()).sum();
        s.iter()
            .map(|&x| {
                if log {
                    x as f64 - m - sum.ln()
                } else {
                    (x as f64 - m).exp() / sum
                }
            })
            .collect()
    }

    #[test]
    fn softmax_rows_match_f64() {
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for n in [1usize, 3, 16, 17, 100, 768, 5000] {
                let row: Vec<f32> = (0..n)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3)
                    .collect();
                for log in [false, true] {
                    let mut s = row.clone();
                    softmax_inplace(isa, &mut s, log);
                    for (g, w) in s.iter().zip(softmax_ref(&row, log)) {
                        let tol = 1e-6 * w.abs() + 1e-6;
                        assert!(
                            (*g as f64 - w).abs() <= tol,
                            "{isa:?} n={n} log={log}: {g} vs {w}"
                        );
                    }
                }
            }
            // NaN poisons the row; all -inf is NaN; -inf elements give 0 (log: -inf).
            let mut s = vec![1.0, f32::NAN, 2.0];
            softmax_inplace(isa, &mut s, false);
            assert!(s.iter().all(|v| v.is_nan()));
            let mut s = vec![f32::NEG_INFINITY; 3];
            softmax_inplace(isa, &mut s, true);
            assert!(s.iter().all(|v| v.is_nan()));
            let mut s = vec![f32::NEG_INFINITY, 0.0];
            softmax_inplace(isa, &mut s, false);
            assert_eq!(s, vec![0.0, 1.0]);
            let mut s = vec![f32::NEG_INFINITY, 0.0];
            softmax_inplace(isa, &mut s, true);
            assert_eq!(s, vec![f32::NEG_INFINITY, 0.0]);
        }
    }

    #[test]
    fn softmax_blocks_match_the_row_kernel() {
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for (d, inner) in [(1usize, 5usize), (7, 1), (7, 33), (100, 16)] {
                let x: Vec<f32> = (0..d * inner)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3)
                    .collect();
                for log in [false, true] {
                    let mut y = vec![0f32; x.len()];
                    softmax_block(isa, &x, &mut y, inner, log);
                    for j in 0..inner {
                        let col: Vec<f32> = (0..d).map(|r| x[r * inner + j]).collect();
                        for (r, w) in softmax_ref(&col, log).into_iter().enumerate() {
                            let g = y[r * inner + j] as f64;
                            assert!(
                                (g - w).abs() <= 1e-6 * w.abs() + 1e-6,
                                "{isa:?} {d}x{inner}"
                            );
                        }
                    }
                }
            }
            let mut y = vec![0f32; 4];
            softmax_block(
                isa,
                &[1.0, f32::NEG_INFINITY, f32::NAN, 0.0],
                &mut y,
                2,
                false,
            );
            assert!(y[0].is_nan() && y[2].is_nan());
            assert_eq!((y[1], y[3]), (0.0, 1.0));
        }
    }

    #[test]
    fn rms_norm_rows_match_f64() {
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for n in [1usize, 5, 16, 256, 10_000] {
                let x: Vec<f32> = (0..n).map(|i| ((i * 13 % 31) as f32) * 0.1 - 1.5).collect();
                let w: Vec<f32> = (0..n).map(|i| 1.0 + (i % 5) as f32 * 0.1).collect();
                let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let r = 1.0 / (xd.iter().map(|v| v * v).sum::<f64>() / n as f64 + 1e-6).sqrt();
                for wo in [None, Some(&w[..])] {
                    let mut y = vec![0f32; n];
                    let gr = rms_norm_row(isa, &x, wo, 1e-6, &mut y);
                    assert!(
                        (gr as f64 - r).abs() <= 1e-5 * r,
                        "{isa:?} n={n}: {gr} vs {r}"
                    );
                    for i in 0..n {
                        let want = xd[i] * r * wo.map_or(1.0, |w| w[i] as f64);
                        assert!(
                            (y[i] as f64 - want).abs() <= 1e-5 * want.abs() + 1e-6,
                            "{isa:?} n={n} i={i}: {} vs {want}",
                            y[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn layer_norm_rows_match_f64() {
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            // A constant row normalises to exactly 0 (the mean is exact).
            let x = vec![0.1f32; 777];
            let mut y = vec![1f32; 777];
            let (m, r) = layer_norm_row(isa, &x, None, None, 1e-5, &mut y);
            assert_eq!(m, 0.1);
            assert_eq!(r, (1.0 / (1e-5f32 as f64).sqrt()) as f32);
            assert!(y.iter().all(|&v| v == 0.0));
        }
        for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for n in [1usize, 5, 16, 768, 10_000] {
                // An offset mean: the two-pass variance must not cancel.
                let x: Vec<f32> = (0..n)
                    .map(|i| 100.0 + ((i * 13 % 31) as f32) * 0.01)
                    .collect();
                let w: Vec<f32> = (0..n).map(|i| 1.0 + (i % 5) as f32 * 0.1).collect();
                let b: Vec<f32> = (0..n).map(|i| (i % 3) as f32 - 1.0).collect();
                let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let m = xd.iter().sum::<f64>() / n as f64;
                let var = xd.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
                let r = 1.0 / (var + 1e-5).sqrt();
                for (wo, bo) in [
                    (None, None),
                    (Some(&w[..]), None),
                    (None, Some(&b[..])),
                    (Some(&w[..]), Some(&b[..])),
                ] {
                    let mut y = vec![0f32; n];
                    let (gm, gr) = layer_norm_row(isa, &x, wo, bo, 1e-5, &mut y);
                    assert!((gm as f64 - m).abs() <= 1e-6 * m.abs());
                    assert!(
                        (gr as f64 - r).abs() <= 1e-4 * r,
                        "{isa:?} n={n}: rstd {gr} vs {r}"
                    );
                    for i in 0..n {
                        let want = (xd[i] - m) * r * wo.map_or(1.0, |w| w[i] as f64)
                            + bo.map_or(0.0, |b| b[i] as f64);
                        assert!(
                            (y[i] as f64 - want).abs() <= 1e-4 * want.abs() + 1e-4,
                            "{isa:?} n={n} i={i}: {} vs {want}",
                            y[i]
                        );
                    }
                }
            }
        }
    }
}

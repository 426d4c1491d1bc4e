//! Element-wise activations applied in place, for fusing into kernel epilogues (convolution today).
//!
//! The formulas and their NaN behaviour are those of oxport's stand-alone ops in
//! `ops/defs/pointwise.rs`, which mirror PyTorch's CPU kernels:
//!
//! * `relu`, `hardtanh` (`Clamp`), `hardsigmoid`, `hardswish` propagate NaN (a plain `max`/`min`
//!   would drop it);
//! * `sigmoid(x) = 1 / (1 + exp(-x))`, `silu(x) = x / (1 + exp(-x))`;
//! * `gelu(x) = x · ½ · (1 + erf(x / √2))`, NaN for ±inf like PyTorch's vectorised CPU kernel;
//! * `gelu(x, approximate='tanh') = ½ · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
//!
//! f32 runs [`vmath`](super::vmath)'s vectorised kernels (those of the stand-alone ops); f64, the
//! reference precision of the kernels' tests, computes its `exp`, `tanh` and `erf` in the [`math`]
//! submodule.

use std::any::Any;

use super::matmul::Scalar;

/// An activation that a fused kernel applies to its output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `x`.
    Identity,
    /// `relu(x) = max(x, 0)`, NaN propagating.
    Relu,
    /// `hardtanh(x, min, max) = clamp(x, min, max)`, NaN propagating; `relu6` is
    /// `Clamp { min: 0.0, max: 6.0 }`.
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `hardswish(x) = x · hardsigmoid(x)`.
    HardSwish,
    /// `hardsigmoid(x) = clamp(x + 3, 0, 6) / 6`.
    HardSigmoid,
    /// `silu(x) = x / (1 + exp(-x))` (a.k.a. swish).
    Silu,
    /// `sigmoid(x) = 1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// Exact (erf) GELU, `aten.gelu(approximate='none')`.
    Gelu,
    /// Tanh-approximated GELU, `aten.gelu(approximate='tanh')`.
    GeluTanh,
}

impl Activation {
    /// `relu6`, i.e. `hardtanh(x, 0, 6)`.
    pub const RELU6: Activation = Activation::Clamp { min: 0.0, max: 6.0 };

    /// True for [`Activation::Identity`] (nothing to do).
    pub fn is_identity(&self) -> bool {
        matches!(self, Activation::Identity)
    }

    /// Applies the activation in place to f32 values, matching PyTorch's CPU kernels (see the
    /// module docs for the formulas and NaN handling): [`vmath`](super::vmath)'s vectorised
    /// kernels, for the instruction set [`simd::active`](super::simd::active) picks.
    pub fn apply_f32(&self, x: &mut [f32]) {
        if let Some(op) = self.unary() {
            super::vmath::unary_inplace(super::simd::active(), op, x);
        }
    }

    /// The [`vmath`](super::vmath) kernel computing `self` (`None` for the identity).
    pub fn unary(&self) -> Option<super::vmath::Unary> {
        use super::vmath::Unary;
        Some(match *self {
            Activation::Identity => return None,
            Activation::Relu => Unary::Relu,
            Activation::Clamp { min, max } => Unary::Hardtanh { lo: min, hi: max },
            Activation::HardSwish => Unary::Hardswish,
            Activation::HardSigmoid => Unary::Hardsigmoid,
            Activation::Silu => Unary::Silu,
            Activation::Sigmoid => Unary::Sigmoid,
            Activation::Tanh => Unary::Tanh,
            Activation::Gelu => Unary::Gelu,
            Activation::GeluTanh => Unary::GeluTanh,
        })
    }

    /// Applies the activation in place to f64 values, matching PyTorch's CPU kernels (see the
    /// module docs for the formulas and NaN handling).
    pub fn apply_f64(&self, x: &mut [f64]) {
        apply_impl(self, x);
    }

    /// [`Activation::apply_f32`] or [`Activation::apply_f64`], for code generic over the kernel
    /// [`Scalar`] (which is `f32` or `f64`).
    pub fn apply<T: Scalar>(&self, x: &mut [T]) {
        if self.is_identity() {
            return;
        }
        let f32_fn: fn(&Activation, &mut [f32]) = Activation::apply_f32;
        let f64_fn: fn(&Activation, &mut [f64]) = Activation::apply_f64;
        // `Scalar` is sealed to f32 and f64: exactly one of these downcasts succeeds.
        if let Some(f) = (&f32_fn as &dyn Any).downcast_ref::<fn(&Activation, &mut [T])>() {
            f(self, x)
        } else if let Some(f) = (&f64_fn as &dyn Any).downcast_ref::<fn(&Activation, &mut [T])>() {
            f(self, x)
        } else {
            unreachable!("kernel Scalar is f32 or f64")
        }
    }
}

/// The float operations the activations need, for f32 and f64.
trait Float:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + Default
{
    const ZERO: Self;
    const ONE: Self;
    const NAN: Self;
    fn c(v: f64) -> Self;
    fn from_f32(v: f32) -> Self;
    fn is_infinite(self) -> bool;
    /// In place `exp` of every element.
    fn exp_slice(x: &mut [Self]);
    /// In place `tanh` of every element.
    fn tanh_slice(x: &mut [Self]);
    /// In place `erf` of every element.
    fn erf_slice(x: &mut [Self]);
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAN: Self = f64::NAN;
    #[inline(always)]
    fn c(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    #[inline(always)]
    fn is_infinite(self) -> bool {
        f64::is_infinite(self)
    }
    fn exp_slice(x: &mut [Self]) {
        math::exp_f64(x)
    }
    fn tanh_slice(x: &mut [Self]) {
        math::tanh_f64(x)
    }
    fn erf_slice(x: &mut [Self]) {
        math::erf_f64(x)
    }
}

/// The f64 transcendental functions behind the activations, on whole slices (in place).
///
/// Where [`Activation`] computes `exp`, `tanh` and `erf` in f64: scalar loops over `std`/`libm`.
pub mod math {
    /// `x[i] = exp(x[i])`.
    pub fn exp_f64(x: &mut [f64]) {
        x.iter_mut().for_each(|v| *v = v.exp());
    }
    /// `x[i] = tanh(x[i])`.
    pub fn tanh_f64(x: &mut [f64]) {
        x.iter_mut().for_each(|v| *v = v.tanh());
    }
    /// `x[i] = erf(x[i])`.
    pub fn erf_f64(x: &mut [f64]) {
        x.iter_mut().for_each(|v| *v = libm::erf(*v));
    }
}

/// Elements per stack chunk of the activations that need a transcendental function.
const CHUNK: usize = 64;

/// `x[i] = f(x[i], g(h(x[i])))` chunk by chunk, where `h` prepares the argument of the slice
/// function `g` (exp, tanh, erf) in a stack buffer.
#[inline(always)]
fn with_math<F: Float>(x: &mut [F], h: impl Fn(F) -> F, g: fn(&mut [F]), f: impl Fn(F, F) -> F) {
    let mut buf = [F::ZERO; CHUNK];
    for xs in x.chunks_mut(CHUNK) {
        let t = &mut buf[..xs.len()];
        for (t, &v) in t.iter_mut().zip(xs.iter()) {
            *t = h(v);
        }
        g(t);
        for (v, &t) in xs.iter_mut().zip(t.iter()) {
            *v = f(*v, t);
        }
    }
}

/// `clamp(x + 3, 0, 6) / 6`, NaN propagating (comparisons with NaN are false, so it falls through
/// both selects).
#[inline(always)]
fn hard_gate<F: Float>(x: F) -> F {
    let t = x + F::c(3.0);
    let t = if t < F::ZERO { F::ZERO } else { t };
    let t = if t > F::c(6.0) { F::c(6.0) } else { t };
    t / F::c(6.0)
}

fn apply_impl<F: Float>(act: &Activation, x: &mut [F]) {
    match *act {
        Activation::Identity => {}
        // `x < 0 ? 0 : x` keeps NaN (the comparison is false) and is a vector select.
        Activation::Relu => x
            .iter_mut()
            .for_each(|v| *v = if *v < F::ZERO { F::ZERO } else { *v }),
        Activation::Clamp { min, max } => {
            let (lo, hi) = (F::from_f32(min), F::from_f32(max));
            // Same as `x.max(lo).min(hi)` for non-NaN x (also when lo > hi: hi), NaN kept.
            x.iter_mut().for_each(|v| {
                let t = if *v < lo { lo } else { *v };
                *v = if t > hi { hi } else { t };
            })
        }
        Activation::HardSigmoid => x.iter_mut().for_each(|v| *v = hard_gate(*v)),
        Activation::HardSwish => x.iter_mut().for_each(|v| *v = *v * hard_gate(*v)),
        Activation::Silu => with_math(x, |v| -v, F::exp_slice, |v, e| v / (F::ONE + e)),
        Activation::Sigmoid => with_math(x, |v| -v, F::exp_slice, |_, e| F::ONE / (F::ONE + e)),
        Activation::Tanh => F::tanh_slice(x),
        Activation::Gelu => with_math(
            x,
            |v| v * F::c(std::f64::consts::FRAC_1_SQRT_2),
            F::erf_slice,
            // PyTorch's CPU kernel yields NaN for ±inf (inf * 0 inside its vectorised erf).
            |v, e| {
                if v.is_infinite() {
                    F::NAN
                } else {
                    v * F::c(0.5) * (F::ONE + e)
                }
            },
        ),
        Activation::GeluTanh => with_math(
            x,
            |v| F::c(0.797_884_560_802_865_4) * (v + F::c(0.044715) * v * v * v),
            F::tanh_slice,
            |v, t| F::c(0.5) * v * (F::ONE + t),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference formulas, written per element in f64 exactly as `ops/defs/pointwise.rs` has them.
    #[allow(clippy::manual_clamp)]
    fn reference(act: &Activation, x: f64) -> f64 {
        let hard_gate = |x: f64| {
            if x.is_nan() {
                x
            } else {
                ((x + 3.0).max(0.0).min(6.0)) / 6.0
            }
        };
        match *act {
            Activation::Identity => x,
            Activation::Relu => {
                if x.is_nan() {
                    x
                } else {
                    x.max(0.0)
                }
            }
            Activation::Clamp { min, max } => {
                if x.is_nan() {
                    x
                } else {
                    x.max(min as f64).min(max as f64)
                }
            }
            Activation::HardSwish => x * hard_gate(x),
            Activation::HardSigmoid => hard_gate(x),
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Sigmoid => (1.0 + (-x).exp()).recip(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => {
                if x.is_infinite() {
                    f64::NAN
                } else {
                    x * 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
                }
            }
            Activation::GeluTanh => {
                let inner = 0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x);
                0.5 * x * (1.0 + inner.tanh())
            }
        }
    }

    const ALL: [Activation; 11] = [
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

    fn inputs() -> Vec<f64> {
        let mut v: Vec<f64> = (-200..=200).map(|i| i as f64 * 0.05).collect();
        v.extend([
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            -3.0,
            3.0,
            6.0,
            100.0,
            -100.0,
            1e-30,
        ]);
        v
    }

    #[test]
    fn matches_reference_f64_and_f32() {
        let xs = inputs();
        for act in ALL {
            let mut got = xs.clone();
            act.apply_f64(&mut got);
            let mut got_generic = xs.clone();
            act.apply::<f64>(&mut got_generic);
            let xs32: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
            let mut got32 = xs32.clone();
            act.apply_f32(&mut got32);
            let mut got32_generic = xs32.clone();
            act.apply::<f32>(&mut got32_generic);
            for i in 0..xs.len() {
                let want = reference(&act, xs[i]);
                let ctx = format!("{act:?} at x = {}", xs[i]);
                let ok64 = (got[i] - want).abs() <= 1e-14 * want.abs().max(1.0)
                    || (got[i].is_nan() && want.is_nan())
                    || got[i] == want;
                assert!(ok64, "{ctx}: f64 got {}, want {want}", got[i]);
                assert!(
                    got_generic[i].to_bits() == got[i].to_bits(),
                    "{ctx}: generic f64"
                );
                let want32 = reference(&act, xs32[i] as f64);
                let g = got32[i] as f64;
                let ok32 = (g - want32).abs() <= 2e-6 * want32.abs().max(1.0)
                    || (g.is_nan() && want32.is_nan())
                    || g == want32;
                assert!(ok32, "{ctx}: f32 got {g}, want {want32}");
                assert!(
                    got32_generic[i].to_bits() == got32[i].to_bits(),
                    "{ctx}: generic f32"
                );
            }
        }
    }

    #[test]
    fn nan_propagates_and_signs() {
        for act in ALL {
            let mut x = [f32::NAN];
            act.apply_f32(&mut x);
            assert!(x[0].is_nan(), "{act:?}");
        }
        let mut x = [-0.0f32, -1.0, 2.0];
        Activation::Relu.apply_f32(&mut x);
        assert_eq!(x, [0.0, 0.0, 2.0]);
        let mut x = [-1.0f64, 3.0, 7.0];
        Activation::RELU6.apply_f64(&mut x);
        assert_eq!(x, [0.0, 3.0, 6.0]);
    }
}

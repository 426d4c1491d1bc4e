//! Arithmetic operators on [`SymInt`], as user code writes it (`x.sym_size(0)? * 2`).
//!
//! Each operator computes the simplified result (see [`crate::sym`]); when an operand is symbolic and
//! export is tracing, it also tells the tracer, which records the `_operator.mul` (etc.) node PyTorch
//! records for the same Python arithmetic. `/` is floor division and `%` Python's modulo, as for sizes
//! in PyTorch (`//`, `%`).
use crate::ops::SymScalar;
use crate::sym::{SymFloat, SymInt};
use std::ops::{Add, Div, Mul, Neg, Rem, Sub};
use std::sync::Arc;

#[track_caller]
fn traced(
    op: &'static str,
    lhs: &SymInt,
    rhs: &SymInt,
    f: fn(&SymInt, &SymInt) -> SymInt,
) -> SymInt {
    let result = match f(lhs, rhs) {
        // A fresh expression object per operation: the tracer tells computations apart by identity.
        SymInt::Sym(e) => SymInt::Sym(Arc::new((*e).clone())),
        int => int,
    };
    if lhs.is_symbolic() || rhs.is_symbolic() {
        if let Some(hook) = crate::ops::registry::current_hook() {
            // `2 * b` runs Python's `b.__rmul__(2)`, which PyTorch records as `b * 2`.
            let (a, b) = match (op, lhs) {
                ("add" | "mul", SymInt::Int(_)) => (rhs, lhs),
                _ => (lhs, rhs),
            };
            hook.sym_op(op, a, b, &result, std::panic::Location::caller());
        }
    }
    result
}

macro_rules! sym_binop {
    ($trait:ident, $method:ident, $name:literal, $f:path) => {
        impl $trait<SymInt> for SymInt {
            type Output = SymInt;
            #[track_caller]
            fn $method(self, rhs: SymInt) -> SymInt {
                traced($name, &self, &rhs, $f)
            }
        }
        impl $trait<&SymInt> for &SymInt {
            type Output = SymInt;
            #[track_caller]
            fn $method(self, rhs: &SymInt) -> SymInt {
                traced($name, self, rhs, $f)
            }
        }
        impl $trait<i64> for SymInt {
            type Output = SymInt;
            #[track_caller]
            fn $method(self, rhs: i64) -> SymInt {
                traced($name, &self, &SymInt::Int(rhs), $f)
            }
        }
        impl $trait<i64> for &SymInt {
            type Output = SymInt;
            #[track_caller]
            fn $method(self, rhs: i64) -> SymInt {
                traced($name, self, &SymInt::Int(rhs), $f)
            }
        }
        impl $trait<SymInt> for i64 {
            type Output = SymInt;
            #[track_caller]
            fn $method(self, rhs: SymInt) -> SymInt {
                traced($name, &SymInt::Int(self), &rhs, $f)
            }
        }
        impl $trait<&SymInt> for i64 {
            type Output = SymInt;
            #[track_caller]
            fn $method(self, rhs: &SymInt) -> SymInt {
                traced($name, &SymInt::Int(self), rhs, $f)
            }
        }
    };
}

sym_binop!(Add, add, "add", SymInt::add);
sym_binop!(Sub, sub, "sub", SymInt::sub);
sym_binop!(Mul, mul, "mul", SymInt::mul);
sym_binop!(Div, div, "floordiv", SymInt::floor_div);
sym_binop!(Rem, rem, "mod", SymInt::modulo);

/// A fresh expression object per operation: the tracer tells computations apart by identity.
fn fresh_float(f: SymFloat) -> SymFloat {
    match f {
        SymFloat::Sym(e) => SymFloat::Sym(Arc::new((*e).clone())),
        f => f,
    }
}
fn fresh_int(i: SymInt) -> SymInt {
    match i {
        SymInt::Sym(e) => SymInt::Sym(Arc::new((*e).clone())),
        i => i,
    }
}

/// Tells the tracer, if one is running and an argument is symbolic, that `result = target(args...)`.
#[track_caller]
fn record(target: &'static str, args: &[SymScalar], result: SymScalar) {
    if args.iter().any(SymScalar::is_symbolic) {
        if let Some(hook) = crate::ops::registry::current_hook() {
            hook.sym_call(target, args, &result, std::panic::Location::caller());
        }
    }
}

/// `torch.sym_float(i)`: an int as a float (`ToFloat(s0)`), recorded as PyTorch records it.
///
/// ```
/// use oxport_core::prelude::*;
/// assert_eq!(sym_float(&SymInt::Int(3)), SymFloat::Float(3.0));
/// let s = SymInt::symbol("s0", 4);
/// assert_eq!(sym_float(&s).to_string(), "ToFloat(s0)");
/// ```
#[track_caller]
pub fn sym_float(i: &SymInt) -> SymFloat {
    let r = fresh_float(SymFloat::from_int(i));
    record("torch.sym_float", &[i.into()], r.clone().into());
    r
}

/// `torch.sym_sqrt(x)` (`torch._sym_sqrt`): the square root of a float, or of an int made a float first
/// with [`sym_float`], as PyTorch does.
///
/// ```
/// use oxport_core::prelude::*;
/// assert_eq!(sym_sqrt(SymInt::Int(16)), SymFloat::Float(4.0));
/// assert_eq!(sym_sqrt(2.25), SymFloat::Float(1.5));
/// ```
#[track_caller]
pub fn sym_sqrt(x: impl IntoSymFloat) -> SymFloat {
    let x = x.into_sym_float();
    let r = fresh_float(x.sqrt());
    record("torch._sym_sqrt", &[x.into()], r.clone().into());
    r
}

/// `torch.sym_int(x)` of a float: truncation toward zero, recorded as PyTorch records it (`math.trunc`,
/// `TruncToInt(...)`).
///
/// ```
/// use oxport_core::prelude::*;
/// assert_eq!(sym_int(&SymFloat::Float(-2.5)), SymInt::Int(-2));
/// assert_eq!(sym_int(&SymInt::Int(7).true_div(2)), SymInt::Int(3));
/// ```
#[track_caller]
pub fn sym_int(x: &SymFloat) -> SymInt {
    let r = fresh_int(x.trunc());
    record("math.trunc", &[x.into()], r.clone().into());
    r
}

/// A number where a float is computed with: a [`SymFloat`], a Rust float or int, or a [`SymInt`] (made a
/// float with [`sym_float`], which records `torch.sym_float` as Python's int-to-float promotion does).
///
/// ```
/// use oxport_core::prelude::*;
/// fn half(x: impl IntoSymFloat) -> SymFloat {
///     x.into_sym_float() * 0.5
/// }
/// assert_eq!(half(3), SymFloat::Float(1.5));
/// assert_eq!(half(SymInt::Int(5)), SymFloat::Float(2.5));
/// assert_eq!(half(SymInt::symbol("s0", 4)).to_string(), "0.5*ToFloat(s0)");
/// ```
pub trait IntoSymFloat {
    /// The float.
    #[track_caller]
    fn into_sym_float(self) -> SymFloat;
}

impl IntoSymFloat for SymFloat {
    fn into_sym_float(self) -> SymFloat {
        self
    }
}
impl IntoSymFloat for &SymFloat {
    fn into_sym_float(self) -> SymFloat {
        self.clone()
    }
}
impl IntoSymFloat for f64 {
    fn into_sym_float(self) -> SymFloat {
        SymFloat::Float(self)
    }
}
impl IntoSymFloat for f32 {
    fn into_sym_float(self) -> SymFloat {
        SymFloat::Float(self as f64)
    }
}
impl IntoSymFloat for i64 {
    fn into_sym_float(self) -> SymFloat {
        SymFloat::Float(self as f64)
    }
}
impl IntoSymFloat for i32 {
    fn into_sym_float(self) -> SymFloat {
        SymFloat::Float(self as f64)
    }
}
impl IntoSymFloat for SymInt {
    #[track_caller]
    fn into_sym_float(self) -> SymFloat {
        sym_float(&self)
    }
}
impl IntoSymFloat for &SymInt {
    #[track_caller]
    fn into_sym_float(self) -> SymFloat {
        sym_float(self)
    }
}

#[track_caller]
fn float_op(
    op: &'static str,
    a: SymFloat,
    b: SymFloat,
    f: fn(&SymFloat, &SymFloat) -> SymFloat,
) -> SymFloat {
    let r = fresh_float(f(&a, &b));
    let target = match op {
        "add" => "_operator.add",
        "sub" => "_operator.sub",
        "mul" => "_operator.mul",
        "truediv" => "_operator.truediv",
        _ => "_operator.pow",
    };
    record(target, &[a.into(), b.into()], r.clone().into());
    r
}

macro_rules! float_binop {
    ($trait:ident, $method:ident, $name:literal, $f:path) => {
        impl<R: IntoSymFloat> $trait<R> for SymFloat {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: R) -> SymFloat {
                let rhs = rhs.into_sym_float();
                float_op($name, self, rhs, $f)
            }
        }
        impl<R: IntoSymFloat> $trait<R> for &SymFloat {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: R) -> SymFloat {
                let rhs = rhs.into_sym_float();
                float_op($name, self.clone(), rhs, $f)
            }
        }
        impl $trait<SymFloat> for f64 {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: SymFloat) -> SymFloat {
                float_op($name, SymFloat::Float(self), rhs, $f)
            }
        }
        impl $trait<&SymFloat> for f64 {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: &SymFloat) -> SymFloat {
                float_op($name, SymFloat::Float(self), rhs.clone(), $f)
            }
        }
        // An int and a float: the int is made a float first (`torch.sym_float`), as Python promotes it.
        impl $trait<f64> for SymInt {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: f64) -> SymFloat {
                float_op($name, sym_float(&self), SymFloat::Float(rhs), $f)
            }
        }
        impl $trait<f64> for &SymInt {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: f64) -> SymFloat {
                float_op($name, sym_float(self), SymFloat::Float(rhs), $f)
            }
        }
        impl $trait<SymInt> for f64 {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: SymInt) -> SymFloat {
                float_op($name, SymFloat::Float(self), sym_float(&rhs), $f)
            }
        }
        impl $trait<&SymInt> for f64 {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: &SymInt) -> SymFloat {
                float_op($name, SymFloat::Float(self), sym_float(rhs), $f)
            }
        }
        impl $trait<SymFloat> for SymInt {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: SymFloat) -> SymFloat {
                float_op($name, sym_float(&self), rhs, $f)
            }
        }
        impl $trait<&SymFloat> for &SymInt {
            type Output = SymFloat;
            #[track_caller]
            fn $method(self, rhs: &SymFloat) -> SymFloat {
                float_op($name, sym_float(self), rhs.clone(), $f)
            }
        }
    };
}

float_binop!(Add, add, "add", SymFloat::add);
float_binop!(Sub, sub, "sub", SymFloat::sub);
float_binop!(Mul, mul, "mul", SymFloat::mul);
float_binop!(Div, div, "truediv", SymFloat::div);

impl Neg for SymFloat {
    type Output = SymFloat;
    #[track_caller]
    fn neg(self) -> SymFloat {
        let r = fresh_float(SymFloat::neg(&self));
        record("_operator.neg", &[self.into()], r.clone().into());
        r
    }
}
impl Neg for &SymFloat {
    type Output = SymFloat;
    #[track_caller]
    fn neg(self) -> SymFloat {
        -self.clone()
    }
}
impl Neg for SymInt {
    type Output = SymInt;
    #[track_caller]
    fn neg(self) -> SymInt {
        let r = fresh_int(SymInt::mul(&self, &SymInt::Int(-1)));
        record("_operator.neg", &[self.into()], r.clone().into());
        r
    }
}
impl Neg for &SymInt {
    type Output = SymInt;
    #[track_caller]
    fn neg(self) -> SymInt {
        -self.clone()
    }
}

impl SymInt {
    /// Python's true division `self / rhs` of ints: a float (`IntTrueDiv(s0, 2)`), recorded as
    /// `_operator.truediv`. (`/` on `SymInt`s is floor division, Python's `//`.)
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// assert_eq!(SymInt::Int(5).true_div(2), SymFloat::Float(2.5));
    /// assert_eq!(SymInt::symbol("s0", 5).true_div(2).to_string(), "IntTrueDiv(s0, 2)");
    /// ```
    #[track_caller]
    pub fn true_div(&self, rhs: impl Into<SymInt>) -> SymFloat {
        let rhs = rhs.into();
        let r = fresh_float(self.true_div_untraced(&rhs));
        record(
            "_operator.truediv",
            &[self.into(), rhs.into()],
            r.clone().into(),
        );
        r
    }
    /// `self ** e` for an int power: an int (`Pow(s0, 2)`, printed `s0**2`), recorded as `_operator.pow`.
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// assert_eq!(SymInt::Int(3).powi(2), SymInt::Int(9));
    /// assert_eq!(SymInt::symbol("s0", 3).powi(2).hint(), 9);
    /// ```
    #[track_caller]
    pub fn powi(&self, e: u32) -> SymInt {
        let e = SymInt::Int(e as i64);
        let r = fresh_int(self.pow_untraced(&e));
        record("_operator.pow", &[self.into(), e.into()], r.clone().into());
        r
    }
    /// `self ** e` for a float power (`s ** -0.5`): the int is made a float first ([`sym_float`]), then
    /// `FloatPow`, as PyTorch records it.
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// assert_eq!(SymInt::Int(4).powf(-0.5), SymFloat::Float(0.5));
    /// let s = SymInt::symbol("s0", 4);
    /// assert_eq!(s.powf(-0.5).to_string(), "FloatPow(ToFloat(s0), -0.5)");
    /// ```
    #[track_caller]
    pub fn powf(&self, e: impl IntoSymFloat) -> SymFloat {
        let base = sym_float(self);
        base.powf(e)
    }
}

impl SymFloat {
    /// `self ** e` (`FloatPow`), recorded as `_operator.pow`.
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// assert_eq!(SymFloat::Float(9.0).powf(0.5), SymFloat::Float(3.0));
    /// ```
    #[track_caller]
    pub fn powf(&self, e: impl IntoSymFloat) -> SymFloat {
        let e = e.into_sym_float();
        float_op("pow", self.clone(), e, SymFloat::pow)
    }
}

/// A list of sizes as ops take them: plain integers or [`SymInt`]s (`&[2, -1]`, `&[b, SymInt::from(-1)]`,
/// `vec![b * 2, (-1).into()]`).
pub trait IntoSymInts {
    /// The sizes.
    fn into_sym_ints(self) -> Vec<SymInt>;
}

impl IntoSymInts for &[i64] {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.iter().map(|&v| SymInt::Int(v)).collect()
    }
}
impl<const N: usize> IntoSymInts for &[i64; N] {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.iter().map(|&v| SymInt::Int(v)).collect()
    }
}
impl IntoSymInts for Vec<i64> {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.into_iter().map(SymInt::Int).collect()
    }
}
impl IntoSymInts for &Vec<i64> {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.iter().map(|&v| SymInt::Int(v)).collect()
    }
}
impl IntoSymInts for &[SymInt] {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.to_vec()
    }
}
impl<const N: usize> IntoSymInts for &[SymInt; N] {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.to_vec()
    }
}
impl<const N: usize> IntoSymInts for [SymInt; N] {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.to_vec()
    }
}
impl IntoSymInts for Vec<SymInt> {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self
    }
}
impl IntoSymInts for &Vec<SymInt> {
    fn into_sym_ints(self) -> Vec<SymInt> {
        self.clone()
    }
}

/// An optional int argument (`SymInt?` in a schema, such as `slice`'s bounds): an int, a [`SymInt`], or
/// `None`.
///
/// ```
/// use oxport_core::prelude::*;
/// fn bound(v: impl IntoOptSymInt) -> Option<SymInt> {
///     v.into_opt_sym_int()
/// }
/// assert_eq!(bound(3), Some(SymInt::Int(3)));
/// assert_eq!(bound(SymInt::Int(2) - 1), Some(SymInt::Int(1)));
/// assert_eq!(bound(None), None);
/// ```
pub trait IntoOptSymInt {
    /// The value, `None` for an absent one.
    fn into_opt_sym_int(self) -> Option<SymInt>;
}

macro_rules! opt_sym_int_from {
    ($($t:ty),*) => {$(
        impl IntoOptSymInt for $t {
            fn into_opt_sym_int(self) -> Option<SymInt> {
                Some(SymInt::from(self))
            }
        }
    )*};
}
opt_sym_int_from!(i64, i32, usize, SymInt, &SymInt);

/// `None` (an open bound) or `Some(bound)`. This is the only `Option` implementation, so a bare `None`
/// needs no type annotation.
impl IntoOptSymInt for Option<SymInt> {
    fn into_opt_sym_int(self) -> Option<SymInt> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_compute_like_python_on_ints() {
        let a = SymInt::Int(7);
        assert_eq!(a.clone() + 2, SymInt::Int(9));
        assert_eq!(a.clone() - 9, SymInt::Int(-2));
        assert_eq!(2 * a.clone(), SymInt::Int(14));
        assert_eq!(SymInt::Int(-7) / 2, SymInt::Int(-4));
        assert_eq!(SymInt::Int(-7) % 2, SymInt::Int(1));
        assert_eq!(&a / &SymInt::Int(0), SymInt::Int(0));
    }

    #[test]
    fn operators_on_symbols_simplify() {
        let s = SymInt::symbol("s77", 4);
        assert_eq!((s.clone() * 2).to_string(), "2*s77");
        assert_eq!(((s.clone() * 6) / 3).to_string(), "2*s77");
        assert_eq!((s.clone() + 1 - 1).to_string(), "s77");
        assert_eq!((s * 2).hint(), 8);
    }
}

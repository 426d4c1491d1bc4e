//! Arithmetic operators on [`SymInt`], as user code writes it (`x.sym_size(0)? * 2`).
//!
//! Each operator computes the simplified result (see [`crate::sym`]); when an operand is symbolic and
//! export is tracing, it also tells the tracer, which records the `_operator.mul` (etc.) node PyTorch
//! records for the same Python arithmetic. `/` is floor division and `%` Python's modulo, as for sizes
//! in PyTorch (`//`, `%`).
use crate::sym::SymInt;
use std::ops::{Add, Div, Mul, Rem, Sub};
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

//! Symbolic integers for sizes.
//!
//! Meta functions compute output shapes over [`SymInt`], so that the same function serves eager execution
//! (every size is an `Int`) and export with dynamic shapes (some sizes are expressions over symbols such as
//! `s77`). A decision that depends on a symbol's value (`s0 == 1`?) is taken on the symbol's *hint* (its
//! example value) and recorded as a guard in the current [`GuardSink`], exactly like PyTorch's ShapeEnv.
//!
//! This module is a leaf: it depends on nothing else in oxport. The shape environment that owns symbols,
//! ranges and guards during export builds on it.
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

/// A symbolic expression over size symbols.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SymExpr {
    /// An integer constant.
    Const(i64),
    /// A free symbol with its hint (the example value it was created from).
    Symbol {
        /// Name as PyTorch prints it (`s77`, `u0`).
        name: Arc<str>,
        /// Example value used to take decisions.
        hint: i64,
    },
    /// Sum of terms.
    Add(Vec<SymExpr>),
    /// Product of factors.
    Mul(Vec<SymExpr>),
    /// `a // b` (floor division).
    FloorDiv(Box<SymExpr>, Box<SymExpr>),
    /// `a % b` (Python modulo).
    Mod(Box<SymExpr>, Box<SymExpr>),
    /// `max(a, b)`.
    Max(Box<SymExpr>, Box<SymExpr>),
    /// `min(a, b)`.
    Min(Box<SymExpr>, Box<SymExpr>),
    /// A float constant (sympy's `Float`).
    Float(FloatConst),
    /// `ToFloat(a)`: an int as a float (`torch.sym_float`).
    ToFloat(Box<SymExpr>),
    /// `IntTrueDiv(a, b)`: Python's true division `a / b` of two ints, a float.
    IntTrueDiv(Box<SymExpr>, Box<SymExpr>),
    /// `FloatTrueDiv(a, b)`: `a / b` of floats.
    FloatTrueDiv(Box<SymExpr>, Box<SymExpr>),
    /// `Pow(a, b)`: an int to a constant non-negative int power (`s ** 2`).
    Pow(Box<SymExpr>, Box<SymExpr>),
    /// `FloatPow(a, b)`: a float to a float power (`s ** -0.5`).
    FloatPow(Box<SymExpr>, Box<SymExpr>),
    /// `OpaqueUnaryFn_sqrt(a)`: `torch.sym_sqrt` of a float.
    Sqrt(Box<SymExpr>),
    /// `TruncToInt(a)`: a float truncated toward zero to an int (`torch.sym_int`, `math.trunc`).
    TruncToInt(Box<SymExpr>),
}

/// A float constant inside a [`SymExpr`], compared and hashed by its bits (so expressions stay `Eq`
/// and `Hash`, which the tracer's hash-consing needs).
///
/// ```
/// use oxport_core::sym::FloatConst;
/// assert_eq!(FloatConst(0.5), FloatConst(0.5));
/// assert_eq!(FloatConst(0.5).0, 0.5);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FloatConst(pub f64);

impl PartialEq for FloatConst {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for FloatConst {}
impl std::hash::Hash for FloatConst {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

impl SymExpr {
    /// Evaluates with every symbol at its hint.
    pub fn hint(&self) -> i64 {
        match self {
            SymExpr::Const(c) => *c,
            SymExpr::Symbol { hint, .. } => *hint,
            SymExpr::Add(t) => t
                .iter()
                .map(|e| e.hint())
                .fold(0i64, |a, b| a.wrapping_add(b)),
            SymExpr::Mul(t) => t
                .iter()
                .map(|e| e.hint())
                .fold(1i64, |a, b| a.wrapping_mul(b)),
            SymExpr::FloorDiv(a, b) => floor_div(a.hint(), b.hint()),
            SymExpr::Mod(a, b) => py_mod(a.hint(), b.hint()),
            SymExpr::Max(a, b) => a.hint().max(b.hint()),
            SymExpr::Min(a, b) => a.hint().min(b.hint()),
            SymExpr::Pow(a, b) => a
                .hint()
                .wrapping_pow(b.hint().clamp(0, u32::MAX as i64) as u32),
            SymExpr::TruncToInt(a) => a.float_hint().trunc() as i64,
            e => e.float_hint() as i64,
        }
    }
    /// Evaluates in floating point with every symbol at its hint (an int-valued expression is
    /// evaluated as an int, then converted).
    ///
    /// ```
    /// use oxport_core::sym::SymExpr;
    /// let s = SymExpr::Symbol { name: "s0".into(), hint: 5 };
    /// let half = SymExpr::IntTrueDiv(Box::new(s), Box::new(SymExpr::Const(2)));
    /// assert_eq!(half.float_hint(), 2.5);
    /// assert!(half.is_float());
    /// ```
    pub fn float_hint(&self) -> f64 {
        if !self.is_float() {
            return self.hint() as f64;
        }
        match self {
            SymExpr::Float(f) => f.0,
            SymExpr::Add(t) => t.iter().map(SymExpr::float_hint).sum(),
            SymExpr::Mul(t) => t.iter().map(SymExpr::float_hint).product(),
            SymExpr::ToFloat(a) => a.hint() as f64,
            SymExpr::IntTrueDiv(a, b) | SymExpr::FloatTrueDiv(a, b) => {
                a.float_hint() / b.float_hint()
            }
            SymExpr::FloatPow(a, b) => a.float_hint().powf(b.float_hint()),
            SymExpr::Sqrt(a) => a.float_hint().sqrt(),
            e => e.hint() as f64,
        }
    }
    /// True if the expression's value is a float (sympy's `is_real` without `is_integer`).
    pub fn is_float(&self) -> bool {
        match self {
            SymExpr::Float(_)
            | SymExpr::ToFloat(_)
            | SymExpr::IntTrueDiv(..)
            | SymExpr::FloatTrueDiv(..)
            | SymExpr::FloatPow(..)
            | SymExpr::Sqrt(_) => true,
            SymExpr::Add(t) | SymExpr::Mul(t) => t.iter().any(SymExpr::is_float),
            _ => false,
        }
    }
    fn as_const(&self) -> Option<i64> {
        match self {
            SymExpr::Const(c) => Some(*c),
            _ => None,
        }
    }
}

/// Python floor division (rounds toward negative infinity); division by zero yields 0 rather than panicking.
pub fn floor_div(a: i64, b: i64) -> i64 {
    if b == 0 {
        return 0;
    }
    let q = a.wrapping_div(b);
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

/// Python modulo (result has the sign of the divisor); modulo zero yields 0 rather than panicking.
pub fn py_mod(a: i64, b: i64) -> i64 {
    if b == 0 {
        return 0;
    }
    let r = a.wrapping_rem(b);
    if r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    }
}

impl fmt::Display for SymExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymExpr::Const(c) => write!(f, "{c}"),
            SymExpr::Symbol { name, .. } => f.write_str(name),
            SymExpr::Add(terms) => {
                // sympy prints symbolic terms first and the constant last: `s0 + 1`.
                let mut first = true;
                for t in terms
                    .iter()
                    .filter(|t| t.as_const().is_none())
                    .chain(terms.iter().filter(|t| t.as_const().is_some()))
                {
                    match t.as_const() {
                        Some(c) if !first && c < 0 => write!(f, " - {}", -c)?,
                        _ => {
                            if !first {
                                f.write_str(" + ")?;
                            }
                            write!(f, "{t}")?;
                        }
                    }
                    first = false;
                }
                Ok(())
            }
            SymExpr::Mul(factors) => {
                let mut first = true;
                for t in factors {
                    if !first {
                        f.write_str("*")?;
                    }
                    first = false;
                    if matches!(t, SymExpr::Add(_)) {
                        write!(f, "({t})")?;
                    } else {
                        write!(f, "{t}")?;
                    }
                }
                Ok(())
            }
            SymExpr::FloorDiv(a, b) => write!(f, "(({a})//({b}))"),
            SymExpr::Mod(a, b) => write!(f, "Mod({a}, {b})"),
            SymExpr::Max(a, b) => write!(f, "Max({a}, {b})"),
            SymExpr::Min(a, b) => write!(f, "Min({a}, {b})"),
            SymExpr::Float(c) => write!(f, "{:?}", c.0),
            SymExpr::ToFloat(a) => write!(f, "ToFloat({a})"),
            SymExpr::IntTrueDiv(a, b) => write!(f, "IntTrueDiv({a}, {b})"),
            SymExpr::FloatTrueDiv(a, b) => write!(f, "FloatTrueDiv({a}, {b})"),
            SymExpr::Pow(a, b) => write!(f, "({a})**{b}"),
            SymExpr::FloatPow(a, b) => write!(f, "FloatPow({a}, {b})"),
            SymExpr::Sqrt(a) => write!(f, "OpaqueUnaryFn_sqrt({a})"),
            SymExpr::TruncToInt(a) => write!(f, "TruncToInt({a})"),
        }
    }
}

/// A size: a concrete integer or a symbolic expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SymInt {
    /// A concrete (static) size.
    Int(i64),
    /// A symbolic size.
    Sym(Arc<SymExpr>),
}

impl SymInt {
    /// A fresh symbol with a hint.
    pub fn symbol(name: &str, hint: i64) -> SymInt {
        SymInt::Sym(Arc::new(SymExpr::Symbol {
            name: name.into(),
            hint,
        }))
    }
    /// The concrete value, if static.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            SymInt::Int(i) => Some(*i),
            SymInt::Sym(_) => None,
        }
    }
    /// The value with every symbol at its hint.
    pub fn hint(&self) -> i64 {
        match self {
            SymInt::Int(i) => *i,
            SymInt::Sym(e) => e.hint(),
        }
    }
    /// True if this size is symbolic.
    pub fn is_symbolic(&self) -> bool {
        matches!(self, SymInt::Sym(_))
    }
    /// The expression (a concrete int is a constant).
    pub fn expr(&self) -> SymExpr {
        match self {
            SymInt::Int(i) => SymExpr::Const(*i),
            SymInt::Sym(e) => (**e).clone(),
        }
    }
    /// The int an expression stands for: a constant is a concrete int.
    pub fn from_expr(e: SymExpr) -> SymInt {
        match e {
            SymExpr::Const(c) => SymInt::Int(c),
            e => SymInt::Sym(Arc::new(e)),
        }
    }

    /// `self + other`, simplified (constants folded, sums flattened).
    pub fn add(&self, other: &SymInt) -> SymInt {
        if let (Some(a), Some(b)) = (self.as_int(), other.as_int()) {
            return SymInt::Int(a.wrapping_add(b));
        }
        let mut terms = Vec::new();
        let mut c = 0i64;
        for e in [self.expr(), other.expr()] {
            match e {
                SymExpr::Add(ts) => {
                    for t in ts {
                        match t {
                            SymExpr::Const(k) => c = c.wrapping_add(k),
                            t => terms.push(t),
                        }
                    }
                }
                SymExpr::Const(k) => c = c.wrapping_add(k),
                t => terms.push(t),
            }
        }
        // Like terms combine (`s0 + -1*(s0 - 1)` is `1`), in order of first appearance, as sympy does.
        let mut combined: Vec<(i64, SymExpr)> = vec![];
        for t in terms {
            let (k, rest) = SymInt::from_expr(t).coef_rest();
            let rest = rest.expect("a symbolic term");
            match combined.iter_mut().find(|(_, r)| *r == rest) {
                Some((acc, _)) => *acc = acc.wrapping_add(k),
                None => combined.push((k, rest)),
            }
        }
        let mut terms: Vec<SymExpr> = combined
            .into_iter()
            .filter(|(k, _)| *k != 0)
            .map(|(k, rest)| SymInt::from_expr(rest).mul(&SymInt::Int(k)).expr())
            .collect();
        if c != 0 {
            terms.push(SymExpr::Const(c));
        }
        match terms.len() {
            0 => SymInt::Int(0),
            1 => SymInt::from_expr(terms.pop().expect("one term")),
            _ => SymInt::from_expr(SymExpr::Add(
                ordered_terms(&terms).into_iter().cloned().collect(),
            )),
        }
    }
    /// `self - other`.
    pub fn sub(&self, other: &SymInt) -> SymInt {
        self.add(&other.mul(&SymInt::Int(-1)))
    }
    /// `self * other`, simplified.
    pub fn mul(&self, other: &SymInt) -> SymInt {
        if let (Some(a), Some(b)) = (self.as_int(), other.as_int()) {
            return SymInt::Int(a.wrapping_mul(b));
        }
        // A number distributes over a sum, as in sympy: `-1*(s0 - 1)` is `1 - s0`.
        for (c, sum) in [(self, other), (other, self)] {
            if let (Some(k), SymInt::Sym(e)) = (c.as_int(), sum) {
                if let SymExpr::Add(ts) = &**e {
                    return ts.iter().fold(SymInt::Int(0), |acc, t| {
                        acc.add(&SymInt::from_expr(t.clone()).mul(&SymInt::Int(k)))
                    });
                }
            }
        }
        let mut factors = Vec::new();
        let mut c = 1i64;
        for e in [self.expr(), other.expr()] {
            match e {
                SymExpr::Mul(fs) => {
                    for t in fs {
                        match t {
                            SymExpr::Const(k) => c = c.wrapping_mul(k),
                            t => factors.push(t),
                        }
                    }
                }
                SymExpr::Const(k) => c = c.wrapping_mul(k),
                t => factors.push(t),
            }
        }
        if c == 0 {
            return SymInt::Int(0);
        }
        if c != 1 {
            factors.insert(0, SymExpr::Const(c));
        }
        if factors.len() == 1 {
            return SymInt::from_expr(factors.pop().expect("one factor"));
        }
        SymInt::from_expr(SymExpr::Mul(
            ordered_factors(&factors).into_iter().cloned().collect(),
        ))
    }
    /// `c * rest` with `c` the constant coefficient (sizes' symbols are positive).
    fn coef_rest(&self) -> (i64, Option<SymExpr>) {
        match self {
            SymInt::Int(c) => (*c, None),
            SymInt::Sym(e) => match &**e {
                SymExpr::Mul(fs) => match fs.first() {
                    Some(SymExpr::Const(c)) if fs.len() == 2 => (*c, Some(fs[1].clone())),
                    Some(SymExpr::Const(c)) => (*c, Some(SymExpr::Mul(fs[1..].to_vec()))),
                    _ => (1, Some((**e).clone())),
                },
                e => (1, Some(e.clone())),
            },
        }
    }
    /// `(a*X, b*X)` for two multiples of one positive expression `X`, as sympy cancels them.
    fn common_multiples(&self, other: &SymInt) -> Option<(i64, i64, SymExpr)> {
        let ((a, x), (b, y)) = (self.coef_rest(), other.coef_rest());
        match (x, y) {
            (Some(x), Some(y)) if x == y && a > 0 && b > 0 => Some((a, b, x)),
            _ => None,
        }
    }
    /// `c * f1 * f2 * ...` for a product of positive factors (no sums): the coefficient and the factors.
    fn monomial(&self) -> Option<(i64, Vec<SymExpr>)> {
        let (c, rest) = self.coef_rest();
        let factors = match rest {
            None => vec![],
            Some(SymExpr::Mul(fs)) => fs,
            Some(SymExpr::Add(_)) => return None,
            Some(e) => vec![e],
        };
        Some((c, factors))
    }
    /// `self / other` when `other` divides `self` as a monomial (`4*s0*s1 / (2*s1)` is `2*s0`).
    fn exact_quotient(&self, other: &SymInt) -> Option<SymInt> {
        let ((a, mut fa), (b, fb)) = (self.monomial()?, other.monomial()?);
        if b <= 0 || a % b != 0 {
            return None;
        }
        for f in &fb {
            let i = fa.iter().position(|x| x == f)?;
            fa.remove(i);
        }
        Some(
            fa.into_iter()
                .fold(SymInt::Int(a / b), |acc, f| acc.mul(&SymInt::from_expr(f))),
        )
    }
    /// `self // other` (floor division).
    pub fn floor_div(&self, other: &SymInt) -> SymInt {
        if let Some((a, b, _)) = self.common_multiples(other) {
            return SymInt::Int(a / b); // (a*X)/(b*X) == a/b exactly
        }
        if self.is_symbolic() {
            if let Some(q) = self.exact_quotient(other) {
                return q;
            }
        }
        if let (SymInt::Sym(e), Some(d)) = (self, other.as_int()) {
            // (d*A + R)//d == A + R//d for integers A: the terms d divides come out of the division, as
            // sympy's FloorDiv takes them out: (2*s0 + 1)//2 -> s0.
            if let SymExpr::Add(ts) = &**e {
                if d > 0 {
                    let (mut out, mut rest) = (SymInt::Int(0), SymInt::Int(0));
                    for t in ts {
                        let t = SymInt::from_expr(t.clone());
                        match t.coef_rest() {
                            (c, x) if c % d == 0 => {
                                let x = x.map_or(SymInt::Int(1), SymInt::from_expr);
                                out = out.add(&x.mul(&SymInt::Int(c / d)));
                            }
                            _ => rest = rest.add(&t),
                        }
                    }
                    if out != SymInt::Int(0) {
                        return out.add(&rest.floor_div(other));
                    }
                }
            }
            // (c*x)//d == (c/d)*x when d divides c, as sympy simplifies it: (64*s0)//16 -> 4*s0.
            if let SymExpr::Mul(fs) = &**e {
                if let Some(SymExpr::Const(c)) = fs.first() {
                    if d != 0 && c % d == 0 {
                        let rest = SymInt::from_expr(if fs.len() == 2 {
                            fs[1].clone()
                        } else {
                            SymExpr::Mul(fs[1..].to_vec())
                        });
                        return rest.mul(&SymInt::Int(c / d));
                    }
                }
            }
        }
        match (self.as_int(), other.as_int()) {
            (Some(a), Some(b)) => SymInt::Int(floor_div(a, b)),
            (_, Some(1)) => self.clone(),
            _ => SymInt::from_expr(SymExpr::FloorDiv(
                Box::new(self.expr()),
                Box::new(other.expr()),
            )),
        }
    }
    /// `self % other` (Python modulo).
    pub fn modulo(&self, other: &SymInt) -> SymInt {
        if let Some((a, b, x)) = self.common_multiples(other) {
            // (a*X) % (b*X) == (a % b) * X for X >= 1.
            return SymInt::Int(a % b).mul(&SymInt::from_expr(x));
        }
        if self.is_symbolic() && self.exact_quotient(other).is_some() {
            return SymInt::Int(0);
        }
        match (self.as_int(), other.as_int()) {
            (Some(a), Some(b)) => SymInt::Int(py_mod(a, b)),
            (_, Some(1)) => SymInt::Int(0),
            _ => SymInt::from_expr(SymExpr::Mod(Box::new(self.expr()), Box::new(other.expr()))),
        }
    }
    /// `max(self, other)`.
    pub fn max(&self, other: &SymInt) -> SymInt {
        match (self.as_int(), other.as_int()) {
            (Some(a), Some(b)) => SymInt::Int(a.max(b)),
            _ if self == other => self.clone(),
            _ => SymInt::from_expr(SymExpr::Max(Box::new(self.expr()), Box::new(other.expr()))),
        }
    }
    /// `min(self, other)`.
    pub fn min(&self, other: &SymInt) -> SymInt {
        match (self.as_int(), other.as_int()) {
            (Some(a), Some(b)) => SymInt::Int(a.min(b)),
            _ if self == other => self.clone(),
            _ => SymInt::from_expr(SymExpr::Min(Box::new(self.expr()), Box::new(other.expr()))),
        }
    }

    /// Decides `self == other`; a decision on symbols is recorded as a guard.
    pub fn guard_eq(&self, other: &SymInt) -> bool {
        if self == other {
            return true;
        }
        let v = self.hint() == other.hint();
        if self.is_symbolic() || other.is_symbolic() {
            record_guard(Guard {
                lhs: self.clone(),
                rel: if v { Rel::Eq } else { Rel::Ne },
                rhs: other.clone(),
            });
        }
        v
    }
    /// Decides `self < other`; a decision on symbols is recorded as a guard.
    pub fn guard_lt(&self, other: &SymInt) -> bool {
        let v = self.hint() < other.hint();
        if self.is_symbolic() || other.is_symbolic() {
            record_guard(Guard {
                lhs: self.clone(),
                rel: if v { Rel::Lt } else { Rel::Ge },
                rhs: other.clone(),
            });
        }
        v
    }
    /// Decides `self == 1` (used by broadcasting); recorded as a guard when symbolic.
    pub fn guard_is_one(&self) -> bool {
        self.guard_eq(&SymInt::Int(1))
    }
}

impl From<i64> for SymInt {
    fn from(v: i64) -> Self {
        SymInt::Int(v)
    }
}
impl From<i32> for SymInt {
    fn from(v: i32) -> Self {
        SymInt::Int(v as i64)
    }
}
impl From<&SymInt> for SymInt {
    fn from(v: &SymInt) -> Self {
        v.clone()
    }
}
impl From<usize> for SymInt {
    fn from(v: usize) -> Self {
        SymInt::Int(v as i64)
    }
}

impl fmt::Display for SymInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymInt::Int(i) => write!(f, "{i}"),
            SymInt::Sym(e) => write!(f, "{e}"),
        }
    }
}

/// A symbolic float: a concrete `f64` or a float-valued expression over size symbols
/// (`ToFloat(s53)`, `FloatPow(ToFloat(s53), -0.5)`, `IntTrueDiv(s27, 2)`), as PyTorch's `SymFloat`.
///
/// The methods here compute and simplify as sympy does for the expressions PyTorch builds, without
/// recording anything; the operators and functions of [`crate::sym_ops`] (`sym_float`, `x * 0.5`,
/// `powf`, `sym_sqrt`, ...) also record the graph nodes under export.
///
/// ```
/// use oxport_core::SymFloat;
/// let s = oxport_core::SymInt::symbol("s0", 4);
/// let f = SymFloat::from_int(&s).mul(&SymFloat::Float(0.5));
/// assert_eq!(f.to_string(), "0.5*ToFloat(s0)");
/// assert_eq!(f.hint(), 2.0);
/// assert_eq!(SymFloat::Float(2.0).mul(&SymFloat::Float(0.25)), SymFloat::Float(0.5));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum SymFloat {
    /// A concrete float.
    Float(f64),
    /// A symbolic float.
    Sym(Arc<SymExpr>),
}

/// A number in an expression: sympy keeps `Integer` and `Float` apart (`2*x` vs `2.0*x`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    I(i64),
    F(f64),
}

impl Num {
    fn of(e: &SymExpr) -> Option<Num> {
        match e {
            SymExpr::Const(c) => Some(Num::I(*c)),
            SymExpr::Float(f) => Some(Num::F(f.0)),
            _ => None,
        }
    }
    fn f(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }
    fn add(self, o: Num) -> Num {
        match (self, o) {
            (Num::I(a), Num::I(b)) => Num::I(a.wrapping_add(b)),
            (a, b) => Num::F(a.f() + b.f()),
        }
    }
    fn mul(self, o: Num) -> Num {
        match (self, o) {
            (Num::I(a), Num::I(b)) => Num::I(a.wrapping_mul(b)),
            (a, b) => Num::F(a.f() * b.f()),
        }
    }
    fn is_zero(self) -> bool {
        self.f() == 0.0
    }
    fn expr(self) -> SymExpr {
        match self {
            Num::I(i) => SymExpr::Const(i),
            Num::F(f) => SymExpr::Float(FloatConst(f)),
        }
    }
}

/// `c * rest` with the number `c` in front (`None` rest: a plain number).
fn num_rest(e: &SymExpr) -> (Num, Option<SymExpr>) {
    if let Some(n) = Num::of(e) {
        return (n, None);
    }
    if let SymExpr::Mul(fs) = e {
        if let Some(n) = fs.first().and_then(Num::of) {
            let rest = match &fs[1..] {
                [one] => one.clone(),
                more => SymExpr::Mul(more.to_vec()),
            };
            return (n, Some(rest));
        }
    }
    (Num::I(1), Some(e.clone()))
}

/// `n * rest`, as sympy keeps it: an integer 1 disappears, a float 1.0 stays (`1.0*ToFloat(s0)`).
fn scaled(n: Num, rest: SymExpr) -> SymExpr {
    if n == Num::I(1) {
        return rest;
    }
    let mut fs = vec![n.expr()];
    match rest {
        SymExpr::Mul(more) => fs.extend(more),
        r => fs.push(r),
    }
    SymExpr::Mul(ordered_factors(&fs).into_iter().cloned().collect())
}

/// sympy's `a + b` over numbers and float expressions: sums flatten, like terms and numbers combine.
fn expr_add(a: &SymExpr, b: &SymExpr) -> SymExpr {
    let mut c: Option<Num> = None;
    let mut combined: Vec<(Num, SymExpr)> = vec![];
    for e in [a, b] {
        let terms = match e {
            SymExpr::Add(ts) => ts.clone(),
            e => vec![e.clone()],
        };
        for t in terms {
            match num_rest(&t) {
                (n, None) => c = Some(c.map_or(n, |c| c.add(n))),
                (n, Some(rest)) => match combined.iter_mut().find(|(_, r)| *r == rest) {
                    Some((acc, _)) => *acc = acc.add(n),
                    None => combined.push((n, rest)),
                },
            }
        }
    }
    let mut terms: Vec<SymExpr> = combined
        .into_iter()
        .filter(|(n, _)| !n.is_zero())
        .map(|(n, rest)| scaled(n, rest))
        .collect();
    match c {
        Some(n) if !n.is_zero() || terms.is_empty() => terms.push(n.expr()),
        _ => {}
    }
    match terms.len() {
        0 => SymExpr::Const(0),
        1 => terms.pop().expect("one term"),
        _ => SymExpr::Add(ordered_terms(&terms).into_iter().cloned().collect()),
    }
}

/// sympy's `a * b`: products flatten, numbers combine, a number distributes over a sum.
fn expr_mul(a: &SymExpr, b: &SymExpr) -> SymExpr {
    if let (Some(x), Some(y)) = (Num::of(a), Num::of(b)) {
        return x.mul(y).expr();
    }
    for (n, sum) in [(a, b), (b, a)] {
        if let (Some(k), SymExpr::Add(ts)) = (Num::of(n), sum) {
            return ts.iter().fold(SymExpr::Const(0), |acc, t| {
                expr_add(&acc, &expr_mul(&k.expr(), t))
            });
        }
    }
    let mut n = Num::I(1);
    let mut factors = vec![];
    for e in [a, b] {
        let fs = match e {
            SymExpr::Mul(fs) => fs.clone(),
            e => vec![e.clone()],
        };
        for f in fs {
            match Num::of(&f) {
                Some(k) => n = n.mul(k),
                None => factors.push(f),
            }
        }
    }
    if n.is_zero() {
        return n.expr();
    }
    let rest = match factors.len() {
        0 => return n.expr(),
        1 => factors.pop().expect("one factor"),
        _ => SymExpr::Mul(ordered_factors(&factors).into_iter().cloned().collect()),
    };
    scaled(n, rest)
}

impl SymFloat {
    /// The concrete value, if static.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            SymFloat::Float(f) => Some(*f),
            SymFloat::Sym(_) => None,
        }
    }
    /// The value with every symbol at its hint.
    pub fn hint(&self) -> f64 {
        match self {
            SymFloat::Float(f) => *f,
            SymFloat::Sym(e) => e.float_hint(),
        }
    }
    /// True if this float is symbolic.
    pub fn is_symbolic(&self) -> bool {
        matches!(self, SymFloat::Sym(_))
    }
    /// The expression (a concrete float is a `Float` constant).
    pub fn expr(&self) -> SymExpr {
        match self {
            SymFloat::Float(f) => SymExpr::Float(FloatConst(*f)),
            SymFloat::Sym(e) => (**e).clone(),
        }
    }
    /// The float an expression stands for: numbers fold to concrete floats.
    pub fn from_expr(e: SymExpr) -> SymFloat {
        match Num::of(&e) {
            Some(n) => SymFloat::Float(n.f()),
            None => SymFloat::Sym(Arc::new(e)),
        }
    }
    /// `ToFloat(i)`: an int as a float (`torch.sym_float`).
    pub fn from_int(i: &SymInt) -> SymFloat {
        match i {
            SymInt::Int(v) => SymFloat::Float(*v as f64),
            SymInt::Sym(e) => SymFloat::Sym(Arc::new(SymExpr::ToFloat(Box::new((**e).clone())))),
        }
    }
    /// `self + other`, simplified.
    pub fn add(&self, other: &SymFloat) -> SymFloat {
        match (self, other) {
            (SymFloat::Float(a), SymFloat::Float(b)) => SymFloat::Float(a + b),
            _ => SymFloat::from_expr(expr_add(&self.expr(), &other.expr())),
        }
    }
    /// `self - other`.
    pub fn sub(&self, other: &SymFloat) -> SymFloat {
        match (self, other) {
            (SymFloat::Float(a), SymFloat::Float(b)) => SymFloat::Float(a - b),
            _ => self.add(&other.neg()),
        }
    }
    /// `self * other`, simplified.
    pub fn mul(&self, other: &SymFloat) -> SymFloat {
        match (self, other) {
            (SymFloat::Float(a), SymFloat::Float(b)) => SymFloat::Float(a * b),
            _ => SymFloat::from_expr(expr_mul(&self.expr(), &other.expr())),
        }
    }
    /// `-self` (sympy's `-1*x`).
    pub fn neg(&self) -> SymFloat {
        match self {
            SymFloat::Float(a) => SymFloat::Float(-a),
            SymFloat::Sym(e) => SymFloat::from_expr(expr_mul(&SymExpr::Const(-1), e)),
        }
    }
    /// `self / other` (`FloatTrueDiv`).
    pub fn div(&self, other: &SymFloat) -> SymFloat {
        match (self, other) {
            (SymFloat::Float(a), SymFloat::Float(b)) => SymFloat::Float(a / b),
            _ => SymFloat::Sym(Arc::new(SymExpr::FloatTrueDiv(
                Box::new(self.expr()),
                Box::new(other.expr()),
            ))),
        }
    }
    /// `self ** other` (`FloatPow`).
    pub fn pow(&self, other: &SymFloat) -> SymFloat {
        match (self, other) {
            (SymFloat::Float(a), SymFloat::Float(b)) => SymFloat::Float(a.powf(*b)),
            _ => SymFloat::Sym(Arc::new(SymExpr::FloatPow(
                Box::new(self.expr()),
                Box::new(other.expr()),
            ))),
        }
    }
    /// `sqrt(self)` (`OpaqueUnaryFn_sqrt`).
    pub fn sqrt(&self) -> SymFloat {
        match self {
            SymFloat::Float(a) => SymFloat::Float(a.sqrt()),
            SymFloat::Sym(e) => SymFloat::Sym(Arc::new(SymExpr::Sqrt(Box::new((**e).clone())))),
        }
    }
    /// Truncation toward zero to an int (`TruncToInt`, `torch.sym_int`): `TruncToInt(IntTrueDiv(a, 1))`
    /// is `a`, as sympy evaluates it.
    pub fn trunc(&self) -> SymInt {
        match self {
            SymFloat::Float(a) => SymInt::Int(a.trunc() as i64),
            SymFloat::Sym(e) => match &**e {
                SymExpr::IntTrueDiv(a, b) if **b == SymExpr::Const(1) => {
                    SymInt::from_expr((**a).clone())
                }
                e => SymInt::from_expr(SymExpr::TruncToInt(Box::new(e.clone()))),
            },
        }
    }
}

impl From<f64> for SymFloat {
    fn from(v: f64) -> Self {
        SymFloat::Float(v)
    }
}
impl From<f32> for SymFloat {
    fn from(v: f32) -> Self {
        SymFloat::Float(v as f64)
    }
}
impl From<&SymFloat> for SymFloat {
    fn from(v: &SymFloat) -> Self {
        v.clone()
    }
}

impl fmt::Display for SymFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymFloat::Float(v) => write!(f, "{v:?}"),
            SymFloat::Sym(e) => write!(f, "{e}"),
        }
    }
}

impl SymInt {
    /// Python's true division `self / other` of ints, a float (`IntTrueDiv`), without recording it
    /// (see [`SymInt::true_div`] for the traced form).
    pub fn true_div_untraced(&self, other: &SymInt) -> SymFloat {
        match (self, other) {
            (SymInt::Int(a), SymInt::Int(b)) => SymFloat::Float(*a as f64 / *b as f64),
            _ => SymFloat::Sym(Arc::new(SymExpr::IntTrueDiv(
                Box::new(self.expr()),
                Box::new(other.expr()),
            ))),
        }
    }
    /// `self ** e` for a non-negative int `e` (`Pow`): `s**0` is 1, `s**1` is `s`; not recorded (see
    /// [`SymInt::powi`]).
    pub fn pow_untraced(&self, e: &SymInt) -> SymInt {
        match (self, e) {
            (SymInt::Int(a), SymInt::Int(b)) if *b >= 0 => {
                SymInt::Int(a.wrapping_pow((*b).min(u32::MAX as i64) as u32))
            }
            (_, SymInt::Int(0)) => SymInt::Int(1),
            (_, SymInt::Int(1)) => self.clone(),
            _ => SymInt::from_expr(SymExpr::Pow(Box::new(self.expr()), Box::new(e.expr()))),
        }
    }
}

/// A comparison relation in a guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>=`
    Ge,
}

/// A decision taken on symbolic sizes: `lhs rel rhs` held for the example inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// Left side.
    pub lhs: SymInt,
    /// Relation that held.
    pub rel: Rel,
    /// Right side.
    pub rhs: SymInt,
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.rel {
            Rel::Eq => "==",
            Rel::Ne => "!=",
            Rel::Lt => "<",
            Rel::Ge => ">=",
        };
        write!(f, "{} {op} {}", self.lhs, self.rhs)
    }
}

/// Collects guards while installed (see [`with_guard_sink`]).
#[derive(Debug, Default)]
pub struct GuardSink {
    /// Guards in the order they were taken.
    pub guards: Vec<Guard>,
}

thread_local! {
    static SINK: RefCell<Option<GuardSink>> = const { RefCell::new(None) };
}

fn record_guard(g: Guard) {
    SINK.with(|s| {
        if let Some(sink) = s.borrow_mut().as_mut() {
            if !sink.guards.contains(&g) {
                sink.guards.push(g);
            }
        }
    });
}

/// Runs `f` with a fresh guard sink on this thread and returns its result with the guards it took.
pub fn with_guard_sink<R>(f: impl FnOnce() -> R) -> (R, Vec<Guard>) {
    let prev = SINK.with(|s| s.borrow_mut().replace(GuardSink::default()));
    let r = f();
    let sink = SINK.with(|s| std::mem::replace(&mut *s.borrow_mut(), prev));
    (r, sink.map(|s| s.guards).unwrap_or_default())
}

/// sympy's `sort_key()`, for the expressions oxport builds: nested tuples of numbers and strings,
/// compared as Python compares tuples.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    N(f64),
    S(String),
    T(Vec<Key>),
}

fn class_key(a: f64, b: f64, name: &str) -> Key {
    Key::T(vec![Key::N(a), Key::N(b), Key::S(name.into())])
}

fn number_key(v: f64) -> Key {
    Key::T(vec![
        class_key(1.0, 0.0, "Number"),
        Key::T(vec![Key::N(0.0), Key::T(vec![])]),
        Key::T(vec![]),
        Key::N(v),
    ])
}

fn args_key<'a>(args: impl IntoIterator<Item = &'a SymExpr>) -> Key {
    let keys: Vec<Key> = args.into_iter().map(sort_key).collect();
    Key::T(vec![Key::N(keys.len() as f64), Key::T(keys)])
}

impl SymExpr {
    /// The number this is, if it is one (an int or a float constant).
    fn number(&self) -> Option<f64> {
        match self {
            SymExpr::Const(c) => Some(*c as f64),
            SymExpr::Float(f) => Some(f.0),
            _ => None,
        }
    }
    /// sympy's name of the function this expression applies, with its arguments.
    fn function(&self) -> Option<(&'static str, Vec<&SymExpr>)> {
        Some(match self {
            SymExpr::FloorDiv(a, b) => ("FloorDiv", vec![a, b]),
            SymExpr::Mod(a, b) => ("PythonMod", vec![a, b]),
            SymExpr::Max(a, b) => ("Max", vec![a, b]),
            SymExpr::Min(a, b) => ("Min", vec![a, b]),
            SymExpr::ToFloat(a) => ("ToFloat", vec![a]),
            SymExpr::IntTrueDiv(a, b) => ("IntTrueDiv", vec![a, b]),
            SymExpr::FloatTrueDiv(a, b) => ("FloatTrueDiv", vec![a, b]),
            SymExpr::Pow(a, b) => ("Pow", vec![a, b]),
            SymExpr::FloatPow(a, b) => ("FloatPow", vec![a, b]),
            SymExpr::Sqrt(a) => ("OpaqueUnaryFn_sqrt", vec![a]),
            SymExpr::TruncToInt(a) => ("TruncToInt", vec![a]),
            _ => return None,
        })
    }
}

/// `expr.as_coeff_Mul()`: the leading number of a product and the rest.
fn coeff_mul(e: &SymExpr) -> (f64, SymExpr) {
    if let SymExpr::Mul(fs) = e {
        if let Some(c) = fs.first().and_then(SymExpr::number) {
            let rest = match &fs[1..] {
                [one] => one.clone(),
                more => SymExpr::Mul(more.to_vec()),
            };
            return (c, rest);
        }
    }
    (1.0, e.clone())
}

fn sort_key(e: &SymExpr) -> Key {
    if let Some(v) = e.number() {
        return number_key(v);
    }
    let (coeff, rest) = coeff_mul(e);
    let (base, exp) = match rest {
        SymExpr::Pow(b, x) => (*b, sort_key(&x)),
        r => (r, number_key(1.0)),
    };
    let (class, args) = match &base {
        SymExpr::Symbol { name, .. } => (
            class_key(2.0, 0.0, "Symbol"),
            Key::T(vec![Key::N(1.0), Key::T(vec![Key::S(name.to_string())])]),
        ),
        SymExpr::Add(ts) => (class_key(3.0, 1.0, "Add"), args_key(ordered_terms(ts))),
        SymExpr::Mul(fs) => (class_key(3.0, 0.0, "Mul"), args_key(ordered_factors(fs))),
        e => match e.function() {
            Some((name @ ("Max" | "Min"), args)) => {
                let mut args = args;
                args.sort_by(|a, b| cmp_keys(&sort_key(a), &sort_key(b)));
                (class_key(5.0, 0.0, name), args_key(args))
            }
            Some((name, args)) => (class_key(4.0, 10000.0, name), args_key(args)),
            None => (number_key(0.0), Key::T(vec![])),
        },
    };
    Key::T(vec![class, args, exp, Key::N(coeff)])
}

fn cmp_keys(a: &Key, b: &Key) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
}

/// The factors of a product in the order sympy prints and `srepr`s them (`as_ordered_factors`): the number
/// first, then by `sort_key` (symbols by name, `s27*s53`; functions after symbols).
///
/// ```
/// use oxport_core::sym::{ordered_factors, SymExpr};
/// let (t, d) = (SymExpr::Symbol { name: "s27".into(), hint: 5 }, SymExpr::Symbol { name: "s53".into(), hint: 8 });
/// let fs = [d.clone(), SymExpr::Const(3), t.clone()];
/// assert_eq!(ordered_factors(&fs), vec![&SymExpr::Const(3), &t, &d]);
/// ```
pub fn ordered_factors(factors: &[SymExpr]) -> Vec<&SymExpr> {
    let mut v: Vec<&SymExpr> = factors.iter().collect();
    v.sort_by(|a, b| cmp_keys(&sort_key(a), &sort_key(b)));
    v
}

/// The terms of a sum in the order sympy prints and `srepr`s them (`as_ordered_terms`): by monomial, in
/// lexicographic order over the generators sorted by `sort_key`, highest first (so the constant is last),
/// then by coefficient; `c - x` (a positive number and a negated term) keeps the number first.
///
/// ```
/// use oxport_core::sym::{ordered_terms, SymExpr};
/// let s = SymExpr::Symbol { name: "s0".into(), hint: 5 };
/// let neg = SymExpr::Mul(vec![SymExpr::Const(-1), s.clone()]);
/// assert_eq!(ordered_terms(&[SymExpr::Const(1), s.clone()]), vec![&s, &SymExpr::Const(1)]);
/// assert_eq!(ordered_terms(&[neg.clone(), SymExpr::Const(2)]), vec![&SymExpr::Const(2), &neg]);
/// ```
pub fn ordered_terms(terms: &[SymExpr]) -> Vec<&SymExpr> {
    if let [a, b] = terms {
        for (n, m) in [(a, b), (b, a)] {
            if let (Some(c), SymExpr::Mul(fs)) = (n.number(), m) {
                let neg = fs.len() == 2 && fs.iter().any(|f| f.number().is_some_and(|k| k < 0.0));
                if c > 0.0 && neg {
                    return vec![n, m];
                }
            }
        }
    }
    // Each term as (coefficient, [(generator, exponent)]).
    let split = |t: &SymExpr| -> (f64, Vec<(SymExpr, i64)>) {
        if let Some(v) = t.number() {
            return (v, vec![]);
        }
        let (c, rest) = coeff_mul(t);
        let factors = match rest {
            SymExpr::Mul(fs) => fs,
            r => vec![r],
        };
        let powers = factors
            .into_iter()
            .map(|f| match f {
                SymExpr::Pow(b, x) if x.number().is_some() => (*b, x.hint()),
                f => (f, 1),
            })
            .collect();
        (c, powers)
    };
    let parts: Vec<(f64, Vec<(SymExpr, i64)>)> = terms.iter().map(split).collect();
    let mut gens: Vec<&SymExpr> = vec![];
    for (_, ps) in &parts {
        for (g, _) in ps {
            if !gens.contains(&g) {
                gens.push(g);
            }
        }
    }
    gens.sort_by(|a, b| cmp_keys(&sort_key(a), &sort_key(b)));
    let monom = |ps: &[(SymExpr, i64)]| -> Vec<i64> {
        gens.iter()
            .map(|g| ps.iter().filter(|(x, _)| x == *g).map(|(_, e)| e).sum())
            .collect()
    };
    let mut idx: Vec<(Vec<i64>, f64, usize)> = parts
        .iter()
        .enumerate()
        .map(|(i, (c, ps))| (monom(ps), *c, i))
        .collect();
    idx.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
    });
    idx.into_iter().map(|(_, _, i)| &terms[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn arithmetic_simplifies_and_prints_like_sympy() {
        let s0 = SymInt::symbol("s0", 5);
        let e = s0.add(&SymInt::Int(1)).add(&SymInt::Int(2));
        assert_eq!(e.to_string(), "s0 + 3");
        assert_eq!(e.hint(), 8);
        assert_eq!(s0.mul(&SymInt::Int(4)).to_string(), "4*s0");
        assert_eq!(s0.sub(&SymInt::Int(1)).to_string(), "s0 - 1");
        assert_eq!(SymInt::Int(7).floor_div(&SymInt::Int(-2)), SymInt::Int(-4));
        assert_eq!(
            s0.mul(&SymInt::Int(64))
                .floor_div(&SymInt::Int(16))
                .to_string(),
            "4*s0"
        );
        assert_eq!(
            s0.mul(&SymInt::Int(6))
                .floor_div(&SymInt::Int(4))
                .to_string(),
            "((6*s0)//(4))"
        );
        assert_eq!(SymInt::Int(-7).modulo(&SymInt::Int(3)), SymInt::Int(2));
        // Terms the divisor divides come out: (2*s0 + 1)//2 == s0, (4*s0 + 6)//2 == 2*s0 + 3.
        let two = SymInt::Int(2);
        assert_eq!(s0.mul(&two).add(&SymInt::Int(1)).floor_div(&two), s0);
        let e = s0.mul(&SymInt::Int(4)).add(&SymInt::Int(6)).floor_div(&two);
        assert_eq!(e.to_string(), "2*s0 + 3");
        let s1 = SymInt::symbol("s1", 3);
        let e = s0.mul(&two).add(&s1).floor_div(&two);
        assert_eq!(e.to_string(), "s0 + ((s1)//(2))");
        // Monomials divide exactly: (4*s0*s1)//(2*s1) == 2*s0, Mod(4*s0*s1, 4*s0) == 0.
        let p = s0.mul(&s1).mul(&SymInt::Int(4));
        assert_eq!(p.floor_div(&s1.mul(&two)).to_string(), "2*s0");
        assert_eq!(p.modulo(&s0.mul(&SymInt::Int(4))), SymInt::Int(0));
        // Numbers distribute and like terms combine: s0 - (s0 - 1) == 1, 2*(s0 + 1) - s0 == s0 + 2.
        assert_eq!(s0.sub(&s0.sub(&SymInt::Int(1))), SymInt::Int(1));
        let e = s0.add(&SymInt::Int(1)).mul(&two).sub(&s0);
        assert_eq!(e.to_string(), "s0 + 2");
    }
    #[test]
    fn decisions_on_symbols_are_guards() {
        let s0 = SymInt::symbol("s0", 5);
        let (r, guards) = with_guard_sink(|| {
            (
                s0.guard_is_one(),
                s0.guard_eq(&s0),
                SymInt::Int(3).guard_is_one(),
            )
        });
        assert_eq!(r, (false, true, false));
        assert_eq!(guards.len(), 1);
        assert_eq!(guards[0].to_string(), "s0 != 1");
    }
}

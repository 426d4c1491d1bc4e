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
    fn expr(&self) -> SymExpr {
        match self {
            SymInt::Int(i) => SymExpr::Const(*i),
            SymInt::Sym(e) => (**e).clone(),
        }
    }
    fn from_expr(e: SymExpr) -> SymInt {
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
            _ => SymInt::from_expr(SymExpr::Add(terms)),
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
        SymInt::from_expr(SymExpr::Mul(factors))
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

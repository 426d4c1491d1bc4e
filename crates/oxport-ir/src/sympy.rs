//! Symbolic expressions as the serialized schema stores them, and printed as PyTorch prints them.
//!
//! PyTorch 2.15 writes `SymExpr.expr_str` with `sympy.srepr`
//! (`Add(Symbol('s77', positive=True, integer=True), Integer(-1))`) and prints expressions with sympy's
//! `StrPrinter` (`s77 - 1`). [`parse`] reads srepr (or a plain symbol/integer, as older files hold), and
//! [`Expr`]'s `Display` reproduces the printer for the expressions export produces: symbols, integers,
//! rationals, `Add`, `Mul`, `Pow`, relations, `FloorDiv` (`(a//b)`), and any other function as
//! `Name(args)`. srepr lists `Add` terms and `Mul` factors in printing order already.
use std::fmt;

/// A sympy expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `Symbol('s77', ...)` (assumptions are dropped: they do not print).
    Symbol(String),
    /// `Integer(n)`.
    Integer(i128),
    /// `Rational(p, q)`.
    Rational(i128, i128),
    /// `Float('1.5', precision=53)`, kept as its string.
    Float(String),
    /// `true` / `false`.
    Bool(bool),
    /// Any other head: `Add`, `Mul`, `Pow`, `GreaterThan`, `FloorDiv`, `Max`, ...
    Call(String, Vec<Expr>),
}

/// Parses an `expr_str`: srepr, or a bare symbol or integer. `None` if it is neither.
pub fn parse(s: &str) -> Option<Expr> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let e = p.expr()?;
    p.ws();
    (p.i == p.s.len()).then_some(e)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i || self.s[start].is_ascii_digit() {
            self.i = start;
            return None;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn int(&mut self) -> Option<i128> {
        self.ws();
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn string(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.i + 1;
        let end = start + self.s[start..].iter().position(|&c| c == q)?;
        self.i = end + 1;
        Some(String::from_utf8_lossy(&self.s[start..end]).into_owned())
    }
    /// One argument: an expression, a string, or `keyword=value` (skipped).
    fn arg(&mut self) -> Option<Option<Expr>> {
        self.ws();
        if matches!(self.s.get(self.i), Some(b'\'') | Some(b'"')) {
            return Some(Some(Expr::Symbol(self.string()?)));
        }
        let save = self.i;
        if let Some(id) = self.ident() {
            if self.eat(b'=') {
                // keyword argument (assumptions, precision): value is an identifier or a number
                if self.ident().is_none() {
                    self.int()?;
                }
                let _ = id;
                return Some(None);
            }
        }
        self.i = save;
        Some(Some(self.expr()?))
    }
    fn expr(&mut self) -> Option<Expr> {
        self.ws();
        if matches!(self.s.get(self.i), Some(b'-') | Some(b'0'..=b'9')) {
            return self.int().map(Expr::Integer);
        }
        let head = self.ident()?;
        if !self.eat(b'(') {
            return Some(match head.as_str() {
                "true" | "True" => Expr::Bool(true),
                "false" | "False" => Expr::Bool(false),
                _ => Expr::Symbol(head),
            });
        }
        let mut args = vec![];
        if !self.eat(b')') {
            loop {
                if let Some(a) = self.arg()? {
                    args.push(a);
                }
                if self.eat(b')') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        Some(match (head.as_str(), args.as_slice()) {
            ("Symbol", [Expr::Symbol(n)]) | ("Dummy", [Expr::Symbol(n)]) => Expr::Symbol(n.clone()),
            ("Integer", [Expr::Integer(n)]) => Expr::Integer(*n),
            ("Rational", [Expr::Integer(p), Expr::Integer(q)]) => Expr::Rational(*p, *q),
            ("Float", [Expr::Symbol(v)]) => Expr::Float(v.clone()),
            _ => Expr::Call(head, args),
        })
    }
}

// sympy.printing.precedence
const PREC_OR: u32 = 20;
const PREC_AND: u32 = 30;
const PREC_REL: u32 = 35;
const PREC_ADD: u32 = 40;
const PREC_MUL: u32 = 50;
const PREC_POW: u32 = 60;
const PREC_FUNC: u32 = 70;
const PREC_NOT: u32 = 100;
const PREC_ATOM: u32 = 1000;

fn relation_op(head: &str) -> Option<&'static str> {
    Some(match head {
        "GreaterThan" => ">=",
        "LessThan" => "<=",
        "StrictGreaterThan" => ">",
        "StrictLessThan" => "<",
        _ => return None,
    })
}

impl Expr {
    /// sympy's `precedence(expr)`, times 2 so that `Atom - 0.5` is representable.
    fn precedence(&self) -> u32 {
        2 * match self {
            Expr::Integer(n) if *n < 0 => PREC_ADD,
            Expr::Rational(p, _) if *p < 0 => PREC_ADD,
            Expr::Rational(..) => PREC_MUL,
            Expr::Float(v) if v.starts_with('-') => PREC_ADD,
            Expr::Symbol(_) | Expr::Integer(_) | Expr::Float(_) | Expr::Bool(_) => PREC_ATOM,
            Expr::Call(h, args) => match h.as_str() {
                "Add" => PREC_ADD,
                "Mul" => {
                    if matches!(args.first(), Some(Expr::Integer(n)) if *n < 0) {
                        PREC_ADD
                    } else {
                        PREC_MUL
                    }
                }
                "Pow" => PREC_POW,
                "Or" => PREC_OR,
                "And" => PREC_AND,
                "Not" => PREC_NOT,
                h if relation_op(h).is_some() => PREC_REL,
                "Max" | "Min" => PREC_ATOM,
                // The `precedence` class attributes of torch.utils._sympy.functions.
                "FloorDiv" | "ModularIndexing" | "Where" | "PythonMod" | "Mod" | "CleanDiv"
                | "FloatTrueDiv" | "IntTrueDiv" => 35,
                "PowByNatural" => PREC_MUL,
                "FloatPow" => PREC_POW,
                "Identity" => 10,
                _ => PREC_FUNC,
            },
        }
    }

    /// `printer.parenthesize(self, level, strict)` with `level` in doubled units.
    fn paren(&self, level: u32, strict: bool) -> String {
        let p = self.precedence();
        if p < level || (!strict && p <= level) {
            format!("({self})")
        } else {
            self.to_string()
        }
    }

    /// Names of the symbols in the expression.
    pub fn free_symbols(&self, out: &mut Vec<String>) {
        match self {
            Expr::Symbol(s) if !out.contains(s) => out.push(s.clone()),
            Expr::Call(_, args) => args.iter().for_each(|a| a.free_symbols(out)),
            _ => {}
        }
    }
}

fn fmt_mul(args: &[Expr], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut sign = "";
    let mut factors: Vec<Expr> = args.to_vec();
    match factors.first() {
        Some(Expr::Integer(c)) if *c < 0 => {
            sign = "-";
            if *c == -1 {
                factors.remove(0);
            } else {
                factors[0] = Expr::Integer(-c);
            }
        }
        // A negative float coefficient prints as a sign too (sympy's `_keep_coeff(-c, e)`).
        Some(Expr::Float(v)) if v.starts_with('-') => {
            sign = "-";
            factors[0] = Expr::Float(v[1..].to_string());
        }
        _ => {}
    }
    let mut num: Vec<Expr> = vec![];
    let mut den: Vec<Expr> = vec![];
    for x in factors {
        match x {
            Expr::Call(ref h, ref a) if h == "Pow" && a.len() == 2 => match &a[1] {
                Expr::Integer(e) if *e < 0 => {
                    if *e == -1 {
                        den.push(a[0].clone())
                    } else {
                        den.push(Expr::Call(
                            "Pow".into(),
                            vec![a[0].clone(), Expr::Integer(-e)],
                        ))
                    }
                }
                _ => num.push(x.clone()),
            },
            Expr::Rational(p, q) => {
                if p != 1 {
                    num.push(Expr::Integer(p));
                }
                if q != 1 {
                    den.push(Expr::Integer(q));
                }
            }
            other => num.push(other),
        }
    }
    if num.is_empty() {
        num.push(Expr::Integer(1));
    }
    let level = 2 * PREC_MUL;
    let a: Vec<String> = num.iter().map(|x| x.paren(level, false)).collect();
    let b: Vec<String> = den.iter().map(|x| x.paren(level, false)).collect();
    match b.len() {
        0 => write!(f, "{sign}{}", a.join("*")),
        1 => write!(f, "{sign}{}/{}", a.join("*"), b[0]),
        _ => write!(f, "{sign}{}/({})", a.join("*"), b.join("*")),
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Symbol(s) => f.write_str(s),
            Expr::Integer(n) => write!(f, "{n}"),
            Expr::Rational(p, q) => write!(f, "{p}/{q}"),
            Expr::Float(v) => match v.parse::<f64>() {
                Ok(x) => f.write_str(&float_str(x, 15)),
                Err(_) => f.write_str(v),
            },
            Expr::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Expr::Call(h, args) => match (h.as_str(), args.as_slice()) {
                ("Add", terms) => {
                    let prec = self.precedence();
                    let mut out = String::new();
                    for (i, term) in terms.iter().enumerate() {
                        let mut t = term.to_string();
                        let is_add = matches!(term, Expr::Call(h, _) if h == "Add");
                        let neg = t.starts_with('-') && !is_add;
                        if neg {
                            t.remove(0);
                        }
                        if term.precedence() < prec || is_add {
                            t = format!("({t})");
                        }
                        match (i, neg) {
                            (0, true) => out.push('-'),
                            (0, false) => {}
                            (_, true) => out.push_str(" - "),
                            (_, false) => out.push_str(" + "),
                        }
                        out.push_str(&t);
                    }
                    f.write_str(&out)
                }
                ("Mul", factors) => fmt_mul(factors, f),
                ("Pow", [b, e]) => match e {
                    Expr::Rational(1, 2) => write!(f, "sqrt({b})"),
                    Expr::Integer(-1) => write!(f, "1/{}", b.paren(2 * PREC_POW, false)),
                    _ => write!(
                        f,
                        "{}**{}",
                        b.paren(2 * PREC_POW, false),
                        e.paren(2 * PREC_POW, false)
                    ),
                },
                ("Equality", [a, b]) => write!(f, "Eq({a}, {b})"),
                ("Unequality", [a, b]) => write!(f, "Ne({a}, {b})"),
                (h, [a, b]) if relation_op(h).is_some() => {
                    let op = relation_op(h).expect("checked");
                    let p = self.precedence();
                    write!(f, "{} {op} {}", a.paren(p, false), b.paren(p, false))
                }
                ("FloorDiv", [a, b]) => {
                    let level = 2 * PREC_ATOM - 1;
                    write!(f, "({}//{})", a.paren(level, false), b.paren(level, false))
                }
                ("Identity", [a]) => write!(f, "({a})"),
                ("Not", [a]) => write!(f, "~{}", a.paren(2 * PREC_NOT, false)),
                ("And", xs) | ("Or", xs) => {
                    let op = if h == "And" { " & " } else { " | " };
                    let p = self.precedence();
                    let parts: Vec<String> = xs.iter().map(|x| x.paren(p, true)).collect();
                    f.write_str(&parts.join(op))
                }
                (h, xs) => {
                    let parts: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
                    write!(f, "{h}({})", parts.join(", "))
                }
            },
        }
    }
}

impl Expr {
    /// The integer value of the expression with its symbols bound by `lookup` (`None` if a symbol is
    /// unbound, a function is unknown, or the arithmetic overflows).
    pub fn eval_int(&self, lookup: &dyn Fn(&str) -> Option<i64>) -> Option<i64> {
        use oxport_core::sym::{floor_div, py_mod};
        let ints = |args: &[Expr]| {
            args.iter()
                .map(|a| a.eval_int(lookup))
                .collect::<Option<Vec<i64>>>()
        };
        match self {
            Expr::Symbol(s) => lookup(s),
            Expr::Integer(n) => i64::try_from(*n).ok(),
            Expr::Bool(b) => Some(*b as i64),
            Expr::Rational(..) | Expr::Float(_) => None,
            Expr::Call(h, args) => {
                let v = ints(args)?;
                let two = || (v.len() == 2).then(|| (v[0], v[1]));
                Some(match h.as_str() {
                    "Add" => v.iter().try_fold(0i64, |a, &b| a.checked_add(b))?,
                    "Mul" => v.iter().try_fold(1i64, |a, &b| a.checked_mul(b))?,
                    "Pow" => {
                        let (b, e) = two()?;
                        b.checked_pow(u32::try_from(e).ok()?)?
                    }
                    "FloorDiv" => {
                        let (a, b) = two()?;
                        if b == 0 {
                            return None;
                        }
                        floor_div(a, b)
                    }
                    "Mod" | "PythonMod" => {
                        let (a, b) = two()?;
                        if b == 0 {
                            return None;
                        }
                        py_mod(a, b)
                    }
                    "Max" => *v.iter().max()?,
                    "Min" => *v.iter().min()?,
                    "GreaterThan" => two().map(|(a, b)| (a >= b) as i64)?,
                    "LessThan" => two().map(|(a, b)| (a <= b) as i64)?,
                    "StrictGreaterThan" => two().map(|(a, b)| (a > b) as i64)?,
                    "StrictLessThan" => two().map(|(a, b)| (a < b) as i64)?,
                    "Equality" => two().map(|(a, b)| (a == b) as i64)?,
                    "Unequality" => two().map(|(a, b)| (a != b) as i64)?,
                    "And" => v.iter().all(|&x| x != 0) as i64,
                    "Or" => v.iter().any(|&x| x != 0) as i64,
                    "Not" => (*v.first()? == 0) as i64,
                    _ => return None,
                })
            }
        }
    }
}

/// `sympy.srepr` of a core symbolic expression, as PyTorch 2.15 serializes sizes
/// (`Symbol('s77', positive=True, integer=True)`), with terms in the order sympy prints them: symbolic
/// terms of a sum first, the constant factor of a product first.
pub fn srepr(e: &oxport_core::sym::SymExpr) -> String {
    use oxport_core::sym::{ordered_factors, ordered_terms, SymExpr as E};
    let list = |v: &[&E]| v.iter().map(|x| srepr(x)).collect::<Vec<_>>().join(", ");
    let call = |head: &str, args: &[&E]| format!("{head}({})", list(args));
    match e {
        E::Const(c) => format!("Integer({c})"),
        E::Float(f) => format!("Float('{}', precision=53)", float_str(f.0, 17)),
        E::Symbol { name, .. } => format!("Symbol('{name}', positive=True, integer=True)"),
        E::Add(terms) => call("Add", &ordered_terms(terms)),
        E::Mul(factors) => {
            // sympy's `args_cnc(split_1=True)`: a negative coefficient other than -1 is written as -1
            // times its magnitude (`Mul(Integer(-1), Float('0.5', precision=53), x)`).
            let fs = ordered_factors(factors);
            let split = match fs.first() {
                Some(E::Const(c)) if *c < -1 => Some(E::Const(-c)),
                Some(E::Float(f)) if f.0 < 0.0 => {
                    Some(E::Float(oxport_core::sym::FloatConst(-f.0)))
                }
                _ => None,
            };
            match split {
                Some(m) => {
                    let minus_one = E::Const(-1);
                    let mut v: Vec<&E> = vec![&minus_one, &m];
                    v.extend(&fs[1..]);
                    call("Mul", &v)
                }
                None => call("Mul", &fs),
            }
        }
        E::FloorDiv(a, b) => call("FloorDiv", &[a, b]),
        E::Mod(a, b) => call("PythonMod", &[a, b]),
        E::Max(a, b) => call("Max", &[a, b]),
        E::Min(a, b) => call("Min", &[a, b]),
        E::ToFloat(a) => call("ToFloat", &[a]),
        E::IntTrueDiv(a, b) => call("IntTrueDiv", &[a, b]),
        E::FloatTrueDiv(a, b) => call("FloatTrueDiv", &[a, b]),
        E::Pow(a, b) => call("Pow", &[a, b]),
        E::FloatPow(a, b) => call("FloatPow", &[a, b]),
        E::Sqrt(a) => call("OpaqueUnaryFn_sqrt", &[a]),
        E::TruncToInt(a) => call("TruncToInt", &[a]),
    }
}

/// mpmath's `to_str(x, dps)` of a double, as sympy writes a `Float`: `dps` significant digits (17 in
/// `srepr`, 15 when PyTorch prints), trailing zeros stripped, fixed-point notation for decimal exponents
/// between `min(-dps/3, -5)` and `dps` (`0.0001`, `100.0`), scientific beyond (`1.0e-6`, `1.0e+20`).
///
/// ```
/// use oxport_ir::sympy::float_str;
/// assert_eq!(float_str(0.1, 17), "0.10000000000000001");
/// assert_eq!(float_str(0.1, 15), "0.1");
/// assert_eq!(float_str(1e-6, 15), "1.0e-6");
/// assert_eq!(float_str(-0.5, 17), "-0.5");
/// ```
pub fn float_str(x: f64, dps: usize) -> String {
    if x == 0.0 {
        return "0.0".into();
    }
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+inf" } else { "-inf" }.into();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // dps + 3 significant digits (mpmath's to_digits_exp), then rounded half up to dps.
    let sci = format!("{:.*e}", dps + 2, x.abs());
    let (mant, exp) = sci.split_once('e').expect("scientific notation");
    let mut exponent: i64 = exp.parse().expect("an exponent");
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    if digits.len() > dps && digits[dps] >= b'5' {
        digits.truncate(dps);
        let mut i = dps;
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                digits.truncate(dps);
                exponent += 1;
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    } else {
        digits.truncate(dps);
    }
    let min_fixed = (-(dps as i64 / 3)).min(-5);
    let max_fixed = dps as i64;
    let split;
    if min_fixed < exponent && exponent < max_fixed {
        if exponent < 0 {
            let mut z = vec![b'0'; (-exponent) as usize];
            z.extend(digits);
            digits = z;
            split = 1;
        } else {
            split = exponent as usize + 1;
            if split > dps {
                digits.extend(std::iter::repeat_n(b'0', split - dps));
            }
        }
        exponent = 0;
    } else {
        split = 1;
    }
    let digits = String::from_utf8(digits).expect("ascii digits");
    let mut s = format!("{}.{}", &digits[..split], &digits[split..]);
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.push('0');
    }
    match exponent {
        0 => format!("{sign}{s}"),
        e if e > 0 => format!("{sign}{s}e+{e}"),
        e => format!("{sign}{s}e{e}"),
    }
}

/// Prints an `expr_str` as PyTorch prints the expression (verbatim if it cannot be parsed).
pub fn pretty(expr_str: &str) -> String {
    match parse(expr_str) {
        Some(e) => e.to_string(),
        None => expr_str.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_sympy_str() {
        let s = |x: &str| pretty(x);
        assert_eq!(s("Symbol('s6', positive=True, integer=True)"), "s6");
        assert_eq!(
            s("Add(Symbol('s77', positive=True, integer=True), Integer(-1))"),
            "s77 - 1"
        );
        assert_eq!(
            s("Mul(Integer(3), Symbol('s77', positive=True, integer=True))"),
            "3*s77"
        );
        assert_eq!(
            s("Mul(Symbol('s27', integer=True), Symbol('s77', integer=True))"),
            "s27*s77"
        );
        assert_eq!(
            s("GreaterThan(Symbol('u0', integer=True), Integer(0))"),
            "u0 >= 0"
        );
        assert_eq!(
            s("StrictGreaterThan(Symbol('s6', integer=True), Integer(2))"),
            "s6 > 2"
        );
        assert_eq!(s("Mul(Integer(-1), Symbol('s0'))"), "-s0");
        assert_eq!(
            s("Add(Integer(1), Mul(Integer(-2), Symbol('s0')))"),
            "1 - 2*s0"
        );
        assert_eq!(
            s("FloorDiv(Add(Symbol('s27', positive=True, integer=True), Integer(-1)), Integer(2))"),
            "((s27 - 1)//2)"
        );
        // FloorDiv's precedence (35, below Add's) parenthesizes it in sums and products, as sympy's str.
        assert_eq!(
            s("Add(FloorDiv(Symbol('s0'), Integer(2)), Integer(1))"),
            "((s0//2)) + 1"
        );
        assert_eq!(s("Max(Integer(1), Symbol('s0'))"), "Max(1, s0)");
        assert_eq!(s("Equality(Symbol('s0'), Integer(4))"), "Eq(s0, 4)");
        assert_eq!(s("s77"), "s77");
        assert_eq!(s("2*s0 +"), "2*s0 +");
    }

    #[test]
    fn srepr_round_trips_through_the_printer() {
        let s0 = oxport_core::SymInt::symbol("s0", 5);
        let e = s0
            .mul(&oxport_core::SymInt::Int(2))
            .add(&oxport_core::SymInt::Int(-1));
        let oxport_core::SymInt::Sym(e) = e else {
            panic!()
        };
        let text = srepr(&e);
        assert_eq!(
            text,
            "Add(Mul(Integer(2), Symbol('s0', positive=True, integer=True)), Integer(-1))"
        );
        assert_eq!(pretty(&text), "2*s0 - 1");
    }

    #[test]
    fn evaluates_with_bound_symbols() {
        let e =
            parse("Add(FloorDiv(Add(Symbol('s0'), Integer(-1)), Integer(2)), Integer(1))").unwrap();
        assert_eq!(e.eval_int(&|s| (s == "s0").then_some(8)), Some(4));
        assert_eq!(e.eval_int(&|_| None), None);
    }
}

//! The program's `guards_code`: Python expressions over the inputs that torch.export recorded
//! (`(-1) + L['x'].size()[0] <= L['z'].size()[0]`). Parsed once at plan time, evaluated per call.
use crate::error::{Error, Result};
use crate::pytree::PyValue;

#[derive(Debug, Clone)]
enum Access {
    Key(String),
    Index(i64),
    Size(i64),
    Stride(i64),
    StorageOffset,
    Dim,
    Numel,
}

#[derive(Debug, Clone, Copy)]
enum BinOp {
    Add,
    Sub,
    Mul,
    FloorDiv,
    Mod,
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum GExpr {
    Int(i64),
    Path(String, Vec<Access>),
    Neg(Box<GExpr>),
    Bin(BinOp, Box<GExpr>, Box<GExpr>),
    Cmp(Box<GExpr>, Vec<(CmpOp, GExpr)>),
    And(Vec<GExpr>),
    Or(Vec<GExpr>),
    Not(Box<GExpr>),
}

/// One guard: its parsed form and the text shown when it fails.
#[derive(Debug, Clone)]
pub struct Guard {
    expr: GExpr,
    /// The source with `L['x']` written as `x`.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Ident(String),
    Str(String),
    Op(&'static str),
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    const OPS: &[&str] = &[
        "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", ".", ",", "+", "-", "*", "%", "<", ">",
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = vec![];
    while i < b.len() {
        let c = b[i];
        if c == b' ' {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Int(s[st..i].parse().ok()?));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[st..i].to_string()));
        } else if c == b'\'' || c == b'"' {
            let end = i + 1 + s[i + 1..].find(c as char)?;
            out.push(Tok::Str(s[i + 1..end].to_string()));
            i = end + 1;
        } else {
            let op = OPS.iter().find(|op| s[i..].starts_with(**op))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Some(out)
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_ident(&mut self, id: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(x)) if x == id) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Option<GExpr> {
        let mut v = vec![self.and()?];
        while self.eat_ident("or") {
            v.push(self.and()?);
        }
        Some(if v.len() == 1 { v.pop()? } else { GExpr::Or(v) })
    }
    fn and(&mut self) -> Option<GExpr> {
        let mut v = vec![self.not()?];
        while self.eat_ident("and") {
            v.push(self.not()?);
        }
        Some(if v.len() == 1 {
            v.pop()?
        } else {
            GExpr::And(v)
        })
    }
    fn not(&mut self) -> Option<GExpr> {
        if self.eat_ident("not") {
            return Some(GExpr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Option<GExpr> {
        let first = self.arith()?;
        let mut rest = vec![];
        loop {
            let op = match self.peek() {
                Some(Tok::Op("==")) => CmpOp::Eq,
                Some(Tok::Op("!=")) => CmpOp::Ne,
                Some(Tok::Op("<")) => CmpOp::Lt,
                Some(Tok::Op("<=")) => CmpOp::Le,
                Some(Tok::Op(">")) => CmpOp::Gt,
                Some(Tok::Op(">=")) => CmpOp::Ge,
                _ => break,
            };
            self.i += 1;
            rest.push((op, self.arith()?));
        }
        Some(if rest.is_empty() {
            first
        } else {
            GExpr::Cmp(Box::new(first), rest)
        })
    }
    fn arith(&mut self) -> Option<GExpr> {
        let mut e = self.term()?;
        loop {
            let op = if self.eat_op("+") {
                BinOp::Add
            } else if self.eat_op("-") {
                BinOp::Sub
            } else {
                break;
            };
            e = GExpr::Bin(op, Box::new(e), Box::new(self.term()?));
        }
        Some(e)
    }
    fn term(&mut self) -> Option<GExpr> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat_op("*") {
                BinOp::Mul
            } else if self.eat_op("//") {
                BinOp::FloorDiv
            } else if self.eat_op("%") {
                BinOp::Mod
            } else {
                break;
            };
            e = GExpr::Bin(op, Box::new(e), Box::new(self.unary()?));
        }
        Some(e)
    }
    fn unary(&mut self) -> Option<GExpr> {
        if self.eat_op("-") {
            return Some(GExpr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Option<GExpr> {
        match self.peek()?.clone() {
            Tok::Int(n) => {
                self.i += 1;
                Some(GExpr::Int(n))
            }
            Tok::Op("(") => {
                self.i += 1;
                let e = self.or()?;
                self.eat_op(")").then_some(e)
            }
            Tok::Ident(id) if id == "L" => {
                self.i += 1;
                if !self.eat_op("[") {
                    return None;
                }
                let Some(Tok::Str(name)) = self.peek().cloned() else {
                    return None;
                };
                self.i += 1;
                if !self.eat_op("]") {
                    return None;
                }
                let mut path = vec![];
                loop {
                    if self.eat_op("[") {
                        match self.peek()?.clone() {
                            Tok::Int(n) => path.push(Access::Index(n)),
                            Tok::Str(k) => path.push(Access::Key(k)),
                            _ => return None,
                        }
                        self.i += 1;
                        if !self.eat_op("]") {
                            return None;
                        }
                    } else if self.eat_op(".") {
                        let Some(Tok::Ident(m)) = self.peek().cloned() else {
                            return None;
                        };
                        self.i += 1;
                        if !(self.eat_op("(") && self.eat_op(")")) {
                            return None;
                        }
                        let indexed = |p: &mut P| -> Option<i64> {
                            if !p.eat_op("[") {
                                return None;
                            }
                            let Some(Tok::Int(n)) = p.peek().cloned() else {
                                return None;
                            };
                            p.i += 1;
                            p.eat_op("]").then_some(n)
                        };
                        path.push(match m.as_str() {
                            "size" => Access::Size(indexed(self)?),
                            "stride" => Access::Stride(indexed(self)?),
                            "storage_offset" => Access::StorageOffset,
                            "dim" => Access::Dim,
                            "numel" => Access::Numel,
                            _ => return None,
                        });
                    } else {
                        break;
                    }
                }
                Some(GExpr::Path(name, path))
            }
            _ => None,
        }
    }
}

impl Guard {
    /// Parses one `guards_code` entry.
    pub fn parse(code: &str) -> Result<Guard> {
        let bad = || Error::Unsupported {
            node: "guards_code".into(),
            target: code.into(),
            reason: "oxport cannot evaluate this guard expression".into(),
        };
        let t = tokenize(code).ok_or_else(bad)?;
        let mut p = P { t, i: 0 };
        let expr = p.or().ok_or_else(bad)?;
        if p.i != p.t.len() {
            return Err(bad());
        }
        let text = code.replace("L['", "").replace("']", "");
        Ok(Guard { expr, text })
    }

    /// Checks the guard on the forward arguments (`lookup("x")`).
    pub fn check(&self, lookup: &dyn Fn(&str) -> Option<PyValue>) -> Result<()> {
        match eval(&self.expr, lookup) {
            Some(v) if v != 0 => Ok(()),
            Some(_) => Err(Error::Guard(format!("Guard failed: {}", self.text))),
            None => Err(Error::Guard(format!(
                "Guard failed: {} (an input it reads is missing)",
                self.text
            ))),
        }
    }
}

fn eval(e: &GExpr, lookup: &dyn Fn(&str) -> Option<PyValue>) -> Option<i64> {
    use oxport_core::sym::{floor_div, py_mod};
    Some(match e {
        GExpr::Int(n) => *n,
        GExpr::Neg(x) => eval(x, lookup)?.checked_neg()?,
        GExpr::Bin(op, a, b) => {
            let (a, b) = (eval(a, lookup)?, eval(b, lookup)?);
            match op {
                BinOp::Add => a.checked_add(b)?,
                BinOp::Sub => a.checked_sub(b)?,
                BinOp::Mul => a.checked_mul(b)?,
                BinOp::FloorDiv if b != 0 => floor_div(a, b),
                BinOp::Mod if b != 0 => py_mod(a, b),
                _ => return None,
            }
        }
        GExpr::Cmp(first, rest) => {
            let mut lhs = eval(first, lookup)?;
            for (op, rhs) in rest {
                let rhs = eval(rhs, lookup)?;
                let ok = match op {
                    CmpOp::Eq => lhs == rhs,
                    CmpOp::Ne => lhs != rhs,
                    CmpOp::Lt => lhs < rhs,
                    CmpOp::Le => lhs <= rhs,
                    CmpOp::Gt => lhs > rhs,
                    CmpOp::Ge => lhs >= rhs,
                };
                if !ok {
                    return Some(0);
                }
                lhs = rhs;
            }
            1
        }
        GExpr::And(v) => v
            .iter()
            .map(|x| eval(x, lookup))
            .collect::<Option<Vec<_>>>()?
            .iter()
            .all(|&x| x != 0) as i64,
        GExpr::Or(v) => v
            .iter()
            .map(|x| eval(x, lookup))
            .collect::<Option<Vec<_>>>()?
            .iter()
            .any(|&x| x != 0) as i64,
        GExpr::Not(x) => (eval(x, lookup)? == 0) as i64,
        GExpr::Path(name, path) => {
            let mut v = lookup(name)?;
            for a in path {
                v = match (a, v) {
                    (Access::Index(i), PyValue::List(xs) | PyValue::Tuple(xs)) => {
                        xs.get(usize::try_from(*i).ok()?)?.clone()
                    }
                    (Access::Key(k), PyValue::Dict(xs)) => {
                        xs.into_iter().find(|(key, _)| key == k)?.1
                    }
                    (Access::Size(d), PyValue::Tensor(t)) => {
                        PyValue::Int(*t.sizes().get(usize::try_from(*d).ok()?)? as i64)
                    }
                    (Access::Stride(d), PyValue::Tensor(t)) => {
                        PyValue::Int(*t.strides().get(usize::try_from(*d).ok()?)? as i64)
                    }
                    (Access::StorageOffset, PyValue::Tensor(t)) => {
                        PyValue::Int(t.storage_offset() as i64)
                    }
                    (Access::Dim, PyValue::Tensor(t)) => PyValue::Int(t.dim() as i64),
                    (Access::Numel, PyValue::Tensor(t)) => PyValue::Int(t.numel() as i64),
                    _ => return None,
                };
            }
            match v {
                PyValue::Int(i) => i,
                PyValue::Bool(b) => b as i64,
                _ => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxport_core::Tensor;

    #[test]
    fn evaluates_export_guards() {
        let x = PyValue::Tensor(Tensor::from_vec(vec![0f32; 6], &[2, 3]).unwrap());
        let z = PyValue::Tensor(Tensor::from_vec(vec![0f32; 15], &[5, 3]).unwrap());
        let lookup = |n: &str| match n {
            "x" => Some(x.clone()),
            "z" => Some(z.clone()),
            _ => None,
        };
        Guard::parse("(-1) + L['x'].size()[0] <= L['z'].size()[0]")
            .unwrap()
            .check(&lookup)
            .unwrap();
        let e = Guard::parse("((-1) + L['x'].size()[0]) != 1")
            .unwrap()
            .check(&lookup)
            .unwrap_err();
        assert_eq!(e.to_string(), "Guard failed: ((-1) + x.size()[0]) != 1");
        assert!(Guard::parse("L['x'].size()[0] == L['y'].size()[0]")
            .unwrap()
            .check(&lookup)
            .is_err());
        assert!(Guard::parse("L['x'].frobnicate()").is_err());
    }
}

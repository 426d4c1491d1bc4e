//! PyTorch function schemas (`aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor`),
//! parsed from the generated table `schemas.txt` (written by `tools/gen_schemas.py` from the installed torch).
use crate::error::{Error, Result};
use std::fmt;

/// The base type of a schema argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BaseType {
    Tensor,
    Int,
    SymInt,
    Float,
    Bool,
    Str,
    Scalar,
    ScalarType,
    Layout,
    Device,
    MemoryFormat,
    Generator,
    Dimname,
    /// Anything else (kept by name so that unknown schemas still parse).
    Other,
}

/// A schema type: base, optionality, list-ness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgType {
    /// Base type.
    pub base: BaseType,
    /// Spelling of the base type as written (`SymInt`, `Tensor`, ...).
    pub base_name: String,
    /// `Some(None)` for `T[]`, `Some(Some(n))` for `T[n]`, `None` for a non-list.
    pub list: Option<Option<usize>>,
    /// `T?` (the whole value may be None).
    pub optional: bool,
    /// `T?[]` (list elements may be None).
    pub elem_optional: bool,
}

impl ArgType {
    /// True for `Tensor`, `Tensor?` (not lists).
    pub fn is_tensor_like(&self) -> bool {
        self.base == BaseType::Tensor && self.list.is_none()
    }
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_name)?;
        if self.elem_optional {
            f.write_str("?")?;
        }
        match self.list {
            Some(Some(n)) => write!(f, "[{n}]")?,
            Some(None) => f.write_str("[]")?,
            None => {}
        }
        if self.optional {
            f.write_str("?")?;
        }
        Ok(())
    }
}

/// A default value as written in a schema.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum DefaultValue {
    None,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    IntList(Vec<i64>),
    FloatList(Vec<f64>),
    BoolList(Vec<bool>),
    /// A bare identifier such as `contiguous_format` or `long`.
    Ident(String),
}

/// Alias annotation of a Tensor argument (`Tensor(a!)`: `set = "a"`, `is_write = true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasInfo {
    /// Alias set name.
    pub set: String,
    /// Written by the op.
    pub is_write: bool,
}

/// One argument (or return) of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaArg {
    /// Argument name (returns may be unnamed: empty).
    pub name: String,
    /// Type.
    pub ty: ArgType,
    /// Default value, if any.
    pub default: Option<DefaultValue>,
    /// Declared after `*`.
    pub kwarg_only: bool,
    /// Alias annotation.
    pub alias: Option<AliasInfo>,
}

/// A parsed function schema.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSchema {
    /// `aten::add`
    pub name: String,
    /// `Tensor` (empty for the default overload)
    pub overload: String,
    /// Arguments in order.
    pub arguments: Vec<SchemaArg>,
    /// Returns.
    pub returns: Vec<SchemaArg>,
    /// The schema text exactly as PyTorch prints it.
    pub text: String,
}

impl FunctionSchema {
    /// `aten.add.Tensor` / `aten.sin.default`: the OpOverload name used in graphs.
    pub fn op_name(&self) -> String {
        let (ns, base) = self.name.split_once("::").unwrap_or(("aten", &self.name));
        let ov = if self.overload.is_empty() {
            "default"
        } else {
            &self.overload
        };
        format!("{ns}.{base}.{ov}")
    }
    /// Index of the argument called `name`.
    pub fn arg_index(&self, name: &str) -> Option<usize> {
        self.arguments.iter().position(|a| a.name == name)
    }
    /// True if some argument is written in place (`Tensor(a!)`).
    pub fn is_mutable(&self) -> bool {
        self.arguments
            .iter()
            .any(|a| a.alias.as_ref().is_some_and(|x| x.is_write))
    }

    /// Parses a schema string.
    pub fn parse(text: &str) -> Result<FunctionSchema> {
        Parser {
            s: text.as_bytes(),
            i: 0,
            text,
        }
        .schema()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> Error {
        Error::Value(format!(
            "cannot parse schema '{}' at byte {}: {msg}",
            self.text, self.i
        ))
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }
    fn ident(&mut self) -> Result<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err("expected an identifier"));
        }
        Ok(self.text[start..self.i].to_string())
    }
    fn schema(&mut self) -> Result<FunctionSchema> {
        let ns = self.ident()?;
        if !(self.eat(b':') && self.eat(b':')) {
            return Err(self.err("expected '::'"));
        }
        let base = self.ident()?;
        let overload = if self.eat(b'.') {
            self.ident()?
        } else {
            String::new()
        };
        self.expect(b'(')?;
        let mut arguments = Vec::new();
        let mut kwarg_only = false;
        if !self.eat(b')') {
            loop {
                if self.eat(b'*') {
                    kwarg_only = true;
                } else {
                    let mut a = self.arg(true)?;
                    a.kwarg_only = kwarg_only;
                    arguments.push(a);
                }
                if self.eat(b')') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        self.ws();
        if !(self.eat(b'-') && self.eat(b'>')) {
            return Err(self.err("expected '->'"));
        }
        let mut returns = Vec::new();
        if self.eat(b'(') {
            if !self.eat(b')') {
                loop {
                    returns.push(self.arg(false)?);
                    if self.eat(b')') {
                        break;
                    }
                    self.expect(b',')?;
                }
            }
        } else {
            returns.push(self.arg(false)?);
        }
        self.ws();
        if self.i != self.s.len() {
            return Err(self.err("trailing text"));
        }
        Ok(FunctionSchema {
            name: format!("{ns}::{base}"),
            overload,
            arguments,
            returns,
            text: self.text.to_string(),
        })
    }
    fn alias(&mut self) -> Result<Option<AliasInfo>> {
        if self.peek() != Some(b'(') {
            return Ok(None);
        }
        self.i += 1;
        let set = self.ident()?;
        let mut is_write = false;
        loop {
            self.ws();
            match self.peek() {
                Some(b'!') => {
                    is_write = true;
                    self.i += 1;
                }
                Some(b')') => {
                    self.i += 1;
                    break;
                }
                Some(_) => self.i += 1, // `a -> *` and similar: skip
                None => return Err(self.err("unterminated alias annotation")),
            }
        }
        Ok(Some(AliasInfo { set, is_write }))
    }
    fn arg(&mut self, with_name: bool) -> Result<SchemaArg> {
        let base_name = self.ident()?;
        let base = match base_name.as_str() {
            "Tensor" => BaseType::Tensor,
            "int" => BaseType::Int,
            "SymInt" => BaseType::SymInt,
            "float" => BaseType::Float,
            "bool" => BaseType::Bool,
            "str" => BaseType::Str,
            "Scalar" => BaseType::Scalar,
            "ScalarType" => BaseType::ScalarType,
            "Layout" => BaseType::Layout,
            "Device" => BaseType::Device,
            "MemoryFormat" => BaseType::MemoryFormat,
            "Generator" => BaseType::Generator,
            "Dimname" => BaseType::Dimname,
            _ => BaseType::Other,
        };
        let mut alias = self.alias()?;
        let mut ty = ArgType {
            base,
            base_name,
            list: None,
            optional: false,
            elem_optional: false,
        };
        if self.peek() == Some(b'?') {
            self.i += 1;
            ty.optional = true;
        }
        if self.peek() == Some(b'[') {
            self.i += 1;
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            let n = if self.i > start {
                Some(
                    self.text[start..self.i]
                        .parse()
                        .map_err(|_| self.err("bad list size"))?,
                )
            } else {
                None
            };
            if self.peek() != Some(b']') {
                return Err(self.err("expected ']'"));
            }
            self.i += 1;
            ty.list = Some(n);
            ty.elem_optional = ty.optional;
            ty.optional = false;
            if self.peek() == Some(b'?') {
                self.i += 1;
                ty.optional = true;
            }
        }
        if alias.is_none() {
            alias = self.alias()?;
        }
        self.ws();
        let mut name = String::new();
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        {
            name = self.ident()?;
        } else if with_name {
            return Err(self.err("expected an argument name"));
        }
        let default = if with_name && self.eat(b'=') {
            Some(self.default_value()?)
        } else {
            None
        };
        Ok(SchemaArg {
            name,
            ty,
            default,
            kwarg_only: false,
            alias,
        })
    }
    fn default_value(&mut self) -> Result<DefaultValue> {
        self.ws();
        match self.peek() {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        break;
                    }
                    items.push(self.default_value()?);
                    self.ws();
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
                if items.iter().all(|v| matches!(v, DefaultValue::Int(_))) {
                    Ok(DefaultValue::IntList(
                        items
                            .into_iter()
                            .map(|v| if let DefaultValue::Int(i) = v { i } else { 0 })
                            .collect(),
                    ))
                } else if items.iter().all(|v| matches!(v, DefaultValue::Bool(_))) {
                    Ok(DefaultValue::BoolList(
                        items
                            .into_iter()
                            .map(|v| matches!(v, DefaultValue::Bool(true)))
                            .collect(),
                    ))
                } else {
                    Ok(DefaultValue::FloatList(
                        items
                            .into_iter()
                            .map(|v| match v {
                                DefaultValue::Int(i) => i as f64,
                                DefaultValue::Float(f) => f,
                                _ => f64::NAN,
                            })
                            .collect(),
                    ))
                }
            }
            Some(q @ (b'"' | b'\'')) => {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|c| c != q) {
                    self.i += 1;
                }
                let s = self.text[start..self.i].to_string();
                self.expect(q)?;
                Ok(DefaultValue::Str(s))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() || c == b'.' => {
                let start = self.i;
                self.i += 1;
                while self.peek().is_some_and(|c| {
                    c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'+'
                }) {
                    self.i += 1;
                }
                let lit = &self.text[start..self.i];
                if let Ok(i) = lit.parse::<i64>() {
                    Ok(DefaultValue::Int(i))
                } else {
                    lit.parse::<f64>()
                        .map(DefaultValue::Float)
                        .map_err(|_| self.err("bad number"))
                }
            }
            _ => {
                let id = self.ident()?;
                Ok(match id.as_str() {
                    "None" => DefaultValue::None,
                    "True" => DefaultValue::Bool(true),
                    "False" => DefaultValue::Bool(false),
                    _ => DefaultValue::Ident(id),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_typical_schemas() {
        let s = FunctionSchema::parse(
            "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
        )
        .unwrap();
        assert_eq!(s.op_name(), "aten.add.Tensor");
        assert_eq!(s.arguments.len(), 3);
        assert!(s.arguments[2].kwarg_only);
        assert_eq!(s.arguments[2].default, Some(DefaultValue::Int(1)));
        let s = FunctionSchema::parse("aten::split_with_sizes(Tensor(a -> *) self, SymInt[] split_sizes, int dim=0) -> Tensor(a)[]").unwrap();
        assert_eq!(s.returns[0].ty.list, Some(None));
        assert_eq!(s.arguments[0].alias.as_ref().unwrap().set, "a");
        let s = FunctionSchema::parse(
            "aten::add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)",
        )
        .unwrap();
        assert!(s.is_mutable());
        let s = FunctionSchema::parse("aten::mean.dim(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor").unwrap();
        assert_eq!(s.arguments[1].ty.list, Some(Some(1)));
        assert!(s.arguments[1].ty.optional);
        let s =
            FunctionSchema::parse("aten::index.Tensor(Tensor self, Tensor?[] indices) -> Tensor")
                .unwrap();
        assert!(s.arguments[1].ty.elem_optional && !s.arguments[1].ty.optional);
        let s = FunctionSchema::parse("aten::max.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)").unwrap();
        assert_eq!(s.returns[1].name, "indices");
        let s =
            FunctionSchema::parse("aten::gelu(Tensor self, *, str approximate='none') -> Tensor")
                .unwrap();
        assert_eq!(
            s.arguments[1].default,
            Some(DefaultValue::Str("none".into()))
        );
        let s = FunctionSchema::parse("aten::scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, float dropout_p=0., bool is_causal=False, *, float? scale=None, bool enable_gqa=False) -> Tensor").unwrap();
        assert_eq!(s.arguments[4].default, Some(DefaultValue::Float(0.0)));
        assert!(FunctionSchema::parse("aten::x(Tensor").is_err());
    }
}

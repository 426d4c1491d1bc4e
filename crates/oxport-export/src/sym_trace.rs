//! Symbolic sizes under export, recorded as PyTorch records them.
//!
//! * `x.sym_size(d)` of a dynamic dim gives a fresh [`SymInt`]; like PyTorch's lazily tracked sizes, it
//!   becomes a graph value only when an op or arithmetic uses it.
//! * Arithmetic on symbolic ints (`b * 2`) records an `_operator.mul` node at once, at the user's line;
//!   one whose value is already in the graph is replaced by that value (PyTorch's hash-consing pass).
//! * Every symbol of a user input is finally bound, right after the placeholders, by one
//!   `aten.sym_size.int` node on the *last* input dim that has it, named after all traced names, as
//!   `insert_deferred_runtime_asserts` does. Until then references use a token (see [`token`]).
//! * A plain integer read of a dynamic dim (`x.sizes()`) would bake the example's size into the graph:
//!   it is remembered and fails the export, naming the line.
use crate::tracer::view_key;
use oxport_core::ops::SymScalar;
use oxport_core::sym::SymExpr;
use oxport_core::{Error, Result, Scalar, SymFloat, SymInt, Tensor};
use oxport_ir::schema as ir;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;

/// How a symbolic int the user holds came about.
pub(crate) enum Prov {
    /// `t.sym_size(dim)`: its `sym_size_int` name is taken when first used.
    Read { forced: bool },
    /// A graph value (an `_operator` node, or the value it was hash-consed to).
    Value(String),
}

/// Symbolic bookkeeping of one trace.
#[derive(Default)]
pub(crate) struct SymState {
    /// Provenance of the symbolic ints handed out or computed, by expression object.
    prov: HashMap<usize, Prov>,
    /// Keeps those objects alive, so their addresses stay theirs.
    keep: Vec<SymInt>,
    /// The same for symbolic floats.
    keep_floats: Vec<SymFloat>,
    /// Graph value of each expression already in the graph.
    pub values: HashMap<SymExpr, String>,
    /// `Sym(...)` types of the symbolic nodes.
    pub sym_int_values: oxport_ir::OrderedMap<ir::SymInt>,
    /// `Sym(...)` types of the symbolic float nodes.
    pub sym_float_values: oxport_ir::OrderedMap<ir::SymFloat>,
    /// The first plain read of a dynamic dim.
    pub specialized: Option<String>,
}

/// The placeholder token standing for symbol `s` until its `sym_size_int` node is named.
pub(crate) fn token(symbol: &str) -> String {
    format!("\u{1}{symbol}")
}

fn key(s: &SymInt) -> Option<usize> {
    match s {
        SymInt::Sym(e) => Some(Arc::as_ptr(e) as usize),
        SymInt::Int(_) => None,
    }
}

fn float_key(s: &SymFloat) -> Option<usize> {
    match s {
        SymFloat::Sym(e) => Some(Arc::as_ptr(e) as usize),
        SymFloat::Float(_) => None,
    }
}

/// FX's node name for a symbolic op's target (`torch._sym_sqrt` -> `_sym_sqrt`, `math.trunc` -> `trunc`),
/// and the names of its parameters as `inspect.signature` gives them to the serializer.
fn sym_target_names(target: &str) -> (&str, &'static [&'static str]) {
    let short = target.rsplit('.').next().unwrap_or(target);
    let params: &'static [&'static str] = match target {
        "math.trunc" => &["x"],
        "torch.sym_float" | "torch._sym_sqrt" | "_operator.neg" => &["a"],
        _ => &["a", "b"],
    };
    (short, params)
}

impl crate::tracer::State {
    /// Binds the symbols of a user input to tokens (export calls this for each input, in order).
    pub(crate) fn bind_input_symbols(&mut self, meta: &oxport_core::ops::TensorMeta) {
        for s in &meta.sizes {
            if let SymInt::Sym(e) = s {
                if let SymExpr::Symbol { name, .. } = &**e {
                    self.sym.values.insert((**e).clone(), token(name));
                }
            }
        }
    }

    pub(crate) fn sym_size(&mut self, t: &Tensor, dim: usize) -> Option<SymInt> {
        // The size object itself, as PyTorch hands out the tensor's SymInt: an op whose output keeps an
        // input's size (`relu`) shares it, so reading either is one read.
        let size = self.metas.get(&view_key(t))?.sizes.get(dim)?.clone();
        let k = key(&size)?;
        if !self.sym.prov.contains_key(&k) {
            self.remember(&size, Prov::Read { forced: false });
        }
        Some(size)
    }

    fn remember(&mut self, s: &SymInt, p: Prov) {
        if let Some(k) = key(s) {
            self.sym.prov.insert(k, p);
            self.sym.keep.push(s.clone());
        }
    }

    pub(crate) fn size_read(&mut self, t: &Tensor, dims: &[usize], at: &'static Location<'static>) {
        if self.sym.specialized.is_some() {
            return;
        }
        let k = view_key(t);
        let Some(meta) = self.metas.get(&k) else {
            return;
        };
        let Some(&d) = dims
            .iter()
            .find(|&&d| meta.sizes.get(d).is_some_and(SymInt::is_symbolic))
        else {
            return;
        };
        let size = meta.sizes[d].clone();
        let name = self
            .values
            .get(&k)
            .cloned()
            .unwrap_or_else(|| "a tensor".into());
        self.sym.specialized = Some(format!(
            "{}:{}: reads the sizes of `{name}` as plain integers, but its dim {d} is dynamic ({size}): the \
             program would be fixed to this example's size {}. Read it with `{name}.sym_size({d})?` (a \
             SymInt that `view`/`reshape`/`zeros`/... take), and static dims with `{name}.size(dim)?`",
            at.file(),
            at.line(),
            size.hint()
        ));
    }

    /// The graph argument for a symbolic int the user passes to an op.
    pub(crate) fn sym_arg(
        &mut self,
        s: &SymInt,
        at: &'static Location<'static>,
    ) -> Result<ir::SymIntArgument> {
        let Some(k) = key(s) else {
            return Ok(ir::SymIntArgument::AsInt(s.hint()));
        };
        let SymInt::Sym(e) = s else { unreachable!() };
        match self.sym.prov.get_mut(&k) {
            Some(Prov::Value(n)) => Ok(ir::SymIntArgument::AsName(n.clone())),
            Some(Prov::Read { forced }) => {
                if !*forced {
                    *forced = true;
                    // The traced `sym_size` node; the hash-consing pass then replaces it by the input's.
                    self.ns.create_name("sym_size_int");
                }
                let name = self.expr_value(e, at)?;
                self.sym.prov.insert(k, Prov::Value(name.clone()));
                Ok(ir::SymIntArgument::AsName(name))
            }
            None => Ok(ir::SymIntArgument::AsName(self.expr_value(e, at)?)),
        }
    }

    /// The graph value of an expression, building `_operator` nodes from the input symbols when the
    /// graph does not have it yet (as PyTorch re-derives sizes of intermediate tensors).
    fn expr_value(&mut self, e: &SymExpr, at: &'static Location<'static>) -> Result<String> {
        if let Some(n) = self.sym.values.get(e) {
            return Ok(n.clone());
        }
        let (op, parts): (&'static str, Vec<&SymExpr>) = match e {
            SymExpr::Add(ts) => ("add", ts.iter().collect()),
            SymExpr::Mul(fs) => ("mul", fs.iter().collect()),
            SymExpr::FloorDiv(a, b) => ("floordiv", vec![a, b]),
            SymExpr::Mod(a, b) => ("mod", vec![a, b]),
            _ => {
                return Err(Error::Symbolic(format!(
                    "{}:{}: the size {e} is not derived from the inputs' dynamic dims",
                    at.file(),
                    at.line()
                )))
            }
        };
        let arg = |st: &mut Self, p: &SymExpr| -> Result<ir::SymIntArgument> {
            Ok(match p {
                SymExpr::Const(c) => ir::SymIntArgument::AsInt(*c),
                p => ir::SymIntArgument::AsName(st.expr_value(p, at)?),
            })
        };
        let as_symint = |p: &SymExpr| match p {
            SymExpr::Const(c) => SymInt::Int(*c),
            p => SymInt::Sym(Arc::new(p.clone())),
        };
        let mut acc = arg(self, parts[0])?;
        let mut acc_expr = as_symint(parts[0]);
        for p in &parts[1..] {
            let pe = as_symint(p);
            let rhs = arg(self, p)?;
            acc_expr = match op {
                "add" => acc_expr.add(&pe),
                "mul" => acc_expr.mul(&pe),
                "floordiv" => acc_expr.floor_div(&pe),
                _ => acc_expr.modulo(&pe),
            };
            let name = self.ns.create_name(op);
            self.push_sym_node(op, acc, rhs, &name, &acc_expr, at);
            acc = ir::SymIntArgument::AsName(name);
        }
        match acc {
            ir::SymIntArgument::AsName(n) => Ok(n),
            ir::SymIntArgument::AsInt(c) => Err(Error::Symbolic(format!(
                "the size {e} folded to the constant {c}"
            ))),
        }
    }

    fn push_sym_node(
        &mut self,
        op: &str,
        a: ir::SymIntArgument,
        b: ir::SymIntArgument,
        name: &str,
        value: &SymInt,
        at: &'static Location<'static>,
    ) {
        let arg = |s: ir::SymIntArgument| match s {
            ir::SymIntArgument::AsInt(i) => ir::Argument::AsInt(i),
            s => ir::Argument::AsSymInt(s),
        };
        let metadata = self.metadata(at);
        self.nodes.push(ir::Node {
            target: format!("_operator.{op}"),
            inputs: vec![
                ir::NamedArgument {
                    name: "a".into(),
                    arg: arg(a),
                    kind: Some(ir::ArgumentKind::Positional),
                },
                ir::NamedArgument {
                    name: "b".into(),
                    arg: arg(b),
                    kind: Some(ir::ArgumentKind::Positional),
                },
            ],
            outputs: vec![ir::Argument::AsSymInt(ir::SymIntArgument::AsName(
                name.to_string(),
            ))],
            metadata,
            is_hop_single_tensor_return: None,
            name: Some(name.to_string()),
        });
        self.sym
            .sym_int_values
            .insert(name.to_string(), ir::SymInt::from_core(value));
        if let SymInt::Sym(e) = value {
            self.sym.values.insert((**e).clone(), name.to_string());
        }
    }

    /// `result = lhs op rhs` computed by the user on symbolic ints.
    pub(crate) fn sym_op(
        &mut self,
        op: &'static str,
        lhs: &SymInt,
        rhs: &SymInt,
        result: &SymInt,
        at: &'static Location<'static>,
    ) -> Result<()> {
        let a = self.sym_arg(lhs, at)?;
        let b = self.sym_arg(rhs, at)?;
        let name = self.ns.create_name(op);
        let SymInt::Sym(e) = result else {
            return Ok(()); // folded to a constant: nothing to record
        };
        if let Some(existing) = self.sym.values.get(&**e).cloned() {
            self.remember(result, Prov::Value(existing));
            return Ok(());
        }
        self.push_sym_node(op, a, b, &name, result, at);
        self.remember(result, Prov::Value(name));
        Ok(())
    }

    /// The graph argument for a symbolic float the user passes to an op or a symbolic op.
    pub(crate) fn sym_float_arg(
        &mut self,
        f: &SymFloat,
        at: &'static Location<'static>,
    ) -> Result<ir::Argument> {
        let SymFloat::Sym(e) = f else {
            return Ok(ir::Argument::AsFloat(ir::PyFloat(f.hint())));
        };
        let name = match float_key(f).and_then(|k| self.sym.prov.get(&k)) {
            Some(Prov::Value(n)) => n.clone(),
            _ => match self.sym.values.get(&**e) {
                Some(n) => n.clone(),
                None => {
                    return Err(Error::Symbolic(format!(
                        "{}:{}: the symbolic float {e} is not a value of the graph",
                        at.file(),
                        at.line()
                    )))
                }
            },
        };
        Ok(ir::Argument::AsSymFloat(ir::SymFloatArgument::AsName(name)))
    }

    fn sym_scalar_arg(
        &mut self,
        a: &SymScalar,
        at: &'static Location<'static>,
    ) -> Result<ir::Argument> {
        Ok(match a {
            SymScalar::Scalar(Scalar::Int(i)) => ir::Argument::AsInt(*i),
            SymScalar::Scalar(Scalar::Float(f)) => ir::Argument::AsFloat(ir::PyFloat(*f)),
            SymScalar::Scalar(Scalar::Bool(b)) => ir::Argument::AsBool(*b),
            SymScalar::Int(i) => match self.sym_arg(i, at)? {
                ir::SymIntArgument::AsInt(i) => ir::Argument::AsInt(i),
                s => ir::Argument::AsSymInt(s),
            },
            SymScalar::Float(f) => self.sym_float_arg(f, at)?,
        })
    }

    /// `result = target(args...)` computed by the user on symbolic numbers (`torch.sym_float`,
    /// `_operator.truediv`, float arithmetic, `_operator.pow`, `torch._sym_sqrt`, `math.trunc`): recorded
    /// as PyTorch records it, unless the graph already has the result's expression.
    pub(crate) fn sym_call(
        &mut self,
        target: &'static str,
        args: &[SymScalar],
        result: &SymScalar,
        at: &'static Location<'static>,
    ) -> Result<()> {
        let mut inputs = vec![];
        let (short, params) = sym_target_names(target);
        for (a, p) in args.iter().zip(params) {
            inputs.push(ir::NamedArgument {
                name: p.to_string(),
                arg: self.sym_scalar_arg(a, at)?,
                kind: Some(ir::ArgumentKind::Positional),
            });
        }
        let name = self.ns.create_name(short);
        let (e, k) = match result {
            SymScalar::Int(i @ SymInt::Sym(e)) => (e.clone(), key(i)),
            SymScalar::Float(f @ SymFloat::Sym(e)) => (e.clone(), float_key(f)),
            _ => return Ok(()), // folded to a constant: nothing to record
        };
        let k = k.expect("a symbolic value");
        let keep = |st: &mut Self| match result {
            SymScalar::Int(i) => st.sym.keep.push(i.clone()),
            SymScalar::Float(f) => st.sym.keep_floats.push(f.clone()),
            SymScalar::Scalar(_) => {}
        };
        if let Some(existing) = self.sym.values.get(&*e).cloned() {
            self.sym.prov.insert(k, Prov::Value(existing));
            keep(self);
            return Ok(());
        }
        let output = match result {
            SymScalar::Int(i) => {
                self.sym
                    .sym_int_values
                    .insert(name.clone(), ir::SymInt::from_core(i));
                ir::Argument::AsSymInt(ir::SymIntArgument::AsName(name.clone()))
            }
            SymScalar::Float(f) => {
                self.sym
                    .sym_float_values
                    .insert(name.clone(), ir::SymFloat::from_core(f));
                ir::Argument::AsSymFloat(ir::SymFloatArgument::AsName(name.clone()))
            }
            SymScalar::Scalar(_) => unreachable!(),
        };
        let metadata = self.metadata(at);
        self.nodes.push(ir::Node {
            target: target.to_string(),
            inputs,
            outputs: vec![output],
            metadata,
            is_hop_single_tensor_return: None,
            name: Some(name.clone()),
        });
        self.sym.values.insert((*e).clone(), name.clone());
        self.sym.prov.insert(k, Prov::Value(name));
        keep(self);
        Ok(())
    }
}

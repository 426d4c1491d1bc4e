//! `Display` for [`ExportedProgram`]: the exact text of PyTorch 2.15's `print(ep)` for the same program.
//!
//! PyTorch prints a program by deserializing it into an FX graph (`serialize.py`,
//! `GraphModuleDeserializer.deserialize_graph`) and generating Python for it (`torch/fx/graph.py`,
//! `CodeGen._gen_python_code`, and `GraphModule.print_readable`). This module mirrors both steps: it
//! builds the FX view of the graph (placeholders, calls, `getitem`s for multiple outputs, `get_attr`s
//! for nested graphs, the output), then emits the code with the same names, argument reprs, stack-trace
//! comments, liveness suffixes and indentation.
use crate::names::{Namespace, PY_KEYWORDS};
use crate::program::ExportedProgram;
use crate::schema::*;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// A Python value as FX prints it.
#[derive(Debug, Clone)]
enum PyVal {
    Node(usize),
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyVal>),
    Tuple(Vec<PyVal>),
    Dict(Vec<(String, PyVal)>),
    /// Printed verbatim (`torch.float32`, `device(type='cpu')`, operators).
    Raw(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Placeholder,
    CallFunction,
    GetAttr,
    Output,
}

#[derive(Debug, Clone)]
struct FxNode {
    name: String,
    op: Op,
    /// Qualified target (`torch.ops.aten.sin.default`, `_operator.getitem`) or attribute name.
    target: String,
    args: Vec<PyVal>,
    kwargs: Vec<(String, PyVal)>,
    /// The type annotation without quotes (`f32[10, 10]`, `Sym(s77)`).
    annotation: Option<String>,
    stack_trace: Option<String>,
    custom: Option<String>,
}

/// One FX graph module: its nodes and its child graph modules (nested graphs), in registration order.
struct FxModule {
    nodes: Vec<FxNode>,
    children: Vec<(String, FxModule)>,
}

/// `_operator` functions and `torch.sym_*` that the deserializer treats as symbolic ops (all inputs
/// positional).
fn is_sym_op(target: &str) -> bool {
    matches!(
        target,
        "_operator.eq"
            | "_operator.ne"
            | "_operator.le"
            | "_operator.ge"
            | "_operator.lt"
            | "_operator.gt"
            | "_operator.neg"
            | "_operator.pos"
            | "math.trunc"
            | "torch.sym_not"
            | "_operator.mul"
            | "_operator.add"
            | "_operator.sub"
            | "_operator.floordiv"
            | "_operator.mod"
            | "_operator.pow"
            | "torch.sym_int"
            | "torch.sym_float"
            | "torch.sym_ite"
            | "torch.sym_max"
            | "torch.sym_min"
            | "torch.sym_sqrt"
            | "torch._sym_sqrt"
            | "_operator.truediv"
            | "_operator.and_"
            | "_operator.or_"
            | "_operator.lshift"
            | "_operator.rshift"
            | "torch.ops.aten.item.default"
    )
}

/// FX's pretty forms of `_operator` functions.
fn magic_method(target: &str) -> Option<&'static str> {
    let name = target.strip_prefix("_operator.")?;
    Some(match name {
        "eq" => "{} == {}",
        "ne" => "{} != {}",
        "lt" => "{} < {}",
        "gt" => "{} > {}",
        "le" => "{} <= {}",
        "ge" => "{} >= {}",
        "pos" => "+{}",
        "neg" => "-{}",
        "invert" => "~{}",
        "add" => "{} + {}",
        "sub" => "{} - {}",
        "mul" => "{} * {}",
        "floordiv" => "{} // {}",
        "truediv" => "{} / {}",
        "div" => "{} / {}",
        "mod" => "{} % {}",
        "pow" => "{} ** {}",
        "lshift" => "{} << {}",
        "rshift" => "{} >> {}",
        "and_" => "{} & {}",
        "or_" => "{} | {}",
        "xor" => "{} ^ {}",
        "getitem" => "{}[{}]",
        "matmul" => "{} @ {}",
        _ => return None,
    })
}

/// FX's default node name for a target (`Graph._target_to_str`, before namespace cleaning).
fn target_to_str(target: &str) -> String {
    let short = if let Some(rest) = target.strip_prefix("torch.ops.") {
        // OpOverload.__name__ is `op.overload`; HigherOrderOperator.__name__ is the op.
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.first() == Some(&"higher_order") {
            parts.get(1).copied().unwrap_or(rest).to_string()
        } else {
            parts[1..].join(".")
        }
    } else {
        target.rsplit('.').next().unwrap_or(target).to_string()
    };
    let mut out = String::new();
    let mut prev_lower = false;
    for ch in short.chars() {
        if ch.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = ch.is_ascii_lowercase();
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// Python's `repr(str)`.
pub(crate) fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn py_float(x: f64) -> String {
    oxport_core::dtype::format_python_float(x)
}

fn device_repr(d: &Device) -> String {
    match d.index {
        Some(i) => format!("device(type={}, index={i})", py_repr_str(&d.type_)),
        None => format!("device(type={})", py_repr_str(&d.type_)),
    }
}

fn sym_expr_str(s: &SymInt) -> String {
    match s {
        SymInt::AsInt(i) => i.to_string(),
        SymInt::AsExpr(e) => crate::sympy::pretty(&e.expr_str),
    }
}

/// `f32[10, 10]`.
fn tensor_annotation(m: &TensorMeta) -> String {
    let sizes: Vec<String> = m.sizes.iter().map(sym_expr_str).collect();
    format!("{}[{}]", m.dtype.abbr(), sizes.join(", "))
}

/// Builds the FX view of serialized graphs (the deserializer's job in PyTorch).
struct Builder<'a> {
    signature: Option<&'a GraphSignature>,
}

struct GraphBuild<'g> {
    graph: &'g Graph,
    nodes: Vec<FxNode>,
    env: HashMap<String, usize>,
    ns: Namespace,
    children: Vec<(String, FxModule)>,
}

impl<'g> GraphBuild<'g> {
    fn push(&mut self, mut node: FxNode, requested: &str) -> usize {
        node.name = self.ns.create_name(requested);
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The deserializer's `sync_fx_node`: the node takes the value's name and its metadata.
    fn sync(&mut self, value: &str, idx: usize) {
        self.nodes[idx].name = value.to_string();
        self.ns.used.insert(value.to_string());
        self.nodes[idx].annotation = self.annotation_of(value);
        self.env.insert(value.to_string(), idx);
    }

    fn annotation_of(&self, value: &str) -> Option<String> {
        let g = self.graph;
        if let Some(m) = g.tensor_values.get(value) {
            return Some(tensor_annotation(m));
        }
        if let Some(SymInt::AsExpr(e)) = g.sym_int_values.get(value) {
            return Some(format!("Sym({})", crate::sympy::pretty(&e.expr_str)));
        }
        if let Some(SymBool::AsExpr(e)) = g.sym_bool_values.get(value) {
            return Some(format!("Sym({})", crate::sympy::pretty(&e.expr_str)));
        }
        if let Some(SymFloat::AsExpr(e)) = g.sym_float_values.get(value) {
            return Some(format!("Sym({})", crate::sympy::pretty(&e.expr_str)));
        }
        None
    }

    fn node_ref(&self, name: &str) -> PyVal {
        match self.env.get(name) {
            Some(&i) => PyVal::Node(i),
            // An undefined name: print it as is (the validator reports it).
            None => PyVal::Raw(name.to_string()),
        }
    }

    fn sym_int_arg(&self, a: &SymIntArgument) -> PyVal {
        match a {
            SymIntArgument::AsName(n) => self.node_ref(n),
            SymIntArgument::AsInt(i) => PyVal::Int(*i),
        }
    }

    fn input(&mut self, a: &Argument, meta: &Meta, b: &Builder) -> PyVal {
        match a {
            Argument::AsNone(_) => PyVal::None,
            Argument::AsTensor(t) => self.node_ref(&t.name),
            Argument::AsTensors(ts) => {
                PyVal::List(ts.iter().map(|t| self.node_ref(&t.name)).collect())
            }
            Argument::AsInt(i) => PyVal::Int(*i),
            Argument::AsInts(v) => PyVal::List(v.iter().map(|i| PyVal::Int(*i)).collect()),
            Argument::AsFloat(f) => PyVal::Float(f.0),
            Argument::AsFloats(v) => PyVal::List(v.iter().map(|f| PyVal::Float(f.0)).collect()),
            Argument::AsString(s) => PyVal::Str(s.clone()),
            Argument::AsStrings(v) => {
                PyVal::List(v.iter().map(|s| PyVal::Str(s.clone())).collect())
            }
            Argument::AsSymInt(s) => self.sym_int_arg(s),
            Argument::AsSymInts(v) => PyVal::List(v.iter().map(|s| self.sym_int_arg(s)).collect()),
            Argument::AsScalarType(t) => PyVal::Raw(t.python_name().into()),
            Argument::AsMemoryFormat(m) => PyVal::Raw(m.python_name().into()),
            Argument::AsLayout(l) => PyVal::Raw(l.python_name().into()),
            Argument::AsDevice(d) => PyVal::Raw(device_repr(d)),
            Argument::AsBool(x) => PyVal::Bool(*x),
            Argument::AsBools(v) => PyVal::List(v.iter().map(|x| PyVal::Bool(*x)).collect()),
            Argument::AsSymBool(s) => match s {
                SymBoolArgument::AsName(n) => self.node_ref(n),
                SymBoolArgument::AsBool(x) => PyVal::Bool(*x),
            },
            Argument::AsSymBools(v) => PyVal::List(
                v.iter()
                    .map(|s| match s {
                        SymBoolArgument::AsName(n) => self.node_ref(n),
                        SymBoolArgument::AsBool(x) => PyVal::Bool(*x),
                    })
                    .collect(),
            ),
            Argument::AsGraph(g) => {
                let child = b.build(&g.graph, None);
                self.children.push((g.name.clone(), child));
                let node = FxNode {
                    name: String::new(),
                    op: Op::GetAttr,
                    target: g.name.clone(),
                    args: vec![],
                    kwargs: vec![],
                    annotation: None,
                    stack_trace: meta.stack_trace.clone(),
                    custom: meta.custom.clone(),
                };
                let idx = self.push(node, &g.name);
                PyVal::Node(idx)
            }
            Argument::AsOptionalTensors(v) => PyVal::List(
                v.iter()
                    .map(|o| match o {
                        OptionalTensorArgument::AsTensor(t) => self.node_ref(&t.name),
                        OptionalTensorArgument::AsNone(_) => PyVal::None,
                    })
                    .collect(),
            ),
            Argument::AsOptionalTensor(o) => match o {
                OptionalTensorArgument::AsTensor(t) => self.node_ref(&t.name),
                OptionalTensorArgument::AsNone(_) => PyVal::None,
            },
            Argument::AsCustomObj(c) => self.node_ref(&c.name),
            Argument::AsOperator(op) => PyVal::Raw(op.clone()),
            Argument::AsSymFloat(s) => match s {
                SymFloatArgument::AsName(n) => self.node_ref(n),
                SymFloatArgument::AsFloat(f) => PyVal::Float(f.0),
            },
            Argument::AsSymFloats(v) => PyVal::List(
                v.iter()
                    .map(|s| match s {
                        SymFloatArgument::AsName(n) => self.node_ref(n),
                        SymFloatArgument::AsFloat(f) => PyVal::Float(f.0),
                    })
                    .collect(),
            ),
            Argument::AsComplex(c) => PyVal::Raw(complex_repr(c.real.0, c.imag.0)),
            Argument::AsNestedTensors(v) => PyVal::List(
                v.iter()
                    .map(|inner| {
                        PyVal::List(inner.iter().map(|t| self.node_ref(&t.name)).collect())
                    })
                    .collect(),
            ),
            Argument::AsIntLists(v) => PyVal::List(
                v.iter()
                    .map(|inner| PyVal::Tuple(inner.iter().map(|i| PyVal::Int(*i)).collect()))
                    .collect(),
            ),
            Argument::AsStringToArgument(m) => {
                let mut items = Vec::new();
                for (k, v) in m.iter() {
                    let pv = self.input(v, meta, b);
                    items.push((k.to_string(), pv));
                }
                PyVal::Dict(items)
            }
            Argument::AsFloatLists(v) => PyVal::List(
                v.iter()
                    .map(|inner| PyVal::List(inner.iter().map(|f| PyVal::Float(f.0)).collect()))
                    .collect(),
            ),
        }
    }

    fn getitem(&mut self, src: usize, idx: usize, name: Option<&str>, meta: &Meta) -> usize {
        let node = FxNode {
            name: String::new(),
            op: Op::CallFunction,
            target: "_operator.getitem".into(),
            args: vec![PyVal::Node(src), PyVal::Int(idx as i64)],
            kwargs: vec![],
            annotation: None,
            stack_trace: meta.stack_trace.clone(),
            custom: meta.custom.clone(),
        };
        let i = self.push(node, name.unwrap_or("getitem"));
        if let Some(n) = name {
            if n != "as_none" {
                self.sync(n, i);
            }
        }
        i
    }

    /// The deserializer's `generate_getitems`.
    fn getitems(&mut self, src: usize, outputs: &[Argument], meta: &Meta) {
        for (idx, out) in outputs.iter().enumerate() {
            match out {
                Argument::AsTensor(t) => {
                    self.getitem(src, idx, Some(&t.name), meta);
                }
                Argument::AsSymInt(SymIntArgument::AsName(n))
                | Argument::AsSymFloat(SymFloatArgument::AsName(n)) => {
                    self.getitem(src, idx, Some(n), meta);
                }
                Argument::AsTensors(ts) => {
                    let list = self.getitem(src, idx, None, meta);
                    let inner: Vec<Argument> =
                        ts.iter().map(|t| Argument::AsTensor(t.clone())).collect();
                    self.getitems(list, &inner, meta);
                }
                Argument::AsSymInts(v) => {
                    let list = self.getitem(src, idx, None, meta);
                    let inner: Vec<Argument> =
                        v.iter().map(|s| Argument::AsSymInt(s.clone())).collect();
                    self.getitems(list, &inner, meta);
                }
                Argument::AsNone(_) => {
                    self.getitem(src, idx, Some("as_none"), meta);
                }
                _ => {
                    self.getitem(src, idx, None, meta);
                }
            }
        }
    }
}

/// The node metadata that printing uses.
struct Meta {
    stack_trace: Option<String>,
    custom: Option<String>,
}

fn complex_repr(re: f64, im: f64) -> String {
    if re == 0.0 || im == 0.0 || !re.is_finite() || !im.is_finite() {
        format!("complex({}, {})", py_float(re), py_float(im))
    } else {
        let sign = if im < 0.0 { "-" } else { "+" };
        format!(
            "({}{}{}j)",
            py_float_trim(re),
            sign,
            py_float_trim(im.abs())
        )
    }
}

/// Python prints complex parts without a trailing `.0`.
fn py_float_trim(x: f64) -> String {
    let s = py_float(x);
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

impl<'a> Builder<'a> {
    fn build(&self, graph: &Graph, signature: Option<&GraphSignature>) -> FxModule {
        let mut gb = GraphBuild {
            graph,
            nodes: vec![],
            env: HashMap::new(),
            ns: Namespace::default(),
            children: vec![],
        };
        for (i, input) in graph.inputs.iter().enumerate() {
            let name = match input {
                Argument::AsTensor(t) => Some(t.name.clone()),
                Argument::AsCustomObj(c) => Some(c.name.clone()),
                Argument::AsSymInt(SymIntArgument::AsName(n)) => Some(n.clone()),
                _ => None,
            };
            match name {
                Some(n) => {
                    let node = placeholder(&n);
                    let idx = gb.push(node, &n);
                    gb.sync(&n, idx);
                }
                None => {
                    let n = signature
                        .and_then(|s| s.input_specs.get(i))
                        .map(input_spec_name)
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| format!("arg{i}"));
                    let idx = gb.push(placeholder(&n), &n);
                    gb.nodes[idx].target = n;
                }
            }
        }
        for node in &graph.nodes {
            self.build_node(&mut gb, node);
        }
        let outs: Vec<PyVal> = graph.outputs.iter().map(|o| output_value(&gb, o)).collect();
        let ret = if graph.is_single_tensor_return && outs.len() == 1 {
            outs.into_iter().next().expect("one output")
        } else {
            PyVal::Tuple(outs)
        };
        let out = FxNode {
            name: String::new(),
            op: Op::Output,
            target: "output".into(),
            args: vec![ret],
            kwargs: vec![],
            annotation: None,
            stack_trace: None,
            custom: None,
        };
        gb.push(out, "output");
        FxModule {
            nodes: gb.nodes,
            children: gb.children,
        }
    }

    fn build_node(&self, gb: &mut GraphBuild, node: &Node) {
        let meta = Meta {
            stack_trace: node
                .metadata
                .get("stack_trace")
                .filter(|s| !s.is_empty())
                .cloned(),
            custom: node.metadata.get("custom").cloned(),
        };
        let target = node.target.as_str();
        let call = |args: Vec<PyVal>, kwargs: Vec<(String, PyVal)>| FxNode {
            name: String::new(),
            op: Op::CallFunction,
            target: target.to_string(),
            args,
            kwargs,
            annotation: None,
            stack_trace: meta.stack_trace.clone(),
            custom: meta.custom.clone(),
        };
        if is_sym_op(target) {
            let args: Vec<PyVal> = node
                .inputs
                .iter()
                .map(|i| gb.input(&i.arg, &meta, self))
                .collect();
            let out_name = node.outputs.first().and_then(sym_output_name);
            let requested = node
                .name
                .clone()
                .or_else(|| out_name.clone())
                .unwrap_or_else(|| target_to_str(target));
            let idx = gb.push(call(args, vec![]), &requested);
            if let Some(n) = out_name {
                gb.sync(&n, idx);
            }
            return;
        }
        let is_hop = target.starts_with("torch.ops.higher_order.");
        let (args, kwargs) = if is_hop || !target.starts_with("torch.ops.") {
            hoo_inputs(gb, node, &meta, self)
        } else {
            op_inputs(gb, node, &meta, self)
        };
        let requested = match &node.name {
            Some(n) => n.clone(),
            None => match node.outputs.as_slice() {
                [Argument::AsTensor(t)]
                    if !is_hop || node.is_hop_single_tensor_return != Some(false) =>
                {
                    t.name.clone()
                }
                _ => target_to_str(target),
            },
        };
        let idx = gb.push(call(args, kwargs), &requested);
        // deserialize_outputs
        let outs = &node.outputs;
        if outs.is_empty() {
            return;
        }
        if outs.len() == 1
            && is_hop
            && node.is_hop_single_tensor_return == Some(false)
            && !matches!(outs[0], Argument::AsNone(_))
        {
            match &outs[0] {
                Argument::AsTensor(t) => {
                    gb.getitem(idx, 0, Some(&t.name), &meta);
                }
                other => {
                    if let Some(n) = sym_output_name(other) {
                        gb.getitem(idx, 0, Some(&n), &meta);
                    }
                }
            }
            return;
        }
        if outs.len() == 1 {
            match &outs[0] {
                Argument::AsTensor(t) => return gb.sync(&t.name, idx),
                Argument::AsNone(_) => {
                    let name = gb
                        .ns
                        .create_name(&format!("{}_unused", target_to_str(target)));
                    gb.nodes[idx].name = name;
                    return;
                }
                Argument::AsTensors(ts) => {
                    let inner: Vec<Argument> =
                        ts.iter().map(|t| Argument::AsTensor(t.clone())).collect();
                    return gb.getitems(idx, &inner, &meta);
                }
                other => {
                    if let Some(n) = sym_output_name(other) {
                        return gb.sync(&n, idx);
                    }
                }
            }
        }
        gb.getitems(idx, outs, &meta);
    }
}

fn placeholder(name: &str) -> FxNode {
    FxNode {
        name: String::new(),
        op: Op::Placeholder,
        target: name.to_string(),
        args: vec![],
        kwargs: vec![],
        annotation: None,
        stack_trace: None,
        custom: None,
    }
}

fn sym_output_name(a: &Argument) -> Option<String> {
    match a {
        Argument::AsSymInt(SymIntArgument::AsName(n))
        | Argument::AsSymBool(SymBoolArgument::AsName(n))
        | Argument::AsSymFloat(SymFloatArgument::AsName(n)) => Some(n.clone()),
        _ => None,
    }
}

fn output_value(gb: &GraphBuild, o: &Argument) -> PyVal {
    match o {
        Argument::AsTensor(t) => gb.node_ref(&t.name),
        Argument::AsSymInt(s) => gb.sym_int_arg(s),
        Argument::AsSymBool(SymBoolArgument::AsName(n))
        | Argument::AsSymFloat(SymFloatArgument::AsName(n)) => gb.node_ref(n),
        Argument::AsSymBool(SymBoolArgument::AsBool(b)) => PyVal::Bool(*b),
        Argument::AsSymFloat(SymFloatArgument::AsFloat(f)) => PyVal::Float(f.0),
        Argument::AsNone(_) => PyVal::None,
        Argument::AsInt(i) => PyVal::Int(*i),
        Argument::AsFloat(f) => PyVal::Float(f.0),
        Argument::AsBool(b) => PyVal::Bool(*b),
        Argument::AsString(s) => PyVal::Str(s.clone()),
        Argument::AsCustomObj(c) => gb.node_ref(&c.name),
        Argument::AsTensors(ts) => PyVal::List(ts.iter().map(|t| gb.node_ref(&t.name)).collect()),
        other => PyVal::Raw(format!("{other:?}")),
    }
}

/// The name PyTorch's `InputSpec` prints (a specialized constant input prints its own name).
fn input_spec_name(s: &InputSpec) -> String {
    match s {
        InputSpec::ConstantInput(c) => c.name.clone(),
        other => other.value_name().unwrap_or_default().to_string(),
    }
}

/// The name PyTorch's `ArgumentSpec` has for a signature argument (`""` for constants).
fn argument_spec_name(a: &Argument) -> String {
    a.value_name().unwrap_or_default().to_string()
}

fn hoo_inputs(
    gb: &mut GraphBuild,
    node: &Node,
    meta: &Meta,
    b: &Builder,
) -> (Vec<PyVal>, Vec<(String, PyVal)>) {
    let mut args = vec![];
    let mut kwargs = vec![];
    for i in &node.inputs {
        let v = gb.input(&i.arg, meta, b);
        if i.kind == Some(ArgumentKind::Positional) || i.name.is_empty() {
            args.push(v);
        } else {
            kwargs.push((i.name.clone(), v));
        }
    }
    (args, kwargs)
}

/// The deserializer's `deserialize_inputs`: positional and keyword arguments by their recorded kind,
/// falling back to the op's schema (from the registry) for files without kinds.
fn op_inputs(
    gb: &mut GraphBuild,
    node: &Node,
    meta: &Meta,
    b: &Builder,
) -> (Vec<PyVal>, Vec<(String, PyVal)>) {
    let schema = node
        .target
        .strip_prefix("torch.ops.")
        .and_then(|name| oxport_core::ops::registry().get(name).ok())
        .map(|op| &op.schema);
    let mut args = vec![];
    let mut kwargs = vec![];
    for i in &node.inputs {
        let v = gb.input(&i.arg, meta, b);
        let keyword_ok = !PY_KEYWORDS.contains(&i.name.as_str());
        match i.kind {
            Some(ArgumentKind::Positional) => args.push(v),
            Some(ArgumentKind::Keyword) if keyword_ok => kwargs.push((i.name.clone(), v)),
            _ => {
                let sa = schema.and_then(|s| s.arguments.iter().find(|a| a.name == i.name));
                let positional = match sa {
                    Some(a) => (a.default.is_none() && !a.kwarg_only) || !keyword_ok,
                    None => true,
                };
                if positional {
                    args.push(v)
                } else {
                    kwargs.push((i.name.clone(), v))
                }
            }
        }
    }
    (args, kwargs)
}

fn repr(v: &PyVal, nodes: &[FxNode]) -> String {
    match v {
        PyVal::Node(i) => nodes[*i].name.clone(),
        PyVal::None => "None".into(),
        PyVal::Bool(b) => if *b { "True" } else { "False" }.into(),
        PyVal::Int(i) => i.to_string(),
        PyVal::Float(f) => py_float(*f),
        PyVal::Str(s) => py_repr_str(s),
        PyVal::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|x| repr(x, nodes))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        PyVal::Tuple(items) if items.len() == 1 => format!("({},)", repr(&items[0], nodes)),
        PyVal::Tuple(items) => format!(
            "({})",
            items
                .iter()
                .map(|x| repr(x, nodes))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        PyVal::Dict(items) => format!(
            "{{{}}}",
            items
                .iter()
                .map(|(k, x)| format!("{}: {}", py_repr_str(k), repr(x, nodes)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        PyVal::Raw(s) => s.clone(),
    }
}

fn collect_nodes(v: &PyVal, out: &mut Vec<usize>) {
    match v {
        PyVal::Node(i) if !out.contains(i) => out.push(*i),
        PyVal::List(items) | PyVal::Tuple(items) => {
            items.iter().for_each(|x| collect_nodes(x, out))
        }
        PyVal::Dict(items) => items.iter().for_each(|(_, x)| collect_nodes(x, out)),
        _ => {}
    }
}

/// `_parse_stack_trace(...).get_summary_str()`: the innermost `File "...", line N, in f` frame.
fn stack_summary(trace: &str) -> Option<String> {
    let lines: Vec<&str> = trace.trim().split('\n').collect();
    if lines.len() < 2 {
        return None;
    }
    for idx in (0..lines.len() - 1).rev() {
        let line = lines[idx].trim();
        let Some(rest) = line.strip_prefix("File \"") else {
            continue;
        };
        let Some(q) = rest.find("\", line ") else {
            continue;
        };
        let file = &rest[..q];
        let after = &rest[q + "\", line ".len()..];
        let Some(comma) = after.find(", in ") else {
            continue;
        };
        let lineno = &after[..comma];
        if lineno.is_empty() || !lineno.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let name = &after[comma + ", in ".len()..];
        if file.is_empty() || name.is_empty() {
            continue;
        }
        let code = lines[idx + 1].trim();
        return Some(format!("File: {file}:{lineno} in {name}, code: {code}"));
    }
    None
}

/// `CodeGen._gen_python_code` + `print_readable` for one module (recursing into children).
fn print_readable(m: &FxModule, module_name: &str) -> String {
    // Codegen names every node again through a fresh namespace (`node_repr` in `Graph.python_code`),
    // pre-filled with FX's custom builtins: a value called `input` prints as `input_1`.
    let mut ns = Namespace::default();
    for builtin in [
        "inf",
        "nan",
        "NoneType",
        "torch",
        "device",
        "fx_pytree",
        "pytree",
    ] {
        ns.used.insert(builtin.to_string());
        ns.base_count.insert(builtin.to_string(), 0);
    }
    let mut renamed = m.nodes.clone();
    for n in renamed.iter_mut() {
        n.name = ns.create_name(&n.name);
    }
    let nodes = &renamed;
    // Inputs and users of every node.
    let inputs: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            let mut v = vec![];
            n.args.iter().for_each(|a| collect_nodes(a, &mut v));
            n.kwargs.iter().for_each(|(_, a)| collect_nodes(a, &mut v));
            v
        })
        .collect();
    let mut has_users = vec![false; nodes.len()];
    for ins in &inputs {
        for &i in ins {
            has_users[i] = true;
        }
    }
    let mut last_use_seen = vec![false; nodes.len()];
    let mut user_to_last_uses: Vec<Vec<usize>> = vec![vec![]; nodes.len()];
    for (user, ins) in inputs.iter().enumerate().rev() {
        for &i in ins {
            if !last_use_seen[i] {
                last_use_seen[i] = true;
                user_to_last_uses[user].push(i);
            }
        }
    }

    let mut free_vars = vec!["self".to_string()];
    let mut body = String::new();
    let mut prev_summary: Option<String> = None;
    for (i, n) in nodes.iter().enumerate() {
        if !matches!(n.op, Op::Placeholder | Op::Output) {
            let trace = n.stack_trace.as_deref().and_then(stack_summary);
            let trace = trace.unwrap_or_else(|| "No stacktrace found for following nodes".into());
            let annotation = match &n.custom {
                Some(c) => format!(" Annotation: {}", custom_annotation(c)),
                None => String::new(),
            };
            let summary = format!("\n#{annotation} {trace}\n");
            if prev_summary.as_ref() != Some(&summary) {
                body.push_str(&summary);
                prev_summary = Some(summary);
            }
        }
        let ann = n
            .annotation
            .as_ref()
            .map(|a| format!(": \"{a}\""))
            .unwrap_or_default();
        match n.op {
            Op::Placeholder => {
                free_vars.push(format!("{}{ann}", n.target));
                if n.target != n.name {
                    body.push_str(&format!("{} = {}\n", n.name, n.target));
                }
                continue;
            }
            Op::CallFunction => {
                let args: Vec<String> = n.args.iter().map(|a| repr(a, nodes)).collect();
                if let Some(fmt) = magic_method(&n.target) {
                    let mut s = fmt.to_string();
                    for a in &args {
                        s = s.replacen("{}", a, 1);
                    }
                    body.push_str(&format!("{}{ann} = {s}", n.name));
                } else {
                    let mut all = args;
                    all.extend(
                        n.kwargs
                            .iter()
                            .map(|(k, v)| format!("{k} = {}", repr(v, nodes))),
                    );
                    // A function from outside torch is a global of the generated code named after its
                    // qualified name (`math.trunc` -> `math_trunc`), as FX's `add_global` names it.
                    let callee = if n.target.starts_with("torch") {
                        n.target.clone()
                    } else {
                        n.target.replace('.', "_")
                    };
                    body.push_str(&format!("{}{ann} = {callee}({})", n.name, all.join(", ")));
                }
            }
            Op::GetAttr => {
                body.push_str(&format!("{}{ann} = self.{}", n.name, attr_path(&n.target)))
            }
            Op::Output => {
                body.push_str(&format!("return {}", repr(&n.args[0], nodes)));
                body.push('\n');
                continue;
            }
        }
        // delete_unused_values
        let mut to_delete = user_to_last_uses[i].clone();
        if !has_users[i] {
            to_delete.push(i);
        }
        if to_delete.is_empty() {
            body.push('\n');
        } else {
            let names: Vec<&str> = to_delete.iter().map(|&j| nodes[j].name.as_str()).collect();
            body.push_str(&format!(";  {} = None\n", names.join(" = ")));
        }
    }
    if body.is_empty() {
        body.push_str("pass\n");
    }
    let code = body.trim_start_matches('\n');
    let code: Vec<String> = code.split('\n').map(|l| format!("    {l}")).collect();
    let fn_code = format!(
        "def forward({}):\n{}",
        free_vars.join(", "),
        code.join("\n")
    );
    let module_code = add_indent(
        &format!("class {module_name}(torch.nn.Module):\n{fn_code}"),
        4,
    );
    let mut subs = vec![String::new()];
    for (name, child) in &m.children {
        subs.push(print_readable(child, name));
    }
    let sub_code = add_indent(&subs.join("\n"), 4);
    module_code + &sub_code
}

/// `_format_target(root, "a.b")`.
fn attr_path(target: &str) -> String {
    target.split('.').fold(String::new(), |acc, e| {
        let is_ident = !e.is_empty()
            && !e.starts_with(|c: char| c.is_ascii_digit())
            && e.chars().all(|c| c.is_alphanumeric() || c == '_');
        if acc.is_empty() {
            e.to_string()
        } else if is_ident {
            format!("{acc}.{e}")
        } else {
            format!("getattr({acc}, \"{e}\")")
        }
    })
}

/// The ` Annotation: {...}` of nodes with `custom` metadata (values truncated at 40 characters).
fn custom_annotation(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let s = py_json_str(v);
                    let shown = if s.chars().count() > 40 {
                        py_repr_str(&format!("{}...", s.chars().take(40).collect::<String>()))
                    } else {
                        py_json_repr(v)
                    };
                    format!("{}: {}", py_repr_str(k), shown)
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => json.to_string(),
    }
}

fn py_json_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => py_json_repr(other),
    }
}

fn py_json_repr(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => py_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => py_repr_str(s),
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(py_json_repr).collect::<Vec<_>>().join(", ")
        ),
        serde_json::Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_json_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `torch.nn.modules.module._addindent`: indents every line but the first; blank lines stay empty.
fn add_indent(s: &str, n: usize) -> String {
    let mut lines = s.split('\n');
    let first = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        return s.to_string();
    }
    let pad = " ".repeat(n);
    let rest: Vec<String> = rest
        .iter()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect();
    format!("{first}\n{}", rest.join("\n"))
}

fn input_spec_str(s: &InputSpec) -> String {
    let name = input_spec_name(s);
    match s {
        InputSpec::UserInput(_) | InputSpec::ConstantInput(_) => format!("{name}: USER_INPUT"),
        InputSpec::Parameter(p) => format!("{name}: PARAMETER target='{}'", p.parameter_name),
        InputSpec::Buffer(b) => format!(
            "{name}: BUFFER target='{}' persistent={}",
            b.buffer_name,
            if b.persistent { "True" } else { "False" }
        ),
        InputSpec::TensorConstant(c) => format!(
            "{name}: CONSTANT_TENSOR target='{}'",
            c.tensor_constant_name
        ),
        InputSpec::CustomObj(c) => format!("{name}: CUSTOM_OBJ target='{}'", c.custom_obj_name),
        InputSpec::Token(_) => format!("{name}: TOKEN"),
    }
}

fn output_spec_str(s: &OutputSpec) -> String {
    match s {
        OutputSpec::UserOutput(u) => format!("{}: USER_OUTPUT", argument_spec_name(&u.arg)),
        OutputSpec::LossOutput(l) => format!("{}: LOSS_OUTPUT", l.arg.name),
        OutputSpec::BufferMutation(b) => {
            format!("{}: BUFFER_MUTATION target='{}'", b.arg.name, b.buffer_name)
        }
        OutputSpec::ParameterMutation(p) => {
            format!(
                "{}: PARAMETER_MUTATION target='{}'",
                p.arg.name, p.parameter_name
            )
        }
        OutputSpec::GradientToParameter(g) => {
            format!(
                "{}: GRADIENT_TO_PARAMETER target='{}'",
                g.arg.name, g.parameter_name
            )
        }
        OutputSpec::GradientToUserInput(g) => {
            format!(
                "{}: GRADIENT_TO_USER_INPUT target='{}'",
                g.arg.name, g.user_input_name
            )
        }
        OutputSpec::UserInputMutation(u) => {
            format!(
                "{}: USER_INPUT_MUTATION target='{}'",
                u.arg.name, u.user_input_name
            )
        }
        OutputSpec::Token(t) => format!("{}: TOKEN", t.arg.name),
    }
}

/// Free symbols of an `expr_str`.
fn free_symbols(expr: &str, out: &mut HashSet<String>) {
    let mut names = vec![];
    match crate::sympy::parse(expr) {
        Some(e) => e.free_symbols(&mut names),
        None => names.push(expr.to_string()),
    }
    out.extend(names);
}

fn graph_symbols(g: &Graph, out: &mut HashSet<String>) {
    let mut add = |s: &SymInt| {
        if let SymInt::AsExpr(e) = s {
            free_symbols(&e.expr_str, out)
        }
    };
    for (_, m) in g.tensor_values.iter() {
        m.sizes.iter().for_each(&mut add);
        m.strides.iter().for_each(&mut add);
        add(&m.storage_offset);
    }
    for (_, s) in g.sym_int_values.iter() {
        add(s);
    }
    for (_, s) in g.sym_bool_values.iter() {
        if let SymBool::AsExpr(e) = s {
            free_symbols(&e.expr_str, out)
        }
    }
    for (_, s) in g.sym_float_values.iter() {
        if let SymFloat::AsExpr(e) = s {
            free_symbols(&e.expr_str, out)
        }
    }
    for n in &g.nodes {
        for i in &n.inputs {
            if let Argument::AsGraph(sub) = &i.arg {
                graph_symbols(&sub.graph, out);
            }
        }
    }
}

/// `ValueRanges.__repr__` bounds.
fn bound(v: Option<i64>, lower: bool) -> String {
    match v {
        Some(x) => x.to_string(),
        None if lower => "-int_oo".into(),
        None => "int_oo".into(),
    }
}

impl ExportedProgram {
    /// The program text of `print(ep)` in PyTorch: same as `to_string()`.
    pub fn graph_module_code(&self) -> String {
        let b = Builder {
            signature: Some(&self.graph_module.signature),
        };
        let m = b.build(&self.graph_module.graph, b.signature);
        print_readable(&m, "GraphModule")
    }
}

impl fmt::Display for ExportedProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gm = self.graph_module_code().replace('\n', "\n    ");
        let sig = &self.graph_module.signature;
        let inputs: Vec<String> = sig.input_specs.iter().map(input_spec_str).collect();
        let outputs: Vec<String> = sig.output_specs.iter().map(output_spec_str).collect();
        let sig_text = format!(
            "\n# inputs\n{}\n\n# outputs\n{}\n",
            inputs.join("\n"),
            outputs.join("\n")
        )
        .replace('\n', "\n    ");
        let mut symbols = HashSet::new();
        graph_symbols(&self.graph_module.graph, &mut symbols);
        let ranges: Vec<String> = self
            .range_constraints
            .iter()
            .filter(|(k, _)| symbols.contains(*k))
            .map(|(k, r)| {
                format!(
                    "{k}: VR[{}, {}]",
                    bound(r.min_val, true),
                    bound(r.max_val, false)
                )
            })
            .collect();
        write!(
            f,
            "ExportedProgram:\n    {gm}\nGraph signature:{sig_text}\nRange constraints: {{{}}}\n",
            ranges.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_string_repr() {
        assert_eq!(py_repr_str("tanh"), "'tanh'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a\nb"), "'a\\nb'");
    }

    #[test]
    fn stack_summary_takes_innermost_frame() {
        let t =
            "File \"a.py\", line 3, in f\n    g()\nFile \"b.py\", line 9, in g\n    return x + 1";
        assert_eq!(
            stack_summary(t).unwrap(),
            "File: b.py:9 in g, code: return x + 1"
        );
    }
}

//! The execution plan: built once per program, run many times.
//!
//! Every graph value gets a slot. Each node becomes a [`Step`]: an ATen op with its arguments bound to
//! the op's schema at plan time (defaults filled, coercions done; at run time only tensors and symbolic
//! ints are filled in — no name lookups), a symbolic-int operation, a runtime check, or a higher-order
//! op with nested plans. After each step the slots whose last use it was are freed.
use crate::compile::memory::{Arena, ArenaPool, BufId, MemoryPlan};
use crate::compile::{MemoryStats, PlanOptions};
use crate::error::{Error, Result};
use crate::guards::Guard;
use crate::pytree::{PyValue, TreeSpec};
use crate::Value;
use oxport_core::ops::value::TensorMeta as CoreMeta;
use oxport_core::ops::value::{Layout as CoreLayout, MemoryFormat as CoreMemoryFormat};
use oxport_core::ops::Kernel;
use oxport_core::ops::{registry, Args, OpDef};
use oxport_core::sym::{floor_div, py_mod};
use oxport_core::{DType, Scalar, SymInt, Tensor};
use oxport_ir::schema::SymInt as IrSymInt;
use oxport_ir::schema::*;
use oxport_ir::{sympy, ExportedProgram};
use std::collections::HashMap;

pub(crate) type Slot = usize;
type V<T> = oxport_core::ops::Value<T>;

/// Where a step reads a non-tensor operand.
#[derive(Debug, Clone)]
pub(crate) enum Src {
    Slot(Slot),
    Const(Value),
}

#[derive(Debug)]
pub(crate) enum OutBind {
    Skip,
    Slot(Slot),
    List(Vec<Slot>),
}

#[derive(Debug)]
pub(crate) struct OpStep {
    pub def: &'static OpDef,
    /// Arguments bound to the schema; tensors are slot numbers.
    pub template: Vec<V<Slot>>,
    /// (argument, list position, slot): symbolic ints filled in at run time.
    pub int_patches: Vec<(usize, Option<usize>, Slot)>,
    /// (argument, slot): symbolic floats filled in at run time.
    pub float_patches: Vec<(usize, Slot)>,
    pub outs: Vec<OutBind>,
    /// The outputs' metadata, when known at plan time ([`crate::compile::shapes`]).
    pub static_outs: Option<StaticOuts>,
}

/// A step's outputs known at plan time.
#[derive(Debug)]
pub(crate) struct StaticOuts {
    /// What the op's meta function returns.
    pub metas: Vec<V<CoreMeta>>,
    /// (sizes, strides) of each output tensor, flattened.
    pub geoms: Vec<(Vec<usize>, Vec<usize>)>,
    /// For an out kernel, the arena buffer of each output tensor (`None`: freshly allocated).
    pub bufs: Vec<Option<BufId>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SymOp {
    Add,
    Sub,
    Mul,
    FloorDiv,
    TrueDiv,
    Mod,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Neg,
    Pos,
    And,
    Or,
    Not,
    ToInt,
    ToFloat,
    Sqrt,
    Max,
    Min,
    Ite,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Op(Box<OpStep>),
    /// A kernel the compile stage prepared (fused, folded, packed): [`crate::compile::Prepared`].
    Prepared(Box<crate::compile::Prepared>),
    /// A view op restriding its input directly ([`crate::compile::views`]).
    View(Box<crate::compile::views::ViewStep>),
    Sym {
        op: SymOp,
        args: Vec<Src>,
        out: Slot,
    },
    SymSize {
        t: Slot,
        dim: i64,
        what: SizeQuery,
        out: Slot,
    },
    Item {
        t: Slot,
        out: Slot,
    },
    Assert {
        cond: Src,
        msg: String,
    },
    Constrain {
        v: Src,
        min: Option<i64>,
        max: Option<i64>,
    },
    Noop,
    Cond {
        pred: Src,
        branches: Box<[GraphPlan; 2]>,
        operands: Vec<Slot>,
        outs: Vec<Slot>,
    },
    /// A subgraph run once on operands (`wrap_with_autocast` with autocast disabled).
    Call {
        body: Box<GraphPlan>,
        operands: Vec<Slot>,
        outs: Vec<Slot>,
    },
    Map {
        body: Box<GraphPlan>,
        xs: Vec<Slot>,
        args: Vec<Slot>,
        outs: Vec<Slot>,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SizeQuery {
    Size,
    Stride,
    Numel,
    StorageOffset,
}

#[derive(Debug)]
pub(crate) struct Step {
    pub node: String,
    pub target: String,
    pub kind: Kind,
    pub free: Vec<Slot>,
}

/// The plan of one graph (the program's, or a nested cond/map body).
#[derive(Debug)]
pub(crate) struct GraphPlan {
    pub n_slots: usize,
    pub inputs: Vec<Slot>,
    pub steps: Vec<Step>,
    pub outputs: Vec<Src>,
    /// Stands in for a missing tensor while an error is reported (made once, not per call).
    empty: Tensor,
    /// The buffers of planned outputs ([`crate::compile::memory`]).
    pub memory: MemoryPlan,
    /// Values computed at plan time ([`crate::compile::fold`]), put in their slots at each call.
    pub consts: Vec<(Slot, Value)>,
    arenas: ArenaPool,
    /// Whether a call may have work big enough to split between threads (`false` when every
    /// value is known to be small): only then does it run in the pool with its workers kept awake
    /// ([`crate::threads`]), which costs ~10 µs per call.
    pub parallel_work: bool,
}

struct Builder {
    slots: HashMap<String, Slot>,
    n: usize,
}

impl Builder {
    fn define(&mut self, name: &str) -> Slot {
        let s = self.n;
        self.n += 1;
        self.slots.insert(name.to_string(), s);
        s
    }
    fn get(&self, name: &str) -> std::result::Result<Slot, String> {
        self.slots
            .get(name)
            .copied()
            .ok_or_else(|| format!("value '{name}' is not defined"))
    }
}

const SLOT_PREFIX: &str = "__oxport_slot_";

fn unsupported(node: &Node, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        node: node.name.clone().unwrap_or_default(),
        target: node.target.clone(),
        reason: reason.into(),
    }
}

/// Why a node's op cannot run: an ATen op oxport lacks, or a custom op nobody registered — then how to
/// register it, with a schema guessed from the node (a `.pt2` does not store custom ops' schemas).
fn missing_op_reason(node: &Node, op_name: &str) -> String {
    let mut parts = op_name.splitn(3, '.');
    let (ns, base, overload) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("default"),
    );
    if matches!(ns, "aten" | "prims" | "prim") {
        return format!(
            "'{op_name}' is not in oxport's op registry (an ATen op oxport does not implement yet)"
        );
    }
    let overload = if overload == "default" {
        String::new()
    } else {
        format!(".{overload}")
    };
    let args: Vec<String> = node
        .inputs
        .iter()
        .map(|i| format!("{} {}", schema_type_of(&i.arg), i.name))
        .collect();
    let rets: Vec<&str> = node.outputs.iter().map(schema_type_of).collect();
    let rets = match rets.as_slice() {
        [one] => one.to_string(),
        many => format!("({})", many.join(", ")),
    };
    format!(
        "'{op_name}' is not in oxport's op registry: it is a custom op; register it before planning with \
         oxport_core::ops::register_custom_op(\"{ns}::{base}{overload}({}) -> {rets}\", meta, kernel) \
         (a schema guessed from this call; use the op's real one, with its defaults)",
        args.join(", ")
    )
}

/// The schema type an argument's value suggests (`Tensor`, `int[]`, ...).
fn schema_type_of(a: &Argument) -> &'static str {
    use Argument as A;
    match a {
        A::AsTensor(_) => "Tensor",
        A::AsTensors(_) => "Tensor[]",
        A::AsOptionalTensor(_) | A::AsNone(_) => "Tensor?",
        A::AsOptionalTensors(_) => "Tensor?[]",
        A::AsInt(_) => "int",
        A::AsInts(_) => "int[]",
        A::AsSymInt(_) => "SymInt",
        A::AsSymInts(_) => "SymInt[]",
        A::AsFloat(_) | A::AsSymFloat(_) => "float",
        A::AsFloats(_) | A::AsSymFloats(_) => "float[]",
        A::AsBool(_) | A::AsSymBool(_) => "bool",
        A::AsBools(_) | A::AsSymBools(_) => "bool[]",
        A::AsString(_) => "str",
        A::AsStrings(_) => "str[]",
        A::AsScalarType(_) => "ScalarType",
        A::AsMemoryFormat(_) => "MemoryFormat",
        A::AsLayout(_) => "Layout",
        A::AsDevice(_) => "Device",
        _ => "Any",
    }
}

fn core_dtype(t: ScalarType) -> std::result::Result<DType, String> {
    t.dtype()
        .ok_or_else(|| format!("dtype {} is not supported", t.python_name()))
}

/// A schema argument value with tensors as slots and symbolic ints as placeholder symbols.
fn op_value(b: &Builder, a: &Argument) -> std::result::Result<V<Slot>, String> {
    argument_value(a, &mut |n: &str| b.get(n), &mut |s: &SymIntArgument| {
        Ok(match s {
            SymIntArgument::AsInt(i) => SymInt::Int(*i),
            SymIntArgument::AsName(n) => SymInt::symbol(&format!("{SLOT_PREFIX}{}", b.get(n)?), 1),
        })
    })
}

/// A node argument as a core [`Value`](oxport_core::ops::Value), with the tensors it names looked up
/// by `tensor` and its symbolic ints by `symint`.
pub fn argument_value<T>(
    a: &Argument,
    tensor: &mut dyn FnMut(&str) -> std::result::Result<T, String>,
    symint: &mut dyn FnMut(&SymIntArgument) -> std::result::Result<SymInt, String>,
) -> std::result::Result<V<T>, String> {
    Ok(match a {
        Argument::AsNone(_) => V::None,
        Argument::AsTensor(t) => V::Tensor(tensor(&t.name)?),
        Argument::AsTensors(ts) => V::Tensors(
            ts.iter()
                .map(|t| tensor(&t.name))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Argument::AsOptionalTensors(ts) => V::OptTensors(
            ts.iter()
                .map(|t| match t {
                    OptionalTensorArgument::AsTensor(t) => tensor(&t.name).map(Some),
                    OptionalTensorArgument::AsNone(_) => Ok(None),
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        Argument::AsOptionalTensor(OptionalTensorArgument::AsTensor(t)) => {
            V::Tensor(tensor(&t.name)?)
        }
        Argument::AsOptionalTensor(OptionalTensorArgument::AsNone(_)) => V::None,
        Argument::AsInt(i) => V::Int(SymInt::Int(*i)),
        Argument::AsInts(v) => V::Ints(v.iter().map(|&i| SymInt::Int(i)).collect()),
        Argument::AsSymInt(s) => V::Int(symint(s)?),
        Argument::AsSymInts(v) => V::Ints(
            v.iter()
                .map(&mut *symint)
                .collect::<std::result::Result<_, _>>()?,
        ),
        Argument::AsFloat(f) => V::Float(f.0),
        Argument::AsFloats(v) => V::Floats(v.iter().map(|f| f.0).collect()),
        Argument::AsSymFloat(SymFloatArgument::AsFloat(f)) => V::Float(f.0),
        Argument::AsBool(x) => V::Bool(*x),
        Argument::AsSymBool(SymBoolArgument::AsBool(x)) => V::Bool(*x),
        Argument::AsBools(v) => V::Bools(v.clone()),
        Argument::AsString(s) => V::Str(s.clone()),
        Argument::AsScalarType(t) => V::ScalarType(core_dtype(*t)?),
        Argument::AsLayout(Layout::Strided) => V::Layout(CoreLayout::Strided),
        Argument::AsMemoryFormat(m) => V::MemoryFormat(match m {
            MemoryFormat::ContiguousFormat => CoreMemoryFormat::ContiguousFormat,
            MemoryFormat::ChannelsLast => CoreMemoryFormat::ChannelsLast,
            MemoryFormat::ChannelsLast3d => CoreMemoryFormat::ChannelsLast3d,
            MemoryFormat::PreserveFormat => CoreMemoryFormat::PreserveFormat,
            MemoryFormat::Unknown => return Err("unknown memory format".into()),
        }),
        // oxport computes on the CPU: a program exported on CUDA (or any device) runs here as is.
        Argument::AsDevice(_) => V::Device("cpu".into()),
        other => {
            return Err(format!(
                "argument {other:?} is not supported by the runtime"
            ))
        }
    })
}

fn src(b: &Builder, a: &Argument) -> std::result::Result<Src, String> {
    Ok(match a {
        Argument::AsSymInt(SymIntArgument::AsName(n))
        | Argument::AsSymBool(SymBoolArgument::AsName(n))
        | Argument::AsSymFloat(SymFloatArgument::AsName(n))
        | Argument::AsTensor(TensorArgument { name: n }) => Src::Slot(b.get(n)?),
        Argument::AsSymInt(SymIntArgument::AsInt(i)) | Argument::AsInt(i) => {
            Src::Const(V::Int(SymInt::Int(*i)))
        }
        Argument::AsSymBool(SymBoolArgument::AsBool(x)) | Argument::AsBool(x) => {
            Src::Const(V::Bool(*x))
        }
        Argument::AsSymFloat(SymFloatArgument::AsFloat(f)) | Argument::AsFloat(f) => {
            Src::Const(V::Float(f.0))
        }
        Argument::AsNone(_) => Src::Const(V::None),
        other => return Err(format!("operand {other:?} is not supported")),
    })
}

fn sym_op(target: &str) -> Option<SymOp> {
    Some(match target {
        "_operator.add" => SymOp::Add,
        "_operator.sub" => SymOp::Sub,
        "_operator.mul" => SymOp::Mul,
        "_operator.floordiv" => SymOp::FloorDiv,
        "_operator.truediv" => SymOp::TrueDiv,
        "_operator.mod" => SymOp::Mod,
        "_operator.pow" => SymOp::Pow,
        "_operator.eq" => SymOp::Eq,
        "_operator.ne" => SymOp::Ne,
        "_operator.lt" => SymOp::Lt,
        "_operator.le" => SymOp::Le,
        "_operator.gt" => SymOp::Gt,
        "_operator.ge" => SymOp::Ge,
        "_operator.neg" => SymOp::Neg,
        "_operator.pos" => SymOp::Pos,
        "_operator.and_" => SymOp::And,
        "_operator.or_" => SymOp::Or,
        "torch.sym_not" => SymOp::Not,
        "torch.sym_int" | "math.trunc" => SymOp::ToInt,
        "torch.sym_float" => SymOp::ToFloat,
        "torch._sym_sqrt" | "torch.sym_sqrt" => SymOp::Sqrt,
        "torch.sym_max" => SymOp::Max,
        "torch.sym_min" => SymOp::Min,
        "torch.sym_ite" => SymOp::Ite,
        _ => return None,
    })
}

fn single_out(b: &mut Builder, node: &Node) -> Result<Slot> {
    let name = match node.outputs.as_slice() {
        [Argument::AsSymInt(SymIntArgument::AsName(n))]
        | [Argument::AsSymBool(SymBoolArgument::AsName(n))]
        | [Argument::AsSymFloat(SymFloatArgument::AsName(n))]
        | [Argument::AsTensor(TensorArgument { name: n })] => n,
        _ => return Err(unsupported(node, "expected one named output")),
    };
    Ok(b.define(name))
}

fn input<'a>(node: &'a Node, name: &str, pos: usize) -> Option<&'a Argument> {
    node.inputs
        .iter()
        .find(|i| i.name == name)
        .or_else(|| node.inputs.get(pos))
        .map(|i| &i.arg)
}

fn graph_plan(g: &Graph) -> Result<GraphPlan> {
    let mut b = Builder {
        slots: HashMap::new(),
        n: 0,
    };
    let mut inputs = vec![];
    for a in &g.inputs {
        let name = match a {
            Argument::AsTensor(t) => t.name.clone(),
            Argument::AsSymInt(SymIntArgument::AsName(n)) => n.clone(),
            other => format!("__const_input_{}_{:?}", inputs.len(), other),
        };
        inputs.push(b.define(&name));
    }
    let mut steps = vec![];
    for node in &g.nodes {
        let kind = plan_node(&mut b, node)?;
        steps.push(Step {
            node: node.name.clone().unwrap_or_default(),
            target: node.target.clone(),
            kind,
            free: vec![],
        });
    }
    let outputs = g
        .outputs
        .iter()
        .map(|o| src(&b, o))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Unsupported {
            node: "output".into(),
            target: "output".into(),
            reason: e,
        })?;
    let mut plan = GraphPlan {
        n_slots: b.n,
        inputs,
        steps,
        outputs,
        empty: Tensor::fake(DType::F32, &[0], &[1], 0),
        memory: MemoryPlan::default(),
        consts: vec![],
        arenas: ArenaPool::default(),
        parallel_work: true,
    };
    plan_frees(&mut plan);
    Ok(plan)
}

fn plan_node(b: &mut Builder, node: &Node) -> Result<Kind> {
    let t = node.target.as_str();
    let err = |e: String| unsupported(node, e);
    if let Some(op) = sym_op(t) {
        let args = node
            .inputs
            .iter()
            .map(|i| src(b, &i.arg))
            .collect::<std::result::Result<_, _>>()
            .map_err(err)?;
        let out = single_out(b, node)?;
        return Ok(Kind::Sym { op, args, out });
    }
    let size_query = match t {
        "torch.ops.aten.sym_size.int" => Some(SizeQuery::Size),
        "torch.ops.aten.sym_stride.int" => Some(SizeQuery::Stride),
        "torch.ops.aten.sym_numel.default" => Some(SizeQuery::Numel),
        "torch.ops.aten.sym_storage_offset.default" => Some(SizeQuery::StorageOffset),
        _ => None,
    };
    if let Some(what) = size_query {
        let tensor = match input(node, "self", 0) {
            Some(Argument::AsTensor(x)) => b.get(&x.name).map_err(err)?,
            _ => return Err(unsupported(node, "expected a tensor input")),
        };
        let dim = match input(node, "dim", 1) {
            Some(Argument::AsInt(d)) => *d,
            _ => 0,
        };
        let out = single_out(b, node)?;
        return Ok(Kind::SymSize {
            t: tensor,
            dim,
            what,
            out,
        });
    }
    match t {
        "torch.ops.aten.item.default" | "torch.ops.aten._local_scalar_dense.default" => {
            let tensor = match input(node, "self", 0) {
                Some(Argument::AsTensor(x)) => b.get(&x.name).map_err(err)?,
                _ => return Err(unsupported(node, "expected a tensor input")),
            };
            let out = single_out(b, node)?;
            return Ok(Kind::Item { t: tensor, out });
        }
        "torch.ops.aten._assert_scalar.default" => {
            let cond = src(
                b,
                input(node, "self", 0).ok_or_else(|| err("no condition".into()))?,
            )
            .map_err(err)?;
            let msg = match input(node, "assert_msg", 1) {
                Some(Argument::AsString(s)) => s.clone(),
                _ => "assertion failed".into(),
            };
            return Ok(Kind::Assert { cond, msg });
        }
        "torch.ops.aten.sym_constrain_range.default"
        | "torch.ops.aten.sym_constrain_range_for_size.default" => {
            let v = src(
                b,
                input(node, "size", 0).ok_or_else(|| err("no size".into()))?,
            )
            .map_err(err)?;
            let bound = |name: &str, pos: usize| match input(node, name, pos) {
                Some(Argument::AsInt(i)) => Some(*i),
                _ => None,
            };
            let min = bound("min", 1).or((t.ends_with("for_size.default")).then_some(0));
            return Ok(Kind::Constrain {
                v,
                min,
                max: bound("max", 2),
            });
        }
        "torch.ops.aten._assert_tensor_metadata.default" => return Ok(Kind::Noop),
        "torch.ops.higher_order.cond" => {
            let mut graphs = vec![];
            let mut rest = vec![];
            for i in &node.inputs {
                match &i.arg {
                    Argument::AsGraph(g) => graphs.push(graph_plan(&g.graph)?),
                    other => rest.push(other),
                }
            }
            let (Ok(branches), [pred, Argument::AsTensors(ops)]) =
                (<[GraphPlan; 2]>::try_from(graphs), rest.as_slice())
            else {
                return Err(unsupported(
                    node,
                    "expected cond(pred, true_fn, false_fn, operands)",
                ));
            };
            let pred = src(b, pred).map_err(err)?;
            let operands = ops
                .iter()
                .map(|o| b.get(&o.name))
                .collect::<std::result::Result<_, _>>()
                .map_err(err)?;
            let outs = tensor_outs(b, node)?;
            return Ok(Kind::Cond {
                pred,
                branches: Box::new(branches),
                operands,
                outs,
            });
        }
        "torch.ops.higher_order.wrap_with_autocast" => {
            // (device_type, dtype, enabled, cache_enabled, body, *operands): with autocast disabled
            // (`torch.autocast(..., enabled=False)`, how models keep a region in float32) the body runs
            // as written; enabled regions would change op dtypes, which the runtime does not model.
            let (mut body, mut operands, mut enabled) = (None, vec![], None);
            for (k, i) in node.inputs.iter().enumerate() {
                match &i.arg {
                    Argument::AsGraph(g) => body = Some(graph_plan(&g.graph)?),
                    Argument::AsTensor(t) => operands.push(b.get(&t.name).map_err(err)?),
                    Argument::AsBool(e) if k == 2 => enabled = Some(*e),
                    _ => {}
                }
            }
            let (Some(body), Some(false)) = (body, enabled) else {
                return Err(unsupported(
                    node,
                    "an enabled autocast region (the runtime runs ops in their declared dtypes only)",
                ));
            };
            let outs = tensor_outs(b, node)?;
            return Ok(Kind::Call {
                body: Box::new(body),
                operands,
                outs,
            });
        }
        "torch.ops.higher_order.map_impl" => {
            let mut body = None;
            let mut lists = vec![];
            for i in &node.inputs {
                match &i.arg {
                    Argument::AsGraph(g) => body = Some(graph_plan(&g.graph)?),
                    Argument::AsTensors(ts) => lists.push(
                        ts.iter()
                            .map(|t| b.get(&t.name))
                            .collect::<std::result::Result<Vec<_>, _>>()
                            .map_err(err)?,
                    ),
                    _ => return Err(unsupported(node, "unexpected map_impl input")),
                }
            }
            let (Some(body), [xs, args]) = (body, lists.as_slice()) else {
                return Err(unsupported(node, "expected map_impl(f, xs, args)"));
            };
            let (xs, args) = (xs.clone(), args.clone());
            let outs = tensor_outs(b, node)?;
            return Ok(Kind::Map {
                body: Box::new(body),
                xs,
                args,
                outs,
            });
        }
        _ => {}
    }
    let Some(op_name) = t.strip_prefix("torch.ops.") else {
        return Err(unsupported(node, "not an operator the runtime knows"));
    };
    let def = registry()
        .get(op_name)
        .map_err(|_| unsupported(node, missing_op_reason(node, op_name)))?;
    let mut positional = vec![];
    let mut kwargs = vec![];
    let mut n_syms = 0;
    // Symbolic floats from other nodes: (positional index or keyword, slot), bound as a placeholder float.
    let mut float_srcs: Vec<(std::result::Result<usize, String>, Slot)> = vec![];
    for i in &node.inputs {
        let v = match &i.arg {
            Argument::AsSymFloat(SymFloatArgument::AsName(n)) => {
                let slot = b.get(n).map_err(err)?;
                let at = if i.kind == Some(ArgumentKind::Keyword) {
                    Err(i.name.clone())
                } else {
                    Ok(positional.len())
                };
                float_srcs.push((at, slot));
                V::Float(0.0)
            }
            arg => op_value(b, arg).map_err(err)?,
        };
        n_syms += match &v {
            V::Int(s) if s.is_symbolic() => 1,
            V::Ints(v) => v.iter().filter(|s| s.is_symbolic()).count(),
            _ => 0,
        };
        if i.kind == Some(ArgumentKind::Keyword) {
            kwargs.push((i.name.clone(), v));
        } else {
            positional.push(v);
        }
    }
    let slot_of = |s: &SymInt| -> Option<Slot> {
        match s {
            SymInt::Sym(e) => match &**e {
                oxport_core::sym::SymExpr::Symbol { name, .. } => {
                    name.strip_prefix(SLOT_PREFIX)?.parse().ok()
                }
                _ => None,
            },
            SymInt::Int(_) => None,
        }
    };
    // A symbolic int passed for a Scalar or float parameter (`arange(s0)`, `full(.., s0 * 2)`, a scale
    // computed from sizes): binding turns it into a number, so note which argument it fed first.
    let mut scalar_slots: Vec<(usize, Slot)> = vec![];
    for (pi, v) in positional.iter().enumerate() {
        if let V::Int(s) = v {
            scalar_slots.extend(slot_of(s).map(|slot| (pi, slot)));
        }
    }
    for (name, v) in &kwargs {
        if let (V::Int(s), Some(ai)) = (v, def.schema.arg_index(name)) {
            scalar_slots.extend(slot_of(s).map(|slot| (ai, slot)));
        }
    }
    let args = Args::bind(&def.schema, positional, kwargs)
        .map_err(|e| unsupported(node, e.to_string()))?;
    let mut float_patches = vec![];
    for (at, slot) in float_srcs {
        let ai = match at {
            Ok(pi) => Some(pi),
            Err(name) => def.schema.arg_index(&name),
        };
        if let Some(ai) = ai {
            float_patches.push((ai, slot));
        }
    }
    let mut int_patches = vec![];
    for &(ai, slot) in &scalar_slots {
        if matches!(args.values.get(ai), Some(V::Scalar(_) | V::Float(_))) {
            int_patches.push((ai, None, slot));
        }
    }
    for (ai, v) in args.values.iter().enumerate() {
        match v {
            V::Int(s) => int_patches.extend(slot_of(s).map(|slot| (ai, None, slot))),
            V::Ints(list) => {
                for (j, s) in list.iter().enumerate() {
                    int_patches.extend(slot_of(s).map(|slot| (ai, Some(j), slot)));
                }
            }
            _ => {}
        }
    }
    if int_patches.len() != n_syms {
        return Err(unsupported(
            node,
            "a symbolic int is passed where the schema wants a non-int value",
        ));
    }
    let mut outs = vec![];
    for o in &node.outputs {
        outs.push(match o {
            Argument::AsTensor(x) => OutBind::Slot(b.define(&x.name)),
            Argument::AsTensors(xs) => {
                OutBind::List(xs.iter().map(|x| b.define(&x.name)).collect())
            }
            Argument::AsSymInt(SymIntArgument::AsName(n)) => OutBind::Slot(b.define(n)),
            Argument::AsNone(_) => OutBind::Skip,
            other => {
                return Err(unsupported(
                    node,
                    format!("output {other:?} is not supported"),
                ))
            }
        });
    }
    Ok(Kind::Op(Box::new(OpStep {
        def,
        template: args.values,
        int_patches,
        float_patches,
        outs,
        static_outs: None,
    })))
}

fn tensor_outs(b: &mut Builder, node: &Node) -> Result<Vec<Slot>> {
    node.outputs
        .iter()
        .map(|o| match o {
            Argument::AsTensor(x) => Ok(b.define(&x.name)),
            other => Err(unsupported(
                node,
                format!("output {other:?} is not supported"),
            )),
        })
        .collect()
}

/// Slots a step writes.
pub(crate) fn writes(kind: &Kind, out: &mut Vec<Slot>) {
    match kind {
        Kind::Op(op) => {
            for b in &op.outs {
                match b {
                    OutBind::Skip => {}
                    OutBind::Slot(s) => out.push(*s),
                    OutBind::List(ss) => out.extend(ss),
                }
            }
        }
        Kind::Sym { out: o, .. } | Kind::SymSize { out: o, .. } | Kind::Item { out: o, .. } => {
            out.push(*o)
        }
        Kind::Assert { .. } | Kind::Constrain { .. } | Kind::Noop => {}
        Kind::Cond { outs, .. } | Kind::Call { outs, .. } | Kind::Map { outs, .. } => {
            out.extend(outs)
        }
        Kind::Prepared(p) => out.push(p.out),
        Kind::View(v) => out.extend(v.outs.iter().map(|o| o.slot)),
    }
}

/// Slots each step reads.
pub(crate) fn reads(kind: &Kind, out: &mut Vec<Slot>) {
    let src = |s: &Src, out: &mut Vec<Slot>| {
        if let Src::Slot(x) = s {
            out.push(*x)
        }
    };
    match kind {
        Kind::Op(op) => {
            for v in &op.template {
                match v {
                    V::Tensor(s) => out.push(*s),
                    V::Tensors(v) => out.extend(v),
                    V::OptTensors(v) => out.extend(v.iter().flatten()),
                    _ => {}
                }
            }
            out.extend(op.int_patches.iter().map(|p| p.2));
            out.extend(op.float_patches.iter().map(|p| p.1));
        }
        Kind::Sym { args, .. } => args.iter().for_each(|a| src(a, out)),
        Kind::SymSize { t, .. } | Kind::Item { t, .. } => out.push(*t),
        Kind::Assert { cond, .. } => src(cond, out),
        Kind::Constrain { v, .. } => src(v, out),
        Kind::Noop => {}
        Kind::Cond { pred, operands, .. } => {
            src(pred, out);
            out.extend(operands);
        }
        Kind::Map { xs, args, .. } => {
            out.extend(xs);
            out.extend(args);
        }
        Kind::Call { operands, .. } => out.extend(operands),
        Kind::Prepared(p) => out.extend(&p.inputs),
        Kind::View(v) => out.push(v.input),
    }
}

/// Recomputes every step's `free` list (after a pass removed or replaced steps).
pub(crate) fn recompute_frees(plan: &mut GraphPlan) {
    for step in &mut plan.steps {
        step.free.clear();
    }
    plan_frees(plan);
}

fn plan_frees(plan: &mut GraphPlan) {
    let mut last: HashMap<Slot, usize> = HashMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let mut r = vec![];
        reads(&step.kind, &mut r);
        for s in r {
            last.insert(s, i);
        }
    }
    for o in &plan.outputs {
        if let Src::Slot(s) = o {
            last.remove(s);
        }
    }
    for (slot, i) in last {
        plan.steps[i].free.push(slot);
    }
}

fn get<'a>(slots: &'a [Value], s: &'a Src) -> &'a Value {
    match s {
        Src::Slot(i) => &slots[*i],
        Src::Const(v) => v,
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Num {
    I(i64),
    F(f64),
    B(bool),
}

pub(crate) fn num(v: &Value) -> Option<Num> {
    Some(match v {
        V::Int(s) => Num::I(s.as_int()?),
        V::Float(f) => Num::F(*f),
        V::Bool(b) => Num::B(*b),
        V::Scalar(Scalar::Int(i)) => Num::I(*i),
        V::Scalar(Scalar::Float(f)) => Num::F(*f),
        V::Scalar(Scalar::Bool(b)) => Num::B(*b),
        _ => return None,
    })
}

impl Num {
    pub(crate) fn f(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
            Num::B(b) => b as i64 as f64,
        }
    }
    pub(crate) fn i(self) -> Option<i64> {
        match self {
            Num::I(i) => Some(i),
            Num::B(b) => Some(b as i64),
            Num::F(_) => None,
        }
    }
    fn truthy(self) -> bool {
        match self {
            Num::I(i) => i != 0,
            Num::F(f) => f != 0.0,
            Num::B(b) => b,
        }
    }
}

/// Puts the symbolic int `n` an op argument was waiting for (at list position `j`) into it.
pub(crate) fn patch_int<T>(v: &mut V<T>, j: Option<usize>, n: i64) {
    match (v, j) {
        (V::Int(x), None) => *x = SymInt::Int(n),
        (V::Ints(xs), Some(j)) => xs[j] = SymInt::Int(n),
        (V::Scalar(x), None) => *x = oxport_core::Scalar::Int(n),
        (V::Float(x), None) => *x = n as f64,
        _ => {}
    }
}

/// Puts the symbolic float `f` an op argument was waiting for into it.
pub(crate) fn patch_float<T>(v: &mut V<T>, f: f64) {
    match v {
        V::Float(x) => *x = f,
        V::Scalar(x) => *x = oxport_core::Scalar::Float(f),
        _ => {}
    }
}

pub(crate) fn int(v: i64) -> Value {
    V::Int(SymInt::Int(v))
}

pub(crate) fn sym_eval(op: SymOp, a: &[Num]) -> Option<Value> {
    let both_int = a.iter().all(|x| x.i().is_some());
    let arith = |fi: fn(i64, i64) -> Option<i64>, ff: fn(f64, f64) -> f64| -> Option<Value> {
        let (x, y) = (a.first()?, a.get(1)?);
        if both_int {
            fi(x.i()?, y.i()?).map(int)
        } else {
            Some(V::Float(ff(x.f(), y.f())))
        }
    };
    let cmp = |f: fn(f64, f64) -> bool| Some(V::Bool(f(a.first()?.f(), a.get(1)?.f())));
    match op {
        SymOp::Add => arith(|x, y| x.checked_add(y), |x, y| x + y),
        SymOp::Sub => arith(|x, y| x.checked_sub(y), |x, y| x - y),
        SymOp::Mul => arith(|x, y| x.checked_mul(y), |x, y| x * y),
        SymOp::FloorDiv => arith(
            |x, y| (y != 0).then(|| floor_div(x, y)),
            |x, y| (x / y).floor(),
        ),
        SymOp::Mod => arith(
            |x, y| (y != 0).then(|| py_mod(x, y)),
            |x, y| x - y * (x / y).floor(),
        ),
        SymOp::TrueDiv => Some(V::Float(a.first()?.f() / a.get(1)?.f())),
        SymOp::Pow => match (a.first()?.i(), a.get(1)?.i()) {
            (Some(x), Some(y)) if y >= 0 => x.checked_pow(u32::try_from(y).ok()?).map(int),
            _ => Some(V::Float(a.first()?.f().powf(a.get(1)?.f()))),
        },
        SymOp::Eq => cmp(|x, y| x == y),
        SymOp::Ne => cmp(|x, y| x != y),
        SymOp::Lt => cmp(|x, y| x < y),
        SymOp::Le => cmp(|x, y| x <= y),
        SymOp::Gt => cmp(|x, y| x > y),
        SymOp::Ge => cmp(|x, y| x >= y),
        SymOp::Neg => match a.first()? {
            Num::F(f) => Some(V::Float(-f)),
            x => x.i()?.checked_neg().map(int),
        },
        SymOp::Pos => Some(match a.first()? {
            Num::F(f) => V::Float(*f),
            x => int(x.i()?),
        }),
        SymOp::And => Some(V::Bool(a.iter().all(|x| x.truthy()))),
        SymOp::Or => Some(V::Bool(a.iter().any(|x| x.truthy()))),
        SymOp::Not => Some(V::Bool(!a.first()?.truthy())),
        SymOp::ToInt => Some(int(match a.first()? {
            Num::F(f) => f.trunc() as i64,
            x => x.i()?,
        })),
        SymOp::ToFloat => Some(V::Float(a.first()?.f())),
        SymOp::Sqrt => Some(V::Float(a.first()?.f().sqrt())),
        SymOp::Max => arith(|x, y| Some(x.max(y)), f64::max),
        SymOp::Min => arith(|x, y| Some(x.min(y)), f64::min),
        SymOp::Ite => {
            let pick = if a.first()?.truthy() {
                a.get(1)?
            } else {
                a.get(2)?
            };
            Some(match pick {
                Num::F(f) => V::Float(*f),
                Num::B(b) => V::Bool(*b),
                Num::I(i) => int(*i),
            })
        }
    }
}

/// The dtype of the `k`-th tensor among `metas`.
pub(crate) fn flat_dtype(metas: &[V<CoreMeta>], k: usize) -> DType {
    metas
        .iter()
        .flat_map(|m| match m {
            V::Tensor(t) => vec![t.dtype],
            V::Tensors(ts) => ts.iter().map(|t| t.dtype).collect(),
            _ => vec![],
        })
        .nth(k)
        .unwrap_or(DType::F32)
}

fn op_err(step: &Step, source: oxport_core::Error) -> Error {
    Error::Op {
        node: step.node.clone(),
        target: step.target.clone(),
        source,
    }
}

fn tensor_of<'a>(slots: &'a [Value], s: Slot, step: &Step) -> Result<&'a Tensor> {
    match &slots[s] {
        V::Tensor(t) => Ok(t),
        other => Err(op_err(
            step,
            oxport_core::Error::Value(format!("expected a tensor, got {}", other.kind())),
        )),
    }
}

impl GraphPlan {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>> {
        self.run_profiled(inputs, None)
    }

    fn run_profiled(
        &self,
        inputs: Vec<Value>,
        profile: Option<&mut Profile>,
    ) -> Result<Vec<Value>> {
        let mut arena = self.arenas.take();
        let r = self.run_in(&mut arena, inputs, profile);
        self.arenas.give_back(arena);
        r
    }

    fn run_in(
        &self,
        arena: &mut Arena,
        inputs: Vec<Value>,
        mut profile: Option<&mut Profile>,
    ) -> Result<Vec<Value>> {
        let mut slots: Vec<Value> = vec![V::None; self.n_slots];
        for (&s, v) in self.inputs.iter().zip(inputs) {
            slots[s] = v;
        }
        for (s, v) in &self.consts {
            slots[*s] = v.clone();
        }
        for step in &self.steps {
            match profile.as_deref_mut() {
                None => self.run_step(step, &mut slots, arena)?,
                Some(p) => {
                    let t0 = std::time::Instant::now();
                    self.run_step(step, &mut slots, arena)?;
                    p.add(step, t0.elapsed());
                }
            }
            for &s in &step.free {
                slots[s] = V::None;
            }
        }
        Ok(self
            .outputs
            .iter()
            .map(|o| get(&slots, o).clone())
            .collect())
    }

    /// Runs an op whose outputs' metadata is known: no meta function; an out kernel writes into
    /// planned (or fresh) outputs.
    fn run_static(
        &self,
        def: &'static OpDef,
        args: &Args<Tensor>,
        st: &StaticOuts,
        arena: &mut Arena,
    ) -> oxport_core::Result<Vec<Value>> {
        match def.kernel {
            Some(Kernel::Out(k)) => {
                let mut ts = Vec::with_capacity(st.geoms.len());
                for (i, (sizes, strides)) in st.geoms.iter().enumerate() {
                    ts.push(match st.bufs[i] {
                        Some(b) => arena.output(&self.memory, b, sizes, strides)?,
                        None => Tensor::zeros_strided(flat_dtype(&st.metas, i), sizes, strides)?,
                    });
                }
                k(args, &mut ts)?;
                Ok(oxport_core::ops::registry::regroup_outputs(&st.metas, ts))
            }
            // Only out kernels get static outputs (compile::shapes).
            _ => def.run(args),
        }
    }

    fn run_op(
        &self,
        step: &Step,
        op: &OpStep,
        slots: &mut [Value],
        arena: &mut Arena,
    ) -> Result<()> {
        let mut missing = None;
        let empty = &self.empty;
        let mut values: Vec<Value> = op
            .template
            .iter()
            .map(|v| {
                v.map_tensors(&mut |&s: &Slot| match &slots[s] {
                    V::Tensor(t) => t.clone(),
                    _ => {
                        missing = Some(s);
                        empty.clone()
                    }
                })
            })
            .collect();
        if let Some(s) = missing {
            return Err(op_err(
                step,
                oxport_core::Error::Value(format!("internal: slot {s} holds no tensor")),
            ));
        }
        for &(ai, j, s) in &op.int_patches {
            let Some(n) = num(&slots[s]).and_then(Num::i) else {
                return Err(op_err(
                    step,
                    oxport_core::Error::Value("expected an int".into()),
                ));
            };
            patch_int(&mut values[ai], j, n);
        }
        for &(ai, s) in &op.float_patches {
            let Some(f) = num(&slots[s]).map(Num::f) else {
                return Err(op_err(
                    step,
                    oxport_core::Error::Value("expected a float".into()),
                ));
            };
            patch_float(&mut values[ai], f);
        }
        let args = Args {
            schema: &op.def.schema,
            values,
        };
        let outs = match &op.static_outs {
            Some(st) => self.run_static(op.def, &args, st, arena),
            None => op.def.run(&args),
        }
        .map_err(|e| op_err(step, e))?;
        for (bind, v) in op.outs.iter().zip(outs) {
            match (bind, v) {
                (OutBind::Skip, _) => {}
                (OutBind::Slot(s), v) => slots[*s] = v,
                (OutBind::List(ss), V::Tensors(ts)) => {
                    for (s, t) in ss.iter().zip(ts) {
                        slots[*s] = V::Tensor(t);
                    }
                }
                (OutBind::List(_), other) => {
                    return Err(op_err(
                        step,
                        oxport_core::Error::Value(format!(
                            "expected a tensor list, got {}",
                            other.kind()
                        )),
                    ))
                }
            }
        }
        Ok(())
    }

    fn run_step(&self, step: &Step, slots: &mut [Value], arena: &mut Arena) -> Result<()> {
        match &step.kind {
            Kind::Op(op) => self.run_op(step, op, slots, arena)?,
            Kind::View(v) => {
                let t = tensor_of(slots, v.input, step)?;
                if v.applies(t) {
                    let t = t.clone();
                    for o in &v.outs {
                        slots[o.slot] = V::Tensor(v.view(&t, o).map_err(|e| op_err(step, e))?);
                    }
                } else {
                    self.run_op(step, &v.op, slots, arena)?
                }
            }
            Kind::Prepared(p) => {
                let inputs = p
                    .inputs
                    .iter()
                    .map(|&s| tensor_of(slots, s, step))
                    .collect::<Result<Vec<&Tensor>>>()?;
                let strides = oxport_core::tensor::contiguous_strides(&p.out_shape);
                let out = match p.buf {
                    Some(b) => arena.output(&self.memory, b, &p.out_shape, &strides),
                    None => Tensor::zeros_strided(p.dtype, &p.out_shape, &strides),
                }
                .map_err(|e| op_err(step, e))?;
                p.kernel.run(&inputs, &out).map_err(|e| op_err(step, e))?;
                slots[p.out] = V::Tensor(out);
            }
            Kind::Sym { op, args, out } => {
                let nums: Option<Vec<Num>> = args.iter().map(|a| num(get(slots, a))).collect();
                let v = nums.and_then(|n| sym_eval(*op, &n)).ok_or_else(|| {
                    op_err(
                        step,
                        oxport_core::Error::Value(
                            "symbolic arithmetic on unsupported values".into(),
                        ),
                    )
                })?;
                slots[*out] = v;
            }
            Kind::SymSize { t, dim, what, out } => {
                let x = tensor_of(slots, *t, step)?;
                let v = match what {
                    SizeQuery::Size | SizeQuery::Stride => {
                        let d = oxport_core::tensor::wrap_dim(*dim, x.dim())
                            .map_err(|e| op_err(step, e))?;
                        match what {
                            SizeQuery::Size => x.sizes()[d],
                            _ => x.strides()[d],
                        }
                    }
                    SizeQuery::Numel => x.numel(),
                    SizeQuery::StorageOffset => x.storage_offset(),
                };
                slots[*out] = int(v as i64);
            }
            Kind::Item { t, out } => {
                let s = tensor_of(slots, *t, step)?
                    .item()
                    .map_err(|e| op_err(step, e))?;
                slots[*out] = match s {
                    Scalar::Int(i) => int(i),
                    Scalar::Float(f) => V::Float(f),
                    Scalar::Bool(b) => V::Bool(b),
                };
            }
            Kind::Assert { cond, msg } => {
                if !num(get(slots, cond)).is_some_and(Num::truthy) {
                    return Err(Error::Assert(msg.clone()));
                }
            }
            Kind::Constrain { v, min, max } => {
                let x = num(get(slots, v)).and_then(Num::i);
                let ok =
                    x.is_some_and(|x| min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m));
                if !ok {
                    return Err(Error::Assert(format!(
                        "node '{}': value {x:?} is outside its range [{min:?}, {max:?}]",
                        step.node
                    )));
                }
            }
            Kind::Noop => {}
            Kind::Cond {
                pred,
                branches,
                operands,
                outs,
            } => {
                let p = match get(slots, pred) {
                    V::Tensor(t) => t.item().map_err(|e| op_err(step, e))?.to_f64() != 0.0,
                    other => num(other).is_some_and(Num::truthy),
                };
                let branch = &branches[if p { 0 } else { 1 }];
                let ins = operands.iter().map(|&s| slots[s].clone()).collect();
                for (s, v) in outs.iter().zip(branch.run(ins)?) {
                    slots[*s] = v;
                }
            }
            Kind::Call {
                body,
                operands,
                outs,
            } => {
                let ins = operands.iter().map(|&s| slots[s].clone()).collect();
                for (s, v) in outs.iter().zip(body.run(ins)?) {
                    slots[*s] = v;
                }
            }
            Kind::Map {
                body,
                xs,
                args,
                outs,
            } => {
                let xs: Vec<Tensor> = xs
                    .iter()
                    .map(|&s| tensor_of(slots, s, step).cloned())
                    .collect::<Result<_>>()?;
                let n = xs
                    .first()
                    .map(|x| x.sizes().first().copied().unwrap_or(0))
                    .unwrap_or(0);
                let mut per_out: Vec<Vec<Tensor>> = vec![vec![]; outs.len()];
                for i in 0..n {
                    let mut ins = vec![];
                    for x in &xs {
                        ins.push(V::Tensor(
                            x.select(0, i as i64).map_err(|e| op_err(step, e))?,
                        ));
                    }
                    ins.extend(args.iter().map(|&s| slots[s].clone()));
                    for (k, v) in body.run(ins)?.into_iter().enumerate() {
                        if let (V::Tensor(t), Some(acc)) = (v, per_out.get_mut(k)) {
                            acc.push(t);
                        }
                    }
                }
                for (s, ts) in outs.iter().zip(per_out) {
                    let refs: Vec<&Tensor> = ts.iter().collect();
                    slots[*s] = V::Tensor(Tensor::stack(&refs, 0).map_err(|e| op_err(step, e))?);
                }
            }
        }
        Ok(())
    }
}

/// Time spent per op (target), and per node when [`Profile::per_node`], accumulated over calls.
///
/// ```
/// let mut profile = oxport_runtime::Profile::per_node();
/// assert!(profile.by_node.is_some() && profile.by_target.is_empty());
/// ```
#[derive(Debug, Default, Clone)]
pub struct Profile {
    /// target -> (total time, number of calls)
    pub by_target: std::collections::BTreeMap<String, (std::time::Duration, usize)>,
    /// node (a fused step: its nodes joined by `+`) -> (target, total time, number of calls).
    pub by_node: Option<std::collections::HashMap<String, (String, std::time::Duration, usize)>>,
}

impl Profile {
    /// A profile that also times each node.
    pub fn per_node() -> Profile {
        Profile {
            by_target: Default::default(),
            by_node: Some(Default::default()),
        }
    }

    fn add(&mut self, step: &Step, d: std::time::Duration) {
        match self.by_target.get_mut(&step.target) {
            Some(e) => {
                e.0 += d;
                e.1 += 1;
            }
            None => {
                self.by_target.insert(step.target.clone(), (d, 1));
            }
        }
        if let Some(nodes) = &mut self.by_node {
            // Names are copied only on a node's first call, not on every timed step.
            match nodes.get_mut(&step.node) {
                Some(e) => {
                    e.1 += d;
                    e.2 += 1;
                }
                None => {
                    nodes.insert(step.node.clone(), (step.target.clone(), d, 1));
                }
            }
        }
    }
}

/// How a graph input is fed.
#[derive(Debug)]
enum Feed {
    User(usize),
    State(Tensor),
    Const(Value),
}

/// What the guards know about one user input.
#[derive(Debug)]
struct InputCheck {
    name: String,
    meta: Option<TensorMeta>,
    /// One per dim of `meta`, parsed once at plan time.
    dims: Vec<DimCheck>,
    /// A user input export specialized to this value (`constant_input`): the caller must pass it.
    constant: Option<Value>,
}

/// What one dim of an input must be.
#[derive(Debug)]
struct DimCheck {
    /// `x.size()[0]`, as guard messages name it.
    here: String,
    kind: DimKind,
}

#[derive(Debug)]
enum DimKind {
    Static(i64),
    /// A symbol: bound by its first occurrence, equal everywhere else.
    Symbol(String),
    /// An expression of symbols, checked once they are bound.
    Expr(sympy::Expr),
    /// An expression oxport cannot parse: not checked.
    Unknown,
}

impl InputCheck {
    fn new(name: String, meta: Option<TensorMeta>, constant: Option<Value>) -> InputCheck {
        let dims = meta
            .iter()
            .flat_map(|m| m.sizes.iter().enumerate())
            .map(|(d, s)| DimCheck {
                here: format!("{name}.size()[{d}]"),
                kind: match s {
                    IrSymInt::AsInt(n) => DimKind::Static(*n),
                    IrSymInt::AsExpr(e) => match sympy::parse(&e.expr_str) {
                        Some(sympy::Expr::Symbol(sym)) => DimKind::Symbol(sym),
                        Some(expr) => DimKind::Expr(expr),
                        None => DimKind::Unknown,
                    },
                },
            })
            .collect();
        InputCheck {
            name,
            meta,
            dims,
            constant,
        }
    }
}

/// An exported program ready to run: `ep.module()` in PyTorch.
///
/// **State persists between calls**, as in PyTorch: the module holds the program's parameters, buffers
/// and constants (sharing their storage with the [`ExportedProgram`] it was planned from, as `ep.module()`
/// shares `ep.state_dict`), and every mutation a call makes — a `BUFFER_MUTATION` output of a
/// functionalized program, or an in-place op on a buffer in a training-IR one (`index_copy_`, `copy_`,
/// `add_`) — is visible to the next call. So a program exported with a static KV cache (transformers'
/// `convert_and_export_with_cache`) decodes token by token by calling it repeatedly; [`Module::buffer`]
/// reads the state. Calls on one module from several threads see each other's mutations (the storage is
/// locked per access, never torn), so run independent sequences on modules planned from separate loads.
///
/// ```
/// use oxport_runtime::{ExportedProgramExt, PyValue};
/// use oxport_core::Tensor;
/// # let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llm");
/// let m = oxport_ir::pt2::load(dir.join("llama_static_cache.core.pt2"))?.module()?;
/// for (pos, token) in [1i64, 2, 3].into_iter().enumerate() {
///     let kwargs = vec![
///         ("input_ids".to_string(), PyValue::from(Tensor::from_vec(vec![token], &[1, 1])?)),
///         ("cache_position".to_string(), Tensor::from_vec(vec![pos as i64], &[1])?.into()),
///     ];
///     let logits = m.call(vec![], kwargs)?;
///     assert_eq!(logits.as_tensor().unwrap().sizes(), &[1, 1, 256]);
/// }
/// // Three positions of the cache have been written.
/// let keys = m.buffer("key_cache_0").unwrap(); // [batch, kv heads, max_cache_len, head_dim]
/// let written = (0..5)
///     .map(|p| Ok(keys.select(2, p)?.to_vec::<f32>()?.iter().any(|&v| v != 0.0)))
///     .collect::<oxport_core::Result<Vec<bool>>>()?;
/// assert_eq!(written, [true, true, true, false, false]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Module {
    pub(crate) plan: GraphPlan,
    /// For programs with symbolic sizes: plans specialized to the shapes of actual calls.
    specializer: Option<Specializer>,
    feeds: Vec<Feed>,
    /// The program's buffers by fully qualified name, in input order (shared with `feeds`).
    buffers: Vec<(String, Tensor)>,
    checks: Vec<InputCheck>,
    ranges: HashMap<String, (Option<i64>, Option<i64>)>,
    /// (graph output index, buffer to update)
    buffer_mutations: Vec<(usize, Tensor)>,
    /// (graph output index, user input index)
    input_mutations: Vec<(usize, usize)>,
    user_outputs: Vec<usize>,
    in_spec: Option<TreeSpec>,
    out_spec: Option<TreeSpec>,
    forward_arg_names: Vec<String>,
    guards: Vec<Guard>,
}

impl Module {
    /// Plans `ep` once: resolves every node's kernel (an op the registry lacks is an error naming the
    /// node, here, before any call) and binds parameters, buffers and constants.
    pub fn new(ep: &ExportedProgram) -> Result<Module> {
        Module::with_options(ep, PlanOptions::default())
    }

    /// [`Module::new`] with the compile stage's passes chosen by `options`
    /// ([`PlanOptions::unoptimized`]: the plain path, for comparison).
    pub fn with_options(ep: &ExportedProgram, options: PlanOptions) -> Result<Module> {
        let g = ep.graph();
        let mut plan = graph_plan(g)?;
        crate::verify::check_metas(g)?;
        let sig = ep.graph_signature();
        let mut feeds = vec![];
        let mut checks = vec![];
        let mut buffers = vec![];
        let state = |name: &str| -> Result<Tensor> {
            ep.state_dict
                .get(name)
                .map(|w| w.tensor.clone())
                .or_else(|| ep.constants.get(name).cloned())
                .ok_or_else(|| {
                    Error::Ir(oxport_ir::Error::Invalid(format!(
                        "'{name}' is not in the program's state"
                    )))
                })
        };
        for spec in &sig.input_specs {
            feeds.push(match spec {
                InputSpec::UserInput(u) => {
                    let (name, meta) = match &u.arg {
                        Argument::AsTensor(t) => {
                            (t.name.clone(), g.tensor_values.get(&t.name).cloned())
                        }
                        Argument::AsSymInt(SymIntArgument::AsName(n)) => (n.clone(), None),
                        _ => (String::new(), None),
                    };
                    checks.push(InputCheck::new(name, meta, None));
                    Feed::User(checks.len() - 1)
                }
                InputSpec::ConstantInput(c) => {
                    let value = match &c.value {
                        ConstantValue::AsInt(i) => int(*i),
                        ConstantValue::AsFloat(f) => V::Float(f.0),
                        ConstantValue::AsBool(b) => V::Bool(*b),
                        ConstantValue::AsString(s) => V::Str(s.clone()),
                        ConstantValue::AsNone(_) => V::None,
                    };
                    checks.push(InputCheck::new(c.name.clone(), None, Some(value.clone())));
                    Feed::Const(value)
                }
                InputSpec::Parameter(p) => Feed::State(state(&p.parameter_name)?),
                InputSpec::Buffer(b) => {
                    let t = state(&b.buffer_name)?;
                    buffers.push((b.buffer_name.clone(), t.clone()));
                    Feed::State(t)
                }
                InputSpec::TensorConstant(c) => Feed::State(state(&c.tensor_constant_name)?),
                InputSpec::CustomObj(_) | InputSpec::Token(_) => {
                    return Err(Error::Unsupported {
                        node: "input".into(),
                        target: "placeholder".into(),
                        reason: "custom objects and effect tokens are not supported".into(),
                    })
                }
            });
        }
        let mut buffer_mutations = vec![];
        let mut input_mutations = vec![];
        let mut user_outputs = vec![];
        for (i, spec) in sig.output_specs.iter().enumerate() {
            match spec {
                OutputSpec::UserOutput(_) => user_outputs.push(i),
                OutputSpec::BufferMutation(b) => buffer_mutations.push((i, state(&b.buffer_name)?)),
                OutputSpec::ParameterMutation(p) => {
                    buffer_mutations.push((i, state(&p.parameter_name)?))
                }
                OutputSpec::UserInputMutation(m) => {
                    let k = checks
                        .iter()
                        .position(|c| c.name == m.user_input_name)
                        .ok_or_else(|| {
                            Error::Ir(oxport_ir::Error::Invalid(format!(
                                "'{}' is not a user input",
                                m.user_input_name
                            )))
                        })?;
                    input_mutations.push((i, k));
                }
                OutputSpec::LossOutput(_) => user_outputs.push(i),
                _ => {}
            }
        }
        let ranges = ep
            .range_constraints
            .iter()
            .map(|(k, r)| (k.to_string(), (r.min_val, r.max_val)))
            .collect();
        let root = ep
            .graph_module
            .module_call_graph
            .iter()
            .find(|e| e.fqn.is_empty())
            .and_then(|e| e.signature.as_ref());
        let in_spec = root.map(|s| TreeSpec::parse(&s.in_spec)).transpose()?;
        let out_spec = root.map(|s| TreeSpec::parse(&s.out_spec)).transpose()?;
        let forward_arg_names = root
            .and_then(|s| s.forward_arg_names.clone())
            .unwrap_or_default();
        let guards = ep
            .guards_code
            .iter()
            .map(|g| Guard::parse(g))
            .collect::<Result<Vec<_>>>()?;
        let input_metas: Vec<Option<CoreMeta>> = g
            .inputs
            .iter()
            .map(|a| match a {
                Argument::AsTensor(t) => g
                    .tensor_values
                    .get(&t.name)
                    .and_then(crate::verify::static_meta),
                _ => None,
            })
            .collect();
        // Symbolic sizes (or int inputs) leave much of the plan to each call: such programs also get
        // plans specialized to the shapes they are called with.
        let dynamic = options.static_shapes
            && g.inputs
                .iter()
                .zip(&feeds)
                .zip(&input_metas)
                .any(|((a, f), m)| {
                    matches!(f, Feed::User(_))
                        && (m.is_none() || matches!(a, Argument::AsSymInt(_)))
                        && matches!(a, Argument::AsTensor(_) | Argument::AsSymInt(_))
                });
        let prepared = crate::compile::ConstCache::default();
        compile(
            &mut plan,
            &feeds,
            &buffer_mutations,
            options,
            &input_metas,
            &vec![None; input_metas.len()],
            &prepared,
        );
        let specializer = dynamic.then(|| Specializer {
            graph: g.clone(),
            options,
            prepared,
            plans: Default::default(),
        });
        Ok(Module {
            plan,
            specializer,
            feeds,
            buffers,
            checks,
            ranges,
            buffer_mutations,
            input_mutations,
            user_outputs,
            in_spec,
            out_spec,
            forward_arg_names,
            guards,
        })
    }

    /// Calls the program like PyTorch's `ep.module()(*args, **kwargs)`: the arguments are flattened by
    /// the program's `in_spec`, checked, run, and the outputs are returned in the `out_spec` structure.
    pub fn call(&self, args: Vec<PyValue>, kwargs: Vec<(String, PyValue)>) -> Result<PyValue> {
        let tree = PyValue::Tuple(vec![PyValue::Tuple(args), PyValue::Dict(kwargs)]);
        let mut flat = vec![];
        match &self.in_spec {
            Some(spec) => spec.flatten(&tree, "", &mut flat)?,
            None => {
                return Err(Error::Guard(
                    "the program has no in_spec: use call_flat".into(),
                ))
            }
        }
        let outs = self.call_flat(flat)?;
        match &self.out_spec {
            Some(spec) => spec.unflatten(&mut outs.into_iter()),
            None => Ok(PyValue::Tuple(
                outs.into_iter().map(value_to_py).collect::<Result<_>>()?,
            )),
        }
    }

    /// Evaluates `guards_code` on the inputs, seen as forward's named arguments.
    fn check_guard_code(&self, inputs: &[Value]) -> Result<()> {
        if self.guards.is_empty() {
            return Ok(());
        }
        let Some(spec) = &self.in_spec else {
            return Ok(());
        };
        let tree = spec.unflatten(&mut inputs.iter().cloned())?;
        let PyValue::Tuple(parts) = &tree else {
            return Ok(());
        };
        let (args, kwargs) = match parts.as_slice() {
            [PyValue::Tuple(a), PyValue::Dict(k)] => (a.clone(), k.clone()),
            _ => return Ok(()),
        };
        let lookup = |name: &str| -> Option<PyValue> {
            if let Some(i) = self.forward_arg_names.iter().position(|n| n == name) {
                if let Some(v) = args.get(i) {
                    return Some(v.clone());
                }
            }
            kwargs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        for g in &self.guards {
            g.check(&lookup)?;
        }
        Ok(())
    }

    /// The memory the plan of the top-level graph uses: its arena of intermediate values, the least
    /// any plan could use, and the weights held. For a program with symbolic sizes, the plan of the
    /// latest shapes it was called with.
    pub fn memory_stats(&self) -> MemoryStats {
        let weight_bytes = self
            .feeds
            .iter()
            .map(|f| match f {
                Feed::State(t) => t.numel() * t.dtype().itemsize(),
                _ => 0,
            })
            .sum();
        let latest = self.specializer.as_ref().and_then(|sp| {
            let plans = sp.plans.lock().unwrap_or_else(|e| e.into_inner());
            plans.last().map(|(_, p)| p.clone())
        });
        let memory = match &latest {
            Some(p) => &p.memory,
            None => &self.plan.memory,
        };
        MemoryStats {
            arena_bytes: memory.arena_bytes(),
            peak_live_bytes: memory.peak_live_bytes,
            weight_bytes,
        }
    }

    /// The program's buffers (`ep.module().named_buffers()`): fully qualified name and the tensor the
    /// module holds, in the graph signature's order, persistent or not. Each reflects the mutations of
    /// the calls so far.
    pub fn buffers(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.buffers.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The buffer named `name` (its fully qualified name, e.g. `key_cache_0` or `bn.running_mean`), as
    /// the calls so far have left it.
    pub fn buffer(&self, name: &str) -> Option<&Tensor> {
        self.buffers.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Names of the user inputs, in flattened order (args then kwargs).
    pub fn input_names(&self) -> Vec<&str> {
        self.checks.iter().map(|c| c.name.as_str()).collect()
    }

    /// The exported metadata (dtype, sizes) of each user input, if it is a tensor.
    pub fn input_metas(&self) -> Vec<Option<&TensorMeta>> {
        self.checks.iter().map(|c| c.meta.as_ref()).collect()
    }

    /// Checks `inputs` against the program's guards.
    pub fn check_inputs(&self, inputs: &[Value]) -> Result<()> {
        if inputs.len() != self.checks.len() {
            return Err(Error::Guard(format!(
                "Expected {} inputs ({}), got {}",
                self.checks.len(),
                self.input_names().join(", "),
                inputs.len()
            )));
        }
        // Symbol -> (value, where it was bound), in binding order.
        let mut symbols: Vec<(&str, i64, &str)> = vec![];
        let mut deferred = vec![];
        for (c, v) in self.checks.iter().zip(inputs) {
            if let Some(k) = &c.constant {
                let same = match (k, v) {
                    (V::Int(a), V::Int(b)) => a == b,
                    (V::Float(a), V::Float(b)) => a == b,
                    (V::Bool(a), V::Bool(b)) => a == b,
                    (V::Str(a), V::Str(b)) => a == b,
                    (V::None, V::None) => true,
                    _ => false,
                };
                if !same {
                    return Err(Error::Guard(format!(
                        "Guard failed: input '{}' == {k:?} (the program was exported with this value; got {v:?})",
                        c.name
                    )));
                }
            }
            let Some(meta) = &c.meta else { continue };
            let name = &c.name;
            let V::Tensor(t) = v else {
                return Err(Error::Guard(format!(
                    "Guard failed: input '{name}' must be a tensor, got {}",
                    v.kind()
                )));
            };
            let want = meta.dtype.dtype();
            if want != Some(t.dtype()) {
                return Err(Error::Guard(format!(
                    "Guard failed: {name}.dtype == {} (input '{name}' is {})",
                    meta.dtype.python_name(),
                    t.dtype().name()
                )));
            }
            if t.dim() != c.dims.len() {
                return Err(Error::Guard(format!(
                    "Guard failed: {name}.dim() == {} (input '{name}' has shape {:?})",
                    c.dims.len(),
                    t.sizes()
                )));
            }
            for (dim, &actual) in c.dims.iter().zip(t.sizes()) {
                let actual = actual as i64;
                let here = dim.here.as_str();
                match &dim.kind {
                    DimKind::Static(n) if *n != actual => {
                        return Err(Error::Guard(format!(
                            "Guard failed: {here} == {n} (input '{name}' has shape {:?})",
                            t.sizes()
                        )))
                    }
                    DimKind::Symbol(sym) => match symbols.iter().find(|(s, _, _)| s == sym) {
                        Some((_, v, first)) if *v != actual => {
                            return Err(Error::Guard(format!(
                                "Guard failed: {here} == {first} (both are {sym}; got {actual} and {v})"
                            )))
                        }
                        Some(_) => {}
                        None => symbols.push((sym, actual, here)),
                    },
                    DimKind::Expr(expr) => deferred.push((expr, actual, here)),
                    DimKind::Static(_) | DimKind::Unknown => {}
                }
            }
        }
        for &(sym, v, here) in &symbols {
            if let Some(&(min, max)) = self.ranges.get(sym) {
                if let Some(m) = min.filter(|&m| v < m) {
                    return Err(Error::Guard(format!(
                        "Guard failed: {here} >= {m} (got {v}; {sym} is in [{m}, {}])",
                        fmt_bound(max)
                    )));
                }
                if let Some(m) = max.filter(|&m| v > m) {
                    return Err(Error::Guard(format!(
                        "Guard failed: {here} <= {m} (got {v}; {sym} is in [{}, {m}])",
                        fmt_bound(min)
                    )));
                }
            }
        }
        for (expr, actual, here) in deferred {
            let lookup = |s: &str| symbols.iter().find(|(n, _, _)| *n == s).map(|(_, v, _)| *v);
            if let Some(expected) = expr.eval_int(&lookup) {
                if expected != actual {
                    return Err(Error::Guard(format!(
                        "Guard failed: {here} == {expr} (= {expected}, got {actual})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Runs the program on the flattened user inputs (args then kwargs, as the in_spec orders them) and
    /// returns the flattened user outputs.
    pub fn call_flat(&self, inputs: Vec<Value>) -> Result<Vec<Value>> {
        self.call_flat_profiled(inputs, None)
    }

    /// [`Module::call_flat`], adding each node's time to `profile` by op (nested cond/map bodies count
    /// as their higher-order op).
    pub fn call_flat_profiled(
        &self,
        inputs: Vec<Value>,
        profile: Option<&mut Profile>,
    ) -> Result<Vec<Value>> {
        self.check_inputs(&inputs)?;
        self.check_guard_code(&inputs)?;
        let graph_inputs: Vec<Value> = self
            .feeds
            .iter()
            .map(|f| match f {
                Feed::User(i) => inputs[*i].clone(),
                Feed::State(t) => V::Tensor(t.clone()),
                Feed::Const(v) => v.clone(),
            })
            .collect();
        let specialized = self.specialized(&graph_inputs);
        let plan = specialized.as_deref().unwrap_or(&self.plan);
        let outs = if plan.parallel_work {
            crate::threads::with_warm_pool(|| plan.run_profiled(graph_inputs, profile))?
        } else {
            plan.run_profiled(graph_inputs, profile)?
        };
        let assign = |dst: &Tensor, v: &Value, what: &str| -> Result<()> {
            match v {
                V::Tensor(src)
                    if !src.shares_storage(dst) || src.storage_offset() != dst.storage_offset() =>
                {
                    dst.assign_untraced(src).map_err(|e| Error::Op {
                        node: what.into(),
                        target: "copy_".into(),
                        source: e,
                    })
                }
                _ => Ok(()),
            }
        };
        for (i, buf) in &self.buffer_mutations {
            assign(buf, &outs[*i], "buffer mutation")?;
        }
        for (i, k) in &self.input_mutations {
            if let V::Tensor(dst) = &inputs[*k] {
                assign(dst, &outs[*i], "user input mutation")?;
            }
        }
        Ok(self.user_outputs.iter().map(|&i| outs[i].clone()).collect())
    }
}

/// The compile stage's passes over `plan` (see [`crate::compile`]), for the graph inputs' metadata
/// and int values where known.
fn compile(
    plan: &mut GraphPlan,
    feeds: &[Feed],
    buffer_mutations: &[(usize, Tensor)],
    options: PlanOptions,
    input_metas: &[Option<CoreMeta>],
    input_values: &[Option<Value>],
    prepared: &crate::compile::ConstCache,
) {
    if !options.static_shapes {
        return;
    }
    if options.fuse {
        crate::compile::substitute::substitute_ops(plan);
    }
    let metas = crate::compile::shapes::infer(plan, input_metas, input_values);
    if options.fuse {
        crate::compile::alias::elide_aliases(plan, &metas);
        crate::compile::activations::recognize_activations(plan, &metas);
    }
    plan.parallel_work = crate::threads::may_split(plan, &metas);
    let mut consts = constants(plan, feeds, buffer_mutations);
    if options.fold {
        crate::compile::fold::fold_constants(plan, &mut consts, prepared);
    }
    if options.fuse {
        crate::compile::fuse::fuse_convs(plan, &metas, &consts, prepared);
        crate::compile::attention::fuse_attention(plan, &metas);
        crate::compile::rms_norm::fuse_rms_norms(plan, &metas);
        crate::compile::rotary::fuse_rotary(plan, &metas);
        crate::compile::linear::pack_linears(plan, &metas, &consts, prepared);
        crate::compile::pointwise::fuse_pointwise(plan, &metas);
    }
    crate::compile::views::direct_views(plan, &metas);
    if options.memory_plan {
        crate::compile::memory::plan(plan);
    }
}

/// How many shape-specialized plans a module keeps (the least recently used is dropped first).
const MAX_SPECIALIZED_PLANS: usize = 8;

/// The plans of a program with symbolic sizes, specialized to the shapes of its calls: with every
/// size known, the compile stage does for them what it does for a static program. Weights prepared
/// for one plan (packed, folded) are shared by all ([`crate::compile::ConstCache`]).
#[derive(Debug)]
struct Specializer {
    graph: Graph,
    options: PlanOptions,
    prepared: crate::compile::ConstCache,
    /// Most recently used last.
    plans: std::sync::Mutex<Vec<(Vec<ShapeKey>, std::sync::Arc<GraphPlan>)>>,
}

/// What a specialized plan assumes of one graph input.
#[derive(Debug, Clone, PartialEq)]
enum ShapeKey {
    Tensor(DType, Vec<usize>, Vec<usize>),
    Int(i64),
    Other,
}

impl Module {
    /// The plan specialized to the shapes of `graph_inputs` (made on first sight, then cached), for
    /// a program with symbolic sizes; `None` for a static one (its plan is already specialized).
    fn specialized(&self, graph_inputs: &[Value]) -> Option<std::sync::Arc<GraphPlan>> {
        let sp = self.specializer.as_ref()?;
        let key: Vec<ShapeKey> = self
            .feeds
            .iter()
            .zip(graph_inputs)
            .map(|(f, v)| match (f, v) {
                (Feed::User(_), V::Tensor(t)) => {
                    ShapeKey::Tensor(t.dtype(), t.sizes().to_vec(), t.strides().to_vec())
                }
                (Feed::User(_), V::Int(i)) => i.as_int().map_or(ShapeKey::Other, ShapeKey::Int),
                _ => ShapeKey::Other,
            })
            .collect();
        {
            let mut plans = sp.plans.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = plans.iter().position(|(k, _)| *k == key) {
                let entry = plans.remove(i);
                let plan = entry.1.clone();
                plans.push(entry);
                return Some(plan);
            }
        }
        let metas: Vec<Option<CoreMeta>> = graph_inputs
            .iter()
            .map(|v| match v {
                V::Tensor(t) => Some(CoreMeta::of(t)),
                _ => None,
            })
            .collect();
        let values: Vec<Option<Value>> = key
            .iter()
            .map(|k| match k {
                ShapeKey::Int(i) => Some(int(*i)),
                _ => None,
            })
            .collect();
        // The generic plan stays the fallback: an input it cannot plan is reported by its call.
        let mut plan = graph_plan(&sp.graph).ok()?;
        compile(
            &mut plan,
            &self.feeds,
            &self.buffer_mutations,
            sp.options,
            &metas,
            &values,
            &sp.prepared,
        );
        let plan = std::sync::Arc::new(plan);
        let mut plans = sp.plans.lock().unwrap_or_else(|e| e.into_inner());
        plans.push((key, plan.clone()));
        if plans.len() > MAX_SPECIALIZED_PLANS {
            plans.remove(0);
        }
        Some(plan)
    }
}

/// The graph inputs whose tensors no call changes: parameters, constants and buffers no output
/// mutates and no in-place op (or higher-order op) is given.
fn constants(
    plan: &GraphPlan,
    feeds: &[Feed],
    buffer_mutations: &[(usize, Tensor)],
) -> HashMap<Slot, Tensor> {
    let mut written = std::collections::HashSet::new();
    for step in &plan.steps {
        match &step.kind {
            Kind::Op(op) if op.def.is_in_place() => {
                if let Some(V::Tensor(s)) = op.template.first() {
                    written.insert(*s);
                }
            }
            Kind::Op(_) | Kind::Prepared(_) | Kind::View(_) => {}
            other => {
                let mut r = vec![];
                reads(other, &mut r);
                written.extend(r);
            }
        }
    }
    let mut out = HashMap::new();
    for (&slot, feed) in plan.inputs.iter().zip(feeds) {
        if let Feed::State(t) = feed {
            let mutated = buffer_mutations.iter().any(|(_, b)| b.shares_storage(t));
            if !mutated && !written.contains(&slot) {
                out.insert(slot, t.clone());
            }
        }
    }
    out
}

fn value_to_py(v: Value) -> Result<PyValue> {
    Ok(match v {
        V::Tensor(t) => PyValue::Tensor(t),
        V::Int(i) => PyValue::Int(i.as_int().unwrap_or_default()),
        V::Float(f) => PyValue::Float(f),
        V::Bool(b) => PyValue::Bool(b),
        V::Str(s) => PyValue::Str(s),
        _ => PyValue::None,
    })
}

fn fmt_bound(b: Option<i64>) -> String {
    b.map(|x| x.to_string()).unwrap_or_else(|| "int_oo".into())
}

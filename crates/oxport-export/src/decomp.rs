//! `ExportedProgram.run_decompositions()`: the training-IR program re-traced down to Core ATen.
//!
//! Each node runs once more on fake tensors with the tracer recording, through a decomposition when its op
//! is not in the Core ATen opset (`conv2d` -> `convolution`, `batch_norm` -> the no-training native
//! form, `linear` -> `permute` + `addmm`, `hardswish` -> `add`/`clamp`/`mul`/`div`, ...), in-place ops on
//! intermediate values become their functional forms, and each new node keeps the original node's stack
//! trace and module stack. Node names come out as PyTorch's (`convolution_3`, `getitem_5`,
//! `..._unused_1` for outputs nobody reads).
use crate::tracer::{self, fake_of, view_key, State};
use crate::ExportError;
use oxport_core::ops::value::Value;
use oxport_core::ops::{call_def, registry, Args, HookCall, OpDef, TensorMeta as CoreMeta};
use oxport_core::{Error, Result, SymInt, Tensor};
use oxport_ir::schema as ir;
use oxport_ir::{ExportedProgram, OrderedMap};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Input mutations found while re-tracing: the final value of each mutated graph input.
#[derive(Default)]
struct Mutations {
    /// Graph input names by fake tensor view.
    input_of: HashMap<crate::tracer::ViewKey, String>,
    /// Final values of mutated inputs, by input name.
    values: HashMap<String, Tensor>,
}

impl Mutations {
    /// Records that input `t` (if it is one) now holds `value`.
    fn record(&mut self, t: &Tensor, value: &Tensor) {
        if let Some(name) = self.input_of.get(&view_key(t)).cloned() {
            self.values.insert(name.clone(), value.clone());
            // A later in-place op on the new value mutates the same input.
            self.input_of.insert(view_key(value), name);
        }
    }
}

fn unsupported(what: String) -> ExportError {
    ExportError::Io(format!("run_decompositions: {what} is not supported yet"))
}

/// `ep.run_decompositions()` with PyTorch's default (Core ATen) decomposition table, for programs
/// without input mutations, control flow or symbolic sizes. An op with no decomposition here is an
/// error naming it.
///
/// ```
/// use oxport_core::prelude::*;
/// use oxport_export::{export, run_decompositions, zoo::ConvReluMaxpool};
/// let mut g = Generator::new(0);
/// let model = ConvReluMaxpool::new(&mut g)?;
/// let (x, c) = ConvReluMaxpool::example_inputs(&mut g)?;
/// let ep = export(&model, vec![x.into()], vec![("constant".into(), c.into())]).unwrap();
/// let core = run_decompositions(&ep).unwrap();
/// assert!(core.to_string().contains("torch.ops.aten.convolution.default("));
/// # Ok::<(), oxport_core::Error>(())
/// ```
pub fn run_decompositions(
    ep: &ExportedProgram,
) -> std::result::Result<ExportedProgram, ExportError> {
    let g = &ep.graph_module.graph;
    for spec in &ep.graph_module.signature.output_specs {
        if !matches!(spec, ir::OutputSpec::UserOutput(_)) {
            return Err(unsupported(format!(
                "a program that already returns mutations ({spec:?})"
            )));
        }
    }
    let mut r = retrace(g).map_err(|e| unsupported(e.to_string()))?;
    // Mutated inputs first (in input order), as BUFFER_MUTATION / USER_INPUT_MUTATION outputs.
    let mut outputs = vec![];
    let mut mutation_specs = vec![];
    for (a, spec) in g.inputs.iter().zip(&ep.graph_module.signature.input_specs) {
        let ir::Argument::AsTensor(t) = a else {
            continue;
        };
        let Some(value) = r.mutations.values.get(&t.name) else {
            continue;
        };
        let arg = ir::TensorArgument::new(r.state.name_of(value));
        mutation_specs.push(match spec {
            ir::InputSpec::Buffer(b) => ir::OutputSpec::BufferMutation(ir::BufferMutationSpec {
                arg: arg.clone(),
                buffer_name: b.buffer_name.clone(),
            }),
            ir::InputSpec::UserInput(_) => {
                ir::OutputSpec::UserInputMutation(ir::UserInputMutationSpec {
                    arg: arg.clone(),
                    user_input_name: t.name.clone(),
                })
            }
            other => return Err(unsupported(format!("a mutation of {other:?}"))),
        });
        outputs.push(ir::Argument::AsTensor(arg));
    }
    let n_mutations = outputs.len();
    outputs.extend(r.outputs(g)?);
    let graph = r.into_graph(g, outputs.clone());
    let mut out = ep.clone();
    let gm = &mut out.graph_module;
    let mut specs = gm.signature.output_specs.clone();
    for (spec, arg) in specs.iter_mut().zip(&outputs[n_mutations..]) {
        if let ir::OutputSpec::UserOutput(u) = spec {
            u.arg = arg.clone();
        }
    }
    mutation_specs.extend(specs);
    gm.signature.output_specs = mutation_specs;
    gm.graph = graph;
    out.verifiers = vec!["ATEN".into()];
    Ok(out)
}

/// A graph traced again through the decompositions.
struct Retraced {
    state: State,
    /// The new value of each of the old graph's values.
    env: HashMap<String, Value<Tensor>>,
    mutations: Mutations,
}

impl Retraced {
    /// The new names of the old graph's outputs.
    fn outputs(&mut self, g: &ir::Graph) -> std::result::Result<Vec<ir::Argument>, ExportError> {
        g.outputs
            .iter()
            .map(|o| match o {
                ir::Argument::AsTensor(t) => match self.env.get(&t.name) {
                    Some(Value::Tensor(v)) => Ok(ir::Argument::AsTensor(ir::TensorArgument::new(
                        self.state.name_of(v),
                    ))),
                    _ => Err(unsupported(format!("output '{}'", t.name))),
                },
                o => Err(unsupported(format!("output {o:?}"))),
            })
            .collect()
    }

    /// The new graph: the old inputs, the recorded nodes without dead code, `outputs`.
    fn into_graph(mut self, g: &ir::Graph, outputs: Vec<ir::Argument>) -> ir::Graph {
        let mut nodes = std::mem::take(&mut self.state.nodes);
        let mut tensor_values = OrderedMap::new();
        for a in &g.inputs {
            if let ir::Argument::AsTensor(t) = a {
                if let Some(m) = g.tensor_values.get(&t.name) {
                    tensor_values.insert(t.name.clone(), m.clone());
                }
            }
        }
        for (k, v) in self.state.tensor_values.iter() {
            tensor_values.insert(k, v.clone());
        }
        eliminate_dead_code(&mut nodes, &outputs, &mut tensor_values);
        rename_unused_outputs(&mut nodes, &outputs, &mut tensor_values);
        ir::Graph {
            inputs: g.inputs.clone(),
            outputs,
            nodes,
            tensor_values,
            sym_int_values: OrderedMap::new(),
            sym_bool_values: OrderedMap::new(),
            is_single_tensor_return: g.is_single_tensor_return,
            custom_obj_values: OrderedMap::new(),
            sym_float_values: OrderedMap::new(),
        }
    }
}

/// Runs every node of `g` again on fake tensors, through [`decompose`], recording the result.
fn retrace(g: &ir::Graph) -> Result<Retraced> {
    let mut fresh = State::new(HashMap::new(), String::new());
    fresh.decompose = true;
    let state = Rc::new(RefCell::new(fresh));
    let mut env: HashMap<String, Value<Tensor>> = HashMap::new();
    let mut mutations = Mutations::default();
    {
        let mut st = state.borrow_mut();
        for a in &g.inputs {
            let ir::Argument::AsTensor(t) = a else {
                return Err(Error::Value(format!("input {a:?}")));
            };
            let meta = core_meta(
                g.tensor_values
                    .get(&t.name)
                    .ok_or_else(|| Error::Value(format!("no metadata for input '{}'", t.name)))?,
            )?;
            let fake = fake_of(&meta);
            let name = st.ns.take_exact(&t.name);
            st.values.insert(view_key(&fake), name);
            mutations.input_of.insert(view_key(&fake), t.name.clone());
            env.insert(t.name.clone(), Value::Tensor(fake));
        }
    }
    let traced: Result<()> = tracer::trace(state.clone(), || {
        for node in &g.nodes {
            state.borrow_mut().meta_override = Some(node.metadata.clone());
            if node.target == "torch.ops.higher_order.cond" {
                retrace_cond(&state, &mut env, g, node)?;
                continue;
            }
            let op = node
                .target
                .strip_prefix("torch.ops.")
                .unwrap_or(&node.target);
            let def = registry().get(op).map_err(|_| {
                Error::Value(format!(
                    "node '{}' ({})",
                    node.name.clone().unwrap_or_default(),
                    node.target
                ))
            })?;
            let (mut positional, mut kwargs) = (vec![], vec![]);
            for a in &node.inputs {
                let v = oxport_runtime::argument_value(
                    &a.arg,
                    &mut |n: &str| match env.get(n) {
                        Some(Value::Tensor(t)) => Ok(t.clone()),
                        _ => Err(format!("'{n}' is not a tensor value of the graph")),
                    },
                    &mut |s: &ir::SymIntArgument| match s {
                        ir::SymIntArgument::AsInt(i) => Ok(SymInt::Int(*i)),
                        ir::SymIntArgument::AsName(n) => Err(format!("symbolic size '{n}'")),
                    },
                )
                .map_err(Error::Value)?;
                match a.kind {
                    Some(ir::ArgumentKind::Keyword) => kwargs.push((a.name.clone(), v)),
                    _ => positional.push(v),
                }
            }
            let mutated_input = match node.inputs.first().map(|a| &a.arg) {
                Some(ir::Argument::AsTensor(t)) if def.is_in_place() => match env.get(&t.name) {
                    Some(Value::Tensor(x)) => Some((t.name.clone(), x.clone())),
                    _ => None,
                },
                _ => None,
            };
            let outs = call_def(def, positional, kwargs)?;
            for (x, new) in std::mem::take(&mut state.borrow_mut().decomp_mutations) {
                mutations.record(&x, &new);
            }
            if let (Some((name, x)), Some(Value::Tensor(y))) = (&mutated_input, outs.first()) {
                // Functionalized: the input's name now means the new value.
                mutations.record(x, y);
                env.insert(name.clone(), Value::Tensor(y.clone()));
            }
            bind_outputs(&mut env, node, outs)?;
        }
        Ok(())
    });
    traced?;
    let mut state = Rc::try_unwrap(state)
        .map_err(|_| Error::Value("a trace kept its state alive".into()))?
        .into_inner();
    state.meta_override = None;
    Ok(Retraced {
        state,
        env,
        mutations,
    })
}

/// A `cond` node with both branch graphs decomposed.
fn retrace_cond(
    state: &Rc<RefCell<State>>,
    env: &mut HashMap<String, Value<Tensor>>,
    g: &ir::Graph,
    node: &ir::Node,
) -> Result<()> {
    let mut inputs = vec![];
    for a in &node.inputs {
        let arg = match &a.arg {
            ir::Argument::AsTensor(t) => {
                let v = tensor_of(env, &t.name)?;
                ir::Argument::AsTensor(ir::TensorArgument::new(state.borrow_mut().name_of(&v)))
            }
            ir::Argument::AsTensors(ts) => {
                let mut names = vec![];
                for t in ts {
                    let v = tensor_of(env, &t.name)?;
                    names.push(ir::TensorArgument::new(state.borrow_mut().name_of(&v)));
                }
                ir::Argument::AsTensors(names)
            }
            ir::Argument::AsGraph(sub) => {
                let mut r = retrace(&sub.graph)?;
                if !r.mutations.values.is_empty() {
                    return Err(Error::Value("a cond branch that mutates its inputs".into()));
                }
                let outputs = r
                    .outputs(&sub.graph)
                    .map_err(|e| Error::Value(e.to_string()))?;
                ir::Argument::AsGraph(ir::GraphArgument {
                    name: sub.name.clone(),
                    graph: Box::new(r.into_graph(&sub.graph, outputs)),
                })
            }
            other => other.clone(),
        };
        inputs.push(ir::NamedArgument {
            name: a.name.clone(),
            arg,
            kind: a.kind,
        });
    }
    let mut st = state.borrow_mut();
    let name = st.ns.create_name("cond");
    let mut outputs = vec![];
    for o in &node.outputs {
        let ir::Argument::AsTensor(t) = o else {
            return Err(Error::Value(format!("cond output {o:?}")));
        };
        let meta = g
            .tensor_values
            .get(&t.name)
            .ok_or_else(|| Error::Value(format!("no metadata for '{}'", t.name)))?;
        let fake = fake_of(&core_meta(meta)?);
        let n = st.ns.create_name("getitem");
        st.values.insert(view_key(&fake), n.clone());
        st.tensor_values.insert(n.clone(), meta.clone());
        env.insert(t.name.clone(), Value::Tensor(fake));
        outputs.push(ir::Argument::AsTensor(ir::TensorArgument::new(n)));
    }
    let metadata = node.metadata.clone();
    st.nodes.push(ir::Node {
        target: node.target.clone(),
        inputs,
        outputs,
        metadata,
        is_hop_single_tensor_return: node.is_hop_single_tensor_return,
        name: Some(name),
    });
    Ok(())
}

fn tensor_of(env: &HashMap<String, Value<Tensor>>, name: &str) -> Result<Tensor> {
    match env.get(name) {
        Some(Value::Tensor(t)) => Ok(t.clone()),
        _ => Err(Error::Value(format!(
            "'{name}' is not a tensor value of the graph"
        ))),
    }
}

fn core_meta(m: &ir::TensorMeta) -> Result<CoreMeta> {
    let ints = |v: &[ir::SymInt]| -> Result<Vec<SymInt>> {
        v.iter()
            .map(|s| match s {
                ir::SymInt::AsInt(i) => Ok(SymInt::Int(*i)),
                ir::SymInt::AsExpr(e) => {
                    Err(Error::Value(format!("a symbolic size ({})", e.expr_str)))
                }
            })
            .collect()
    };
    Ok(CoreMeta {
        dtype: m
            .dtype
            .dtype()
            .ok_or_else(|| Error::Value(format!("dtype {:?}", m.dtype)))?,
        sizes: ints(&m.sizes)?,
        strides: ints(&m.strides)?,
        offset: ints(std::slice::from_ref(&m.storage_offset))?.remove(0),
    })
}

/// Binds a node's outputs (as the training IR names them) to the values its decomposition produced.
fn bind_outputs(
    env: &mut HashMap<String, Value<Tensor>>,
    node: &ir::Node,
    outs: Vec<Value<Tensor>>,
) -> Result<()> {
    for (o, v) in node.outputs.iter().zip(outs) {
        match (o, v) {
            (ir::Argument::AsTensor(t), v @ Value::Tensor(_)) => {
                env.insert(t.name.clone(), v);
            }
            (ir::Argument::AsTensors(ts), Value::Tensors(vs)) => {
                for (t, v) in ts.iter().zip(vs) {
                    env.insert(t.name.clone(), Value::Tensor(v));
                }
            }
            (o, v) => {
                return Err(Error::Value(format!(
                    "output {o:?} of {} got a {}",
                    node.target,
                    v.kind()
                )))
            }
        }
    }
    Ok(())
}

/// Drops nodes none of whose outputs is used (the program is functional now), as PyTorch's DCE does.
fn eliminate_dead_code(
    nodes: &mut Vec<ir::Node>,
    outputs: &[ir::Argument],
    tensor_values: &mut OrderedMap<ir::TensorMeta>,
) {
    let mut used: HashSet<String> = HashSet::new();
    outputs.iter().for_each(|a| used.extend(a.value_names()));
    let mut keep = vec![true; nodes.len()];
    for (i, n) in nodes.iter().enumerate().rev() {
        let mut outs = HashSet::new();
        n.outputs.iter().for_each(|a| outs.extend(a.value_names()));
        if outs.is_disjoint(&used) {
            keep[i] = false;
            continue;
        }
        n.inputs
            .iter()
            .for_each(|a| used.extend(a.arg.value_names()));
    }
    let mut dead = HashSet::new();
    let mut i = 0;
    nodes.retain(|n| {
        let k = keep[i];
        i += 1;
        if !k {
            n.outputs.iter().for_each(|a| dead.extend(a.value_names()));
        }
        k
    });
    if !dead.is_empty() {
        let mut kept = OrderedMap::new();
        for (k, v) in tensor_values.iter() {
            if !dead.contains(k) {
                kept.insert(k, v.clone());
            }
        }
        *tensor_values = kept;
    }
}

/// Outputs of multi-output nodes that nothing reads are named `<node>_unused_<i>`, as PyTorch names them.
fn rename_unused_outputs(
    nodes: &mut [ir::Node],
    outputs: &[ir::Argument],
    tensor_values: &mut OrderedMap<ir::TensorMeta>,
) {
    let mut used: HashSet<String> = HashSet::new();
    for n in nodes.iter() {
        n.inputs
            .iter()
            .for_each(|a| used.extend(a.arg.value_names()));
    }
    outputs.iter().for_each(|a| used.extend(a.value_names()));
    let mut renames: HashMap<String, String> = HashMap::new();
    for n in nodes.iter_mut() {
        if n.outputs.len() < 2 {
            continue;
        }
        let node_name = n.name.clone().unwrap_or_default();
        for (i, o) in n.outputs.iter_mut().enumerate() {
            if let ir::Argument::AsTensor(t) = o {
                if !used.contains(&t.name) {
                    let new = format!("{node_name}_unused_{i}");
                    renames.insert(std::mem::replace(&mut t.name, new.clone()), new);
                }
            }
        }
    }
    if !renames.is_empty() {
        let mut renamed = OrderedMap::new();
        for (k, v) in tensor_values.iter() {
            renamed.insert(
                renames.get(k).cloned().unwrap_or_else(|| k.to_string()),
                v.clone(),
            );
        }
        *tensor_values = renamed;
    }
}

/// What the tracer does with an op call while re-tracing for `run_decompositions()`: an op with a
/// decomposition runs it (the ops it calls come back here, so non-Core ops decompose recursively, and
/// the new values of the inputs it mutates are kept in [`State::decomp_mutations`]); a Core ATen op or a
/// custom op is recorded as is; an in-place op on an intermediate value becomes its functional form.
pub(crate) fn dispatch_decomposed(
    state: &Rc<RefCell<State>>,
    call: &HookCall<'_>,
) -> Result<Vec<Value<Tensor>>> {
    let def = call.def;
    if def.decomposition.is_some() {
        let args = Args::bind(&def.schema, call.positional.to_vec(), call.kwargs.to_vec())?;
        let d = def.decompose(&args)?;
        for (i, new) in d.mutations {
            if let Some(Value::Tensor(t)) = args.values.get(i) {
                state.borrow_mut().decomp_mutations.push((t.clone(), new));
            }
        }
        return Ok(d.outputs);
    }
    // Custom ops without a decomposition stay, as PyTorch keeps them.
    if def.is_core || def.is_custom {
        return tracer::record(&mut state.borrow_mut(), call);
    }
    if let Some(functional) = functional_form(def) {
        return call_def(functional, call.positional.to_vec(), call.kwargs.to_vec());
    }
    Err(Error::Value(format!("a decomposition of {}", def.name)))
}

/// `aten.relu_.default` -> `aten.relu.default`, when that is a registered Core ATen op.
fn functional_form(def: &OpDef) -> Option<&'static OpDef> {
    let mut parts = def.name.splitn(3, '.');
    let (ns, op, overload) = (parts.next()?, parts.next()?, parts.next()?);
    let base = op.strip_suffix('_')?;
    registry()
        .get(&format!("{ns}.{base}.{overload}"))
        .ok()
        .filter(|d| d.is_core)
}

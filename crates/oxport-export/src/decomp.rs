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
use oxport_core::ops::{registry, Args, OpDef, TensorMeta as CoreMeta};
use oxport_core::{Error, Result, Scalar, SymInt, Tensor};
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
    let state = Rc::new(RefCell::new(State::new(HashMap::new(), String::new())));
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
                Some(ir::Argument::AsTensor(t)) if is_in_place(def) => match env.get(&t.name) {
                    Some(Value::Tensor(x)) => Some((t.name.clone(), x.clone())),
                    _ => None,
                },
                _ => None,
            };
            let outs = decompose(def, positional, kwargs, &mut mutations)?;
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

fn call(op: &str, positional: Vec<Value<Tensor>>) -> Result<Vec<Value<Tensor>>> {
    oxport_core::ops::call(op, positional, vec![])
}

fn first(outs: Vec<Value<Tensor>>) -> Result<Vec<Value<Tensor>>> {
    outs.into_iter()
        .next()
        .map(|v| vec![v])
        .ok_or_else(|| Error::Value("an op returned nothing".into()))
}

fn int(v: i64) -> Value<Tensor> {
    Value::Scalar(Scalar::Int(v))
}

/// The Core ATen form of one call (PyTorch's default decomposition table, for the ops oxport's layers
/// and the zoo emit).
/// True for an ATen op that writes its first argument (`add_`, `relu_`).
fn is_in_place(def: &OpDef) -> bool {
    def.schema
        .arguments
        .first()
        .and_then(|a| a.alias.as_ref())
        .is_some_and(|a| a.is_write)
}

fn decompose(
    def: &'static OpDef,
    positional: Vec<Value<Tensor>>,
    kwargs: Vec<(String, Value<Tensor>)>,
    mutations: &mut Mutations,
) -> Result<Vec<Value<Tensor>>> {
    let a = Args::bind(&def.schema, positional.clone(), kwargs.clone())?;
    let v = |name: &str| -> Result<Value<Tensor>> {
        let i = def
            .schema
            .arg_index(name)
            .ok_or_else(|| Error::Value(format!("{}: no argument '{name}'", def.name)))?;
        Ok(a.values[i].clone())
    };
    let x = || -> Result<Tensor> { a.tensor("input").or_else(|_| a.tensor("self")).cloned() };
    match def.name {
        "aten.conv2d.default" | "aten.conv1d.default" => {
            let nd = if def.name == "aten.conv2d.default" {
                2
            } else {
                1
            };
            call(
                "aten.convolution.default",
                vec![
                    v("input")?,
                    v("weight")?,
                    v("bias")?,
                    v("stride")?,
                    v("padding")?,
                    v("dilation")?,
                    Value::Bool(false),
                    Value::Ints(vec![SymInt::Int(0); nd]),
                    v("groups")?,
                ],
            )
        }
        "aten.batch_norm.default" if a.bool("training")? => {
            // The functional form returns the new running statistics: mutations of those buffers.
            let outs = call(
                "aten._native_batch_norm_legit_functional.default",
                vec![
                    v("input")?,
                    v("weight")?,
                    v("bias")?,
                    v("running_mean")?,
                    v("running_var")?,
                    Value::Bool(true),
                    v("momentum")?,
                    v("eps")?,
                ],
            )?;
            for (arg, i) in [("running_mean", 3), ("running_var", 4)] {
                if let (Some(stat), Some(Value::Tensor(new))) = (a.opt_tensor(arg)?, outs.get(i)) {
                    mutations.record(stat, new);
                }
            }
            first(outs)
        }
        "aten.batch_norm.default" => first(call(
            "aten._native_batch_norm_legit_no_training.default",
            vec![
                v("input")?,
                v("weight")?,
                v("bias")?,
                v("running_mean")?,
                v("running_var")?,
                v("momentum")?,
                v("eps")?,
            ],
        )?),
        "aten.max_pool2d.default" => first(call(
            "aten.max_pool2d_with_indices.default",
            vec![
                v("self")?,
                v("kernel_size")?,
                v("stride")?,
                v("padding")?,
                v("dilation")?,
                v("ceil_mode")?,
            ],
        )?),
        "aten.adaptive_avg_pool2d.default" => {
            let out = a.ints("output_size")?;
            if out.iter().all(|&o| o == 1) {
                let dims = Value::Ints(vec![SymInt::Int(-1), SymInt::Int(-2)]);
                call("aten.mean.dim", vec![v("self")?, dims, Value::Bool(true)])
            } else {
                call(
                    "aten._adaptive_avg_pool2d.default",
                    vec![v("self")?, v("output_size")?],
                )
            }
        }
        "aten.flatten.using_ints" => {
            let t = x()?;
            let sizes = t.sizes_untraced().to_vec();
            let nd = sizes.len().max(1) as i64;
            let wrap = |d: i64| if d < 0 { d + nd } else { d };
            let (s, e) = (
                wrap(a.int("start_dim")?) as usize,
                wrap(a.int("end_dim")?) as usize,
            );
            if sizes.is_empty() || s >= e {
                return Ok(vec![Value::Tensor(t)]);
            }
            let mut shape: Vec<SymInt> = sizes[..s].iter().map(|&d| SymInt::from(d)).collect();
            shape.push(SymInt::from(sizes[s..=e].iter().product::<usize>()));
            shape.extend(sizes[e + 1..].iter().map(|&d| SymInt::from(d)));
            call(
                "aten.view.default",
                vec![Value::Tensor(t), Value::Ints(shape)],
            )
        }
        "aten.linear.default" => linear(
            a.tensor("input")?,
            a.tensor("weight")?,
            a.opt_tensor("bias")?,
        ),
        "aten.matmul.default" => matmul(a.tensor("self")?, a.tensor("other")?),
        "aten.layer_norm.default" => first(call(
            "aten.native_layer_norm.default",
            vec![
                v("input")?,
                v("normalized_shape")?,
                v("weight")?,
                v("bias")?,
                v("eps")?,
            ],
        )?),
        "aten.transpose.int" => {
            let t = x()?;
            let nd = t.dim() as i64;
            let wrap = |d: i64| if d < 0 { d + nd } else { d };
            let (d0, d1) = (wrap(a.int("dim0")?), wrap(a.int("dim1")?));
            let mut perm: Vec<i64> = (0..nd).collect();
            perm.swap(d0 as usize, d1 as usize);
            permute(&t, &perm)
        }
        "aten.unflatten.int" => {
            let t = x()?;
            let nd = t.dim() as i64;
            let d = a.int("dim")?;
            let d = if d < 0 { d + nd } else { d } as usize;
            let sizes: Vec<i64> = t.sizes_untraced().iter().map(|&s| s as i64).collect();
            let mut shape = sizes[..d].to_vec();
            shape.extend(a.ints("sizes")?);
            shape.extend(&sizes[d + 1..]);
            view(&t, &shape)
        }
        "aten.squeeze.dim" => call(
            "aten.squeeze.dims",
            vec![v("self")?, Value::Ints(vec![SymInt::Int(a.int("dim")?)])],
        ),
        "aten.contiguous.default" => {
            let t = x()?;
            if t.is_contiguous() {
                return Ok(vec![Value::Tensor(t)]);
            }
            clone_contiguous(&t)
        }
        "aten.reshape.default" => {
            let t = x()?;
            let shape = a.ints("shape")?;
            if !viewable(&t, &shape) {
                return Err(Error::Value(
                    "reshape of a tensor that cannot be viewed so".into(),
                ));
            }
            view(&t, &shape)
        }
        "aten.softmax.int" => {
            let mut args = vec![v("self")?, v("dim")?, Value::Bool(false)];
            if !matches!(v("dtype")?, Value::None) {
                return Err(Error::Value("softmax with a dtype".into()));
            }
            args.truncate(3);
            call("aten._softmax.default", args)
        }
        "aten.scaled_dot_product_attention.default" => sdpa(&a),
        "aten.lstm.input" => lstm(&a),
        "aten.hardswish.default" | "aten.hardswish_.default" => {
            // x * clamp(x + 3, 0, 6) / 6, as PyTorch's decomposition writes it.
            let t = x()?;
            let m = binary("aten.mul.Tensor", &t, &hard_gate(&t)?)?;
            call("aten.div.Tensor", vec![Value::Tensor(m), int(6)])
        }
        "aten.hardsigmoid.default" | "aten.hardsigmoid_.default" => {
            let gate = hard_gate(&x()?)?;
            call("aten.div.Tensor", vec![Value::Tensor(gate), int(6)])
        }
        "aten.zeros.default" | "aten.ones.default" => {
            // full(size, 0|1, dtype=..., layout=torch.strided, device=..., pin_memory=...), every keyword
            // filled in as PyTorch's decomposition does.
            let fill = if def.name == "aten.zeros.default" {
                0
            } else {
                1
            };
            let dtype = match v("dtype")? {
                Value::None => Value::ScalarType(oxport_core::DType::F32),
                d => d,
            };
            let device = match v("device")? {
                Value::None => Value::Device("cpu".into()),
                d => d,
            };
            let pin = match v("pin_memory")? {
                Value::None => Value::Bool(false),
                p => p,
            };
            oxport_core::ops::call(
                "aten.full.default",
                vec![v("size")?, int(fill)],
                vec![
                    ("dtype".into(), dtype),
                    (
                        "layout".into(),
                        Value::Layout(oxport_core::ops::value::Layout::Strided),
                    ),
                    ("device".into(), device),
                    ("pin_memory".into(), pin),
                ],
            )
        }
        "aten.sum.default" => {
            let mut kw = vec![];
            if !matches!(v("dtype")?, Value::None) {
                kw.push(("dtype".into(), v("dtype")?));
            }
            oxport_core::ops::call(
                "aten.sum.dim_IntList",
                vec![v("self")?, Value::Ints(vec![])],
                kw,
            )
        }
        "aten.lift_fresh_copy.default" => call("aten.clone.default", vec![v("self")?]),
        "aten.detach.default" | "aten.detach_.default" => Ok(vec![Value::Tensor(x()?)]),
        "aten.silu.default" | "aten.silu_.default" => {
            let t = x()?;
            let s = unary("aten.sigmoid.default", &t)?;
            Ok(vec![Value::Tensor(binary("aten.mul.Tensor", &t, &s)?)])
        }
        "aten.dropout.default" | "aten.dropout_.default" => {
            if a.bool("train")? && a.float("p")? > 0.0 {
                return Err(Error::Value("dropout in training mode".into()));
            }
            Ok(vec![Value::Tensor(x()?)])
        }
        name => {
            if def.is_core {
                return oxport_core::ops::call(name, positional, kwargs);
            }
            // An in-place op on an intermediate value: its functional form.
            if let Some(functional) = functional_form(name) {
                return oxport_core::ops::call(&functional, positional, kwargs);
            }
            Err(Error::Value(format!("a decomposition of {name}")))
        }
    }
}

/// `clamp(clamp(x + 3, 0), None, 6)`.
fn hard_gate(x: &Tensor) -> Result<Tensor> {
    let s = one(call(
        "aten.add.Tensor",
        vec![Value::Tensor(x.clone()), int(3)],
    )?)?;
    let lo = one(call("aten.clamp.default", vec![Value::Tensor(s), int(0)])?)?;
    one(call(
        "aten.clamp.default",
        vec![Value::Tensor(lo), Value::None, int(6)],
    )?)
}

/// `aten.relu_.default` -> `aten.relu.default`, when that is a registered Core ATen op.
fn functional_form(name: &str) -> Option<String> {
    let mut parts = name.splitn(3, '.');
    let (ns, op, overload) = (parts.next()?, parts.next()?, parts.next()?);
    let base = op.strip_suffix('_')?;
    let f = format!("{ns}.{base}.{overload}");
    registry().get(&f).ok().filter(|d| d.is_core).map(|_| f)
}

fn one(outs: Vec<Value<Tensor>>) -> Result<Tensor> {
    match outs.into_iter().next() {
        Some(Value::Tensor(t)) => Ok(t),
        _ => Err(Error::Value("expected one tensor".into())),
    }
}

fn ints(v: &[i64]) -> Value<Tensor> {
    Value::Ints(v.iter().map(|&i| SymInt::Int(i)).collect())
}

fn permute(t: &Tensor, perm: &[i64]) -> Result<Vec<Value<Tensor>>> {
    call(
        "aten.permute.default",
        vec![Value::Tensor(t.clone()), ints(perm)],
    )
}

fn view(t: &Tensor, shape: &[i64]) -> Result<Vec<Value<Tensor>>> {
    call(
        "aten.view.default",
        vec![Value::Tensor(t.clone()), ints(shape)],
    )
}

fn expand(t: &Tensor, shape: &[i64]) -> Result<Vec<Value<Tensor>>> {
    call(
        "aten.expand.default",
        vec![Value::Tensor(t.clone()), ints(shape)],
    )
}

fn clone_contiguous(t: &Tensor) -> Result<Vec<Value<Tensor>>> {
    oxport_core::ops::call(
        "aten.clone.default",
        vec![Value::Tensor(t.clone())],
        vec![(
            "memory_format".into(),
            Value::MemoryFormat(oxport_core::ops::value::MemoryFormat::ContiguousFormat),
        )],
    )
}

/// Whether `t` can be viewed with `shape` without a copy (contiguous runs of merged dims).
fn viewable(t: &Tensor, shape: &[i64]) -> bool {
    if t.is_contiguous() {
        return true;
    }
    // The common case here: only splitting or keeping dims whose strides line up.
    let sizes: Vec<i64> = t.sizes_untraced().iter().map(|&s| s as i64).collect();
    let strides: Vec<i64> = t.strides().iter().map(|&s| s as i64).collect();
    let numel: i64 = sizes.iter().product();
    let mut shape = shape.to_vec();
    if let Some(i) = shape.iter().position(|&s| s == -1) {
        let known: i64 = shape.iter().filter(|&&s| s != -1).product();
        shape[i] = if known == 0 { 0 } else { numel / known };
    }
    // Walk both shapes, merging old dims into each new dim; merged old dims must be contiguous chunks.
    let (mut i, mut j) = (0usize, 0usize);
    while i < sizes.len() && j < shape.len() {
        let (mut a, mut b) = (sizes[i], shape[j]);
        let start = i;
        while a != b {
            if a < b {
                i += 1;
                if i >= sizes.len() {
                    return false;
                }
                a *= sizes[i];
            } else {
                j += 1;
                if j >= shape.len() {
                    return false;
                }
                b *= shape[j];
            }
        }
        for k in start..i {
            if sizes[k + 1] != 1 && strides[k] != strides[k + 1] * sizes[k + 1] {
                return false;
            }
        }
        i += 1;
        j += 1;
    }
    true
}

/// PyTorch's `linear` decomposition: `addmm` for a 2-d input, flatten + `addmm` + view for a contiguous
/// 3-d input with bias, else `matmul(input, weight.t())` (+ `bias`).
fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Vec<Value<Tensor>>> {
    let k = *weight.sizes_untraced().last().unwrap_or(&0) as i64;
    let out_features = weight.sizes_untraced().first().copied().unwrap_or(0) as i64;
    if let (2, Some(b)) = (input.dim(), bias) {
        let wt = one(permute(weight, &[1, 0])?)?;
        return call(
            "aten.addmm.default",
            vec![
                Value::Tensor(b.clone()),
                Value::Tensor(input.clone()),
                Value::Tensor(wt),
            ],
        );
    }
    if let (3, Some(b), true) = (input.dim(), bias, input.is_contiguous()) {
        let sizes: Vec<i64> = input.sizes_untraced().iter().map(|&s| s as i64).collect();
        let flat = one(view(input, &[sizes[0] * sizes[1], k])?)?;
        let wt = one(permute(weight, &[1, 0])?)?;
        let out = one(call(
            "aten.addmm.default",
            vec![
                Value::Tensor(b.clone()),
                Value::Tensor(flat),
                Value::Tensor(wt),
            ],
        )?)?;
        return view(&out, &[sizes[0], sizes[1], out_features]);
    }
    let wt = one(permute(weight, &[1, 0])?)?;
    let out = one(matmul(input, &wt)?)?;
    match bias {
        Some(b) => Ok(vec![Value::Tensor(binary("aten.add.Tensor", &out, b)?)]),
        None => Ok(vec![Value::Tensor(out)]),
    }
}

/// PyTorch's `matmul` decomposition for the shapes the layers use: 2-d @ 2-d is `mm`; an N-d tensor
/// whose leading dims fold times a matrix is view + `mm` + view; otherwise expand + view + `bmm` + view.
fn matmul(t1: &Tensor, t2: &Tensor) -> Result<Vec<Value<Tensor>>> {
    let s1: Vec<i64> = t1.sizes_untraced().iter().map(|&s| s as i64).collect();
    let s2: Vec<i64> = t2.sizes_untraced().iter().map(|&s| s as i64).collect();
    let (d1, d2) = (s1.len(), s2.len());
    if d1 < 2 || d2 < 2 {
        return Err(Error::Value("matmul with a vector".into()));
    }
    if d1 == 2 && d2 == 2 {
        return call(
            "aten.mm.default",
            vec![Value::Tensor(t1.clone()), Value::Tensor(t2.clone())],
        );
    }
    let st1: Vec<i64> = t1.strides().iter().map(|&s| s as i64).collect();
    let folds = d1 >= 3 && d2 == 2 && (0..d1 - 2).all(|i| st1[i] == st1[i + 1] * s1[i + 1]);
    if folds {
        let m: i64 = s1[..d1 - 1].iter().product();
        let flat = one(view(t1, &[m, s1[d1 - 1]])?)?;
        let out = one(call(
            "aten.mm.default",
            vec![Value::Tensor(flat), Value::Tensor(t2.clone())],
        )?)?;
        let mut shape = s1[..d1 - 1].to_vec();
        shape.push(s2[1]);
        return view(&out, &shape);
    }
    // Batched: broadcast the batch dims, fold them, bmm, unfold.
    let (b1, b2) = (&s1[..d1 - 2], &s2[..d2.saturating_sub(2)]);
    let nb = b1.len().max(b2.len());
    let mut batch = vec![1i64; nb];
    for (i, d) in batch.iter_mut().enumerate() {
        let x = if i + b1.len() >= nb {
            b1[i + b1.len() - nb]
        } else {
            1
        };
        let y = if i + b2.len() >= nb {
            b2[i + b2.len() - nb]
        } else {
            1
        };
        *d = x.max(y);
    }
    let prod: i64 = batch.iter().product();
    let (n, m1) = (s1[d1 - 2], s1[d1 - 1]);
    let (m2, p) = (s2[d2 - 2], s2[d2 - 1]);
    let with = |tail: [i64; 2]| -> Vec<i64> { batch.iter().copied().chain(tail).collect() };
    let e1 = one(expand(t1, &with([n, m1]))?)?;
    let v1 = one(view(&e1, &[prod, n, m1])?)?;
    let e2 = one(expand(t2, &with([m2, p]))?)?;
    let v2 = one(view(&e2, &[prod, m2, p])?)?;
    let out = one(call(
        "aten.bmm.default",
        vec![Value::Tensor(v1), Value::Tensor(v2)],
    )?)?;
    view(&out, &with([n, p]))
}

/// `scaled_dot_product_attention` without mask, dropout or causality, as PyTorch decomposes it on CPU
/// (flash attention's math form): both q and k scaled by `sqrt(scale)`, softmax with fully masked rows
/// zeroed, the output re-laid out as the flash kernel returns it.
fn sdpa(a: &Args<Tensor>) -> Result<Vec<Value<Tensor>>> {
    if a.opt_tensor("attn_mask")?.is_some() || a.bool("is_causal")? || a.float("dropout_p")? > 0.0 {
        return Err(Error::Value(
            "scaled_dot_product_attention with a mask, causality or dropout".into(),
        ));
    }
    let (q, k, v) = (a.tensor("query")?, a.tensor("key")?, a.tensor("value")?);
    let e = *q.sizes_untraced().last().unwrap_or(&1) as f64;
    let scale = a.opt_float("scale")?.unwrap_or(1.0 / e.sqrt());
    let sqrt_scale = Value::Scalar(Scalar::Float(scale.sqrt()));
    let nd = k.dim() as i64;
    let mut perm: Vec<i64> = (0..nd).collect();
    perm.swap(nd as usize - 1, nd as usize - 2);
    let qs = one(call(
        "aten.mul.Scalar",
        vec![Value::Tensor(q.clone()), sqrt_scale.clone()],
    )?)?;
    let kt = one(permute(k, &perm)?)?;
    let ks = one(call(
        "aten.mul.Scalar",
        vec![Value::Tensor(kt), sqrt_scale],
    )?)?;
    let scores = one(matmul(&qs, &ks)?)?;
    let sm = one(call(
        "aten._softmax.default",
        vec![
            Value::Tensor(scores.clone()),
            Value::Int(SymInt::Int(-1)),
            Value::Bool(false),
        ],
    )?)?;
    let inf = Value::Scalar(Scalar::Float(f64::NEG_INFINITY));
    let eq = one(call("aten.eq.Scalar", vec![Value::Tensor(scores), inf])?)?;
    let not = one(call("aten.logical_not.default", vec![Value::Tensor(eq)])?)?;
    let any = one(call(
        "aten.any.dim",
        vec![
            Value::Tensor(not),
            Value::Int(SymInt::Int(-1)),
            Value::Bool(true),
        ],
    )?)?;
    let masked = one(call("aten.logical_not.default", vec![Value::Tensor(any)])?)?;
    let zeros = one(oxport_core::ops::call(
        "aten.full_like.default",
        vec![Value::Tensor(sm.clone()), int(0)],
        vec![
            ("pin_memory".into(), Value::Bool(false)),
            (
                "memory_format".into(),
                Value::MemoryFormat(oxport_core::ops::value::MemoryFormat::PreserveFormat),
            ),
        ],
    )?)?;
    let w = one(call(
        "aten.where.self",
        vec![
            Value::Tensor(masked),
            Value::Tensor(zeros),
            Value::Tensor(sm),
        ],
    )?)?;
    let out = one(matmul(&w, v)?)?;
    // The CPU flash-attention decomposition returns `out.permute(2, 0, 1, 3).contiguous().permute(1, 2, 0, 3)`.
    if out.dim() != 4 {
        return Ok(vec![Value::Tensor(out)]);
    }
    let p1 = one(permute(&out, &[2, 0, 1, 3])?)?;
    let c = if p1.is_contiguous() {
        p1
    } else {
        one(clone_contiguous(&p1)?)?
    };
    permute(&c, &[1, 2, 0, 3])
}

/// `t.unbind(0)` as PyTorch decomposes it: every slice, then every squeeze.
fn unbind0(t: &Tensor) -> Result<Vec<Tensor>> {
    let n = t.sizes_untraced().first().copied().unwrap_or(0) as i64;
    let mut slices = vec![];
    for i in 0..n {
        slices.push(one(call(
            "aten.slice.Tensor",
            vec![
                Value::Tensor(t.clone()),
                Value::Int(SymInt::Int(0)),
                Value::Int(SymInt::Int(i)),
                Value::Int(SymInt::Int(i + 1)),
            ],
        )?)?);
    }
    slices.iter().map(squeeze0).collect()
}

fn squeeze0(t: &Tensor) -> Result<Tensor> {
    one(call(
        "aten.squeeze.dims",
        vec![Value::Tensor(t.clone()), ints(&[0])],
    )?)
}

fn unsqueeze0(t: &Tensor) -> Result<Tensor> {
    one(call(
        "aten.unsqueeze.default",
        vec![Value::Tensor(t.clone()), Value::Int(SymInt::Int(0))],
    )?)
}

fn cat(ts: &[Tensor], dim: i64) -> Result<Tensor> {
    let mut args = vec![Value::Tensors(ts.to_vec())];
    if dim != 0 {
        args.push(Value::Int(SymInt::Int(dim)));
    }
    one(call("aten.cat.default", args)?)
}

fn unary(op: &str, t: &Tensor) -> Result<Tensor> {
    one(call(op, vec![Value::Tensor(t.clone())])?)
}

fn binary(op: &str, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    one(call(
        op,
        vec![Value::Tensor(x.clone()), Value::Tensor(y.clone())],
    )?)
}

/// `aten.lstm.input` as PyTorch's `lstm_impl` decomposition unrolls it.
fn lstm(a: &Args<Tensor>) -> Result<Vec<Value<Tensor>>> {
    let input = a.tensor("input")?;
    let hx = a.tensors("hx")?;
    let params = a.tensors("params")?;
    let has_biases = a.bool("has_biases")?;
    let layers = a.int("num_layers")? as usize;
    let dirs = if a.bool("bidirectional")? { 2 } else { 1 };
    if a.bool("train")? && a.float("dropout")? > 0.0 && layers > 1 {
        return Err(Error::Value("lstm dropout in training mode".into()));
    }
    let group = if has_biases { 4 } else { 2 };
    if hx.len() != 2 || params.len() != layers * dirs * group {
        return Err(Error::Value("an lstm with projections".into()));
    }
    let (h0, c0) = (unbind0(&hx[0])?, unbind0(&hx[1])?);
    let batch_first = a.bool("batch_first")?;
    let mut x = if batch_first {
        one(permute(input, &[1, 0, 2])?)?
    } else {
        input.clone()
    };
    let (mut hs, mut cs) = (vec![], vec![]);
    for layer in 0..layers {
        let mut outs = vec![];
        for dir in 0..dirs {
            let k = layer * dirs + dir;
            let p = &params[k * group..(k + 1) * group];
            let (out, h, c) = lstm_layer(&x, &h0[k], &c0[k], p, has_biases, dir == 1)?;
            outs.push(out);
            hs.push(h);
            cs.push(c);
        }
        x = if dirs == 2 {
            let d = outs[0].dim() as i64 - 1;
            cat(&outs, d)?
        } else {
            outs.remove(0)
        };
    }
    if batch_first {
        x = one(permute(&x, &[1, 0, 2])?)?;
    }
    // torch.stack(list, 0): cat, then a view with the new leading dim.
    let stack = |ts: &[Tensor]| -> Result<Tensor> {
        let joined = cat(ts, 0)?;
        let mut shape: Vec<i64> = vec![ts.len() as i64];
        shape.extend(ts[0].sizes_untraced().iter().map(|&s| s as i64));
        one(view(&joined, &shape)?)
    };
    let (h_n, c_n) = (stack(&hs)?, stack(&cs)?);
    Ok(vec![
        Value::Tensor(x),
        Value::Tensor(h_n),
        Value::Tensor(c_n),
    ])
}

/// `one_layer_lstm`: the input projection for all steps, then one cell per step (reversed for the
/// backward direction). Returns the outputs and the final hidden and cell states.
fn lstm_layer(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    p: &[Tensor],
    has_biases: bool,
    reverse: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (w_ih, w_hh) = (&p[0], &p[1]);
    let (b_ih, b_hh) = if has_biases {
        (Some(&p[2]), Some(&p[3]))
    } else {
        (None, None)
    };
    let (mut h, mut c) = (unsqueeze0(h0)?, unsqueeze0(c0)?);
    let mut pre = one(linear(x, w_ih, b_ih)?)?;
    if reverse {
        pre = one(call(
            "aten.flip.default",
            vec![Value::Tensor(pre), ints(&[0])],
        )?)?;
    }
    let mut steps = vec![];
    for step in unbind0(&pre)? {
        let lin = one(linear(&h, w_hh, b_hh)?)?;
        let gates = binary("aten.add.Tensor", &lin, &step)?;
        let hsize = *gates.sizes_untraced().last().unwrap_or(&0) as i64 / 4;
        let chunks = match call(
            "aten.split_with_sizes.default",
            vec![
                Value::Tensor(gates),
                ints(&[hsize; 4]),
                Value::Int(SymInt::Int(2)),
            ],
        )?
        .into_iter()
        .next()
        {
            Some(Value::Tensors(ts)) if ts.len() == 4 => ts,
            _ => return Err(Error::Value("lstm gates did not split in four".into())),
        };
        let i_g = unary("aten.sigmoid.default", &chunks[0])?;
        let f_g = unary("aten.sigmoid.default", &chunks[1])?;
        let g_g = unary("aten.tanh.default", &chunks[2])?;
        let o_g = unary("aten.sigmoid.default", &chunks[3])?;
        let fc = binary("aten.mul.Tensor", &f_g, &c)?;
        let ig = binary("aten.mul.Tensor", &i_g, &g_g)?;
        c = binary("aten.add.Tensor", &fc, &ig)?;
        let tc = unary("aten.tanh.default", &c)?;
        h = binary("aten.mul.Tensor", &o_g, &tc)?;
        steps.push(h.clone());
    }
    if reverse {
        steps.reverse();
    }
    let out = cat(&steps, 0)?;
    Ok((out, squeeze0(&h)?, squeeze0(&c)?))
}

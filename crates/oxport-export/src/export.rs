//! [`export`]: trace a model's forward into an [`ExportedProgram`].
use crate::module::{named_buffers, named_modules, named_parameters, Forward};
use crate::tracer::{self, view_key, State};
use oxport_core::ops::TensorMeta as CoreMeta;
use oxport_core::Tensor;
use oxport_ir::schema as ir;
use oxport_ir::{ExportedProgram, OrderedMap, Weight};
use oxport_runtime::PyValue;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Tracing failed (an op's checks, or a read of tensor values during export).
    #[error("{0}")]
    Trace(#[from] oxport_core::Error),
    /// The inputs or outputs cannot be represented.
    #[error("{0}")]
    Io(String),
}

/// `torch.export.export(model, args, kwargs)`: runs `model`'s forward on fake copies of the inputs,
/// recording every op, and returns the program (training IR) with the model's state.
///
/// ```
/// use oxport_core::prelude::*;
/// use oxport_export::{export, Forward, Module};
/// use oxport_runtime::PyValue;
/// struct SinCos;
/// impl Module for SinCos {
///     fn type_name(&self) -> String { "__main__.SinCos".into() }
/// }
/// impl Forward for SinCos {
///     fn forward_arg_names(&self) -> Vec<String> { vec!["x".into(), "y".into()] }
///     fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
///         let (x, y) = (args[0].as_tensor().unwrap(), args[1].as_tensor().unwrap());
///         Ok(x.sin()?.add(&y.cos()?)?.into())
///     }
/// }
/// let x = Tensor::zeros(&[10, 10], DType::F32)?;
/// let ep = export(&SinCos, vec![x.clone().into(), x.into()], vec![]).unwrap();
/// assert!(ep.to_string().contains("add: \"f32[10, 10]\" = torch.ops.aten.add.Tensor(sin, cos)"));
/// # Ok::<(), oxport_core::Error>(())
/// ```
pub fn export(
    model: &dyn Forward,
    args: Vec<PyValue>,
    kwargs: Vec<(String, PyValue)>,
) -> Result<ExportedProgram, ExportError> {
    export_dynamic(model, args, kwargs, &[])
}

/// A dynamic dimension, `torch.export.Dim(name, min=..., max=...)`: every input dim given the same `Dim`
/// shares one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    /// Its name (dims with the same name are the same size).
    pub name: String,
    /// Smallest allowed size (PyTorch's default: 0).
    pub min: Option<i64>,
    /// Largest allowed size (default: unbounded, `int_oo`).
    pub max: Option<i64>,
}

impl Dim {
    /// `Dim(name, min=min, max=max)`.
    pub fn new(name: &str, min: Option<i64>, max: Option<i64>) -> Dim {
        Dim {
            name: name.into(),
            min,
            max,
        }
    }
}

/// `torch.export.export(model, args, kwargs, dynamic_shapes=...)`: as [`export`], with the listed input
/// dims symbolic — `(input name, dim, Dim)`. A dim named by the same `Dim` in several inputs is one
/// symbol. Export fails, naming the guard, if tracing had to assume anything about a symbolic size.
///
/// ```
/// use oxport_core::prelude::*;
/// use oxport_export::{export_dynamic, Dim};
/// use oxport_export::zoo::SinCos;
/// let x = Tensor::zeros(&[10, 10], DType::F32)?;
/// let batch = Dim::new("batch", Some(3), Some(1024));
/// let ds = [("x".to_string(), 0, batch.clone()), ("y".to_string(), 0, batch)];
/// let ep = export_dynamic(&SinCos, vec![x.clone().into(), x.into()], vec![], &ds).unwrap();
/// let text = ep.to_string();
/// assert!(text.contains("def forward(self, x: \"f32[s17, 10]\", y: \"f32[s17, 10]\"):"), "{text}");
/// assert!(text.ends_with("Range constraints: {s17: VR[3, 1024]}\n"), "{text}");
/// # Ok::<(), oxport_core::Error>(())
/// ```
pub fn export_dynamic(
    model: &dyn Forward,
    args: Vec<PyValue>,
    kwargs: Vec<(String, PyValue)>,
    dynamic_shapes: &[(String, usize, Dim)],
) -> Result<ExportedProgram, ExportError> {
    let all_modules = named_modules(model);
    let module_order: Vec<String> = all_modules.iter().map(|(fqn, _, _)| fqn.clone()).collect();
    let modules: HashMap<usize, (String, String)> = all_modules
        .into_iter()
        .map(|(fqn, ty, addr)| (addr, (fqn, ty)))
        .collect();
    let state = Rc::new(RefCell::new(State::new(modules, model.type_name())));
    let params = named_parameters(model);
    let buffers = named_buffers(model);
    let mut input_specs = vec![];
    let mut placeholders: Vec<(String, ir::TensorMeta)> = vec![];
    {
        let mut st = state.borrow_mut();
        for (fqn, t) in &params {
            let name = st.ns.create_name(&format!("p_{}", placeholder_base(fqn)));
            st.values.insert(view_key(t), name.clone());
            placeholders.push((
                name.clone(),
                ir::TensorMeta::from_core(&CoreMeta::of(t), true),
            ));
            input_specs.push(ir::InputSpec::Parameter(ir::InputToParameterSpec {
                arg: ir::TensorArgument::new(name),
                parameter_name: fqn.clone(),
            }));
        }
        for (fqn, t, persistent) in &buffers {
            let name = st.ns.create_name(&format!("b_{}", placeholder_base(fqn)));
            st.values.insert(view_key(t), name.clone());
            placeholders.push((
                name.clone(),
                ir::TensorMeta::from_core(&CoreMeta::of(t), false),
            ));
            input_specs.push(ir::InputSpec::Buffer(ir::InputToBufferSpec {
                arg: ir::TensorArgument::new(name),
                buffer_name: fqn.clone(),
                persistent: *persistent,
            }));
        }
    }
    // Symbols for the dynamic dims, named as PyTorch names them: `s{sha256("L['x'].size()[0]") % 100}`,
    // probing upwards on collisions, in input order. Dims sharing a `Dim` take its smallest symbol.
    let arg_names = model.forward_arg_names();
    let input_order: Vec<String> = arg_names
        .iter()
        .take(args.len())
        .cloned()
        .chain(kwargs.iter().map(|(k, _)| k.clone()))
        .collect();
    let mut dyn_sorted: Vec<&(String, usize, Dim)> = dynamic_shapes.iter().collect();
    for (name, _, _) in dynamic_shapes {
        if !input_order.contains(name) {
            return Err(ExportError::Io(format!(
                "dynamic_shapes names '{name}', which is not an input of forward ({})",
                input_order.join(", ")
            )));
        }
    }
    dyn_sorted.sort_by_key(|(n, d, _)| (input_order.iter().position(|x| x == n), *d));
    let mut used_ids = std::collections::HashSet::new();
    let mut dim_symbol: HashMap<String, (u64, Dim)> = HashMap::new();
    let mut symbol_of: HashMap<(String, usize), String> = HashMap::new();
    let mut ids: Vec<((String, usize), u64, String)> = vec![];
    for (name, d, dim) in dyn_sorted {
        use sha2::Digest;
        let source = format!("L['{name}'].size()[{d}]");
        let digest = sha2::Sha256::digest(source.as_bytes());
        // The digest as a big integer, mod 100.
        let mut id = digest
            .iter()
            .fold(0u64, |acc, &b| (acc * 256 + b as u64) % 100);
        while used_ids.contains(&id) {
            id += 1;
        }
        used_ids.insert(id);
        let e = dim_symbol
            .entry(dim.name.clone())
            .or_insert((id, dim.clone()));
        if id < e.0 {
            e.0 = id;
        }
        ids.push(((name.clone(), *d), id, dim.name.clone()));
    }
    let mut dim_of: HashMap<(String, usize), String> = HashMap::new();
    // Symbols in the order the inputs' dims create them, the order of PyTorch's range constraints.
    let mut dim_order: Vec<String> = vec![];
    for (key, _, dim_name) in ids {
        if !dim_order.contains(&dim_name) {
            dim_order.push(dim_name.clone());
        }
        symbol_of.insert(key.clone(), format!("s{}", dim_symbol[&dim_name].0));
        dim_of.insert(key, dim_name);
    }
    let mut range_constraints = OrderedMap::new();
    let symbols_in_order: Vec<&(u64, Dim)> = dim_order.iter().map(|d| &dim_symbol[d]).collect();
    // User inputs: fake copies named after forward's arguments.
    let mut user: Vec<(String, ir::TensorMeta)> = vec![];
    let mut user_metas: Vec<(String, CoreMeta)> = vec![];
    let mut fake_input = |name: &str, v: &PyValue| -> Result<PyValue, ExportError> {
        match v {
            PyValue::Tensor(t) => {
                let mut meta = CoreMeta::of(t);
                let mut symbolic = false;
                for (d, size) in meta.sizes.iter_mut().enumerate() {
                    if let Some(sym) = symbol_of.get(&(name.to_string(), d)) {
                        let hint = t.sizes()[d];
                        if hint < 2 {
                            let dim = &dim_of[&(name.to_string(), d)];
                            return Err(ExportError::Io(format!(
                                "Constraints violated ({dim}): {name}.size()[{d}] is marked dynamic, but its example \
                                 size is {hint}; export specializes sizes 0 and 1, as PyTorch does. Export with an \
                                 example of size 2 or more, or make the dim static (drop ({name:?}, {d}, {dim}) from \
                                 dynamic_shapes)"
                            )));
                        }
                        *size = oxport_core::SymInt::symbol(sym, t.sizes()[d] as i64);
                        symbolic = true;
                    }
                }
                if symbolic {
                    meta.strides = oxport_core::ops::value::contiguous_sym_strides(&meta.sizes);
                }
                let fake = tracer::fake_of(&meta);
                let mut st = state.borrow_mut();
                let n = st.ns.take_exact(&user_input_base(name));
                st.values.insert(view_key(&fake), n.clone());
                if symbolic {
                    st.metas.insert(view_key(&fake), meta.clone());
                    st.bind_input_symbols(&meta);
                }
                user_metas.push((n.clone(), meta.clone()));
                user.push((n, ir::TensorMeta::from_core(&meta, false)));
                Ok(PyValue::Tensor(fake))
            }
            other => Err(ExportError::Io(format!(
                "input '{name}': only tensors, and tuples and lists of them, are supported yet, got {other:?}"
            ))),
        }
    };
    // Nested inputs flatten as PyTorch's pytree does: `hx=(h, c)` becomes placeholders `hx_0`, `hx_1`.
    fn fake_tree(
        name: &str,
        v: &PyValue,
        leaf: &mut dyn FnMut(&str, &PyValue) -> Result<PyValue, ExportError>,
    ) -> Result<PyValue, ExportError> {
        match v {
            PyValue::Tuple(items) | PyValue::List(items) => {
                let fakes = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| fake_tree(&format!("{name}_{i}"), x, leaf))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(match v {
                    PyValue::Tuple(_) => PyValue::Tuple(fakes),
                    _ => PyValue::List(fakes),
                })
            }
            other => leaf(name, other),
        }
    }
    let mut fake_args = vec![];
    for (i, a) in args.iter().enumerate() {
        let name = arg_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("arg{i}"));
        fake_args.push(fake_tree(&name, a, &mut fake_input)?);
    }
    let mut fake_kwargs = vec![];
    for (k, v) in &kwargs {
        fake_kwargs.push((k.clone(), fake_tree(k, v, &mut fake_input)?));
    }
    let (out, guards) = oxport_core::sym::with_guard_sink(|| {
        tracer::trace(state.clone(), || model.forward_py(&fake_args, &fake_kwargs))
    });
    let out = out?;
    if let Some(e) = state.borrow_mut().sym.specialized.take() {
        return Err(ExportError::Io(e));
    }
    // Sound export: every decision the trace took on a symbolic size must hold for all sizes in range.
    // As in PyTorch, tracing may assume a dynamic size is neither 0 nor 1 (examples of size 0 or 1 are
    // refused above): `s != 1` holds for the traced program even when the Dim allows 1.
    let ranges: HashMap<String, (i64, Option<i64>)> = symbols_in_order
        .iter()
        .map(|(id, d)| (format!("s{id}"), (d.min.unwrap_or(0).max(2), d.max)))
        .collect();
    let op_guards = std::mem::take(&mut state.borrow_mut().guards);
    let all = op_guards
        .iter()
        .map(|(g, op, at)| (g, Some((*op, *at))))
        .chain(guards.iter().map(|g| (g, None)));
    let symbolic: Vec<String> = all
        .filter(|(g, _)| (g.lhs.is_symbolic() || g.rhs.is_symbolic()) && !holds_for_all(g, &ranges))
        .map(|(g, site)| match site {
            Some((op, at)) => format!("{g} (in {op} at {}:{})", at.file(), at.line()),
            None => g.to_string(),
        })
        .collect();
    if !symbolic.is_empty() {
        let mut names: Vec<String> = dim_symbol
            .iter()
            .map(|(n, (id, _))| format!("{n} = s{id}"))
            .collect();
        names.sort();
        return Err(ExportError::Io(format!(
            "Constraints violated ({}): tracing assumed {} about the dynamic dims, which does not hold for every \
             size in their ranges. Narrow the Dim's min/max to where it holds, make the dim static, or change \
             the model so it does not depend on it",
            names.join(", "),
            symbolic.join(", ")
        )));
    }
    for (id, dim) in &symbols_in_order {
        range_constraints.insert(
            format!("s{id}"),
            ir::RangeConstraint {
                min_val: Some(dim.min.unwrap_or(0)),
                max_val: dim.max,
            },
        );
    }

    let mut st = state.borrow_mut();
    // Outputs.
    let mut out_leaves = vec![];
    flatten_out(&out, &mut out_leaves)?;
    let mut outputs = vec![];
    let mut output_specs = vec![];
    for t in &out_leaves {
        let name = st.values.get(&view_key(t)).cloned().ok_or_else(|| {
            ExportError::Io("forward returned a tensor export did not trace".into())
        })?;
        let arg = ir::Argument::AsTensor(ir::TensorArgument::new(name));
        outputs.push(arg.clone());
        output_specs.push(ir::OutputSpec::UserOutput(ir::UserOutputSpec { arg }));
    }
    // Lifted constants go between the state and the user inputs, as in PyTorch.
    for (name, target, t) in &st.lifted.clone() {
        placeholders.push((
            name.clone(),
            ir::TensorMeta::from_core(&CoreMeta::of(t), false),
        ));
        input_specs.push(ir::InputSpec::TensorConstant(
            ir::InputToTensorConstantSpec {
                arg: ir::TensorArgument::new(name.clone()),
                tensor_constant_name: target.clone(),
            },
        ));
    }
    for (name, _) in &user {
        input_specs.push(ir::InputSpec::UserInput(ir::UserInputSpec {
            arg: ir::Argument::AsTensor(ir::TensorArgument::new(name.clone())),
        }));
    }
    placeholders.extend(user);
    let mut tensor_values = OrderedMap::new();
    let mut inputs = vec![];
    for (name, meta) in placeholders {
        inputs.push(ir::Argument::AsTensor(ir::TensorArgument::new(
            name.clone(),
        )));
        tensor_values.insert(name, meta);
    }
    for (k, v) in st.tensor_values.iter() {
        tensor_values.insert(k, v.clone());
    }
    let (nodes, sym_int_values) = bind_symbols(&mut st, &user_metas);
    let sym_float_values = std::mem::take(&mut st.sym.sym_float_values);
    let graph = ir::Graph {
        inputs,
        outputs,
        nodes,
        tensor_values,
        sym_int_values,
        sym_bool_values: OrderedMap::new(),
        is_single_tensor_return: false,
        custom_obj_values: OrderedMap::new(),
        sym_float_values,
    };
    let in_spec = format!(
        "[1, {}]",
        node_spec(
            "builtins.tuple",
            "\"null\"",
            &[
                node_spec(
                    "builtins.tuple",
                    "\"null\"",
                    &args.iter().map(out_spec_json).collect::<Vec<_>>()
                ),
                {
                    let keys: Vec<String> =
                        kwargs.iter().map(|(k, _)| format!("\\\"{k}\\\"")).collect();
                    node_spec(
                        "builtins.dict",
                        &format!("\"[{}]\"", keys.join(", ")),
                        &kwargs
                            .iter()
                            .map(|(_, v)| out_spec_json(v))
                            .collect::<Vec<_>>(),
                    )
                }
            ]
        )
    );
    let out_spec = format!("[1, {}]", out_spec_json(&out));
    let mut module_call_graph = vec![ir::ModuleCallEntry {
        fqn: String::new(),
        signature: Some(ir::ModuleCallSignature {
            inputs: vec![],
            outputs: vec![],
            in_spec,
            out_spec,
            forward_arg_names: Some(
                arg_names
                    .iter()
                    .take(args.len())
                    .cloned()
                    .chain(kwargs.iter().map(|(k, _)| k.clone()))
                    .collect(),
            ),
        }),
    }];
    for fqn in module_order.into_iter().filter(|f| !f.is_empty()) {
        module_call_graph.push(ir::ModuleCallEntry {
            fqn,
            signature: None,
        });
    }
    let mut state_dict = OrderedMap::new();
    for (fqn, t) in params {
        state_dict.insert(
            fqn,
            Weight {
                tensor: t,
                is_param: true,
                requires_grad: true,
            },
        );
    }
    let mut constants = OrderedMap::new();
    for (fqn, t, persistent) in buffers {
        if persistent {
            state_dict.insert(
                fqn,
                Weight {
                    tensor: t,
                    is_param: false,
                    requires_grad: false,
                },
            );
        } else {
            constants.insert(fqn, t);
        }
    }
    for (_, target, t) in &st.lifted {
        constants.insert(target.clone(), t.clone());
    }
    let mut opset_version = OrderedMap::new();
    opset_version.insert("aten", 10);
    Ok(ExportedProgram {
        graph_module: ir::GraphModule {
            graph,
            signature: ir::GraphSignature {
                input_specs,
                output_specs,
            },
            module_call_graph,
            metadata: OrderedMap::new(),
            treespec_namedtuple_fields: OrderedMap::new(),
        },
        opset_version,
        range_constraints,
        schema_version: ir::SCHEMA_VERSION,
        verifiers: vec!["TRAINING".into()],
        torch_version: format!("oxport {}", env!("CARGO_PKG_VERSION")),
        guards_code: vec![],
        state_dict,
        constants,
    })
}

/// The placeholder name of a parameter, buffer or constant without its `p_`/`b_`/`c_` prefix, as
/// PyTorch's `placeholder_naming_pass` makes it: a leading `self_` dropped (`self_attn.in_proj_weight` ->
/// `attn_in_proj_weight`), lower case, anything but letters and digits replaced by `_`.
pub(crate) fn placeholder_base(target: &str) -> String {
    let t = target.strip_prefix("self_").unwrap_or(target);
    user_input_base(t)
}

/// A user input's name (or pytree path) as a placeholder name: lower case, non-alphanumerics to `_`.
fn user_input_base(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Binds each symbol the graph uses to a `sym_size_int` node on the last user-input dim that has it, as
/// PyTorch's `insert_deferred_runtime_asserts` does: every symbolic input dim takes a name (after all
/// traced names) in input order, the last one per symbol wins, and the winners that are used go right
/// after the placeholders, in that order.
fn bind_symbols(
    st: &mut State,
    user: &[(String, CoreMeta)],
) -> (Vec<ir::Node>, OrderedMap<ir::SymInt>) {
    use oxport_core::sym::SymExpr;
    let mut winners: Vec<(String, String, String, usize, oxport_core::SymInt)> = vec![];
    for (input, meta) in user {
        for (d, size) in meta.sizes.iter().enumerate() {
            let oxport_core::SymInt::Sym(e) = size else {
                continue;
            };
            let SymExpr::Symbol { name: sym, .. } = &**e else {
                continue;
            };
            let node = st.ns.create_name("sym_size_int");
            winners.retain(|w| w.0 != **sym);
            winners.push((sym.to_string(), node, input.clone(), d, size.clone()));
        }
    }
    let mut nodes = std::mem::take(&mut st.nodes);
    let renames: HashMap<String, String> = winners
        .iter()
        .map(|(sym, node, ..)| (crate::sym_trace::token(sym), node.clone()))
        .collect();
    let mut used = std::collections::HashSet::new();
    for n in &mut nodes {
        for a in &mut n.inputs {
            rename_sym_args(&mut a.arg, &renames, &mut used);
        }
    }
    winners.sort_by_key(|w| nodes_index(&w.1));
    let mut front = vec![];
    let mut sym_int_values = OrderedMap::new();
    for (_, node, input, d, size) in winners.into_iter().filter(|w| used.contains(&w.1)) {
        let mut metadata = OrderedMap::new();
        metadata.insert(
            "stack_trace",
            "File \"torch/fx/passes/runtime_assert.py\", line 24, in insert_deferred_runtime_asserts"
                .to_string(),
        );
        metadata.insert(
            "nn_module_stack",
            ["_empty_nn_module_stack_from_metadata_hook"; 3].join(","),
        );
        metadata.insert(
            "torch_fn",
            "sym_size.int_0;OpOverload.sym_size.int".to_string(),
        );
        front.push(ir::Node {
            target: "torch.ops.aten.sym_size.int".into(),
            inputs: vec![
                ir::NamedArgument {
                    name: "self".into(),
                    arg: ir::Argument::AsTensor(ir::TensorArgument::new(input)),
                    kind: Some(ir::ArgumentKind::Positional),
                },
                ir::NamedArgument {
                    name: "dim".into(),
                    arg: ir::Argument::AsInt(d as i64),
                    kind: Some(ir::ArgumentKind::Positional),
                },
            ],
            outputs: vec![ir::Argument::AsSymInt(ir::SymIntArgument::AsName(
                node.clone(),
            ))],
            metadata,
            is_hop_single_tensor_return: None,
            name: Some(node.clone()),
        });
        sym_int_values.insert(node, ir::SymInt::from_core(&size));
    }
    for (k, v) in std::mem::take(&mut st.sym.sym_int_values).iter() {
        sym_int_values.insert(k, v.clone());
    }
    front.extend(nodes);
    (front, sym_int_values)
}

/// The numeric suffix FX gave a name (`sym_size_int_3` -> 3, `sym_size_int` -> 0).
fn nodes_index(name: &str) -> u64 {
    name.rsplit('_')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn rename_sym_args(
    a: &mut ir::Argument,
    renames: &HashMap<String, String>,
    used: &mut std::collections::HashSet<String>,
) {
    let mut fix = |s: &mut ir::SymIntArgument| {
        if let ir::SymIntArgument::AsName(n) = s {
            if let Some(r) = renames.get(n.as_str()) {
                *n = r.clone();
                used.insert(r.clone());
            }
        }
    };
    match a {
        ir::Argument::AsSymInt(s) => fix(s),
        ir::Argument::AsSymInts(v) => v.iter_mut().for_each(fix),
        _ => {}
    }
}

/// Bounds of an expression over the symbols' ranges (`None`: unbounded or not computed).
fn interval(
    e: &oxport_core::sym::SymExpr,
    r: &HashMap<String, (i64, Option<i64>)>,
) -> (Option<i64>, Option<i64>) {
    use oxport_core::sym::SymExpr as E;
    let add = |a: Option<i64>, b: Option<i64>| a.zip(b).and_then(|(a, b)| a.checked_add(b));
    match e {
        E::Const(c) => (Some(*c), Some(*c)),
        E::Symbol { name, .. } => match r.get(name.as_ref()) {
            Some((lo, hi)) => (Some(*lo), *hi),
            None => (None, None),
        },
        E::Add(terms) => terms.iter().fold((Some(0), Some(0)), |(lo, hi), t| {
            let (a, b) = interval(t, r);
            (add(lo, a), add(hi, b))
        }),
        E::Mul(factors) => {
            // Only products of non-negative factors are bounded here (sizes are).
            factors.iter().fold((Some(1), Some(1)), |(lo, hi), t| {
                let (a, b) = interval(t, r);
                let nonneg = a.is_some_and(|a| a >= 0) && lo.is_some_and(|l| l >= 0);
                if !nonneg {
                    return (None, None);
                }
                (
                    lo.zip(a).and_then(|(x, y)| x.checked_mul(y)),
                    hi.zip(b).and_then(|(x, y)| x.checked_mul(y)),
                )
            })
        }
        _ => (None, None),
    }
}

/// True if the guard holds for every size in the symbols' ranges (so it constrains nothing).
fn holds_for_all(g: &oxport_core::sym::Guard, r: &HashMap<String, (i64, Option<i64>)>) -> bool {
    use oxport_core::sym::Rel;
    if g.lhs == g.rhs {
        return matches!(g.rel, Rel::Eq | Rel::Ge);
    }
    let diff = g.lhs.sub(&g.rhs);
    let (lo, hi) = match &diff {
        oxport_core::SymInt::Int(c) => (Some(*c), Some(*c)),
        oxport_core::SymInt::Sym(e) => interval(e, r),
    };
    match g.rel {
        Rel::Eq => lo == Some(0) && hi == Some(0),
        Rel::Ne => lo.is_some_and(|l| l > 0) || hi.is_some_and(|h| h < 0),
        Rel::Lt => hi.is_some_and(|h| h < 0),
        Rel::Ge => lo.is_some_and(|l| l >= 0),
    }
}

const LEAF: &str = "{\"type\": null, \"context\": null, \"children_spec\": []}";

fn node_spec(ty: &str, context: &str, children: &[String]) -> String {
    format!(
        "{{\"type\": \"{ty}\", \"context\": {context}, \"children_spec\": [{}]}}",
        children.join(", ")
    )
}

fn out_spec_json(v: &PyValue) -> String {
    match v {
        PyValue::Tuple(items) => node_spec(
            "builtins.tuple",
            "\"null\"",
            &items.iter().map(out_spec_json).collect::<Vec<_>>(),
        ),
        PyValue::List(items) => node_spec(
            "builtins.list",
            "\"null\"",
            &items.iter().map(out_spec_json).collect::<Vec<_>>(),
        ),
        _ => LEAF.to_string(),
    }
}

fn flatten_out(v: &PyValue, out: &mut Vec<Tensor>) -> Result<(), ExportError> {
    match v {
        PyValue::Tensor(t) => out.push(t.clone()),
        PyValue::Tuple(items) | PyValue::List(items) => {
            for i in items {
                flatten_out(i, out)?;
            }
        }
        other => {
            return Err(ExportError::Io(format!(
                "forward returned {other:?}: only tensors, tuples and lists are supported yet"
            )))
        }
    }
    Ok(())
}

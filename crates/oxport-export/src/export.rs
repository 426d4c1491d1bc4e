//! [`export`]: trace a model's forward into an [`ExportedProgram`].
use crate::module::{named_buffers, named_modules, named_parameters, Forward};
use crate::tracer::{self, ir_meta, view_key, State};
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
    let modules: HashMap<usize, (String, String)> = named_modules(model)
        .into_iter()
        .map(|(fqn, ty, addr)| (addr, (fqn, ty)))
        .collect();
    let module_order: Vec<String> = named_modules(model)
        .into_iter()
        .map(|(fqn, _, _)| fqn)
        .collect();
    let state = Rc::new(RefCell::new(State::new(modules, model.type_name())));
    let params = named_parameters(model);
    let buffers = named_buffers(model);
    let mut input_specs = vec![];
    let mut placeholders: Vec<(String, ir::TensorMeta)> = vec![];
    {
        let mut st = state.borrow_mut();
        for (fqn, t) in &params {
            let name = st.ns.create_name(&format!("p_{}", fqn.replace('.', "_")));
            st.values.insert(view_key(t), name.clone());
            placeholders.push((name.clone(), ir_meta(&CoreMeta::of(t), true)));
            input_specs.push(ir::InputSpec::Parameter(ir::InputToParameterSpec {
                arg: ir::TensorArgument::new(name),
                parameter_name: fqn.clone(),
            }));
        }
        for (fqn, t, persistent) in &buffers {
            let name = st.ns.create_name(&format!("b_{}", fqn.replace('.', "_")));
            st.values.insert(view_key(t), name.clone());
            placeholders.push((name.clone(), ir_meta(&CoreMeta::of(t), false)));
            input_specs.push(ir::InputSpec::Buffer(ir::InputToBufferSpec {
                arg: ir::TensorArgument::new(name),
                buffer_name: fqn.clone(),
                persistent: *persistent,
            }));
        }
    }
    // User inputs: fake copies named after forward's arguments.
    let arg_names = model.forward_arg_names();
    let mut user: Vec<(String, ir::TensorMeta)> = vec![];
    let mut fake_input = |name: &str, v: &PyValue| -> Result<PyValue, ExportError> {
        match v {
            PyValue::Tensor(t) => {
                let meta = CoreMeta::of(t);
                let fake = tracer::fake_of(&meta);
                let mut st = state.borrow_mut();
                let n = st.ns.take_exact(name);
                st.values.insert(view_key(&fake), n.clone());
                user.push((n, ir_meta(&meta, false)));
                Ok(PyValue::Tensor(fake))
            }
            other => Err(ExportError::Io(format!(
                "input '{name}': only tensor inputs are supported yet, got {other:?}"
            ))),
        }
    };
    let mut fake_args = vec![];
    for (i, a) in args.iter().enumerate() {
        let name = arg_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("arg{i}"));
        fake_args.push(fake_input(&name, a)?);
    }
    let mut fake_kwargs = vec![];
    for (k, v) in &kwargs {
        fake_kwargs.push((k.clone(), fake_input(k, v)?));
    }
    let out = tracer::trace(state.clone(), || model.forward_py(&fake_args, &fake_kwargs))?;

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
        placeholders.push((name.clone(), ir_meta(&CoreMeta::of(t), false)));
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
    let graph = ir::Graph {
        inputs,
        outputs,
        nodes: std::mem::take(&mut st.nodes),
        tensor_values,
        sym_int_values: OrderedMap::new(),
        sym_bool_values: OrderedMap::new(),
        is_single_tensor_return: false,
        custom_obj_values: OrderedMap::new(),
        sym_float_values: OrderedMap::new(),
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
                    &vec![LEAF.to_string(); args.len()]
                ),
                {
                    let keys: Vec<String> =
                        kwargs.iter().map(|(k, _)| format!("\\\"{k}\\\"")).collect();
                    node_spec(
                        "builtins.dict",
                        &format!("\"[{}]\"", keys.join(", ")),
                        &vec![LEAF.to_string(); kwargs.len()],
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
        range_constraints: OrderedMap::new(),
        schema_version: ir::SCHEMA_VERSION,
        verifiers: vec!["TRAINING".into()],
        torch_version: format!("oxport {}", env!("CARGO_PKG_VERSION")),
        guards_code: vec![],
        state_dict,
        constants,
    })
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

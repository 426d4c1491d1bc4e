//! Control flow that export keeps in the graph: [`cond`], PyTorch's `torch.cond`.
use crate::tracer::{self, view_key, State};
use oxport_core::ops::TensorMeta as CoreMeta;
use oxport_core::{DType, Error, Result, Scalar, Tensor};
use oxport_ir::schema as ir;
use oxport_ir::OrderedMap;
use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::Location;
use std::rc::Rc;

/// `torch.cond(pred, true_fn, false_fn, operands)`: runs `true_fn(operands)` if the one-element bool
/// tensor `pred` is true, else `false_fn(operands)`.
///
/// Eagerly it runs one branch. Under export it traces both into subgraphs and records one
/// `torch.ops.higher_order.cond` node, so the program decides at run time — what branching on tensor
/// data needs (a plain `if` on a value cannot be exported). Both branches must return tensors of the
/// same dtypes and shapes. They may use any tensor in scope (parameters, buffers, other values): those
/// become extra operands, as in PyTorch; operands neither branch uses are dropped.
///
/// ```
/// use oxport_core::prelude::*;
/// use oxport_export::cond;
/// let x = Tensor::from_vec(vec![1.0f32, -2.0], &[2])?;
/// let pred = x.sum_all()?.gt(0)?;
/// let out = cond(&pred, |o| Ok(vec![o[0].sin()?]), |o| Ok(vec![o[0].cos()?]), &[x.clone()])?;
/// assert_eq!(out[0].to_vec::<f32>()?, x.cos()?.to_vec::<f32>()?);
/// # Ok::<(), oxport_core::Error>(())
/// ```
#[track_caller]
pub fn cond(
    pred: &Tensor,
    true_fn: impl Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    false_fn: impl Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    operands: &[Tensor],
) -> Result<Vec<Tensor>> {
    let at = Location::caller();
    if pred.dtype() != DType::Bool || pred.sizes_untraced().iter().product::<usize>() != 1 {
        return Err(Error::Value(format!(
            "{}:{}: cond: expected pred to be a one-element bool tensor, got {} of shape {:?}",
            at.file(),
            at.line(),
            pred.dtype().name(),
            pred.sizes_untraced()
        )));
    }
    let Some(outer) = tracer::active() else {
        let take_true = matches!(pred.item()?, Scalar::Bool(true));
        return if take_true {
            true_fn(operands)
        } else {
            false_fn(operands)
        };
    };
    let t = trace_branch(&outer, &true_fn, operands)?;
    let f = trace_branch(&outer, &false_fn, operands)?;
    if t.out_metas.len() != f.out_metas.len()
        || t.out_metas
            .iter()
            .zip(&f.out_metas)
            .any(|(a, b)| a.dtype != b.dtype || a.sizes != b.sizes)
    {
        let show = |ms: &[CoreMeta]| {
            ms.iter()
                .map(|m| {
                    format!(
                        "{}{}",
                        m.dtype.short_name(),
                        oxport_core::tensor::fmt_shape(&m.sizes)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::Value(format!(
            "{}:{}: cond: true_fn and false_fn must return tensors of the same dtypes and shapes; true_fn \
             returned ({}), false_fn ({})",
            at.file(),
            at.line(),
            show(&t.out_metas),
            show(&f.out_metas)
        )));
    }
    // The operands of the node: explicit ones some branch uses, then free variables of either branch.
    let mut entries: Vec<(String, Tensor)> = vec![];

    for (outer_name, _, tensor) in t.state.inputs.iter().chain(&f.state.inputs) {
        if entries.iter().any(|(n, _)| n == outer_name) {
            continue;
        }
        let explicit = operands.iter().any(|o| view_key(o) == view_key(tensor));
        let local_used = [&t, &f].iter().any(|b| {
            b.state
                .inputs
                .iter()
                .any(|(o, l, _)| o == outer_name && b.used.contains(l))
        });
        if explicit && !local_used {
            continue;
        }
        entries.push((outer_name.clone(), tensor.clone()));
    }
    let mut st = outer.borrow_mut();
    let index = st.subgraphs;
    st.subgraphs += 1;
    let true_graph = t.into_graph(&entries);
    let false_graph = f.into_graph(&entries);
    let pred_name = st.name_of(pred);
    let operand_names: Vec<ir::TensorArgument> = entries
        .iter()
        .map(|(n, _)| ir::TensorArgument::new(n.clone()))
        .collect();
    let name = st.ns.create_name("cond");
    let mut outputs = vec![];
    let mut results = vec![];
    for m in true_graph.1.iter() {
        let n = st.ns.create_name("getitem");
        let fake = tracer::fake_of(m);
        st.define(&fake, &n, m);
        outputs.push(ir::Argument::AsTensor(ir::TensorArgument::new(n)));
        results.push(fake);
    }
    let positional = |arg| ir::NamedArgument {
        name: String::new(),
        arg,
        kind: Some(ir::ArgumentKind::Positional),
    };
    let metadata = st.metadata(at);
    st.nodes.push(ir::Node {
        target: "torch.ops.higher_order.cond".into(),
        inputs: vec![
            positional(ir::Argument::AsTensor(ir::TensorArgument::new(pred_name))),
            positional(ir::Argument::AsGraph(ir::GraphArgument {
                name: format!("true_graph_{index}"),
                graph: Box::new(true_graph.0),
            })),
            positional(ir::Argument::AsGraph(ir::GraphArgument {
                name: format!("false_graph_{index}"),
                graph: Box::new(false_graph.0),
            })),
            positional(ir::Argument::AsTensors(operand_names)),
        ],
        outputs,
        metadata,
        is_hop_single_tensor_return: Some(false),
        name: Some(name),
    });
    Ok(results)
}

/// One traced branch.
struct Branch {
    state: State,
    /// Its outputs' names in the branch graph.
    outputs: Vec<String>,
    out_metas: Vec<CoreMeta>,
    /// Every value of the branch graph its nodes or outputs use.
    used: HashSet<String>,
}

fn trace_branch(
    outer: &Rc<RefCell<State>>,
    f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    operands: &[Tensor],
) -> Result<Branch> {
    let sub = Rc::new(RefCell::new(State::child(outer)));
    for o in operands {
        sub.borrow_mut().add_input(o);
    }
    let outs = tracer::trace(sub.clone(), || f(operands))?;
    let mut st = Rc::try_unwrap(sub)
        .map_err(|_| Error::Value("cond: a branch kept its trace alive".into()))?
        .into_inner();
    let outputs: Vec<String> = outs.iter().map(|t| st.name_of(t)).collect();
    let out_metas = outs
        .iter()
        .map(|t| {
            st.metas
                .get(&view_key(t))
                .cloned()
                .unwrap_or_else(|| CoreMeta::of(t))
        })
        .collect();
    let mut used: HashSet<String> = outputs.iter().cloned().collect();
    for n in &st.nodes {
        for a in &n.inputs {
            for name in a.arg.value_names() {
                used.insert(name);
            }
        }
    }
    Ok(Branch {
        state: st,
        outputs,
        out_metas,
        used,
    })
}

impl Branch {
    /// The branch graph with inputs `entries` (enclosing names, in order), and its outputs' metadata.
    fn into_graph(mut self, entries: &[(String, Tensor)]) -> (ir::Graph, Vec<CoreMeta>) {
        let mut inputs = vec![];
        let mut tensor_values = OrderedMap::new();
        for (outer_name, tensor) in entries {
            let local = match self.state.inputs.iter().find(|(o, _, _)| o == outer_name) {
                Some((_, l, _)) => l.clone(),
                // Used only by the other branch: an unused input here.
                None => self.state.ns.take_exact(outer_name),
            };
            let meta = self
                .state
                .metas
                .get(&view_key(tensor))
                .cloned()
                .unwrap_or_else(|| CoreMeta::of(tensor));
            tensor_values.insert(local.clone(), ir::TensorMeta::from_core(&meta, false));
            inputs.push(ir::Argument::AsTensor(ir::TensorArgument::new(local)));
        }
        for (k, v) in self.state.tensor_values.iter() {
            tensor_values.insert(k, v.clone());
        }
        let outputs = self
            .outputs
            .iter()
            .map(|n| ir::Argument::AsTensor(ir::TensorArgument::new(n.clone())))
            .collect();
        let graph = ir::Graph {
            inputs,
            outputs,
            nodes: std::mem::take(&mut self.state.nodes),
            tensor_values,
            sym_int_values: OrderedMap::new(),
            sym_bool_values: OrderedMap::new(),
            is_single_tensor_return: false,
            custom_obj_values: OrderedMap::new(),
            sym_float_values: OrderedMap::new(),
        };
        (graph, self.out_metas)
    }
}

//! Plan-time verification of a program's op nodes against the ops' meta functions.
//!
//! A `.pt2` declares every value's dtype and sizes (`tensor_values`). For each top-level op node whose
//! inputs all have static sizes, [`check_metas`] runs the op's meta function over the declared input
//! metadata: an op that cannot take its inputs (a dtype its kernel lacks, mismatched shapes) fails here,
//! naming the node, before any call; so does a node whose outputs disagree with what the op computes (a
//! wrong number of outputs, another dtype or size), which would otherwise run to a wrong answer.
//! Nodes inside `cond`/`map` bodies are not checked: a branch that is never taken may hold ops that
//! would fail. Symbolic sizes are left to the call, where they are known.
use crate::error::{Error, Result};
use crate::plan::argument_value;
use oxport_core::ops::value::TensorMeta as CoreMeta;
use oxport_core::ops::{registry, Args};
use oxport_core::SymInt;
use oxport_ir::schema::{Argument, ArgumentKind, Graph, Node, SymInt as IrSymInt, TensorMeta};

type V = oxport_core::ops::Value<CoreMeta>;

pub(crate) fn static_meta(m: &TensorMeta) -> Option<CoreMeta> {
    let ints = |v: &[IrSymInt]| -> Option<Vec<SymInt>> {
        v.iter()
            .map(|s| match s {
                IrSymInt::AsInt(i) => Some(SymInt::Int(*i)),
                IrSymInt::AsExpr(_) => None,
            })
            .collect()
    };
    Some(CoreMeta {
        dtype: m.dtype.dtype()?,
        sizes: ints(&m.sizes)?,
        strides: ints(&m.strides)?,
        offset: ints(std::slice::from_ref(&m.storage_offset))?.remove(0),
    })
}

fn node_error(node: &Node, reason: String) -> Error {
    Error::Unsupported {
        node: node.name.clone().unwrap_or_default(),
        target: node.target.clone(),
        reason,
    }
}

/// The declared metadata of `name` (static sizes only).
fn declared(g: &Graph, name: &str) -> Option<CoreMeta> {
    g.tensor_values.get(name).and_then(static_meta)
}

/// Checks the top-level op nodes of `g` (see the module docs).
pub(crate) fn check_metas(g: &Graph) -> Result<()> {
    for node in &g.nodes {
        let Some(op_name) = node.target.strip_prefix("torch.ops.") else {
            continue;
        };
        // Unknown ops and arguments that do not bind are the planner's errors, reported there.
        let Ok(def) = registry().get(op_name) else {
            continue;
        };
        let mut positional = vec![];
        let mut kwargs = vec![];
        let mut all_static = true;
        for i in &node.inputs {
            let v: std::result::Result<V, String> = argument_value(
                &i.arg,
                &mut |n: &str| declared(g, n).ok_or_else(String::new),
                &mut |s| match s {
                    oxport_ir::schema::SymIntArgument::AsInt(i) => Ok(SymInt::Int(*i)),
                    _ => Err(String::new()),
                },
            );
            let Ok(v) = v else {
                all_static = false;
                break;
            };
            if i.kind == Some(ArgumentKind::Keyword) {
                kwargs.push((i.name.clone(), v));
            } else {
                positional.push(v);
            }
        }
        if !all_static {
            continue;
        }
        let Ok(args) = Args::bind(&def.schema, positional, kwargs) else {
            continue;
        };
        let outs = (def.meta)(&args).map_err(|e| node_error(node, e.to_string()))?;
        let declared_outs: Vec<&Argument> = node
            .outputs
            .iter()
            .filter(|o| !matches!(o, Argument::AsNone(_)))
            .collect();
        let computed = outs.iter().filter(|v| !matches!(v, V::None)).count();
        if declared_outs.len() > computed {
            return Err(node_error(
                node,
                format!(
                    "the node has {} outputs but {} returns {computed}",
                    declared_outs.len(),
                    def.name
                ),
            ));
        }
        for (o, m) in node.outputs.iter().zip(&outs) {
            let (Argument::AsTensor(t), V::Tensor(m)) = (o, m) else {
                continue;
            };
            let Some(d) = declared(g, &t.name) else {
                continue;
            };
            if d.dtype != m.dtype {
                return Err(node_error(
                    node,
                    format!(
                        "output '{}' is declared {} but {} computes {}",
                        t.name,
                        d.dtype.short_name(),
                        def.name,
                        m.dtype.short_name()
                    ),
                ));
            }
            if d.sizes != m.sizes {
                return Err(node_error(
                    node,
                    format!(
                        "output '{}' is declared with sizes {:?} but {} computes {:?}",
                        t.name,
                        ints(&d.sizes),
                        def.name,
                        ints(&m.sizes)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn ints(v: &[SymInt]) -> Vec<i64> {
    v.iter().filter_map(SymInt::as_int).collect()
}

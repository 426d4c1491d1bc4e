//! Identity aliases: `alias(x)`, `to(x, dtype)` to the dtype `x` has (PyTorch returns `x` itself),
//! `detach(x)` — steps whose output is `x`, same storage and geometry — are dropped, their readers
//! reading `x` instead. What it saves is less the op call than the break it makes in a chain the
//! fusion passes look for: Hugging Face's `LlamaRMSNorm` ends with `weight * x.to(input_dtype)`.
//!
//! Taken when both sides have static metadata that agree (dtype, sizes, strides, offset), the output
//! does not leave the graph, and every reader of it is an op step (whose arguments are renamed).
use super::rewrite::{apply, Uses};
use crate::plan::{GraphPlan, Kind, OutBind, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::ops::Value;
use std::collections::HashMap;

/// Ops returning their input itself when the metadata does not change.
const IDENTITY_WHEN_UNCHANGED: &[&str] = &[
    "aten.alias.default",
    "aten.detach.default",
    "aten.to.dtype",
    "aten.to.dtype_layout",
    "aten.to.device",
];

/// Drops the identity aliases of `plan`. Returns how many.
pub(crate) fn elide_aliases(plan: &mut GraphPlan, metas: &[Option<TensorMeta>]) -> usize {
    let u = Uses::of(plan);
    let mut removed = vec![false; plan.steps.len()];
    let mut rename: HashMap<Slot, Slot> = HashMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let Kind::Op(op) = &step.kind else {
            continue;
        };
        if !IDENTITY_WHEN_UNCHANGED.contains(&op.def.name)
            || !op.int_patches.is_empty()
            || !op.float_patches.is_empty()
        {
            continue;
        }
        let (Some(Value::Tensor(x)), [OutBind::Slot(out)]) = (op.template.first(), &op.outs[..])
        else {
            continue;
        };
        // `to(..., copy=True)` copies.
        let copies = op
            .def
            .schema
            .arg_index("copy")
            .and_then(|k| op.template.get(k))
            .is_some_and(|v| matches!(v, Value::Bool(true)));
        let same = match (metas[*x].as_ref(), metas[*out].as_ref()) {
            (Some(a), Some(b)) => {
                a.dtype == b.dtype
                    && a.concrete_sizes().ok().is_some()
                    && a.sizes == b.sizes
                    && a.strides == b.strides
                    && a.offset == b.offset
            }
            _ => false,
        };
        let leaves = u.last[*out] == Some(usize::MAX);
        if copies || !same || leaves || !read_only_by_ops(plan, *out) {
            continue;
        }
        // x may itself be an elided alias's output.
        let to = *rename.get(x).unwrap_or(x);
        rename.insert(*out, to);
        removed[i] = true;
    }
    if rename.is_empty() {
        return 0;
    }
    for step in &mut plan.steps {
        if let Kind::Op(op) = &mut step.kind {
            for v in &mut op.template {
                *v = v.map_tensors(&mut |s: &Slot| *rename.get(s).unwrap_or(s));
            }
        }
    }
    let n = rename.len();
    apply(plan, HashMap::new(), &removed);
    n
}

/// Whether every step reading `s` is an op step reading it as an argument.
fn read_only_by_ops(plan: &GraphPlan, s: Slot) -> bool {
    plan.steps.iter().all(|step| {
        let mut r = vec![];
        crate::plan::reads(&step.kind, &mut r);
        !r.contains(&s)
            || match &step.kind {
                Kind::Op(op) => {
                    op.int_patches.iter().all(|p| p.2 != s)
                        && op.float_patches.iter().all(|p| p.1 != s)
                }
                _ => false,
            }
    })
}

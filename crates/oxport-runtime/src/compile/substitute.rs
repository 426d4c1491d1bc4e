//! Op substitution: a step whose extra outputs nobody reads runs a cheaper op with the same arguments
//! — `max_pool2d_with_indices` (the core IR's max pool) as `max_pool2d` when its indices are unused.
use super::rewrite::Uses;
use crate::plan::{GraphPlan, Kind, OutBind};
use oxport_core::ops::registry;

/// (op, the op it becomes when only its first output is read); both take the same arguments.
const FIRST_OUTPUT_ONLY: &[(&str, &str)] = &[(
    "aten.max_pool2d_with_indices.default",
    "aten.max_pool2d.default",
)];

/// Substitutes what it can. Returns the number of steps changed.
pub(crate) fn substitute_ops(plan: &mut GraphPlan) -> usize {
    let u = Uses::of(plan);
    let mut n = 0;
    for step in &mut plan.steps {
        let Kind::Op(op) = &mut step.kind else {
            continue;
        };
        let Some((_, cheaper)) = FIRST_OUTPUT_ONLY
            .iter()
            .find(|(from, _)| *from == op.def.name)
        else {
            continue;
        };
        let rest_unread = op.outs.iter().skip(1).all(|b| match b {
            OutBind::Skip => true,
            OutBind::Slot(s) => u.count[*s] == 0,
            OutBind::List(ss) => ss.iter().all(|s| u.count[*s] == 0),
        });
        let Ok(def) = registry().get(cheaper) else {
            continue;
        };
        if !rest_unread || !op.int_patches.is_empty() || !op.float_patches.is_empty() {
            continue;
        }
        op.def = def;
        op.outs.truncate(1);
        step.target = format!("torch.ops.{cheaper}");
        n += 1;
    }
    n
}

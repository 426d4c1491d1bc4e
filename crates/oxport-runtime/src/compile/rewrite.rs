//! The graph-rewrite toolkit passes share (in the style of tract's `ModelPatch`): who reads and
//! defines each slot, op steps as bound arguments, and [`apply`], which swaps steps for prepared ones,
//! drops the steps they replace and recomputes when each slot is freed.
use super::Prepared;
use crate::plan::{GraphPlan, Kind, OutBind, Slot, Src, Step};
use oxport_core::ops::Args;
use std::collections::HashMap;

/// Everything the pass reads of the plan at once.
pub(crate) struct Uses {
    /// Number of reads of each slot (graph outputs count as reads).
    pub count: Vec<usize>,
    /// The step each slot is defined by.
    pub def: Vec<Option<usize>>,
    /// The last step reading each slot.
    pub last: Vec<Option<usize>>,
}

impl Uses {
    /// The reads and definitions of every slot of `plan`.
    pub fn of(plan: &GraphPlan) -> Uses {
        let mut u = Uses {
            count: vec![0; plan.n_slots],
            def: vec![None; plan.n_slots],
            last: vec![None; plan.n_slots],
        };
        for (i, step) in plan.steps.iter().enumerate() {
            let mut r = vec![];
            crate::plan::reads(&step.kind, &mut r);
            for s in r {
                u.count[s] += 1;
                u.last[s] = Some(i);
            }
            let mut w = vec![];
            crate::plan::writes(&step.kind, &mut w);
            for s in w {
                u.def[s] = Some(i);
            }
        }
        for o in &plan.outputs {
            if let Src::Slot(s) = o {
                u.count[*s] += 1;
                u.last[*s] = Some(usize::MAX);
            }
        }
        u
    }
}

/// The op step at `i`, its arguments as slots, and its single tensor output.
pub(crate) fn op_at(
    plan: &GraphPlan,
    i: usize,
) -> Option<(&'static str, Args<'_, Slot>, Vec<&OutBind>)> {
    let Kind::Op(op) = &plan.steps[i].kind else {
        return None;
    };
    if !op.int_patches.is_empty() || !op.float_patches.is_empty() {
        return None;
    }
    Some((
        op.def.name,
        Args {
            schema: &op.def.schema,
            values: op.template.clone(),
        },
        op.outs.iter().collect(),
    ))
}

pub(crate) fn out_slot(outs: &[&OutBind], k: usize) -> Option<Slot> {
    match outs.get(k) {
        Some(OutBind::Slot(s)) => Some(*s),
        _ => None,
    }
}

/// The step reading `s`, when it is the only reader.
pub(crate) fn only_reader(plan: &GraphPlan, u: &Uses, s: Slot) -> Option<usize> {
    if u.count[s] != 1 {
        return None;
    }
    u.last[s].filter(|&i| i < plan.steps.len())
}

/// Puts each prepared step of `patch` (by the index of the step it takes the place of, with the
/// node names it stands for and its profile target) into `plan`, drops the `removed` steps, and
/// recomputes the frees.
pub(crate) fn apply(
    plan: &mut GraphPlan,
    mut patch: HashMap<usize, (Prepared, Vec<String>, &'static str)>,
    removed: &[bool],
) {
    if patch.is_empty() && !removed.contains(&true) {
        return;
    }
    let old = std::mem::take(&mut plan.steps);
    for (i, step) in old.into_iter().enumerate() {
        if let Some((p, nodes, target)) = patch.remove(&i) {
            plan.steps.push(Step {
                node: nodes.join("+"),
                target: target.into(),
                kind: Kind::Prepared(Box::new(p)),
                free: vec![],
            });
        } else if !removed[i] {
            plan.steps.push(step);
        }
    }
    crate::plan::recompute_frees(plan);
}

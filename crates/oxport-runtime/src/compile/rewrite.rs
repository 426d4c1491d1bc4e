//! The graph-rewrite toolkit passes share (in the style of tract's `ModelPatch`): who reads and
//! defines each slot, op steps as bound arguments, and [`apply`], which swaps steps for prepared ones,
//! drops the steps they replace and recomputes when each slot is freed.
use super::Prepared;
use crate::plan::{GraphPlan, Kind, OutBind, Slot, Src, Step};
use oxport_core::ops::value::TensorMeta;
use oxport_core::ops::Args;
use oxport_core::DType;
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

/// Whether a step may write a tensor it reads (an in-place op, or a higher-order op whose body
/// might): a fused step that runs at its chain's last step must not be moved past one that writes
/// its inputs. Asserts, size arithmetic, no-ops, views and prepared steps write only their outputs.
pub(crate) fn may_write_in_place(kind: &Kind) -> bool {
    match kind {
        Kind::Op(op) => op.def.is_in_place(),
        Kind::Cond { .. } | Kind::Call { .. } | Kind::Map { .. } => true,
        Kind::Sym { .. }
        | Kind::SymSize { .. }
        | Kind::Item { .. }
        | Kind::Assert { .. }
        | Kind::Constrain { .. }
        | Kind::Noop
        | Kind::Prepared(_)
        | Kind::View(_) => false,
    }
}

/// Whether no step strictly between `from` and `to`, other than those of `chain`, may write in place.
pub(crate) fn quiet_between(plan: &GraphPlan, from: usize, to: usize, chain: &[usize]) -> bool {
    (from + 1..to).all(|k| chain.contains(&k) || !may_write_in_place(&plan.steps[k].kind))
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

/// A pattern matcher's view of a plan: slot sizes, the steps defining and reading slots, and the
/// steps a match has taken so far (`steps`). The fusion passes (attention, norms, rotary
/// embeddings) walk the graph with it.
pub(crate) struct Matcher<'p> {
    pub plan: &'p GraphPlan,
    pub u: &'p Uses,
    pub metas: &'p [Option<TensorMeta>],
    pub steps: Vec<usize>,
}

impl<'p> Matcher<'p> {
    pub fn new(plan: &'p GraphPlan, u: &'p Uses, metas: &'p [Option<TensorMeta>]) -> Self {
        Matcher {
            plan,
            u,
            metas,
            steps: vec![],
        }
    }

    /// Static f32 sizes of `s`.
    pub fn sizes(&self, s: Slot) -> Option<Vec<usize>> {
        let m = self.metas.get(s)?.as_ref()?;
        (m.dtype == DType::F32).then_some(())?;
        m.concrete_sizes().ok()
    }

    /// The op step defining `s` (its name and arguments), when `s` is its only tensor output.
    pub fn def(&self, s: Slot) -> Option<(usize, &'static str, Args<'p, Slot>)> {
        let i = self.u.def[s]?;
        let (name, a, outs) = op_at(self.plan, i)?;
        (outs.len() == 1 && out_slot(&outs, 0) == Some(s)).then_some((i, name, a))
    }

    /// The single step reading `s`.
    pub fn only_reader(&self, s: Slot) -> Option<usize> {
        only_reader(self.plan, self.u, s)
    }

    /// The single step reading `s`, when it is an op step with one tensor output: its index, name,
    /// arguments and output.
    pub fn reader(&self, s: Slot) -> Option<(usize, &'static str, Args<'p, Slot>, Slot)> {
        let j = self.only_reader(s)?;
        let (name, a, outs) = op_at(self.plan, j)?;
        (outs.len() == 1).then_some(())?;
        Some((j, name, a, out_slot(&outs, 0)?))
    }

    /// The single output of step `i`.
    pub fn out_of(&self, i: usize) -> Option<Slot> {
        let (_, _, outs) = op_at(self.plan, i)?;
        (outs.len() == 1).then_some(())?;
        out_slot(&outs, 0)
    }
}

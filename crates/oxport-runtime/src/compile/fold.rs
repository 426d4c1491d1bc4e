//! Constant folding: a step whose tensor inputs are all constants of the program (parameters,
//! buffers nothing mutates, folded values) and whose op is a pure layout, cast or arithmetic op is
//! computed once at plan time — `permute(weight)` before an `addmm`, an f16 weight cast to f32, a
//! scale multiplied into a weight — and its output becomes a constant the call starts with.
//!
//! Outputs that leave the graph are not folded (the caller could write them), nor outputs that would
//! materialize much more memory than their inputs hold (a broadcast constant stays a lazy op).
use super::rewrite::{apply, Uses};
use super::ConstCache;
use crate::plan::{GraphPlan, Kind, OutBind, Slot};
use oxport_core::ops::{Args, Value};
use oxport_core::Tensor;
use std::collections::HashMap;

/// Ops with no state, no randomness and no in-place write, worth running once on constants.
const FOLDABLE: &[&str] = &[
    "aten.permute.default",
    "aten.t.default",
    "aten.transpose.int",
    "aten.view.default",
    "aten.reshape.default",
    "aten._unsafe_view.default",
    "aten.unsqueeze.default",
    "aten.squeeze.dim",
    "aten.squeeze.dims",
    "aten.flatten.using_ints",
    "aten.unflatten.int",
    "aten.expand.default",
    "aten.slice.Tensor",
    "aten.select.int",
    "aten._to_copy.default",
    "aten.to.dtype",
    "aten.to.dtype_layout",
    "aten.clone.default",
    "aten.contiguous.default",
    "aten.detach.default",
    "aten.alias.default",
    "aten.lift_fresh_copy.default",
    "aten.mul.Tensor",
    "aten.mul.Scalar",
    "aten.div.Tensor",
    "aten.div.Scalar",
    "aten.add.Tensor",
    "aten.sub.Tensor",
    "aten.neg.default",
    "aten.sqrt.default",
    "aten.rsqrt.default",
    "aten.reciprocal.default",
];

/// Folds what it can; `consts` gains the folded values. Returns the number of steps folded.
pub(crate) fn fold_constants(
    plan: &mut GraphPlan,
    consts: &mut HashMap<Slot, Tensor>,
    prepared: &ConstCache,
) -> usize {
    let u = Uses::of(plan);
    let mut removed = vec![false; plan.steps.len()];
    let mut folded = vec![];
    for (i, step) in plan.steps.iter().enumerate() {
        let Kind::Op(op) = &step.kind else {
            continue;
        };
        if !op.int_patches.is_empty()
            || !op.float_patches.is_empty()
            || !FOLDABLE.contains(&op.def.name)
        {
            continue;
        }
        let mut inputs = vec![];
        let mut all_const = true;
        let values: Vec<Value<Tensor>> = op
            .template
            .iter()
            .map(|v| {
                v.map_tensors(&mut |s: &Slot| match consts.get(s) {
                    Some(t) => {
                        inputs.push(t.clone());
                        t.clone()
                    }
                    None => {
                        all_const = false;
                        Tensor::scalar(0f32)
                    }
                })
            })
            .collect();
        if !all_const || inputs.is_empty() {
            continue;
        }
        let outs_leave = op.outs.iter().any(|b| match b {
            OutBind::Slot(s) => u.last[*s] == Some(usize::MAX),
            OutBind::List(ss) => ss.iter().any(|s| u.last[*s] == Some(usize::MAX)),
            OutBind::Skip => false,
        });
        if outs_leave {
            continue;
        }
        // Made once for all the program's plans (the arguments are part of the key: a plan
        // specialized to other shapes may give the op other sizes).
        let key = format!("{}|{:?}", step.node, op.template);
        let produced = prepared.get_or_insert(&key, "fold", || {
            let args = Args {
                schema: &op.def.schema,
                values,
            };
            // An error is left to the call, which reports it naming the node.
            let outs = op.def.run(&args).ok()?;
            let input_elems: usize = inputs.iter().map(Tensor::numel).sum();
            let cheap = |t: &Tensor| {
                inputs.iter().any(|x| x.shares_storage(t)) || t.numel() <= 2 * input_elems + 4096
            };
            let mut produced = vec![];
            for (b, v) in op.outs.iter().zip(outs) {
                match (b, v) {
                    (OutBind::Slot(s), Value::Tensor(t)) if cheap(&t) => produced.push((*s, t)),
                    (OutBind::Skip, _) => {}
                    _ => return None,
                }
            }
            (!produced.is_empty()).then_some(produced)
        });
        let Some(produced) = produced else {
            continue;
        };
        for (s, t) in produced.iter().cloned() {
            consts.insert(s, t.clone());
            folded.push((s, t));
        }
        removed[i] = true;
    }
    let n = folded.len();
    plan.consts
        .extend(folded.into_iter().map(|(s, t)| (s, Value::Tensor(t))));
    apply(plan, HashMap::new(), &removed);
    n
}

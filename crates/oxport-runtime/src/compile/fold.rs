//! Constant folding: a step whose tensor inputs are all constants of the program (parameters,
//! buffers nothing mutates, folded values) and whose op is a pure layout, cast or arithmetic op is
//! computed once at plan time — `permute(weight)` before an `addmm`, an f16 weight cast to f32, a
//! scale multiplied into a weight — and its output becomes a constant the call starts with. So is a
//! deterministic factory (`arange`, `full`) and what is computed from factories and constants
//! alone: a causal mask, the rotary tables of positions that depend only on sizes.
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
    "aten.to.device",
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
    "aten.add.Scalar",
    "aten.sub.Scalar",
    "aten.pow.Tensor_Scalar",
    "aten.cos.default",
    "aten.sin.default",
    "aten.exp.default",
    "aten.cat.default",
    "aten.index.Tensor",
    "aten.cumsum.default",
    "aten.where.self",
    "aten.eq.Tensor",
    "aten.eq.Scalar",
    "aten.ne.Tensor",
    "aten.ne.Scalar",
    "aten.le.Tensor",
    "aten.le.Scalar",
    "aten.lt.Tensor",
    "aten.lt.Scalar",
    "aten.ge.Tensor",
    "aten.ge.Scalar",
    "aten.gt.Tensor",
    "aten.gt.Scalar",
    "aten.bitwise_and.Tensor",
    "aten.bitwise_or.Tensor",
    "aten.__and__.Tensor",
    "aten.__or__.Tensor",
    "aten.diff.default",
    "aten.new_ones.default",
    "aten.new_zeros.default",
    "aten.new_full.default",
    "aten.logical_and.default",
    "aten.logical_or.default",
    "aten.logical_not.default",
    "aten.masked_fill.Scalar",
    "aten.full_like.default",
    "aten.zeros_like.default",
    "aten.ones_like.default",
];

/// Factories of deterministic values (no tensor input): a causal mask's `arange`s, a `full` scalar.
/// Their outputs, and what is computed from them alone, are constants too.
const FACTORIES: &[&str] = &[
    "aten.arange.default",
    "aten.arange.start",
    "aten.arange.start_step",
    "aten.full.default",
    "aten.scalar_tensor.default",
    "aten.zeros.default",
    "aten.ones.default",
];

/// A folded output may hold this many elements more than twice its inputs (a mask from `arange`s
/// and comparisons; a weight times a broadcast scale); beyond it the op stays in the call, lazy.
const MAX_GROWTH: usize = 1 << 16;

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
        let factory = FACTORIES.contains(&op.def.name);
        if !op.int_patches.is_empty()
            || !op.float_patches.is_empty()
            || !(factory || FOLDABLE.contains(&op.def.name))
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
        if !all_const || (inputs.is_empty() && !factory) {
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
                inputs.iter().any(|x| x.shares_storage(t))
                    || t.numel() <= 2 * input_elems + MAX_GROWTH
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

#[cfg(test)]
mod tests {
    use crate::{Module, PlanOptions};

    /// A causal mask and rotary tables computed from `arange`s and the weights alone are folded:
    /// the planned program of a LLaMA-style block has no factory, mask or table op left.
    #[test]
    fn factories_and_what_only_they_feed_are_folded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let ep = oxport_ir::pt2::load(root.join("pt2/rope_causal_block.core.pt2")).unwrap();
        let targets =
            |m: &Module| -> Vec<String> { m.plan.steps.iter().map(|s| s.target.clone()).collect() };
        let plain = targets(&Module::with_options(&ep, PlanOptions::unoptimized()).unwrap());
        let folded = targets(&Module::new(&ep).unwrap());
        for op in [
            "arange.start_step",
            "le.Tensor",
            "cos.default",
            "sin.default",
        ] {
            let n = |t: &[String]| t.iter().filter(|t| t.contains(op)).count();
            assert!(n(&plain) > 0, "{op} is not in the program");
            assert_eq!(n(&folded), 0, "{op} left in the plan: {folded:?}");
        }
    }
}

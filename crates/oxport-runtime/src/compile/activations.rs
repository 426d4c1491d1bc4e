//! Decomposed activations recognized. The core IR spells `hardswish(x)` as
//! `div(mul(x, clamp(clamp(add(x, 3), 0), None, 6)), 6)`, `hardsigmoid(x)` as
//! `div(clamp(clamp(add(x, 3), 0), None, 6), 6)` and `silu(x)` as `mul(x, sigmoid(x))`: each becomes
//! one step of the activation op, which the later passes take into a convolution's or a matrix
//! product's epilogue (and which, left alone, reads its input once instead of up to five times).
//!
//! The activation kernels compute the same formulas in the same order (`x * clamp(x + 3, 0, 6) / 6`,
//! PyTorch's own), so results are those of the decomposed steps up to the last bit of `silu`.
use super::rewrite::{apply, quiet_between, Matcher, Uses};
use crate::plan::{GraphPlan, Kind, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::ops::{registry, Args};
use std::collections::HashMap;

/// One recognized activation: the op it is, its input, and the steps it replaces (in plan order;
/// the last one becomes the activation's step).
struct Found {
    op: &'static str,
    x: Slot,
    steps: Vec<usize>,
}

/// `a`'s scalar `other` operand (the `Tensor` overloads take a scalar there too).
fn scalar_other(a: &Args<Slot>) -> Option<f64> {
    if a.opt_tensor("other").ok().flatten().is_some() {
        return None;
    }
    a.scalar("other").ok().map(|s| s.to_f64())
}

fn self_of(a: &Args<Slot>) -> Option<Slot> {
    a.opt_tensor("self").ok().flatten().copied()
}

/// `x + 3` (alpha 1) at step `i`: its output.
fn plus_three(m: &Matcher, i: usize) -> Option<(Slot, Slot)> {
    let out = m.out_of(i)?;
    let (_, name, a) = m.def(out)?;
    let alpha_one = a.scalar("alpha").map_or(true, |s| s.to_f64() == 1.0);
    let add = matches!(name, "aten.add.Tensor" | "aten.add.Scalar") && alpha_one;
    (add && scalar_other(&a) == Some(3.0)).then_some((self_of(&a)?, out))
}

/// The clamps to `[0, 6]` reading `s` (one `clamp(s, 0, 6)`, or a `clamp(s, 0)` and a
/// `clamp(·, None, 6)` in either order, `hardtanh(s, 0, 6)`): their steps and output.
fn clamp_0_6(m: &Matcher, mut s: Slot) -> Option<(Vec<usize>, Slot)> {
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut steps = vec![];
    while steps.len() < 2 {
        let (j, name, a, out) = m.reader(s)?;
        if self_of(&a) != Some(s) {
            return None;
        }
        let bound = |n: &str| a.opt_scalar(n).ok().map(|v| v.map(|v| v.to_f64()));
        let (l, h) = match name {
            "aten.clamp.default" => (bound("min")?, bound("max")?),
            "aten.clamp_min.default" => (bound("min")?, None),
            "aten.clamp_max.default" => (None, bound("max")?),
            "aten.hardtanh.default" => (bound("min_val")?, bound("max_val")?),
            _ => return None,
        };
        lo = lo.max(l.unwrap_or(f64::NEG_INFINITY));
        hi = hi.min(h.unwrap_or(f64::INFINITY));
        steps.push(j);
        s = out;
        if (lo, hi) == (0.0, 6.0) {
            return Some((steps, s));
        }
    }
    None
}

/// The only reader of `s` when it is `s / 6`: its step and output.
fn div_six(m: &Matcher, s: Slot) -> Option<(usize, Slot)> {
    let (j, name, a, out) = m.reader(s)?;
    let div = matches!(name, "aten.div.Tensor" | "aten.div.Scalar");
    (div && self_of(&a) == Some(s) && scalar_other(&a) == Some(6.0)).then_some((j, out))
}

/// The only reader of `s` when it is `x * s` or `s * x`: its step and output.
fn times(m: &Matcher, s: Slot, x: Slot) -> Option<(usize, Slot)> {
    let (j, name, a, out) = m.reader(s)?;
    let (l, r) = (self_of(&a)?, *a.opt_tensor("other").ok()??);
    (name == "aten.mul.Tensor" && ((l, r) == (x, s) || (l, r) == (s, x))).then_some((j, out))
}

/// `hardswish` or `hardsigmoid` starting at the `x + 3` of step `i`.
fn hard_activation(m: &Matcher, i: usize) -> Option<Found> {
    let (x, added) = plus_three(m, i)?;
    let (clamps, clamped) = clamp_0_6(m, added)?;
    let mut steps = vec![i];
    steps.extend(clamps);
    // x * clamp(x + 3, 0, 6) / 6
    if let Some((j, prod)) = times(m, clamped, x) {
        let (k, _) = div_six(m, prod)?;
        steps.extend([j, k]);
        return Some(Found {
            op: "aten.hardswish.default",
            x,
            steps,
        });
    }
    let (k, gate) = div_six(m, clamped)?;
    steps.push(k);
    // x * (clamp(x + 3, 0, 6) / 6)
    if let Some((j, _)) = times(m, gate, x) {
        steps.push(j);
        return Some(Found {
            op: "aten.hardswish.default",
            x,
            steps,
        });
    }
    Some(Found {
        op: "aten.hardsigmoid.default",
        x,
        steps,
    })
}

/// `x * sigmoid(x)` starting at the `sigmoid` of step `i`.
fn silu(m: &Matcher, i: usize) -> Option<Found> {
    let s = m.out_of(i)?;
    let (_, name, a) = m.def(s)?;
    if name != "aten.sigmoid.default" {
        return None;
    }
    let x = self_of(&a)?;
    let (j, _) = times(m, s, x)?;
    Some(Found {
        op: "aten.silu.default",
        x,
        steps: vec![i, j],
    })
}

/// Replaces the activations it finds. Returns how many.
pub(crate) fn recognize_activations(plan: &mut GraphPlan, metas: &[Option<TensorMeta>]) -> usize {
    let u = Uses::of(plan);
    let m = Matcher::new(plan, &u, metas);
    let mut taken = vec![false; plan.steps.len()];
    let mut found = vec![];
    for i in 0..plan.steps.len() {
        let Some(f) = hard_activation(&m, i).or_else(|| silu(&m, i)) else {
            continue;
        };
        let last = *f.steps.iter().max().expect("non-empty");
        // f32 only (the formulas round differently in other dtypes), the output shaped as the input
        // (no broadcasting), and nothing between the steps writing `x` in place.
        let same_shape = m
            .sizes(f.x)
            .is_some_and(|s| m.out_of(last).and_then(|o| m.sizes(o)) == Some(s));
        if !same_shape
            || f.steps.iter().any(|&j| taken[j])
            || !quiet_between(plan, i, last, &f.steps)
        {
            continue;
        }
        for &j in &f.steps {
            taken[j] = true;
        }
        found.push(f);
    }
    let mut removed = vec![false; plan.steps.len()];
    let n = found.len();
    for f in found {
        let Ok(def) = registry().get(f.op) else {
            continue;
        };
        let last = *f.steps.iter().max().expect("non-empty");
        let nodes: Vec<String> = f
            .steps
            .iter()
            .map(|&j| plan.steps[j].node.clone())
            .collect();
        for &j in &f.steps {
            removed[j] = j != last;
        }
        let step = &mut plan.steps[last];
        let Kind::Op(op) = &mut step.kind else {
            unreachable!("matched steps are op steps")
        };
        op.def = def;
        op.template = vec![oxport_core::ops::Value::Tensor(f.x)];
        step.target = format!("torch.ops.{}", f.op);
        step.node = nodes.join("+");
    }
    apply(plan, HashMap::new(), &removed);
    n
}

#[cfg(test)]
mod tests {
    use crate::{Module, PlanOptions};

    fn fixture(form: &str) -> oxport_ir::ExportedProgram {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2");
        oxport_ir::pt2::load(root.join(format!("mobile_block.{form}.pt2"))).unwrap()
    }

    /// The core IR's hardswish, hardsigmoid and silu are recognized and then fused as the training
    /// IR's are: the same convolution steps, no pointwise step left. (That the outputs are still
    /// PyTorch's is checked by the fixture tests.)
    #[test]
    fn the_core_irs_decomposed_activations_fuse_as_the_training_irs() {
        let targets =
            |m: &Module| -> Vec<String> { m.plan.steps.iter().map(|s| s.target.clone()).collect() };
        let core = Module::new(&fixture("core")).unwrap();
        let train = Module::new(&fixture("train")).unwrap();
        let convs = |t: &[String]| t.iter().filter(|t| *t == "oxport.fused.conv2d").count();
        assert_eq!(convs(&targets(&core)), convs(&targets(&train)));
        for t in targets(&core) {
            for op in ["add", "clamp", "div", "sigmoid", "fused.pointwise"] {
                assert!(!t.contains(op), "{t} left: {:?}", targets(&core));
            }
        }
        // The plain plan has them all.
        let plain = Module::with_options(&fixture("core"), PlanOptions::unoptimized()).unwrap();
        let n = |op: &str| targets(&plain).iter().filter(|t| t.ends_with(op)).count();
        assert_eq!((n("clamp.default"), n("sigmoid.default")), (4, 1));
    }
}

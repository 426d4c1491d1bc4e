//! Rotary position embedding fusion: `x * cos + rotate_half(x) * sin`, with Hugging Face's
//! `rotate_half` (`cat([-x[..., h:], x[..., :h]], -1)`), becomes one step.
//!
//! ```text
//! mul(x, cos)   slice(x, -1, 0, h)   slice(x, -1, h, end) → neg   cat([neg, lo], -1) → mul(·, sin)
//! add(mul(x, cos), mul(cat, sin))
//! ```
//!
//! Seven ops, four `[.., 2h]`-sized intermediates (one a `cat` of strided halves), become one pass
//! reading x where it is (often a transposed view of a projection) and the broadcast tables. Taken
//! when the halves and products have no reader outside the chain, shapes are static f32, the
//! tables broadcast to x without broadcasting its last dim, and no step in between writes in place.
//! The arithmetic is the unfused ops', in the same order, so results are identical.
use super::pointwise::{with_broadcast_inputs, Input};
use super::rewrite::{apply, op_at, out_slot, quiet_between, Matcher, Uses};
use super::{Prepared, PreparedKernel};
use crate::plan::{GraphPlan, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::DType;
use oxport_core::Tensor;
use std::collections::HashMap;

/// The fused rotary embedding over the last dim (`2 · half` elements): reads x, cos, sin.
#[derive(Debug)]
pub(crate) struct Rotary {
    pub half: usize,
    pub out_shape: Vec<usize>,
}

impl PreparedKernel for Rotary {
    fn run(&self, inputs: &[&Tensor], out: &Tensor) -> oxport_core::Result<()> {
        if inputs
            .iter()
            .any(|t| t.sizes().last() != Some(&(2 * self.half)))
        {
            return Err(oxport_core::Error::Value(format!(
                "internal: a rotary embedding over {} got inputs of sizes {:?}",
                2 * self.half,
                inputs
                    .iter()
                    .map(|t| t.sizes().to_vec())
                    .collect::<Vec<_>>()
            )));
        }
        with_broadcast_inputs("rotary embedding", inputs, &self.out_shape, |data| {
            out.with_contiguous_mut::<f32, _>(|od| self.rows(data, od))
        })?
    }
}

impl Rotary {
    fn rows(&self, data: &[Input<'_>], od: &mut [f32]) {
        let (h, d) = (self.half, 2 * self.half);
        let (mut xr, mut cr, mut sr) = (vec![0f32; d], vec![0f32; d], vec![0f32; d]);
        let row_of = |input: &Input<'_>, start: usize, buf: &mut Vec<f32>| {
            let at = input.offset_of(&self.out_shape, start);
            let st = *input.strides.last().expect("a rotary input has a last dim");
            if st == 1 {
                buf.copy_from_slice(&input.data[at..at + d]);
            } else {
                buf.iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v = input.data[at + j * st]);
            }
        };
        for (r, y) in od.chunks_exact_mut(d.max(1)).enumerate() {
            row_of(&data[0], r * d, &mut xr);
            row_of(&data[1], r * d, &mut cr);
            row_of(&data[2], r * d, &mut sr);
            for j in 0..h {
                y[j] = xr[j] * cr[j] + (-xr[j + h]) * sr[j];
                y[j + h] = xr[j + h] * cr[j + h] + xr[j] * sr[j + h];
            }
        }
    }
}

/// Runs the pass; returns the number of rotary embeddings fused.
pub(crate) fn fuse_rotary(plan: &mut GraphPlan, metas: &[Option<TensorMeta>]) -> usize {
    let u = Uses::of(plan);
    let mut removed = vec![false; plan.steps.len()];
    let mut patch = HashMap::new();
    for i in 0..plan.steps.len() {
        let mut m = Matcher::new(plan, &u, metas);
        let Some(found) = rotary_at(&mut m, i) else {
            continue;
        };
        let mut steps = m.steps;
        steps.sort_unstable();
        let (first, last) = (steps[0], *steps.last().expect("a chain has steps"));
        if steps.iter().any(|&j| removed[j]) || !quiet_between(plan, first, last, &steps) {
            continue;
        }
        for &j in &steps {
            removed[j] = true;
        }
        let nodes = steps.iter().map(|&j| plan.steps[j].node.clone()).collect();
        let step = Prepared {
            inputs: vec![found.x, found.cos, found.sin],
            out: found.out,
            dtype: DType::F32,
            kernel: Box::new(Rotary {
                half: found.half,
                out_shape: found.shape.clone(),
            }),
            out_shape: found.shape,
            buf: None,
        };
        patch.insert(last, (step, nodes, "oxport.rotary"));
    }
    let n = patch.len();
    apply(plan, patch, &removed);
    n
}

struct Found {
    x: Slot,
    cos: Slot,
    sin: Slot,
    out: Slot,
    half: usize,
    shape: Vec<usize>,
}

/// `(a, b)` of a binary op, and the operand that is not `s` when `s` is exactly one of them.
fn other_operand(a: &oxport_core::ops::Args<'_, Slot>, s: Slot) -> Option<Slot> {
    let (p, q) = (*a.tensor("self").ok()?, *a.tensor("other").ok()?);
    match (p == s, q == s) {
        (true, false) => Some(q),
        (false, true) => Some(p),
        _ => None,
    }
}

/// The chain whose `cat` is step `i`.
fn rotary_at(m: &mut Matcher<'_>, i: usize) -> Option<Found> {
    let (name, a, outs) = op_at(m.plan, i)?;
    if name != "aten.cat.default" {
        return None;
    }
    let parts = a.tensors("tensors").ok()?;
    let &[neg, lo] = parts else {
        return None;
    };
    let cat = out_slot(&outs, 0)?;
    let shape = m.sizes(cat)?;
    let nd = shape.len();
    let dim = a.int("dim").ok()?;
    if nd == 0 || (dim != -1 && dim != nd as i64 - 1) || shape[nd - 1] % 2 != 0 {
        return None;
    }
    let (d, h) = (shape[nd - 1], shape[nd - 1] / 2);
    m.steps.push(i);
    // The halves: lo = x[..., :h], neg = -(x[..., h:]).
    let slice_of = |m: &Matcher<'_>, s: Slot, start: i64| -> Option<(usize, Slot)> {
        let (j, name, a) = m.def(s)?;
        m.only_reader(s)?;
        let x = *a.tensor("self").ok()?;
        let xs = m.sizes(x)?;
        let sd = a.int("dim").ok()?;
        let (st, en) = (a.opt_int("start").ok()?, a.opt_int("end").ok()?);
        let end_ok = en.is_none_or(|e| e >= start + h as i64);
        let ok = name == "aten.slice.Tensor"
            && xs.len() == nd
            && xs[nd - 1] == d
            && (sd == -1 || sd == nd as i64 - 1)
            && st.unwrap_or(0) == start
            && end_ok
            && a.int("step").ok()? == 1;
        ok.then_some((j, x))
    };
    let (lo_step, x) = slice_of(m, lo, 0)?;
    let (ni, nname, na) = m.def(neg)?;
    m.only_reader(neg)?;
    if nname != "aten.neg.default" {
        return None;
    }
    let (hi_step, x_hi) = slice_of(m, *na.tensor("self").ok()?, h as i64)?;
    if x_hi != x || m.sizes(x)? != shape {
        return None;
    }
    m.steps.extend([lo_step, ni, hi_step]);
    // cat * sin → + x * cos
    let (j, name, a, rot) = m.reader(cat)?;
    let sin = other_operand(&a, cat).filter(|_| name == "aten.mul.Tensor")?;
    m.steps.push(j);
    let (j, name, a, out) = m.reader(rot)?;
    let xc = other_operand(&a, rot).filter(|_| name == "aten.add.Tensor")?;
    if a.scalar("alpha").is_ok_and(|s| s.to_f64() != 1.0) || m.sizes(out)? != shape {
        return None;
    }
    m.steps.push(j);
    let (ci, cname, ca) = m.def(xc)?;
    m.only_reader(xc)?;
    let cos = other_operand(&ca, x).filter(|_| cname == "aten.mul.Tensor")?;
    m.steps.push(ci);
    // The tables broadcast to x's shape, whole along the last dim.
    for t in [cos, sin] {
        let ts = m.sizes(t)?;
        let fits = ts.len() <= nd
            && ts.last() == Some(&d)
            && ts
                .iter()
                .rev()
                .zip(shape.iter().rev())
                .all(|(&a, &b)| a == b || a == 1);
        if !fits {
            return None;
        }
    }
    Some(Found {
        x,
        cos,
        sin,
        out,
        half: h,
        shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_the_unfused_formula_on_a_transposed_input_with_broadcast_tables() {
        // x: [2, 3, 4] read as a transpose of a [3, 2, 4] tensor; cos/sin: [3, 4] broadcast.
        let (b, t, d) = (2, 3, 4);
        let xv: Vec<f32> = (0..b * t * d).map(|i| i as f32 * 0.25 - 2.0).collect();
        let x = Tensor::from_vec(xv.clone(), &[t, b, d])
            .unwrap()
            .restride(&[b, t, d], &[d, b * d, 1], 0)
            .unwrap();
        let cv: Vec<f32> = (0..t * d).map(|i| (i as f32).cos()).collect();
        let sv: Vec<f32> = (0..t * d).map(|i| (i as f32).sin()).collect();
        let cos = Tensor::from_vec(cv.clone(), &[t, d]).unwrap();
        let sin = Tensor::from_vec(sv.clone(), &[t, d]).unwrap();
        let out = Tensor::zeros_strided(DType::F32, &[b, t, d], &[t * d, d, 1]).unwrap();
        let k = Rotary {
            half: d / 2,
            out_shape: vec![b, t, d],
        };
        k.run(&[&x, &cos, &sin], &out).unwrap();
        let got = out.to_vec::<f32>().unwrap();
        for bi in 0..b {
            for ti in 0..t {
                let xr = |j: usize| xv[(ti * b + bi) * d + j];
                for j in 0..d {
                    let rot = if j < d / 2 {
                        -xr(j + d / 2)
                    } else {
                        xr(j - d / 2)
                    };
                    let want = xr(j) * cv[ti * d + j] + rot * sv[ti * d + j];
                    assert_eq!(got[(bi * t + ti) * d + j], want, "{bi} {ti} {j}");
                }
            }
        }
        let odd = Tensor::from_vec(vec![0f32; 6], &[2, 3]).unwrap();
        assert!(k.run(&[&odd, &cos, &sin], &out).is_err());
    }

    /// Every one in a Hugging Face LLaMA's core IR is fused (one per `neg` of the plain
    /// plan); that the fused program still gives PyTorch's outputs is checked by the fixture tests
    /// (`tests/llm_decode.rs`).
    #[test]
    fn every_one_of_a_llama_is_fused() {
        use crate::{Module, PlanOptions};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let ep = oxport_ir::pt2::load(root.join("llm/llama_static_cache.core.pt2")).unwrap();
        let count = |m: &Module, t: &str| m.plan.steps.iter().filter(|s| s.target == t).count();
        let plain = Module::with_options(&ep, PlanOptions::unoptimized()).unwrap();
        assert_eq!(count(&plain, "torch.ops.aten.neg.default"), 4);
        assert_eq!(count(&Module::new(&ep).unwrap(), "oxport.rotary"), 4);
    }
}

//! RMS norm fusion: the decomposed `x * rsqrt(mean(x², -1, keepdim) + eps)` (times a weight) —
//! how Hugging Face's `LlamaRMSNorm` and `nn.RMSNorm` reach the graph — becomes one step.
//!
//! ```text
//! pow.Tensor_Scalar(x, 2) → mean.dim(·, [-1], keepdim) → add(·, eps) → rsqrt → mul(x, ·) [→ mul(w, ·)]
//! ```
//!
//! Five or six passes over the row, and a `[.., 1]` statistic written and read three times, become
//! one pass per row in cache ([`vmath::rms_norm_row`]). Taken when every value inside the chain has
//! no reader outside it, shapes are static f32, the weight (if any) is 1-D over the normalized dim,
//! and no step in between writes in place.
use super::rewrite::{apply, quiet_between, Matcher, Uses};
use super::{Prepared, PreparedKernel};
use crate::plan::{GraphPlan, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::tensor::kernels::{simd, vmath};
use oxport_core::{DType, Tensor};
use rayon::prelude::*;
use std::collections::HashMap;

/// The fused RMS norm over the last dim (`n` elements): reads `x` and, when `weighted`, `w`.
#[derive(Debug)]
pub(crate) struct RmsNorm {
    pub n: usize,
    pub eps: f32,
    pub weighted: bool,
}

/// Norms of at least this many elements split their rows between rayon tasks.
const PAR_MIN_ELEMS: usize = 1 << 16;

impl PreparedKernel for RmsNorm {
    fn run(&self, inputs: &[&Tensor], out: &Tensor) -> oxport_core::Result<()> {
        let x = inputs[0];
        let n = self.n.max(1);
        let bad = x.dtype() != DType::F32
            || x.sizes().last() != Some(&self.n)
            || out.numel() != x.numel()
            || (self.weighted && (inputs[1].dtype() != DType::F32 || inputs[1].numel() != n));
        if bad {
            return Err(oxport_core::Error::Value(format!(
                "internal: an RMS norm over {} got an input of sizes {:?}",
                self.n,
                x.sizes()
            )));
        }
        let w = self.weighted.then(|| inputs[1].contiguous_untraced());
        let isa = simd::active();
        let norm = |xd: &[f32], wd: Option<&[f32]>, od: &mut [f32]| {
            let row = |(xr, yr): (&[f32], &mut [f32])| {
                vmath::rms_norm_row(isa, xr, wd, self.eps, yr);
            };
            if od.len() >= PAR_MIN_ELEMS {
                xd.par_chunks(n).zip(od.par_chunks_mut(n)).for_each(row);
            } else {
                xd.chunks(n).zip(od.chunks_mut(n)).for_each(row);
            }
        };
        x.with_contiguous::<f32, _>(|xd| match &w {
            Some(w) => w.with_contiguous::<f32, _>(|wd| {
                out.with_contiguous_mut::<f32, _>(|od| norm(xd, Some(wd), od))
            })?,
            None => out.with_contiguous_mut::<f32, _>(|od| norm(xd, None, od)),
        })?
    }
}

/// Runs the pass; returns the number of norms fused.
pub(crate) fn fuse_rms_norms(plan: &mut GraphPlan, metas: &[Option<TensorMeta>]) -> usize {
    let u = Uses::of(plan);
    let mut removed = vec![false; plan.steps.len()];
    let mut patch = HashMap::new();
    for i in 0..plan.steps.len() {
        let mut m = Matcher::new(plan, &u, metas);
        let Some((x, w, eps, out)) = rms_norm_at(&mut m, i) else {
            continue;
        };
        let steps = m.steps;
        let (first, last) = (steps[0], *steps.last().expect("a chain has steps"));
        if steps.iter().any(|&j| removed[j]) || !quiet_between(plan, first, last, &steps) {
            continue;
        }
        let Some(shape) = Matcher::new(plan, &u, metas).sizes(out) else {
            continue;
        };
        for &j in &steps {
            removed[j] = true;
        }
        let nodes = steps.iter().map(|&j| plan.steps[j].node.clone()).collect();
        let step = Prepared {
            inputs: std::iter::once(x).chain(w).collect(),
            out,
            dtype: DType::F32,
            kernel: Box::new(RmsNorm {
                n: *shape.last().expect("a norm's input has a last dim"),
                eps,
                weighted: w.is_some(),
            }),
            out_shape: shape,
            buf: None,
        };
        patch.insert(last, (step, nodes, "oxport.rms_norm"));
    }
    let n = patch.len();
    apply(plan, patch, &removed);
    n
}

/// The chain whose `pow(x, 2)` is step `i`: (x, weight, eps, output); `m.steps` gets its steps in
/// order.
fn rms_norm_at(m: &mut Matcher<'_>, i: usize) -> Option<(Slot, Option<Slot>, f32, Slot)> {
    let (name, a, outs) = super::rewrite::op_at(m.plan, i)?;
    if name != "aten.pow.Tensor_Scalar" || a.scalar("exponent").ok()?.to_f64() != 2.0 {
        return None;
    }
    let x = *a.tensor("self").ok()?;
    let xs = m.sizes(x)?;
    let nd = xs.len();
    let sq = super::rewrite::out_slot(&outs, 0)?;
    m.steps.push(i);
    // mean(·, [-1], keepdim=True)
    let (j, name, a, mean) = m.reader(sq)?;
    let dims = a.opt_ints("dim").ok()??;
    let last = |d: i64| d == -1 || d == nd as i64 - 1;
    let no_dtype = a.opt_dtype("dtype").ok().flatten().is_none();
    if name != "aten.mean.dim" || dims.len() != 1 || !last(dims[0]) || !a.bool("keepdim").ok()? {
        return None;
    }
    no_dtype.then_some(())?;
    m.steps.push(j);
    // + eps
    let (j, name, a, var) = m.reader(mean)?;
    let alpha_one = a.scalar("alpha").map_or(true, |s| s.to_f64() == 1.0);
    if !matches!(name, "aten.add.Tensor" | "aten.add.Scalar") || !alpha_one {
        return None;
    }
    if a.tensor("self").ok() != Some(&mean) {
        return None;
    }
    let eps = a.scalar("other").ok()?.to_f64() as f32;
    m.steps.push(j);
    // rsqrt
    let (j, name, _, rstd) = m.reader(var)?;
    (name == "aten.rsqrt.default").then_some(())?;
    m.steps.push(j);
    // x * rstd (either order)
    let (j, name, a, y) = m.reader(rstd)?;
    let operands = (*a.tensor("self").ok()?, *a.tensor("other").ok()?);
    if name != "aten.mul.Tensor" || (operands != (x, rstd) && operands != (rstd, x)) {
        return None;
    }
    if m.sizes(y)? != xs {
        return None;
    }
    m.steps.push(j);
    // [· * w], w 1-D over the last dim (either order).
    let weighted = m.reader(y).and_then(|(j, name, a, out)| {
        let (p, q) = (*a.tensor("self").ok()?, *a.tensor("other").ok()?);
        let w = if p == y { q } else { p };
        let ok = name == "aten.mul.Tensor"
            && (p == y) != (q == y)
            && m.sizes(w)? == [xs[nd - 1]]
            && m.sizes(out)? == xs;
        ok.then_some((j, w, out))
    });
    Some(match weighted {
        Some((j, w, out)) => {
            m.steps.push(j);
            (x, Some(w), eps, out)
        }
        None => (x, None, eps, y),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_matches_the_decomposed_formula_and_refuses_other_sizes() {
        let (rows, n) = (3, 5);
        let xv: Vec<f32> = (0..rows * n).map(|i| (i as f32 - 7.0) * 0.3).collect();
        let wv: Vec<f32> = (0..n).map(|i| 0.5 + i as f32).collect();
        let x = Tensor::from_vec(xv.clone(), &[rows, n]).unwrap();
        let w = Tensor::from_vec(wv.clone(), &[n]).unwrap();
        let out = Tensor::zeros_strided(DType::F32, &[rows, n], &[n, 1]).unwrap();
        let k = RmsNorm {
            n,
            eps: 1e-6,
            weighted: true,
        };
        k.run(&[&x, &w], &out).unwrap();
        let got = out.to_vec::<f32>().unwrap();
        for r in 0..rows {
            let row = &xv[r * n..(r + 1) * n];
            let ms = row.iter().map(|v| v * v).sum::<f32>() / n as f32;
            let rstd = 1.0 / (ms + 1e-6).sqrt();
            for c in 0..n {
                let want = row[c] * rstd * wv[c];
                assert!((got[r * n + c] - want).abs() <= 1e-6 * want.abs().max(1.0));
            }
        }
        let wrong = Tensor::from_vec(vec![1f32; 8], &[2, 4]).unwrap();
        assert!(k.run(&[&wrong, &w], &out).is_err());
    }

    /// Every one in a Hugging Face LLaMA's two IRs is fused (one per `pow` of the plain
    /// plan); that the fused program still gives PyTorch's outputs is checked by the fixture tests
    /// (`tests/llm_decode.rs`).
    #[test]
    fn every_one_of_a_llama_is_fused() {
        use crate::{Module, PlanOptions};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        // The training IR's norms end in `weight * x.to(float32)`: fused once the `to` is elided.
        for form in ["core", "train"] {
            let path = root.join(format!("llm/llama_static_cache.{form}.pt2"));
            let ep = oxport_ir::pt2::load(path).unwrap();
            let count = |m: &Module, t: &str| m.plan.steps.iter().filter(|s| s.target == t).count();
            let plain = Module::with_options(&ep, PlanOptions::unoptimized()).unwrap();
            assert_eq!(count(&plain, "torch.ops.aten.pow.Tensor_Scalar"), 5);
            let fused = Module::new(&ep).unwrap();
            assert_eq!(count(&fused, "oxport.rms_norm"), 5, "{form}");
            let weighted = fused.plan.steps.iter().filter(|s| {
                matches!(&s.kind, crate::plan::Kind::Prepared(p) if p.inputs.len() == 2)
                    && s.target == "oxport.rms_norm"
            });
            assert_eq!(weighted.count(), 5, "{form}: a weight left out of its norm");
        }
    }
}

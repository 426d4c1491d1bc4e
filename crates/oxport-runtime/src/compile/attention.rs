//! Attention fusion: the core IR's decomposed `scaled_dot_product_attention` becomes one step.
//!
//! `run_decompositions()` turns sdpa into (PyTorch's math path, "safe softmax" included):
//!
//! ```text
//! mul.Scalar(q, c1)  permute(k, [.., -1, -2])  mul.Scalar(kᵀ, c2)
//! expand [+ clone] + view → bmm → view    (scores, batch ++ [L, S])
//! [add.Tensor(scores, mask)]
//! _softmax(·, -1) ; eq(·, -inf) → logical_not → any(-1, keepdim) → logical_not ; full_like(0) ; where
//! expand + view → bmm with view(expand(v)) → view      (out, batch ++ [L, Ev])
//! ```
//!
//! Twenty-odd steps, two of them `[.., L, S]` score tensors written and read three times. The fused
//! step reads q, k, v (and the mask) where the chain starts and runs
//! [`attention_f32`] with scale `c1·c2`: per block of query rows, scores in cache, softmax, product
//! with v. It is taken only when every value inside the chain has no reader outside it, shapes are
//! static f32, and no step in between writes in place. Without the safe-softmax guard (`where`),
//! only unmasked attention is taken (a fully masked row would be NaN there, 0 in the kernel).
use super::rewrite::{apply, op_at, quiet_between, Matcher, Uses};
use super::{Prepared, PreparedKernel};
use crate::plan::{GraphPlan, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::tensor::kernels::attention::{attention_f32, AttentionParams};
use oxport_core::{DType, Tensor};
use std::collections::HashMap;

/// The fused attention: reads q, k, v and, with `masked`, an f32 mask added to the scores.
#[derive(Debug)]
pub(crate) struct FusedAttention {
    pub params: AttentionParams,
    pub masked: bool,
}

impl PreparedKernel for FusedAttention {
    fn run(&self, inputs: &[&Tensor], out: &Tensor) -> oxport_core::Result<()> {
        let mask = if self.masked { Some(inputs[3]) } else { None };
        if attention_f32(inputs[0], inputs[1], inputs[2], mask, self.params, out)? {
            Ok(())
        } else {
            Err(oxport_core::Error::Value(format!(
                "fused attention: operands of sizes {:?}, {:?}, {:?} are not those it was planned for",
                inputs[0].sizes(),
                inputs[1].sizes(),
                inputs[2].sizes()
            )))
        }
    }
}

/// Runs the pass; returns the number of attentions fused.
pub(crate) fn fuse_attention(plan: &mut GraphPlan, metas: &[Option<TensorMeta>]) -> usize {
    let u = Uses::of(plan);
    let mut removed = vec![false; plan.steps.len()];
    let mut patch = HashMap::new();
    for i in 0..plan.steps.len() {
        let Some(m) = Matcher::new(plan, &u, metas).attention_at(i) else {
            continue;
        };
        if m.steps.iter().any(|&j| removed[j]) {
            continue;
        }
        let last = *m.steps.iter().max().expect("a chain has steps");
        let first = *m.steps.iter().min().expect("a chain has steps");
        let in_place_between = !quiet_between(plan, first, last, &m.steps);
        if in_place_between {
            continue;
        }
        let mut steps = m.steps.clone();
        steps.sort_unstable();
        for &j in &steps {
            removed[j] = true;
        }
        let nodes = steps.iter().map(|&j| plan.steps[j].node.clone()).collect();
        let mut inputs = vec![m.q, m.k, m.v];
        inputs.extend(m.mask);
        let step = Prepared {
            inputs,
            out: m.out,
            out_shape: m.out_shape,
            dtype: DType::F32,
            kernel: Box::new(FusedAttention {
                params: AttentionParams {
                    scale: m.scale as f32,
                    causal: false,
                },
                masked: m.mask.is_some(),
            }),
            buf: None,
        };
        patch.insert(last, (step, nodes, "oxport.attention"));
    }
    let n = patch.len();
    apply(plan, patch, &removed);
    n
}

/// A matched chain: its inputs, output and steps.
struct Match {
    q: Slot,
    k: Slot,
    v: Slot,
    mask: Option<Slot>,
    scale: f64,
    out: Slot,
    out_shape: Vec<usize>,
    steps: Vec<usize>,
}

impl Matcher<'_> {
    /// Walks back from a batched-matmul operand `s` (`[B, M, N]`) through the identity `expand`s and
    /// `clone`s and the `view`s that fold the batch dims, to a value of sizes `batch ++ [M, N]`. Each
    /// value passed has `s`'s chain as its only reader.
    fn unbatched(&mut self, mut s: Slot, batch: &[usize]) -> Option<Slot> {
        let want_tail = {
            let sz = self.sizes(s)?;
            sz[sz.len().checked_sub(2)?..].to_vec()
        };
        for _ in 0..4 {
            let sz = self.sizes(s)?;
            let done = sz[..sz.len() - 2] == *batch && sz[sz.len() - 2..] == *want_tail;
            let walk = self.def(s).and_then(|(i, name, a)| {
                let x = *a.tensor("self").ok()?;
                let xs = self.sizes(x)?;
                let through = match name {
                    // The kernel reads its operands strided: a copy made contiguous is not needed.
                    "aten.expand.default" | "aten.clone.default" => xs == sz,
                    "aten.view.default" => {
                        !done
                            && xs.len() >= 2
                            && xs[xs.len() - 2..] == *want_tail
                            && xs.iter().product::<usize>() == sz.iter().product::<usize>()
                    }
                    _ => false,
                };
                through.then_some((i, x))
            });
            match walk {
                // A value the chain drops has no other reader.
                Some((i, x)) if self.only_reader(s).is_some() => {
                    self.steps.push(i);
                    s = x;
                }
                _ => return done.then_some(s),
            }
        }
        None
    }

    /// `x` or `mul.Scalar(x, c)`: (x, c).
    fn scaled(&mut self, s: Slot) -> Option<(Slot, f64)> {
        match self.def(s) {
            Some((i, "aten.mul.Scalar", a)) => {
                let x = *a.tensor("self").ok()?;
                let c = a.scalar("other").ok()?.to_f64();
                self.only_reader(s)?;
                self.steps.push(i);
                Some((x, c))
            }
            _ => Some((s, 1.0)),
        }
    }

    /// `bmm(a, b)` defining the `view` `s` of sizes `batch ++ [M, N]`: (a, b).
    fn bmm_view(&mut self, s: Slot) -> Option<(Slot, Slot)> {
        let (vi, vname, va) = self.def(s)?;
        (vname == "aten.view.default").then_some(())?;
        let prod = *va.tensor("self").ok()?;
        self.only_reader(prod)?;
        let (bi, bname, ba) = self.def(prod)?;
        (bname == "aten.bmm.default").then_some(())?;
        self.steps.extend([vi, bi]);
        Some((*ba.tensor("self").ok()?, *ba.tensor("mat2").ok()?))
    }

    /// The chain whose `_softmax` is step `i`.
    fn attention_at(mut self, i: usize) -> Option<Match> {
        let (name, a, _) = op_at(self.plan, i)?;
        if name != "aten._softmax.default" || a.bool("half_to_float").ok()? {
            return None;
        }
        let x = *a.tensor("self").ok()?;
        let xs = self.sizes(x)?;
        let nd = xs.len();
        let dim = a.int("dim").ok()?;
        if nd < 3 || (dim != -1 && dim != nd as i64 - 1) {
            return None;
        }
        let sm = self.out_of(i)?;
        self.steps.push(i);
        let batch = xs[..nd - 2].to_vec();
        let (l, s) = (xs[nd - 2], xs[nd - 1]);
        // The guard: where(!any(!(x == -inf), -1, keepdim), full_like(sm, 0), sm).
        let probs = self.safe_softmax_guard(x, sm, nd);
        // Scores, and the mask added to them.
        let (scores, mask) = match self.def(x) {
            Some((ai, "aten.add.Tensor", aa)) => {
                if aa.scalar("alpha").ok()?.to_f64() != 1.0 {
                    return None;
                }
                let (p, q) = (*aa.tensor("self").ok()?, *aa.tensor("other").ok()?);
                // The scores are the operand a view of a bmm defines; the mask, f32, broadcasts.
                let is_scores = |m: &Self, t: Slot| {
                    matches!(m.def(t), Some((_, "aten.view.default", _)))
                        && m.sizes(t) == Some(xs.clone())
                };
                let (sc, mk) = if is_scores(&self, p) { (p, q) } else { (q, p) };
                let mm = self.metas.get(mk)?.as_ref()?;
                if mm.dtype != DType::F32 || mm.sizes.len() > nd || !is_scores(&self, sc) {
                    return None;
                }
                self.only_reader(sc)?;
                self.steps.push(ai);
                (sc, Some(mk))
            }
            _ => (x, None),
        };
        let probs = match probs {
            Some(w) => w,
            // No guard: a fully masked row is NaN in the program; take only unmasked attention.
            None if mask.is_none() => {
                self.only_reader(x)?;
                sm
            }
            None => return None,
        };
        let (qa, kb) = self.bmm_view(scores)?;
        let (qm, km) = (self.unbatched(qa, &batch)?, self.unbatched(kb, &batch)?);
        let (q, c1) = self.scaled(qm)?;
        let (kt, c2) = self.scaled(km)?;
        // kᵀ: k with its last two dims swapped.
        let (ti, tname, ta) = self.def(kt)?;
        let swapped = match tname {
            "aten.permute.default" => {
                let dims = ta.ints("dims").ok()?;
                let norm: Vec<i64> = dims
                    .iter()
                    .map(|&d| if d < 0 { d + nd as i64 } else { d })
                    .collect();
                let mut want: Vec<i64> = (0..nd as i64).collect();
                want.swap(nd - 2, nd - 1);
                norm == want
            }
            "aten.transpose.int" => {
                let n = |d: i64| if d < 0 { d + nd as i64 } else { d };
                let (d0, d1) = (n(ta.int("dim0").ok()?), n(ta.int("dim1").ok()?));
                let (a, b) = (d0.min(d1), d0.max(d1));
                a == nd as i64 - 2 && b == nd as i64 - 1
            }
            _ => false,
        };
        if !swapped {
            return None;
        }
        self.only_reader(kt)?;
        self.steps.push(ti);
        let k = *ta.tensor("self").ok()?;
        // The product with v.
        let pe = self.only_reader(probs)?;
        let pa_out = self.out_of(pe)?;
        // probs → (expand, view)* → bmm(·, v) → view: walk forward to the bmm reading them.
        let (bmm2, pa) = self.forward_to_bmm(probs, pe, pa_out)?;
        let (_, b2a, _) = op_at(self.plan, bmm2)?;
        if *b2a.tensor("self").ok()? != pa {
            return None;
        }
        let vb = *b2a.tensor("mat2").ok()?;
        let v = self.unbatched(vb, &batch)?;
        let prod = self.out_of(bmm2)?;
        let fv = self.only_reader(prod)?;
        let (fname, _, _) = op_at(self.plan, fv)?;
        if fname != "aten.view.default" {
            return None;
        }
        let out = self.out_of(fv)?;
        self.steps.extend([bmm2, fv]);
        let (qs, ks, vs) = (self.sizes(q)?, self.sizes(k)?, self.sizes(v)?);
        let e = qs[nd - 1];
        let ev = vs[nd - 1];
        let out_shape = self.sizes(out)?;
        let mut want_out = batch.clone();
        want_out.extend([l, ev]);
        let mut want_k = batch.clone();
        want_k.extend([s, e]);
        if qs[..nd - 2] != *batch
            || qs[nd - 2] != l
            || ks != want_k
            || vs[nd - 2] != s
            || out_shape != want_out
        {
            return None;
        }
        Some(Match {
            q,
            k,
            v,
            mask,
            scale: c1 * c2,
            out,
            out_shape,
            steps: self.steps,
        })
    }

    /// From the probabilities `p`, read by step `first` defining `first_out`: through identity
    /// `expand`s and batch-folding `view`s to the `bmm` reading the folded value. Returns the bmm's
    /// step and the slot it reads.
    fn forward_to_bmm(&mut self, p: Slot, mut step: usize, mut out: Slot) -> Option<(usize, Slot)> {
        let tail = {
            let s = self.sizes(p)?;
            s[s.len() - 2..].to_vec()
        };
        let mut cur = p;
        for _ in 0..4 {
            let (name, _, _) = op_at(self.plan, step)?;
            match name {
                "aten.bmm.default" => return Some((step, cur)),
                "aten.view.default" | "aten.expand.default" => {
                    let (cs, os) = (self.sizes(cur)?, self.sizes(out)?);
                    let ok = os.len() >= 2
                        && os[os.len() - 2..] == *tail
                        && cs.iter().product::<usize>() == os.iter().product::<usize>()
                        && (name == "aten.view.default" || cs == os);
                    if !ok {
                        return None;
                    }
                    self.steps.push(step);
                    cur = out;
                    step = self.only_reader(cur)?;
                    out = self.out_of(step)?;
                }
                _ => return None,
            }
        }
        None
    }

    /// The safe-softmax guard over the scores `x` and their softmax `sm`: the `where` output, after
    /// checking that `sm` is read only by the guard.
    fn safe_softmax_guard(&mut self, x: Slot, sm: Slot, nd: usize) -> Option<Slot> {
        let mut found = vec![];
        // eq(x, -inf) → logical_not → any(-1, keepdim) → logical_not
        let ei = (0..self.plan.steps.len()).find(|&j| {
            op_at(self.plan, j).is_some_and(|(n, a, _)| {
                n == "aten.eq.Scalar"
                    && a.tensor("self").ok() == Some(&x)
                    && a.scalar("other")
                        .is_ok_and(|c| c.to_f64() == f64::NEG_INFINITY)
            })
        })?;
        found.push(ei);
        let mut cur = self.out_of(ei)?;
        for want in [
            "aten.logical_not.default",
            "aten.any.dim",
            "aten.logical_not.default",
        ] {
            let j = self.only_reader(cur)?;
            let (n, a, _) = op_at(self.plan, j)?;
            if n != want || a.tensor("self").ok() != Some(&cur) {
                return None;
            }
            if n == "aten.any.dim" {
                let d = a.int("dim").ok()?;
                if (d != -1 && d != nd as i64 - 1) || !a.bool("keepdim").ok()? {
                    return None;
                }
            }
            found.push(j);
            cur = self.out_of(j)?;
        }
        let wi = self.only_reader(cur)?;
        let (wn, wa, _) = op_at(self.plan, wi)?;
        if wn != "aten.where.self"
            || wa.tensor("condition").ok() != Some(&cur)
            || wa.tensor("other").ok() != Some(&sm)
        {
            return None;
        }
        let fl = *wa.tensor("self").ok()?;
        self.sizes(fl)?;
        let (fi, fname, fa) = self.def(fl)?;
        let zero = fa.scalar("fill_value").is_ok_and(|c| c.to_f64() == 0.0);
        if fname != "aten.full_like.default" || fa.tensor("self").ok() != Some(&sm) || !zero {
            return None;
        }
        self.only_reader(fl)?;
        if self.u.count[sm] != 2 || self.u.count[x] != 2 {
            return None;
        }
        found.extend([fi, wi]);
        self.steps.extend(found);
        self.out_of(wi)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Module, PlanOptions};
    use std::path::Path;

    fn fused_attentions(rel: &str) -> (usize, usize) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let ep = oxport_ir::pt2::load(root.join(rel)).unwrap();
        let count = |m: &Module| {
            let steps = &m.plan.steps;
            let fused = steps
                .iter()
                .filter(|s| s.target == "oxport.attention")
                .count();
            let softmax = steps
                .iter()
                .filter(|s| s.target == "torch.ops.aten._softmax.default")
                .count();
            (fused, softmax)
        };
        let plain = count(&Module::with_options(&ep, PlanOptions::unoptimized()).unwrap());
        assert_eq!(plain.0, 0);
        let (fused, left) = count(&Module::new(&ep).unwrap());
        assert_eq!(left, 0, "{rel}: a softmax was left unfused");
        assert_eq!(fused, plain.1, "{rel}");
        (fused, plain.1)
    }

    /// The core IR's decomposed attention, unmasked (nn.MultiheadAttention) and with an additive
    /// mask (a Hugging Face LLaMA's static cache), becomes one step per attention; that the fused
    /// programs still give PyTorch's outputs is checked by the fixture tests
    /// (`tests/fixtures_run.rs`, `tests/llm_decode.rs`).
    #[test]
    fn core_ir_attention_is_fused_unmasked_and_masked() {
        assert_eq!(fused_attentions("pt2/transformer_block.core.pt2"), (1, 1));
        assert_eq!(fused_attentions("llm/llama_static_cache.core.pt2"), (2, 2));
        // A boolean causal mask (folded to constant scores bias), q and k copied contiguous first.
        assert_eq!(fused_attentions("pt2/rope_causal_block.core.pt2"), (1, 1));
    }
}

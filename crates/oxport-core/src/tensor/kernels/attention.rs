//! Scaled dot-product attention over f32 tensors in one pass per query block: `softmax(q·kᵀ·scale +
//! mask) · v`, the scores of a block of query rows kept in a scratch buffer in cache. The eager
//! `scaled_dot_product_attention` op runs it, and so does the runtime's fused form of the
//! decomposed attention of the core IR (`mul` · `bmm` · `_softmax` · `where` · `bmm`).
//!
//! q, k and v are read through their strides (a head selected from a packed qkv projection is not
//! copied). Fully masked rows give zeros, as PyTorch's CPU kernel and its "safe softmax"
//! decomposition do.
use super::matmul::gemm_strided;
use super::{simd, vmath};
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::{strided::for_each_run, Tensor};
use rayon::prelude::*;

/// How scores are formed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionParams {
    /// The factor on `q·kᵀ` (PyTorch's default: `1/√E`).
    pub scale: f32,
    /// Key `j` of query row `i` gets weight 0 when `j > i` (the upper-left aligned triangle of
    /// PyTorch's `is_causal`).
    pub causal: bool,
}

/// Computes attention into the contiguous f32 `out` of sizes `batch ++ [L, Ev]`, for q `batch ++
/// [L, E]`, k `batch ++ [S, E]`, v `batch ++ [S, Ev]` (any strides) and an optional mask (bool:
/// `false` masks out; float: added to the scores) broadcastable to `batch ++ [L, S]`. Returns
/// `Ok(false)`, writing nothing, when the operands are not of this form (other dtypes, batch dims
/// that differ).
///
/// ```
/// use oxport_core::tensor::kernels::attention::{attention_f32, AttentionParams};
/// use oxport_core::{DType, Tensor};
/// let q = Tensor::from_vec(vec![1.0f32, 0.0], &[1, 2])?;
/// let k = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[2, 2])?;
/// let v = Tensor::from_vec(vec![10.0f32, 20.0], &[2, 1])?;
/// let out = Tensor::zeros_strided(DType::F32, &[1, 1], &[1, 1])?;
/// let p = AttentionParams { scale: 0.0, causal: false };
/// assert!(attention_f32(&q, &k, &v, None, p, &out)?);
/// assert_eq!(out.to_vec::<f32>()?, vec![15.0]); // scale 0: equal weights
/// # Ok::<(), oxport_core::Error>(())
/// ```
pub fn attention_f32(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    p: AttentionParams,
    out: &Tensor,
) -> Result<bool> {
    let f32s = [q, k, v].iter().all(|t| t.dtype() == DType::F32) && out.dtype() == DType::F32;
    if !f32s || q.dim() < 2 || q.dim() != k.dim() || q.dim() != v.dim() || !out.is_contiguous() {
        return Ok(false);
    }
    let nd = q.dim();
    let batch = &q.sizes()[..nd - 2];
    if k.sizes()[..nd - 2] != *batch || v.sizes()[..nd - 2] != *batch {
        return Ok(false);
    }
    let (l, e) = (q.sizes()[nd - 2], q.sizes()[nd - 1]);
    let (s, ev) = (k.sizes()[nd - 2], v.sizes()[nd - 1]);
    if k.sizes()[nd - 1] != e || v.sizes()[nd - 2] != s || out.sizes() != [batch, &[l, ev]].concat()
    {
        return Ok(false);
    }
    let items: usize = batch.iter().product();
    if items == 0 || l == 0 || ev == 0 {
        return Ok(true);
    }
    if s == 0 {
        // No keys: every row is fully masked.
        out.with_contiguous_mut::<f32, _>(|o| o.fill(0.0))?;
        return Ok(true);
    }
    let mut score_sizes = batch.to_vec();
    score_sizes.extend([l, s]);
    // The mask as an additive f32 bias over the scores: its own elements in row-major order, read
    // through broadcast strides (not materialized at the scores' size).
    let mask = match mask {
        Some(m) if m.dim() <= score_sizes.len() => {
            let bias: Vec<f32> = match m.dtype() {
                DType::Bool => m
                    .to_vec::<bool>()?
                    .into_iter()
                    .map(|b| if b { 0.0 } else { f32::NEG_INFINITY })
                    .collect(),
                DType::F32 => m.to_vec::<f32>()?,
                _ => m.cast_untraced(DType::F32).to_vec::<f32>()?,
            };
            let dense = crate::tensor::contiguous_strides(m.sizes());
            let st = super::elementwise::broadcast_strides_of(m.sizes(), &dense, &score_sizes);
            Some((bias, st))
        }
        Some(_) => return Ok(false),
        None => None,
    };
    let tensors = [q, k, v];
    let offsets: Vec<Vec<usize>> = tensors.iter().map(|t| item_offsets(t, batch)).collect();
    let strides = |t: &Tensor| (t.strides()[nd - 2] as isize, t.strides()[nd - 1] as isize);
    let ((q_rs, q_cs), (k_rs, k_cs), (v_rs, v_cs)) = (strides(q), strides(k), strides(v));
    let isa = simd::active();
    with_f32_storages(&tensors, |data| {
        let (qd, kd, vd) = (data[0], data[1], data[2]);
        out.with_contiguous_mut::<f32, _>(|od| {
            // One task: query rows r0.. of one batch item, writing `ob`.
            let run = |item: usize, r0: usize, ob: &mut [f32], scores: &mut Vec<f32>| {
                let lr = ob.len() / ev;
                scores.resize(lr * s, 0.0);
                // (With no features, e = 0, q and k may have no storage to index.)
                fn from(d: &[f32], o: usize) -> &[f32] {
                    d.get(o..).unwrap_or(&[])
                }
                let qi = from(qd, offsets[0][item] + r0 * q_rs as usize);
                let (ki, vi) = (from(kd, offsets[1][item]), from(vd, offsets[2][item]));
                // scores = q · kᵀ: kᵀ read with row stride k_cs, column stride k_rs.
                gemm_strided(
                    lr, e, s, qi, q_rs, q_cs, ki, k_cs, k_rs, scores, false, false,
                );
                // The mask's offset for this item (its index unraveled over the batch dims).
                let moff = mask.as_ref().map(|(_, st)| {
                    let (mut rem, mut off) = (item, 0usize);
                    for d in (0..batch.len()).rev() {
                        off += (rem % batch[d]) * st[d];
                        rem /= batch[d];
                    }
                    off
                });
                for (ri, row) in scores.chunks_exact_mut(s).enumerate() {
                    let i = r0 + ri;
                    row.iter_mut().for_each(|x| *x *= p.scale);
                    if let (Some((m, st)), Some(off)) = (&mask, moff) {
                        let (sl, ss) = (st[batch.len()], st[batch.len() + 1]);
                        let mrow = &m[off + i * sl..];
                        if ss == 1 {
                            row.iter_mut().zip(mrow).for_each(|(x, b)| *x += b);
                        } else {
                            for (j, x) in row.iter_mut().enumerate() {
                                *x += mrow[j * ss];
                            }
                        }
                    }
                    // Causal: the keys after i get weight 0, so the softmax runs on the first
                    // i + 1 only.
                    let live = if p.causal { (i + 1).min(s) } else { s };
                    let (row, dead) = row.split_at_mut(live);
                    dead.fill(0.0);
                    let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    if mx == f32::NEG_INFINITY {
                        row.fill(0.0);
                        continue;
                    }
                    vmath::softmax_inplace(isa, row, false);
                }
                gemm_strided(
                    lr, s, ev, scores, s as isize, 1, vi, v_rs, v_cs, ob, false, false,
                );
            };
            let threads = rayon::current_num_threads();
            if threads > 1 && items * l * s * (e + ev) > 1 << 16 {
                // Tasks of query-row blocks, so that few items (heads) still fill the threads:
                // about four tasks per thread, at least 16 rows each.
                let per_item = (4 * threads).div_ceil(items).clamp(1, l.div_ceil(16));
                let rb = l.div_ceil(per_item);
                od.par_chunks_mut(l * ev)
                    .enumerate()
                    .for_each(|(item, oi)| {
                        oi.par_chunks_mut(rb * ev)
                            .enumerate()
                            .for_each_init(Vec::new, |sc, (b, ob)| run(item, b * rb, ob, sc))
                    });
            } else {
                let mut sc = Vec::new();
                for (item, ob) in od.chunks_mut(l * ev).enumerate() {
                    run(item, 0, ob, &mut sc);
                }
            }
        })
    })??;
    Ok(true)
}

/// The storage offset of each batch item's matrix of `t` (row-major over `batch`, `t`'s leading dims).
fn item_offsets(t: &Tensor, batch: &[usize]) -> Vec<usize> {
    if batch.is_empty() {
        return vec![t.storage_offset()];
    }
    let st = &t.strides()[..batch.len()];
    let mut offs = Vec::with_capacity(batch.iter().product());
    for_each_run(batch, &[st], &[t.storage_offset()], |o, len, s| {
        offs.extend((0..len).map(|i| o[0] + i * s[0]));
    });
    offs
}

/// Runs `f` on the f32 storages of `ts`, each storage locked for reading once (q, k and v are
/// often views of one projection).
fn with_f32_storages<R>(ts: &[&Tensor; 3], f: impl FnOnce([&[f32]; 3]) -> R) -> Result<R> {
    let g0 = ts[0].storage().read();
    let g1 = (!ts[1].shares_storage(ts[0])).then(|| ts[1].storage().read());
    let g2 = (!ts[2].shares_storage(ts[0]) && !ts[2].shares_storage(ts[1]))
        .then(|| ts[2].storage().read());
    fn typed(b: &crate::tensor::Buffer) -> Result<&[f32]> {
        <f32 as crate::tensor::Element>::slice(b)
            .ok_or_else(|| crate::error::Error::DType("attention: f32 storage expected".into()))
    }
    let s0 = typed(&g0)?;
    let s1 = match &g1 {
        Some(g) => typed(g)?,
        None => s0,
    };
    let s2 = match &g2 {
        Some(g) => typed(g)?,
        None if ts[2].shares_storage(ts[0]) => s0,
        None => s1,
    };
    Ok(f([s0, s1, s2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// softmax(q·kᵀ·scale + mask)·v in f64, on row-major copies; fully masked rows give 0.
    fn reference(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: Option<&Tensor>,
        p: AttentionParams,
    ) -> Vec<f64> {
        let nd = q.dim();
        let (l, e, s, ev) = (
            q.sizes()[nd - 2],
            q.sizes()[nd - 1],
            k.sizes()[nd - 2],
            v.sizes()[nd - 1],
        );
        let items: usize = q.sizes()[..nd - 2].iter().product();
        let (qd, kd, vd) = (q.to_vec_f64(), k.to_vec_f64(), v.to_vec_f64());
        let mut score_sizes = q.sizes()[..nd - 2].to_vec();
        score_sizes.extend([l, s]);
        let md = bias.map(|m| {
            let st = super::super::elementwise::broadcast_strides(m, &score_sizes);
            m.restride(&score_sizes, &st, m.storage_offset())
                .unwrap()
                .to_vec_f64()
        });
        let mut out = vec![0.0; items * l * ev];
        for it in 0..items {
            for i in 0..l {
                let mut w: Vec<f64> = (0..s)
                    .map(|j| {
                        let dot: f64 = (0..e)
                            .map(|c| qd[(it * l + i) * e + c] * kd[(it * s + j) * e + c])
                            .sum();
                        let m = md.as_ref().map_or(0.0, |m| m[(it * l + i) * s + j]);
                        if p.causal && j > i {
                            f64::NEG_INFINITY
                        } else {
                            dot * p.scale as f64 + m
                        }
                    })
                    .collect();
                let mx = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if mx == f64::NEG_INFINITY {
                    continue;
                }
                w.iter_mut().for_each(|x| *x = (*x - mx).exp());
                let sum: f64 = w.iter().sum();
                for c in 0..ev {
                    out[(it * l + i) * ev + c] =
                        (0..s).map(|j| w[j] / sum * vd[(it * s + j) * ev + c]).sum();
                }
            }
        }
        out
    }

    fn zeros(dtype: DType, s: &[usize]) -> Tensor {
        Tensor::zeros_strided(dtype, s, &crate::tensor::contiguous_strides(s)).unwrap()
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 7919 % 997) as f32 - 498.0) / 300.0)
            .collect()
    }

    /// Strided q, k, v (heads selected from one packed [B, L, 3, H, E] projection, as the core IR's
    /// `select`s of nn.MultiheadAttention give them), with no mask, a broadcast float mask with
    /// -inf (a fully masked row among them), a bool mask and causality, on one thread and several
    /// tasks.
    #[test]
    fn strided_operands_and_masks_match_the_reference() {
        for (b, h, l, e) in [(1, 2, 5, 3), (2, 3, 40, 16), (1, 1, 70, 64)] {
            let packed = Tensor::from_vec(values(b * l * 3 * h * e, 1), &[b, l, 3, h, e]).unwrap();
            // [B, L, 3, H, E] → three [B, H, L, E] views.
            let part = |i: usize| packed.select(2, i as i64).unwrap().transpose_untraced(1, 2);
            let (q, k, v) = (part(0), part(1), part(2));
            assert!(!q.is_contiguous());
            let mut fm = values(l * l, 5);
            fm[..l].fill(f32::NEG_INFINITY); // row 0 fully masked
            fm[l + 1] = f32::NEG_INFINITY;
            let float_mask = Tensor::from_vec(fm, &[1, 1, l, l]).unwrap();
            let bits: Vec<bool> = (0..l).map(|j| j % 3 != 1).collect();
            let bool_mask = Tensor::from_vec(bits.clone(), &[l]).unwrap();
            let bool_bias = Tensor::from_vec(
                bits.iter()
                    .map(|&x| if x { 0.0f32 } else { f32::NEG_INFINITY })
                    .collect(),
                &[l],
            )
            .unwrap();
            for causal in [false, true] {
                let p = AttentionParams {
                    scale: 0.37,
                    causal,
                };
                let cases: [(Option<&Tensor>, Option<&Tensor>); 3] = [
                    (None, None),
                    (Some(&float_mask), Some(&float_mask)),
                    (Some(&bool_mask), Some(&bool_bias)),
                ];
                for (mask, bias) in cases {
                    let want = reference(&q, &k, &v, bias, p);
                    for threads in [1, 2] {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        let out = zeros(DType::F32, &[b, h, l, e]);
                        let ran = pool
                            .install(|| attention_f32(&q, &k, &v, mask, p, &out))
                            .unwrap();
                        assert!(ran);
                        let got = out.to_vec::<f32>().unwrap();
                        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                                "{b}x{h}x{l}x{e} causal={causal} mask={} threads={threads} at {i}: {g} vs {w}",
                                mask.map_or("none", |m| m.dtype().name())
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn operands_of_another_form_are_declined() {
        let t = |s: &[usize]| zeros(DType::F32, s);
        let p = AttentionParams {
            scale: 1.0,
            causal: false,
        };
        // Batch dims that differ (head repetition is the caller's), and f64 operands.
        assert!(!attention_f32(
            &t(&[2, 4, 8]),
            &t(&[1, 4, 8]),
            &t(&[1, 4, 8]),
            None,
            p,
            &t(&[2, 4, 8])
        )
        .unwrap());
        let d = zeros(DType::F64, &[4, 8]);
        assert!(!attention_f32(&d, &d, &d, None, p, &t(&[4, 8])).unwrap());
        // No keys: zeros.
        let out = Tensor::from_vec(vec![1.0f32; 4], &[2, 2]).unwrap();
        assert!(attention_f32(&t(&[2, 3]), &t(&[0, 3]), &t(&[0, 2]), None, p, &out).unwrap());
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![0.0; 4]);
    }
}

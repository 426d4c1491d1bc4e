//! Matrix products with constant weights: `linear(x, W, b)`, `addmm(b, x, B)` and `mm(x, B)` with a
//! constant `W`/`B` (after constant folding, the core IR's `permute(W)` is one) become one prepared
//! step: the weight packed once as a row-major `K × N` matrix (the layout gemm reads fastest; a
//! transposed view costs up to 2× per call), the bias written into the output rows before the
//! product accumulates onto them, and a following activation applied in the same step. With AVX-512
//! and few rows (a transformer's tokens: [`PACKED_MAX_ROWS`], [`PACKED_MAX_LHS`]) the weight is
//! packed instead in [`sgemm::PackedB`]'s panels, which the `gemm` crate cannot read but
//! which save it re-packing the whole weight on every call (`cargo bench -p oxport-core --bench
//! kernels -- linear_`, 2 threads: 1.3–2.9× at 32–50 rows, 1.4× at 197×192).
use super::fuse::{activation, Activation};
use super::rewrite::{apply, only_reader, op_at, out_slot, Uses};
use super::{ConstCache, Prepared, PreparedKernel};
use crate::plan::{GraphPlan, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::ops::Args;
use oxport_core::tensor::kernels::matmul::gemm_strided;
use oxport_core::tensor::kernels::{sgemm, simd};
use oxport_core::{DType, Tensor};
use std::collections::HashMap;

/// Products with at most [`PACKED_MAX_ROWS`] rows, or a left-hand side of at most
/// [`PACKED_MAX_LHS`] elements, use a weight packed for [`sgemm::sgemm_packed_b`] (when the CPU has
/// AVX-512); larger ones the `gemm` crate, which is as fast or faster there (2 threads, GFLOP/s,
/// gemm crate vs packed: 128×3072×768 191 vs 162, 197×768×3072 212 vs 183, 512³ 244 vs 173; but
/// 50×3072×768 124 vs 162, 197×192×576 181 vs 257).
pub(crate) const PACKED_MAX_ROWS: usize = 64;
/// See [`PACKED_MAX_ROWS`].
pub(crate) const PACKED_MAX_LHS: usize = 1 << 16;

#[derive(Debug)]
enum Weight {
    /// Row-major `K × N`, for the `gemm` crate.
    RowMajor(std::sync::Arc<Vec<f32>>),
    /// Packed once in the micro-kernel's panels.
    Packed(std::sync::Arc<sgemm::PackedB>),
}

/// `out[M, N] = act(x[M, K] · w[K, N] + bias[N])`, `M` from the input's leading dims.
#[derive(Debug)]
struct PackedLinear {
    k: usize,
    n: usize,
    /// The weight, shared by the program's plans.
    w: Weight,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl PreparedKernel for PackedLinear {
    fn run(&self, inputs: &[&Tensor], out: &Tensor) -> oxport_core::Result<()> {
        let x = inputs[0];
        if x.dtype() != DType::F32
            || !x.numel().is_multiple_of(self.k.max(1))
            || out.numel() != x.numel() / self.k.max(1) * self.n
        {
            return Err(oxport_core::Error::Value(format!(
                "internal: a packed linear for K = {} got an input of sizes {:?}",
                self.k,
                x.sizes()
            )));
        }
        let x = if x.is_contiguous() {
            x.clone()
        } else {
            x.contiguous_untraced()
        };
        let m = x.numel() / self.k.max(1);
        x.with_contiguous::<f32, _>(|xd| {
            out.with_contiguous_mut::<f32, _>(|od| {
                let (k, n) = (self.k, self.n);
                match &self.w {
                    Weight::Packed(w) => {
                        // Bias and activation by the task that computed each part, in cache.
                        let epilogue = |row: &mut [f32], j0: usize| {
                            if let Some(b) = &self.bias {
                                for (x, b) in row.iter_mut().zip(&b[j0..]) {
                                    *x += b;
                                }
                            }
                            self.activation.apply_f32(row);
                        };
                        let isa = simd::active();
                        let then: sgemm::Epilogue = &epilogue;
                        sgemm::sgemm_packed_b_then(isa, m, xd, k, w, od, false, true, Some(then));
                        return;
                    }
                    Weight::RowMajor(w) => {
                        if let Some(b) = &self.bias {
                            for row in od.chunks_exact_mut(self.n) {
                                row.copy_from_slice(b);
                            }
                        }
                        gemm_strided(
                            m,
                            k,
                            n,
                            xd,
                            k as isize,
                            1,
                            w,
                            n as isize,
                            1,
                            od,
                            self.bias.is_some(),
                            true,
                        )
                    }
                }
                self.activation.apply_f32(od);
            })
        })?
    }
}

fn f32_static(m: Option<&TensorMeta>) -> Option<Vec<usize>> {
    let m = m?;
    if m.dtype != DType::F32 {
        return None;
    }
    m.concrete_sizes().ok()
}

/// Packs the products it can. Returns the number of steps prepared.
pub(crate) fn pack_linears(
    plan: &mut GraphPlan,
    metas: &[Option<TensorMeta>],
    consts: &HashMap<Slot, Tensor>,
    prepared: &ConstCache,
) -> usize {
    let u = Uses::of(plan);
    let mut removed = vec![false; plan.steps.len()];
    let mut patch = HashMap::new();
    for i in 0..plan.steps.len() {
        if removed[i] {
            continue;
        }
        let Some((name, a, outs)) = op_at(plan, i) else {
            continue;
        };
        let Some(prepared) = match_product(name, &a, metas, consts, prepared, &plan.steps[i].node)
        else {
            continue;
        };
        let (x, mut lin) = prepared;
        let Some(mut out) = out_slot(&outs, 0) else {
            continue;
        };
        let Some(out_shape) = f32_static(metas[out].as_ref()) else {
            continue;
        };
        let mut nodes = vec![plan.steps[i].node.clone()];
        let mut last = i;
        let mut out_shape = out_shape;
        // The steps right after the product that its epilogue can do: the core IR's `view`s back to
        // the input's batch dims, a constant bias `add` (`bmm` of a 3-d input), an activation.
        while let Some(j) = only_reader(plan, &u, out).filter(|&j| j == last + 1 && !removed[j]) {
            let Some((name, a, outs)) = op_at(plan, j) else {
                break;
            };
            let Some(o) = out_slot(&outs, 0) else {
                break;
            };
            let Some(o_shape) = f32_static(metas[o].as_ref()) else {
                break;
            };
            let reads_out = |n: &str| a.opt_tensor(n).ok().flatten() == Some(&out);
            let is_view = matches!(
                name,
                "aten.view.default" | "aten._unsafe_view.default" | "aten.reshape.default"
            );
            let bias = (name == "aten.add.Tensor" && o_shape == out_shape)
                .then(|| {
                    let alpha_one = a.scalar("alpha").is_ok_and(|s| s.to_f64() == 1.0);
                    let other = match (reads_out("self"), reads_out("other")) {
                        (true, false) => a.opt_tensor("other").ok().flatten(),
                        (false, true) => a.opt_tensor("self").ok().flatten(),
                        _ => None,
                    }?;
                    let b = consts.get(other)?;
                    let row = b.dtype() == DType::F32
                        && b.dim() >= 1
                        && b.sizes()[..b.dim() - 1].iter().all(|&d| d == 1)
                        && b.sizes().last() == Some(&lin.n)
                        && out_shape.last() == Some(&lin.n)
                        && b.dim() <= out_shape.len();
                    (alpha_one
                        && row
                        && lin.bias.is_none()
                        && lin.activation == Activation::Identity)
                        .then(|| b.contiguous_untraced().to_vec::<f32>().ok())
                        .flatten()
                })
                .flatten();
            let act = activation(name, &a).filter(|_| reads_out("self"));
            if is_view
                && reads_out("self")
                && o_shape.iter().product::<usize>() == out_shape.iter().product::<usize>()
            {
                // A view of the contiguous product is the same buffer.
            } else if let Some(b) = bias {
                lin.bias = Some(b);
            } else if let (Some(act), Activation::Identity) = (act, lin.activation) {
                lin.activation = act;
            } else {
                break;
            }
            nodes.push(plan.steps[j].node.clone());
            removed[j] = true;
            out = o;
            out_shape = o_shape;
            last = j;
        }
        removed[i] = true;
        let step = Prepared {
            inputs: vec![x],
            out,
            out_shape,
            dtype: DType::F32,
            kernel: Box::new(lin),
            buf: None,
        };
        patch.insert(last, (step, nodes, "oxport.linear"));
    }
    let n = patch.len();
    apply(plan, patch, &removed);
    n
}

/// The input slot and the packed product of a `linear`/`addmm`/`mm` step with a constant weight.
fn match_product(
    name: &str,
    a: &Args<Slot>,
    metas: &[Option<TensorMeta>],
    consts: &HashMap<Slot, Tensor>,
    prepared: &ConstCache,
    node: &str,
) -> Option<(Slot, PackedLinear)> {
    let tensor = |n: &str| a.opt_tensor(n).ok().flatten().copied();
    let (x, w, bias, transposed) = match name {
        "aten.linear.default" => (tensor("input")?, tensor("weight")?, tensor("bias"), true),
        "aten.addmm.default" => {
            let one = |n: &str| a.scalar(n).map(|s| s.to_f64() == 1.0).unwrap_or(false);
            if !one("beta") || !one("alpha") {
                return None;
            }
            (
                tensor("mat1")?,
                tensor("mat2")?,
                Some(tensor("self")?),
                false,
            )
        }
        "aten.mm.default" | "aten.bmm.default" => (tensor("self")?, tensor("mat2")?, None, false),
        _ => return None,
    };
    let xs = f32_static(metas[x].as_ref())?;
    let mut wt = consts.get(&w)?.clone();
    if name == "aten.bmm.default" {
        // A weight expanded over the batch (stride 0: the core IR's `linear` of a 3-d input) is one
        // product over all the batch's rows.
        if wt.dim() != 3 || wt.strides()[0] != 0 || xs.len() != 3 {
            return None;
        }
        wt = wt.select(0, 0).ok()?;
    }
    if wt.dtype() != DType::F32 || wt.dim() != 2 {
        return None;
    }
    // `linear`'s weight is [N, K]; `mm`'s mat2 is [K, N].
    let (k, n) = if transposed {
        (wt.sizes()[1], wt.sizes()[0])
    } else {
        (wt.sizes()[0], wt.sizes()[1])
    };
    let rank_ok = transposed || xs.len() == if name == "aten.bmm.default" { 3 } else { 2 };
    if xs.last() != Some(&k) || !rank_ok || k == 0 || n == 0 {
        return None;
    }
    let kn = || {
        let kn = if transposed {
            wt.transpose_untraced(0, 1)
        } else {
            wt.clone()
        };
        kn.contiguous_untraced().to_vec::<f32>().ok()
    };
    let rows: usize = xs[..xs.len() - 1].iter().product();
    let few_rows = rows <= PACKED_MAX_ROWS || rows * k <= PACKED_MAX_LHS;
    let w = if few_rows && simd::active() == simd::Isa::Avx512 {
        Weight::Packed(prepared.get_or_insert(node, "linear_packed", || {
            Some(sgemm::PackedB::new(&kn()?, n, k, n))
        })?)
    } else {
        Weight::RowMajor(prepared.get_or_insert(node, "linear", kn)?)
    };
    let bias = match bias {
        Some(b) => {
            let bt = consts.get(&b)?;
            if bt.dtype() != DType::F32 || bt.sizes() != [n] {
                return None;
            }
            Some(bt.to_vec::<f32>().ok()?)
        }
        None => None,
    };
    Some((
        x,
        PackedLinear {
            k,
            n,
            w,
            bias,
            activation: Activation::Identity,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn packed_and_row_major_weights_give_the_reference_product_with_bias_and_activation() {
        let (k, n) = (70, 100);
        let val = |i: usize| ((i * 7919 % 997) as f32 - 498.0) / 400.0;
        let w: Vec<f32> = (0..k * n).map(val).collect();
        let bias: Vec<f32> = (0..n).map(|j| val(j + 11)).collect();
        for m in [1, 5, 50, 100] {
            let x: Vec<f32> = (0..m * k).map(|i| val(i + 5)).collect();
            let want: Vec<f64> = (0..m * n)
                .map(|idx| {
                    let (i, j) = (idx / n, idx % n);
                    let dot: f64 = (0..k)
                        .map(|p| x[i * k + p] as f64 * w[p * n + j] as f64)
                        .sum();
                    (dot + bias[j] as f64).max(0.0)
                })
                .collect();
            let xt = Tensor::from_vec(x, &[m, k]).unwrap();
            for weight in [
                Weight::RowMajor(Arc::new(w.clone())),
                Weight::Packed(Arc::new(sgemm::PackedB::new(&w, n, k, n))),
            ] {
                let desc = format!("{weight:?}").chars().take(9).collect::<String>();
                let lin = PackedLinear {
                    k,
                    n,
                    w: weight,
                    bias: Some(bias.clone()),
                    activation: Activation::Relu,
                };
                let out = Tensor::zeros_strided(DType::F32, &[m, n], &[n, 1]).unwrap();
                lin.run(&[&xt], &out).unwrap();
                let got = out.to_vec::<f32>().unwrap();
                for (idx, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - e).abs() <= 1e-4 * e.abs().max(1.0),
                        "{desc} m={m} at {idx}: {g} vs {e}"
                    );
                }
            }
        }
    }

    /// In the core IR a product is followed by `view`s back to the batch dims, then the bias `add`
    /// (a 3-d input's `bmm`) or the activation: the epilogue takes them (the numerics are checked
    /// against PyTorch by `tests/fixtures_run.rs`).
    #[test]
    fn core_ir_views_bias_and_activation_join_the_product() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let ep = oxport_ir::pt2::load(root.join("pt2/transformer_block.core.pt2")).unwrap();
        let m = crate::Module::new(&ep).unwrap();
        let linears: Vec<&str> = m
            .plan
            .steps
            .iter()
            .filter(|s| s.target == "oxport.linear")
            .map(|s| s.node.as_str())
            .collect();
        let want = [
            "bmm+view_2+add+view_3",
            "addmm+view_17",
            "addmm_1+view_19+gelu+view_20",
            "addmm_2+view_21",
        ];
        assert_eq!(linears, want);
    }
}

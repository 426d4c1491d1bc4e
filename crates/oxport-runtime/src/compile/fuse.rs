//! Convolution fusion: `conv → batch_norm (eval) → add(residual) → activation` chains become one step.
//!
//! BatchNorm in inference mode is folded into the convolution's weights and bias at plan time
//! (`w' = w·γ/√(var+ε)`, `b' = (b − mean)·γ/√(var+ε) + β`, in f64); the residual add and the
//! activation run in the convolution's epilogue while its output tile is in cache
//! ([`conv2d_fused`]). A chain link is taken only when the value it consumes has no other reader (so
//! an in-place op's target is not read again), the parameters are constants of the program (a
//! parameter, or a buffer nothing mutates), and shapes are static f32 NCHW.
use super::rewrite::{apply, only_reader, op_at, out_slot, quiet_between, Uses};
use super::{ConstCache, Prepared, PreparedKernel};
use crate::plan::{GraphPlan, OutBind, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::ops::Args;
use oxport_core::tensor::kernels::conv::Conv2dParams;
use oxport_core::tensor::kernels::conv_packed::{conv2d_fused_packed, PackedConvWeight};
use oxport_core::tensor::kernels::{sgemm, simd};
use oxport_core::{DType, Tensor};
use std::collections::HashMap;

/// An activation in a kernel's epilogue: the core kernels' own ([`vmath`]'s vectorised f32 code).
///
/// [`vmath`]: oxport_core::tensor::kernels::vmath
pub(crate) use oxport_core::tensor::kernels::activation::Activation;

/// A convolution with its folded BatchNorm, residual add and activation; reads the input and, with
/// a residual, the residual.
#[derive(Debug)]
pub(crate) struct FusedConv {
    pub in_shape: [usize; 4],
    /// Contiguous f32 `[O, C/groups, kH, kW]`, BatchNorm folded in.
    pub weight: Tensor,
    pub w_shape: [usize; 4],
    /// f32 `[O]`.
    pub bias: Option<Vec<f32>>,
    pub params: Conv2dParams,
    pub activation: Activation,
    /// Output sizes (contiguous).
    pub out_shape: Vec<usize>,
    /// For a 1×1 convolution over few pixels ([`PACKED_MAX_PIXELS`]): the weight transposed to
    /// `C × O` and packed for [`sgemm::sgemm_packed_b`], which runs it as the linear layer it is
    /// (`out[p, :] = x[p, :]·Wᵀ`). The `gemm` crate would pack all of `W` on every call for a
    /// product of a few columns (efficientnet_b0 at 64 px: 192→1152 on 2×2 pixels, 1.7 GFLOP/s).
    pub packed: Option<std::sync::Arc<sgemm::PackedB>>,
    /// The weight packed for [`conv2d_fused_packed`] (AVX-512 CPUs; kernels larger than 1×1, not
    /// depthwise: those have their own kernels).
    pub packed_conv: Option<std::sync::Arc<PackedConvWeight>>,
}

/// Convolutions with fewer output pixels per image run the `gemm` crate's kernel: the packed
/// kernel's panels are at least 16 pixels wide.
const PACKED_CONV_MIN_PIXELS: usize = 16;

/// 1×1 convolutions with at most this many output pixels per image run as a packed linear layer
/// (the threshold of [`super::linear::PACKED_MAX_ROWS`]).
pub(crate) const PACKED_MAX_PIXELS: usize = super::linear::PACKED_MAX_ROWS;

fn f32_4d(m: Option<&TensorMeta>) -> Option<[usize; 4]> {
    let m = m?;
    if m.dtype != DType::F32 || m.sizes.len() != 4 {
        return None;
    }
    let v: Vec<usize> = m.concrete_sizes().ok()?.into_iter().collect::<Vec<_>>();
    Some([v[0], v[1], v[2], v[3]])
}

fn pair(a: &Args<Slot>, name: &str) -> Option<[usize; 2]> {
    let v = a.ints(name).ok()?;
    let u = |x: i64| usize::try_from(x).ok();
    match v.as_slice() {
        [x] => Some([u(*x)?, u(*x)?]),
        [x, y] => Some([u(*x)?, u(*y)?]),
        _ => None,
    }
}

/// The activation a unary step applies to its first argument.
pub(crate) fn activation(name: &str, a: &Args<Slot>) -> Option<Activation> {
    let base = name.trim_start_matches("aten.");
    Some(match base {
        "relu.default" | "relu_.default" => Activation::Relu,
        "hardswish.default" | "hardswish_.default" => Activation::HardSwish,
        "hardsigmoid.default" | "hardsigmoid_.default" => Activation::HardSigmoid,
        "silu.default" | "silu_.default" => Activation::Silu,
        "sigmoid.default" => Activation::Sigmoid,
        "tanh.default" => Activation::Tanh,
        "hardtanh.default" | "hardtanh_.default" => Activation::Clamp {
            min: a.scalar("min_val").ok()?.to_f64() as f32,
            max: a.scalar("max_val").ok()?.to_f64() as f32,
        },
        "gelu.default" => match a.str("approximate").ok()? {
            "none" => Activation::Gelu,
            "tanh" => Activation::GeluTanh,
            _ => return None,
        },
        _ => return None,
    })
}

/// Runs the pass: `metas` are the slots' static metadata, `consts` the constant tensors by slot.
/// Returns the number of convolutions fused.
pub(crate) fn fuse_convs(
    plan: &mut GraphPlan,
    metas: &[Option<TensorMeta>],
    consts: &HashMap<Slot, Tensor>,
    prepared: &ConstCache,
) -> usize {
    let u = Uses::of(plan);
    // The fused step takes the place of the chain's last step: by then every value it reads (the
    // residual may be computed after the convolution) is defined.
    let mut replaced: HashMap<usize, (Prepared, Vec<String>)> = HashMap::new();
    let mut removed: Vec<bool> = vec![false; plan.steps.len()];
    for i in 0..plan.steps.len() {
        if removed[i] {
            continue;
        }
        if let Some((f, chain)) = match_chain(plan, &u, metas, consts, prepared, &removed, i) {
            for &j in &chain {
                removed[j] = true;
            }
            replaced.insert(*chain.last().expect("a chain has its convolution"), f);
        }
    }
    let n = replaced.len();
    let patch = replaced
        .into_iter()
        .map(|(i, (p, nodes))| (i, (p, nodes, "oxport.fused.conv2d")))
        .collect();
    apply(plan, patch, &removed);
    n
}

/// A fused step and the nodes it stands for.
type Chain = (Prepared, Vec<String>);

/// The chain starting at the convolution step `i`: the fused step and the steps it replaces.
fn match_chain(
    plan: &GraphPlan,
    u: &Uses,
    metas: &[Option<TensorMeta>],
    consts: &HashMap<Slot, Tensor>,
    prepared: &ConstCache,
    claimed: &[bool],
    i: usize,
) -> Option<(Chain, Vec<usize>)> {
    // A step another chain took is not available (`add_(a, b)` of two convolutions' outputs).
    let only_reader =
        |plan: &GraphPlan, u: &Uses, s: Slot| only_reader(plan, u, s).filter(|&j| !claimed[j]);
    let (name, a, outs) = op_at(plan, i)?;
    let transposed = match name {
        "aten.conv2d.default" => false,
        "aten.convolution.default" => a.bool("transposed").ok()?,
        _ => return None,
    };
    if transposed {
        return None;
    }
    let x = *a.opt_tensor("input").ok()??;
    let w = *a.opt_tensor("weight").ok()??;
    let in_shape = f32_4d(metas[x].as_ref())?;
    let w_shape = f32_4d(metas[w].as_ref())?;
    let weight = consts.get(&w)?;
    let bias = match a.opt_tensor("bias").ok()? {
        Some(b) => Some(consts.get(b)?.to_vec::<f32>().ok()?),
        None => None,
    };
    let params = Conv2dParams {
        stride: pair(&a, "stride")?,
        padding: pair(&a, "padding")?,
        dilation: pair(&a, "dilation")?,
        groups: usize::try_from(a.int("groups").ok()?).ok()?,
    };
    let mut cur = out_slot(&outs, 0)?;
    let out_shape = metas[cur].as_ref()?.concrete_sizes().ok()?;
    if weight.dtype() != DType::F32
        || weight.numel() != w_shape.iter().product::<usize>()
        || b32_len_bad(&bias, w_shape[0])
        || in_shape[1] != w_shape[1] * params.groups
        || params.groups == 0
        || w_shape[0] % params.groups != 0
    {
        return None;
    }
    let mut folded_bn = None;
    let mut nodes = vec![plan.steps[i].node.clone()];
    let mut chain = vec![i];
    let mut residual = None;
    let mut act = Activation::Identity;
    // The fused step runs at the chain's last step: a link is taken only when no step between the
    // chain's steps writes in place (it could change the convolution's input or the residual).
    let quiet_until = |chain: &[usize], j: usize| {
        let from = *chain.last().expect("non-empty");
        quiet_between(plan, from, j, &[])
    };
    // BatchNorm (inference): fold.
    if let Some(j) = only_reader(plan, u, cur) {
        let bn = batch_norm_at(plan, u, consts, j, cur).filter(|_| quiet_until(&chain, j));
        if let Some((gamma, beta, mean, var, eps, out)) = bn {
            let o = w_shape[0];
            let len_ok = |v: &Option<Vec<f64>>| v.as_ref().is_none_or(|v| v.len() == o);
            if !(len_ok(&gamma) && len_ok(&beta) && mean.len() == o && var.len() == o) {
                return None;
            }
            folded_bn = Some((gamma, beta, mean, var, eps));
            nodes.push(plan.steps[j].node.clone());
            chain.push(j);
            cur = out;
        }
    }
    // Residual add.
    if let Some(j) = only_reader(plan, u, cur).filter(|&j| quiet_until(&chain, j)) {
        if let Some((name, a, outs)) = op_at(plan, j) {
            let alpha_one = a
                .scalar("alpha")
                .map(|s| s.to_f64() == 1.0)
                .unwrap_or(false);
            let in_place = name == "aten.add_.Tensor";
            if (name == "aten.add.Tensor" || in_place) && alpha_one {
                let (s, o) = (*a.opt_tensor("self").ok()??, *a.opt_tensor("other").ok()??);
                let other = if s == cur { o } else { s };
                // `add_(other, cur)` writes `other`: only when nothing reads it afterwards.
                let writes_other = in_place && s != cur;
                let same = metas[other].as_ref().is_some_and(|m| {
                    m.dtype == DType::F32 && m.concrete_sizes().ok().as_deref() == Some(&out_shape)
                });
                if same && other != cur && (!writes_other || u.last[other] == Some(j)) {
                    if let Some(out) = out_slot(&outs, 0) {
                        residual = Some(other);
                        nodes.push(plan.steps[j].node.clone());
                        chain.push(j);
                        cur = out;
                    }
                }
            }
        }
    }
    // Activation.
    if let Some(j) = only_reader(plan, u, cur).filter(|&j| quiet_until(&chain, j)) {
        if let Some((name, a, outs)) = op_at(plan, j) {
            if a.opt_tensor("self").ok().flatten() == Some(&cur) {
                if let (Some(f), Some(out)) = (activation(name, &a), out_slot(&outs, 0)) {
                    act = f;
                    nodes.push(plan.steps[j].node.clone());
                    chain.push(j);
                    cur = out;
                }
            }
        }
    }
    // The weights with the BatchNorm folded in, made once for all the program's plans.
    let key = nodes[..1 + usize::from(folded_bn.is_some())].join("+");
    let prepared_weights = prepared.get_or_insert(&key, "conv", || {
        let mut w32: Vec<f32> = weight.to_vec::<f32>().ok()?;
        let mut b32 = bias;
        if let Some((gamma, beta, mean, var, eps)) = folded_bn {
            let o = w_shape[0];
            let per = w32.len() / o.max(1);
            let mut nb = vec![0f32; o];
            for c in 0..o {
                let scale = gamma.as_ref().map_or(1.0, |g| g[c]) / (var[c] + eps).sqrt();
                for x in &mut w32[c * per..(c + 1) * per] {
                    *x = (*x as f64 * scale) as f32;
                }
                let b = b32.as_ref().map_or(0.0, |b| b[c] as f64);
                nb[c] = ((b - mean[c]) * scale + beta.as_ref().map_or(0.0, |b| b[c])) as f32;
            }
            b32 = Some(nb);
        }
        Some((Tensor::from_vec(w32, &w_shape).ok()?, b32))
    })?;
    let (weight, b32) = (*prepared_weights).clone();
    let pointwise = w_shape[2] == 1
        && w_shape[3] == 1
        && params.groups == 1
        && params.stride == [1, 1]
        && params.padding == [0, 0];
    let pixels = in_shape[2] * in_shape[3];
    let packed = if pointwise && pixels <= PACKED_MAX_PIXELS && simd::active() == simd::Isa::Avx512
    {
        let (o, c) = (w_shape[0], w_shape[1]);
        prepared.get_or_insert(&key, "conv_pointwise_packed", || {
            Some(pack_pointwise(&weight.to_vec::<f32>().ok()?, o, c))
        })
    } else {
        None
    };
    let depthwise = w_shape[1] == 1 && params.groups > 1;
    let out_pixels: usize = out_shape.iter().skip(2).product();
    // 1×1 convolutions stay on the `gemm` crate (faster there: `cargo bench -p oxport-core --bench
    // conv -- pw_`); the packed kernel wins on larger kernels (3×3: 1.1–1.8×).
    let packed_conv = if packed.is_none()
        && !depthwise
        && w_shape[2] * w_shape[3] > 1
        && out_pixels >= PACKED_CONV_MIN_PIXELS
        && simd::active() == simd::Isa::Avx512
    {
        prepared.get_or_insert(&key, "conv_packed", || {
            Some(PackedConvWeight::new(
                &weight.to_vec::<f32>().ok()?,
                w_shape,
                params.groups,
            ))
        })
    } else {
        None
    };
    let conv = FusedConv {
        in_shape,
        weight,
        w_shape,
        bias: b32,
        params,
        activation: act,
        out_shape: out_shape.clone(),
        packed,
        packed_conv,
    };
    let step = Prepared {
        inputs: std::iter::once(x).chain(residual).collect(),
        out: cur,
        out_shape,
        dtype: DType::F32,
        kernel: Box::new(conv),
        buf: None,
    };
    Some(((step, nodes), chain))
}

/// `(γ, β, mean, var, ε, output slot)` of an inference-mode batch norm at step `j` reading `x`.
#[allow(clippy::type_complexity)]
fn batch_norm_at(
    plan: &GraphPlan,
    u: &Uses,
    consts: &HashMap<Slot, Tensor>,
    j: usize,
    x: Slot,
) -> Option<(
    Option<Vec<f64>>,
    Option<Vec<f64>>,
    Vec<f64>,
    Vec<f64>,
    f64,
    Slot,
)> {
    let (name, a, outs) = op_at(plan, j)?;
    match name {
        "aten.batch_norm.default" => {
            if a.bool("training").ok()? {
                return None;
            }
        }
        "aten._native_batch_norm_legit_no_training.default" => {
            // The saved mean and invstd must be unused.
            for out in outs.iter().skip(1) {
                if let OutBind::Slot(s) = out {
                    if u.count[*s] > 0 {
                        return None;
                    }
                }
            }
        }
        _ => return None,
    }
    if a.opt_tensor("input").ok()?? != &x {
        return None;
    }
    let vec64 = |name: &str| -> Option<Option<Vec<f64>>> {
        match a.opt_tensor(name).ok()? {
            Some(s) => Some(Some(
                consts
                    .get(s)?
                    .to_vec::<f32>()
                    .ok()?
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
            )),
            None => Some(None),
        }
    };
    let gamma = vec64("weight")?;
    let beta = vec64("bias")?;
    let mean = vec64("running_mean")??;
    let var = vec64("running_var")??;
    let eps = a.float("eps").ok()?;
    Some((gamma, beta, mean, var, eps, out_slot(&outs, 0)?))
}

fn b32_len_bad(b: &Option<Vec<f32>>, o: usize) -> bool {
    b.as_ref().is_some_and(|b| b.len() != o)
}

impl PreparedKernel for FusedConv {
    fn run(&self, inputs: &[&Tensor], out: &Tensor) -> oxport_core::Result<()> {
        run(self, inputs[0], inputs.get(1).copied(), out)
    }
}

/// A 1×1 convolution's `O × C` weight as the packed `C × O` right-hand side of [`run_packed`].
fn pack_pointwise(w: &[f32], o: usize, c: usize) -> sgemm::PackedB {
    let mut wt = vec![0f32; c * o];
    for (oi, row) in w.chunks_exact(c).enumerate() {
        for (ci, &v) in row.iter().enumerate() {
            wt[ci * o + oi] = v;
        }
    }
    sgemm::PackedB::new(&wt, o, c, o)
}

/// A 1×1 convolution as a linear layer, image by image: `x` (`C × P`) transposed to `P × C`, times
/// the packed `Wᵀ` onto rows holding the bias, transposed back into `out` (`O × P`) with the
/// residual and the activation.
fn run_packed(f: &FusedConv, w: &sgemm::PackedB, xd: &[f32], rd: Option<&[f32]>, od: &mut [f32]) {
    let [n, c, h, wd] = f.in_shape;
    let (p, o) = (h * wd, w.n());
    let mut xt = vec![0f32; p * c];
    let mut ct = vec![0f32; p * o];
    for i in 0..n {
        let x = &xd[i * c * p..(i + 1) * c * p];
        for (ci, row) in x.chunks_exact(p).enumerate() {
            for (pi, &v) in row.iter().enumerate() {
                xt[pi * c + ci] = v;
            }
        }
        match &f.bias {
            Some(b) => ct.chunks_exact_mut(o).for_each(|r| r.copy_from_slice(b)),
            None => ct.fill(0.0),
        }
        sgemm::sgemm_packed_b(simd::active(), p, &xt, c, w, &mut ct, true, true);
        let out = &mut od[i * o * p..(i + 1) * o * p];
        for (oi, orow) in out.chunks_exact_mut(p).enumerate() {
            for (pi, v) in orow.iter_mut().enumerate() {
                *v = ct[pi * o + oi];
            }
        }
        if let Some(r) = rd {
            for (v, &rv) in out.iter_mut().zip(&r[i * o * p..(i + 1) * o * p]) {
                *v += rv;
            }
        }
        f.activation.apply_f32(out);
    }
}

/// Runs a fused convolution into `out` (contiguous f32 of `f.out_shape`).
fn run(
    f: &FusedConv,
    x: &Tensor,
    residual: Option<&Tensor>,
    out: &Tensor,
) -> oxport_core::Result<()> {
    use oxport_core::tensor::kernels::conv::{conv2d_fused, Epilogue};
    if x.sizes() != &f.in_shape[..] || x.dtype() != DType::F32 {
        return Err(oxport_core::Error::Value(format!(
            "internal: fused convolution planned for an f32 input of sizes {:?}, got {} {:?}",
            f.in_shape,
            x.dtype().name(),
            x.sizes()
        )));
    }
    let contiguous = |t: &Tensor| {
        if t.is_contiguous() {
            t.clone()
        } else {
            t.contiguous_untraced()
        }
    };
    let x = contiguous(x);
    let r = residual.map(contiguous);
    if let Some(r) = &r {
        if r.sizes() != f.out_shape.as_slice() || r.dtype() != DType::F32 {
            return Err(oxport_core::Error::Value(
                "internal: fused convolution's residual does not match its output".into(),
            ));
        }
    }
    if let Some(w) = &f.packed {
        return x.with_contiguous::<f32, _>(|xd| match &r {
            Some(r) => r.with_contiguous::<f32, _>(|rd| {
                out.with_contiguous_mut::<f32, _>(|od| run_packed(f, w, xd, Some(rd), od))
            })?,
            None => out.with_contiguous_mut::<f32, _>(|od| run_packed(f, w, xd, None, od)),
        })?;
    }
    x.with_contiguous::<f32, _>(|xd| {
        f.weight.with_contiguous::<f32, _>(|wd| {
            let conv = |rd: Option<&[f32]>| {
                out.with_contiguous_mut::<f32, _>(|od| {
                    let epilogue = Epilogue {
                        bias: f.bias.as_deref(),
                        residual: rd,
                        activation: f.activation,
                    };
                    match &f.packed_conv {
                        Some(pw) => conv2d_fused_packed(
                            simd::active(),
                            xd,
                            f.in_shape,
                            wd,
                            pw,
                            &f.params,
                            &epilogue,
                            od,
                        ),
                        None => {
                            conv2d_fused(xd, f.in_shape, wd, f.w_shape, &f.params, &epilogue, od)
                        }
                    }
                })
            };
            match &r {
                Some(r) => r.with_contiguous::<f32, _>(|rd| conv(Some(rd)))?,
                None => conv(None),
            }
        })?
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed 1×1 path gives the general convolution's results, with bias, residual and an
    /// activation, for several images and pixel counts (one partial row panel, several).
    #[test]
    fn packed_pointwise_conv_matches_the_general_kernel() {
        let val = |i: usize| ((i * 7919 % 997) as f32 - 498.0) / 400.0;
        let (c, o) = (37, 70);
        let w: Vec<f32> = (0..o * c).map(val).collect();
        let bias: Vec<f32> = (0..o).map(|j| val(j + 3)).collect();
        let params = Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        for (n, h, wd) in [(1, 1, 1), (2, 3, 5), (1, 7, 7), (3, 2, 2)] {
            let in_shape = [n, c, h, wd];
            let out_shape = vec![n, o, h, wd];
            let x: Vec<f32> = (0..n * c * h * wd).map(|i| val(i + 17)).collect();
            let res: Vec<f32> = (0..n * o * h * wd).map(|i| val(i + 29)).collect();
            let x = Tensor::from_vec(x, &in_shape).unwrap();
            let res = Tensor::from_vec(res, &out_shape).unwrap();
            let conv = |packed| FusedConv {
                in_shape,
                weight: Tensor::from_vec(w.clone(), &[o, c, 1, 1]).unwrap(),
                w_shape: [o, c, 1, 1],
                bias: Some(bias.clone()),
                params,
                activation: Activation::HardSwish,
                out_shape: out_shape.clone(),
                packed,
                packed_conv: None,
            };
            let outs: Vec<Vec<f32>> = [None, Some(std::sync::Arc::new(pack_pointwise(&w, o, c)))]
                .into_iter()
                .map(|packed| {
                    let out =
                        Tensor::zeros_strided(DType::F32, &out_shape, &[o * h * wd, h * wd, wd, 1])
                            .unwrap();
                    conv(packed).run(&[&x, &res], &out).unwrap();
                    out.to_vec::<f32>().unwrap()
                })
                .collect();
            for (i, (a, b)) in outs[0].iter().zip(&outs[1]).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                    "{in_shape:?} at {i}: general {a} vs packed {b}"
                );
            }
        }
    }
}

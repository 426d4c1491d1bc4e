//! Layers mirroring `torch.nn`: same parameter names and shapes, same ops, same default initialization
//! distributions (drawn from oxport's generator, so not PyTorch's numbers).
use crate::module::scope;
use crate::Module;
use oxport_core::prelude::*;

/// `U(-bound, bound)` of `sizes`.
fn uniform(sizes: &[usize], bound: f64, g: &mut Generator) -> Result<Tensor> {
    Tensor::rand(sizes, g)?.mul(2.0 * bound)?.sub(bound)
}

/// `padding_mode` of convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaddingMode {
    /// Zero padding inside the convolution (PyTorch's default).
    #[default]
    Zeros,
    /// `F.pad(..., mode="reflect")` first.
    Reflect,
    /// `F.pad(..., mode="replicate")` first.
    Replicate,
    /// `F.pad(..., mode="circular")` first.
    Circular,
}

/// `torch.nn.Conv2d`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.conv.Conv2d", crate = "crate")]
pub struct Conv2d {
    /// `[out, in / groups, kh, kw]`
    #[param]
    pub weight: Tensor,
    /// `[out]`
    #[param]
    pub bias: Option<Tensor>,
    /// Stride.
    pub stride: [i64; 2],
    /// Zero padding.
    pub padding: [i64; 2],
    /// Dilation.
    pub dilation: [i64; 2],
    /// Groups.
    pub groups: i64,
    /// How the input is padded.
    pub padding_mode: PaddingMode,
}

impl Conv2d {
    /// `nn.Conv2d(in, out, kernel, stride, padding, dilation, groups, bias)` with PyTorch's default init
    /// (kaiming-uniform weight and bias in `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        stride: [i64; 2],
        padding: [i64; 2],
        dilation: [i64; 2],
        groups: usize,
        bias: bool,
        g: &mut Generator,
    ) -> Result<Conv2d> {
        let fan_in = (in_channels / groups.max(1)) * kernel[0] * kernel[1];
        let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        Ok(Conv2d {
            weight: uniform(
                &[
                    out_channels,
                    in_channels / groups.max(1),
                    kernel[0],
                    kernel[1],
                ],
                bound,
                g,
            )?,
            bias: if bias {
                Some(uniform(&[out_channels], bound, g)?)
            } else {
                None
            },
            stride,
            padding,
            dilation,
            groups: groups as i64,
            padding_mode: PaddingMode::Zeros,
        })
    }

    /// `conv(x)`: `aten.conv2d`; other padding modes first `aten.pad` the input, as PyTorch does.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || crate::functional(|| self.conv_forward(x)))
    }

    /// `Conv2d._conv_forward`.
    fn conv_forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = (&self.weight, self.bias.as_ref());
        let mode = match self.padding_mode {
            PaddingMode::Zeros => {
                return x.conv2d(
                    w,
                    b,
                    &self.stride,
                    &self.padding,
                    &self.dilation,
                    self.groups,
                )
            }
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "replicate",
            PaddingMode::Circular => "circular",
        };
        let [ph, pw] = self.padding;
        let padded = x.pad(&[pw, pw, ph, ph], mode)?;
        padded.conv2d(w, b, &self.stride, &[0, 0], &self.dilation, self.groups)
    }
}

/// `torch.nn.ReLU`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.ReLU", crate = "crate")]
pub struct ReLU {
    /// `inplace=True` records `relu_`.
    pub inplace: bool,
}

impl ReLU {
    /// `relu(x)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || if self.inplace { x.relu_() } else { x.relu() })
    }
}

/// `torch.nn.MaxPool2d`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.pooling.MaxPool2d", crate = "crate")]
pub struct MaxPool2d {
    /// Window.
    pub kernel_size: [i64; 2],
    /// Stride (PyTorch's default: the window).
    pub stride: [i64; 2],
    /// Padding.
    pub padding: [i64; 2],
    /// Dilation.
    pub dilation: [i64; 2],
    /// Ceil mode.
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// `nn.MaxPool2d(kernel_size)`: stride = kernel_size, no padding.
    pub fn new(kernel_size: i64) -> MaxPool2d {
        MaxPool2d {
            kernel_size: [kernel_size; 2],
            stride: [kernel_size; 2],
            padding: [0; 2],
            dilation: [1; 2],
            ceil_mode: false,
        }
    }

    /// `pool(x)`: `aten.max_pool2d`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            x.max_pool2d(
                &self.kernel_size,
                &self.stride,
                &self.padding,
                &self.dilation,
                self.ceil_mode,
            )
        })
    }
}

/// `torch.nn.Linear`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.linear.Linear", crate = "crate")]
pub struct Linear {
    /// `[out, in]`
    #[param]
    pub weight: Tensor,
    /// `[out]`
    #[param]
    pub bias: Option<Tensor>,
}

impl Linear {
    /// `nn.Linear(in, out, bias)` with PyTorch's default init.
    pub fn new(
        in_features: usize,
        out_features: usize,
        bias: bool,
        g: &mut Generator,
    ) -> Result<Linear> {
        let bound = 1.0 / (in_features.max(1) as f64).sqrt();
        Ok(Linear {
            weight: uniform(&[out_features, in_features], bound, g)?,
            bias: if bias {
                Some(uniform(&[out_features], bound, g)?)
            } else {
                None
            },
        })
    }

    /// `linear(x)`: `aten.linear`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || x.linear(&self.weight, self.bias.as_ref()))
    }
}

/// A module with a one-tensor forward: what containers like [`Sequential`] chain.
pub trait Layer: Module {
    /// `module(x)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
}

/// `impl Layer` for types whose inherent `forward(&self, &Tensor)` is the layer's forward.
macro_rules! layer {
    ($($t:ty),*) => {$(
        impl $crate::nn::Layer for $t {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                <$t>::forward(self, x)
            }
        }
    )*};
}
pub(crate) use layer;
layer!(
    Conv2d,
    ReLU,
    MaxPool2d,
    Linear,
    BatchNorm2d,
    AdaptiveAvgPool2d,
    Sequential,
    Identity,
    Flatten
);

/// `torch.nn.Sequential`: children named `0`, `1`, ...
pub struct Sequential {
    /// The layers, in order.
    pub layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    /// `nn.Sequential(*layers)`.
    pub fn new(layers: Vec<Box<dyn Layer>>) -> Sequential {
        Sequential { layers }
    }

    /// Each layer in turn.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            let mut x = x.clone();
            for l in &self.layers {
                x = l.forward(&x)?;
            }
            Ok(x)
        })
    }
}

impl Module for Sequential {
    fn type_name(&self) -> String {
        "torch.nn.modules.container.Sequential".into()
    }
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.as_ref() as &dyn Module))
            .collect()
    }
}

/// `torch.nn.BatchNorm2d` (affine, tracking running stats).
pub struct BatchNorm2d {
    /// `[C]`, initialized to 1.
    pub weight: Tensor,
    /// `[C]`, initialized to 0.
    pub bias: Tensor,
    /// `[C]`, initialized to 0.
    pub running_mean: Tensor,
    /// `[C]`, initialized to 1.
    pub running_var: Tensor,
    /// `[]` int64.
    pub num_batches_tracked: Tensor,
    /// Added to the variance.
    pub eps: f64,
    /// Running-average momentum.
    pub momentum: f64,
    /// Training mode uses batch statistics and updates the running ones (set by `train`/`eval`).
    pub training: std::cell::Cell<bool>,
}

impl BatchNorm2d {
    /// `nn.BatchNorm2d(c, eps, momentum)` in eval mode.
    pub fn new(c: usize, eps: f64, momentum: f64) -> Result<BatchNorm2d> {
        let c = c as i64;
        Ok(BatchNorm2d {
            weight: Tensor::ones(&[c], DType::F32)?,
            bias: Tensor::zeros(&[c], DType::F32)?,
            running_mean: Tensor::zeros(&[c], DType::F32)?,
            running_var: Tensor::ones(&[c], DType::F32)?,
            num_batches_tracked: Tensor::zeros(&[] as &[i64], DType::I64)?,
            eps,
            momentum,
            training: std::cell::Cell::new(false),
        })
    }

    /// `bn(x)`: `aten.batch_norm`; in training mode `num_batches_tracked` is incremented first.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || self.forward_unscoped(x))
    }

    /// The computation, for wrappers that enter their own module scope ([`BatchNorm1d`]).
    fn forward_unscoped(&self, x: &Tensor) -> Result<Tensor> {
        let training = self.training.get();
        if training {
            self.num_batches_tracked.add_(1)?;
        }
        x.batch_norm_with(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            training,
            self.momentum,
            self.eps,
        )
    }
}

impl Module for BatchNorm2d {
    fn type_name(&self) -> String {
        "torch.nn.modules.batchnorm.BatchNorm2d".into()
    }
    fn set_own_training(&self, training: bool) {
        self.training.set(training)
    }
    fn named_own_parameters(&self) -> Vec<(String, &Tensor)> {
        vec![("weight".into(), &self.weight), ("bias".into(), &self.bias)]
    }
    fn named_own_buffers(&self) -> Vec<(String, &Tensor, bool)> {
        vec![
            ("running_mean".into(), &self.running_mean, true),
            ("running_var".into(), &self.running_var, true),
            (
                "num_batches_tracked".into(),
                &self.num_batches_tracked,
                true,
            ),
        ]
    }
}

/// `torch.nn.AdaptiveAvgPool2d`.
#[derive(Module)]
#[module(
    type_name = "torch.nn.modules.pooling.AdaptiveAvgPool2d",
    crate = "crate"
)]
pub struct AdaptiveAvgPool2d {
    /// Output height and width.
    pub output_size: [i64; 2],
}

impl AdaptiveAvgPool2d {
    /// `pool(x)`: `aten.adaptive_avg_pool2d`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || x.adaptive_avg_pool2d(&self.output_size))
    }
}

/// `torch.nn.Identity`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.linear.Identity", crate = "crate")]
pub struct Identity;

impl Identity {
    /// `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}

/// `torch.nn.Flatten(start_dim=1, end_dim=-1)`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.flatten.Flatten", crate = "crate")]
pub struct Flatten {
    /// First dim flattened.
    pub start_dim: i64,
    /// Last dim flattened.
    pub end_dim: i64,
}

impl Flatten {
    /// `x.flatten(start_dim, end_dim)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || x.flatten(self.start_dim, self.end_dim))
    }
}

/// `torch.nn.LayerNorm` over the last dims.
#[derive(Module)]
#[module(
    type_name = "torch.nn.modules.normalization.LayerNorm",
    crate = "crate"
)]
pub struct LayerNorm {
    /// `normalized_shape`.
    pub normalized_shape: Vec<i64>,
    /// Initialized to 1.
    #[param]
    pub weight: Tensor,
    /// Initialized to 0.
    #[param]
    pub bias: Tensor,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// `nn.LayerNorm(d)` (eps 1e-5, affine).
    pub fn new(d: usize) -> Result<LayerNorm> {
        Ok(LayerNorm {
            normalized_shape: vec![d as i64],
            weight: Tensor::ones(&[d as i64], DType::F32)?,
            bias: Tensor::zeros(&[d as i64], DType::F32)?,
            eps: 1e-5,
        })
    }

    /// `ln(x)`: `aten.layer_norm`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            x.layer_norm(
                &self.normalized_shape,
                Some(&self.weight),
                Some(&self.bias),
                self.eps,
            )
        })
    }
}

/// `torch.nn.GELU(approximate="none")`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.GELU", crate = "crate")]
pub struct GELU;

impl GELU {
    /// `gelu(x)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || x.gelu("none"))
    }
}

layer!(LayerNorm, GELU);

/// `torch.nn.MultiheadAttention(embed_dim, num_heads)` without dropout, `bias_k`/`bias_v` or separate
/// k/v dims, computed as `F.multi_head_attention_forward` does: self-attention (one packed projection),
/// encoder-decoder attention (`key is value`) and separate key and value, `key_padding_mask` and
/// `attn_mask` (bool or float), with or without (averaged) weights, batched or not.
///
/// ```
/// use oxport_core::prelude::*;
/// use oxport_export::nn::{AttnArgs, MultiheadAttention};
/// let mut g = Generator::new(0);
/// let attn = MultiheadAttention::new(16, 2, &mut g)?.batch_first(true);
/// let (q, kv) = (Tensor::randn(&[2, 4, 16], &mut g)?, Tensor::randn(&[2, 5, 16], &mut g)?);
/// let causal = Tensor::from_vec((0..20).map(|i| i % 5 > i / 5).collect::<Vec<bool>>(), &[4, 5])?;
/// let args = AttnArgs { attn_mask: Some(&causal), ..Default::default() };
/// let (out, weights) = attn.forward(&q, &kv, &kv, args)?;
/// assert_eq!((out.sizes(), weights.unwrap().sizes()), (&[2, 4, 16][..], &[2, 4, 5][..]));
/// # Ok::<(), oxport_core::Error>(())
/// ```
#[derive(Module)]
#[module(
    type_name = "torch.nn.modules.activation.MultiheadAttention",
    crate = "crate"
)]
pub struct MultiheadAttention {
    /// `[3E, E]`
    #[param]
    pub in_proj_weight: Tensor,
    /// `[3E]`, zeros.
    #[param]
    pub in_proj_bias: Tensor,
    /// `out_proj` (`NonDynamicallyQuantizableLinear`), bias zeros.
    #[module]
    pub out_proj: OutProj,
    /// Heads.
    pub num_heads: usize,
    /// Embedding size.
    pub embed_dim: usize,
    /// Inputs are `(N, L, E)` rather than `(L, N, E)` (PyTorch's default: false).
    pub batch_first: bool,
    /// Dropout on the attention weights in training mode (PyTorch's default: 0).
    pub dropout: f64,
    #[training]
    training: std::cell::Cell<bool>,
}

/// The optional arguments of `MultiheadAttention.forward`, with PyTorch's defaults.
#[derive(Debug, Clone, Copy)]
pub struct AttnArgs<'a> {
    /// `(N, S)` (or `(S,)` unbatched): true (bool) or `-inf` (float) masks a key.
    pub key_padding_mask: Option<&'a Tensor>,
    /// Also return the attention weights (default true).
    pub need_weights: bool,
    /// `(L, S)` or `(N * heads, L, S)`: true (bool) masks, float is added to the scores.
    pub attn_mask: Option<&'a Tensor>,
    /// Average the weights over heads (default true).
    pub average_attn_weights: bool,
    /// `attn_mask` is the causal mask (a hint: without weights or padding mask, attention runs with
    /// `is_causal=True` and no mask, as PyTorch does).
    pub is_causal: bool,
}

impl Default for AttnArgs<'_> {
    fn default() -> Self {
        AttnArgs {
            key_padding_mask: None,
            need_weights: true,
            attn_mask: None,
            average_attn_weights: true,
            is_causal: false,
        }
    }
}

/// Python's `a is b` for tensors: the same view of the same storage.
fn is_same_tensor(a: &Tensor, b: &Tensor) -> bool {
    a.shares_storage(b)
        && a.storage_offset() == b.storage_offset()
        && a.sizes_untraced() == b.sizes_untraced()
        && a.strides() == b.strides()
}

/// `F._canonical_mask`: a bool mask becomes `0`/`-inf` in `dtype`; a float mask stays.
#[track_caller]
fn canonical_mask(mask: Option<&Tensor>, name: &str, dtype: DType) -> Result<Option<Tensor>> {
    let Some(m) = mask else { return Ok(None) };
    if m.dtype() == DType::Bool {
        return Ok(Some(
            m.zeros_like_dtype(dtype)?
                .masked_fill_(m, f64::NEG_INFINITY)?,
        ));
    }
    if !m.dtype().is_floating_point() {
        return Err(Error::Value(format!(
            "only bool and floating types of {name} are supported"
        )));
    }
    Ok(Some(m.clone()))
}

/// `MultiheadAttention.out_proj`.
pub struct OutProj(pub Linear);

impl Module for OutProj {
    fn type_name(&self) -> String {
        "torch.nn.modules.linear.NonDynamicallyQuantizableLinear".into()
    }
    fn named_own_parameters(&self) -> Vec<(String, &Tensor)> {
        self.0.named_own_parameters()
    }
}

impl MultiheadAttention {
    /// `nn.MultiheadAttention(embed_dim, num_heads)`. PyTorch's init: xavier-uniform `in_proj_weight`,
    /// zero biases, default `Linear` out_proj weight.
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        g: &mut Generator,
    ) -> Result<MultiheadAttention> {
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            return Err(Error::Value(format!(
                "embed_dim must be divisible by num_heads (embed_dim {embed_dim}, num_heads {num_heads})"
            )));
        }
        let bound = (6.0 / (embed_dim + 3 * embed_dim) as f64).sqrt();
        let mut out_proj = Linear::new(embed_dim, embed_dim, true, g)?;
        out_proj.bias = Some(Tensor::zeros(&[embed_dim as i64], DType::F32)?);
        Ok(MultiheadAttention {
            in_proj_weight: uniform(&[3 * embed_dim, embed_dim], bound, g)?,
            in_proj_bias: Tensor::zeros(&[3 * embed_dim as i64], DType::F32)?,
            out_proj: OutProj(out_proj),
            num_heads,
            embed_dim,
            batch_first: false,
            dropout: 0.0,
            training: std::cell::Cell::new(false),
        })
    }

    /// `batch_first=...`.
    pub fn batch_first(mut self, batch_first: bool) -> MultiheadAttention {
        self.batch_first = batch_first;
        self
    }

    /// `dropout=...`.
    pub fn dropout(mut self, p: f64) -> MultiheadAttention {
        self.dropout = p;
        self
    }

    /// `attn(x, x, x, need_weights=False)[0]`.
    pub fn forward_self(&self, x: &Tensor) -> Result<Tensor> {
        let args = AttnArgs {
            need_weights: false,
            ..Default::default()
        };
        Ok(self.forward(x, x, x, args)?.0)
    }

    /// `attn(query, key, value, key_padding_mask=..., need_weights=..., attn_mask=...,
    /// average_attn_weights=...)`: the output and, with `need_weights`, the attention weights.
    #[rustfmt::skip]
    pub fn forward(&self, query: &Tensor, key: &Tensor, value: &Tensor, args: AttnArgs) -> Result<(Tensor, Option<Tensor>)> {
        scope(self, || {
            let batched = query.dim() == 3;
            let dt = query.dtype();
            let key_padding_mask = crate::functional(|| canonical_mask(args.key_padding_mask, "key_padding_mask", dt))?;
            let attn_mask = crate::functional(|| canonical_mask(args.attn_mask, "attn_mask", dt))?;
            // Which inputs are the same tensor decides the projection (`_in_projection_packed`).
            let (kv_same, qk_same) = (is_same_tensor(key, value), is_same_tensor(query, key));
            let (q, k, v) = if self.batch_first && batched {
                if kv_same && qk_same {
                    let q = crate::functional(|| query.transpose(1, 0))?;
                    (q.clone(), q.clone(), q)
                } else if kv_same {
                    let (q, k) = crate::functional(|| Ok::<_, Error>((query.transpose(1, 0)?, key.transpose(1, 0)?)))?;
                    (q, k.clone(), k)
                } else {
                    crate::functional(|| Ok::<_, Error>((query.transpose(1, 0)?, key.transpose(1, 0)?, value.transpose(1, 0)?)))?
                }
            } else {
                (query.clone(), key.clone(), value.clone())
            };
            let masks = (key_padding_mask.as_ref(), attn_mask.as_ref());
            let out = crate::functional(|| self.attention(&q, &k, &v, (kv_same, qk_same), masks, args));
            let (a, w) = out?;
            if self.batch_first && batched {
                return Ok((crate::functional(|| a.transpose(1, 0))?, w));
            }
            Ok((a, w))
        })
    }

    /// `F.multi_head_attention_forward` on sequence-first `(L, N, E)` inputs.
    fn attention(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        (kv_same, qk_same): (bool, bool),
        (key_padding_mask, attn_mask): (Option<&Tensor>, Option<&Tensor>),
        args: AttnArgs,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let batched = query.dim() == 3;
        if !batched && query.dim() != 2 {
            return Err(Error::Value(format!(
                "query should be unbatched 2D or batched 3D tensor but received {}-D query tensor",
                query.dim()
            )));
        }
        let (query, key, value, key_padding_mask) = if batched {
            (
                query.clone(),
                key.clone(),
                value.clone(),
                key_padding_mask.cloned(),
            )
        } else {
            let (q, k, v) = (query.unsqueeze(1)?, key.unsqueeze(1)?, value.unsqueeze(1)?);
            (
                q,
                k,
                v,
                key_padding_mask.map(|m| m.unsqueeze(0)).transpose()?,
            )
        };
        // Unsqueezing makes new tensors: the projection then sees three different inputs, as in Python.
        let (kv_same, qk_same) = (kv_same && batched, qk_same && batched);
        if key.dim() != 3 || value.dim() != 3 || key.sizes_untraced() != value.sizes_untraced() {
            return Err(Error::Value(format!(
                "key shape {:?} does not match value shape {:?}",
                key.sizes_untraced(),
                value.sizes_untraced()
            )));
        }
        // Sizes as SymInts: with a dynamic batch or sequence they stay symbolic, and the arithmetic is
        // recorded as PyTorch's (`bsz * num_heads`, `tgt_len * bsz`, ...).
        let (l, n) = (query.sym_size(0)?, query.sym_size(1)?);
        if query.size(2)? != self.embed_dim {
            return Err(Error::Value(format!(
                "was expecting embedding dimension of {}, but got {}",
                self.embed_dim,
                query.size(2)?
            )));
        }
        let (e, h) = (self.embed_dim as i64, self.num_heads as i64);
        let d = e / h;
        let (w, b) = (&self.in_proj_weight, &self.in_proj_bias);
        // `_in_projection_packed`.
        let (q, k, v) = if kv_same && qk_same {
            let proj = query.linear(w, Some(b))?;
            let proj = proj
                .unflatten(-1, &[3, e])?
                .unsqueeze(0)?
                .transpose(0, -2)?
                .squeeze_dim(-2)?
                .contiguous()?;
            (proj.select(0, 0)?, proj.select(0, 1)?, proj.select(0, 2)?)
        } else if kv_same {
            let (ws, bs) = (
                w.split_with_sizes(&[e, 2 * e], 0)?,
                b.split_with_sizes(&[e, 2 * e], 0)?,
            );
            let q = query.linear(&ws[0], Some(&bs[0]))?;
            let kv = key.linear(&ws[1], Some(&bs[1]))?;
            let kv = kv
                .unflatten(-1, &[2, e])?
                .unsqueeze(0)?
                .transpose(0, -2)?
                .squeeze_dim(-2)?
                .contiguous()?;
            (q, kv.select(0, 0)?, kv.select(0, 1)?)
        } else {
            let (ws, bs) = (w.chunk(3, 0)?, b.chunk(3, 0)?);
            (
                query.linear(&ws[0], Some(&bs[0]))?,
                key.linear(&ws[1], Some(&bs[1]))?,
                value.linear(&ws[2], Some(&bs[2]))?,
            )
        };
        if args.is_causal && attn_mask.is_none() {
            return Err(Error::Value("Need attn_mask if specifying the is_causal hint. You may use the Transformer module method `generate_square_subsequent_mask` to create this mask.".into()));
        }
        let (attn_mask, is_causal) =
            if args.is_causal && key_padding_mask.is_none() && !args.need_weights {
                (None, true)
            } else {
                (attn_mask, args.is_causal && key_padding_mask.is_none())
            };
        let src_len = key.sym_size(0)?;
        let attn_mask = match attn_mask {
            Some(m) if m.dim() == 2 => {
                let want = [l.hint() as usize, src_len.hint() as usize];
                if m.sizes_untraced() != want {
                    return Err(Error::Value(format!(
                        "The shape of the 2D attn_mask is {:?}, but should be {want:?}.",
                        m.sizes_untraced()
                    )));
                }
                Some(m.unsqueeze(0)?)
            }
            Some(m) if m.dim() == 3 => Some(m.clone()),
            Some(m) => {
                return Err(Error::Value(format!(
                    "attn_mask's dimension {} is not supported",
                    m.dim()
                )))
            }
            None => None,
        };
        let q = q.view([l.clone(), &n * h, d.into()])?.transpose(0, 1)?;
        let k = k
            .view([k.sym_size(0)?, &n * h, d.into()])?
            .transpose(0, 1)?;
        let v = v
            .view([v.sym_size(0)?, &n * h, d.into()])?
            .transpose(0, 1)?;
        let src_len = k.sym_size(1)?;
        let attn_mask = match key_padding_mask {
            Some(kpm) => {
                let kpm = kpm.view([n.clone(), 1.into(), 1.into(), src_len.clone()])?;
                let kpm =
                    kpm.expand(&[-1, h, -1, -1])?
                        .reshape([&n * h, 1.into(), src_len.clone()])?;
                match attn_mask {
                    Some(m) => Some(m.add(&kpm)?),
                    None => Some(kpm),
                }
            }
            None => attn_mask,
        };
        let OutProj(lin) = &self.out_proj;
        let dropout_p = if self.training.get() {
            self.dropout
        } else {
            0.0
        };
        let (a, w) = if args.need_weights {
            // q * sqrt(1 / head_dim), then explicit bmm / softmax / bmm, as PyTorch's weights path does.
            let q_scaled = q.mul((1.0 / d as f64).sqrt())?;
            let scores = match &attn_mask {
                Some(m) => m.baddbmm(&q_scaled, &k.transpose(-2, -1)?)?,
                None => q_scaled.bmm(&k.transpose(-2, -1)?)?,
            };
            let weights = scores.softmax(-1)?;
            let weights = if dropout_p > 0.0 {
                weights.dropout(dropout_p, true)?
            } else {
                weights
            };
            let a = weights
                .bmm(&v)?
                .transpose(0, 1)?
                .reshape([&l * &n, e.into()])?;
            let a = a.linear(&lin.weight, lin.bias.as_ref())?;
            let a = a.view([l.clone(), n.clone(), a.sym_size(1)?])?;
            let w = weights.view([n, h.into(), l, src_len])?;
            let w = if args.average_attn_weights {
                w.mean(&[1], false)?
            } else {
                w
            };
            (a, Some(w))
        } else {
            let attn_mask = match attn_mask {
                Some(m) if m.size(0)? == 1 && m.dim() == 3 => Some(m.unsqueeze(0)?),
                Some(m) => Some(m.view([n.clone(), h.into(), (-1).into(), src_len.clone()])?),
                None => None,
            };
            let q = q.view([n.clone(), h.into(), l.clone(), d.into()])?;
            let k = k.view([n.clone(), h.into(), src_len.clone(), d.into()])?;
            let v = v.view([n.clone(), h.into(), src_len, d.into()])?;
            let a = Tensor::scaled_dot_product_attention_with(
                &q,
                &k,
                &v,
                attn_mask.as_ref(),
                dropout_p,
                is_causal,
            )?;
            let a = a.permute(&[2, 0, 1, 3])?.reshape([&n * &l, e.into()])?;
            let a = a.linear(&lin.weight, lin.bias.as_ref())?;
            (a.view([l, n, a.sym_size(1)?])?, None)
        };
        if !batched {
            let a = a.squeeze_dim(1)?;
            return Ok((a, w.map(|w| w.squeeze_dim(0)).transpose()?));
        }
        Ok((a, w))
    }
}

/// `torch.nn.SiLU`. Each layer's op sits on its own source line, as each PyTorch layer's does, so
/// that stack-trace groups (blank lines in the printed program) match.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.SiLU", crate = "crate")]
pub struct SiLU {
    /// `inplace=True` records `silu_`.
    pub inplace: bool,
}

impl SiLU {
    /// The activation.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || if self.inplace { x.silu_() } else { x.silu() })
    }
}

/// `torch.nn.Hardswish`. Each layer's op sits on its own source line, as each PyTorch layer's does, so
/// that stack-trace groups (blank lines in the printed program) match.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.Hardswish", crate = "crate")]
pub struct Hardswish {
    /// `inplace=True` records `hardswish_`.
    pub inplace: bool,
}

impl Hardswish {
    /// The activation.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            if self.inplace {
                x.hardswish_()
            } else {
                x.hardswish()
            }
        })
    }
}

/// `torch.nn.Hardsigmoid`. Each layer's op sits on its own source line, as each PyTorch layer's does, so
/// that stack-trace groups (blank lines in the printed program) match.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.Hardsigmoid", crate = "crate")]
pub struct Hardsigmoid {
    /// `inplace=True` records `hardsigmoid_`.
    pub inplace: bool,
}

impl Hardsigmoid {
    /// The activation.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            if self.inplace {
                x.hardsigmoid_()
            } else {
                x.hardsigmoid()
            }
        })
    }
}

/// `torch.nn.ReLU6`: `hardtanh(x, 0, 6)`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.ReLU6", crate = "crate")]
pub struct ReLU6 {
    /// `inplace=True` records `hardtanh_`.
    pub inplace: bool,
}

impl ReLU6 {
    /// `min(max(x, 0), 6)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            if self.inplace {
                x.hardtanh_(0.0, 6.0)
            } else {
                x.hardtanh(0.0, 6.0)
            }
        })
    }
}

/// `torch.nn.Sigmoid`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.Sigmoid", crate = "crate")]
pub struct Sigmoid;

impl Sigmoid {
    /// `sigmoid(x)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || x.sigmoid())
    }
}

/// `torch.nn.Tanh`.
#[derive(Module)]
#[module(type_name = "torch.nn.modules.activation.Tanh", crate = "crate")]
pub struct Tanh;

impl Tanh {
    /// `tanh(x)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || x.tanh())
    }
}

/// `torch.nn.Dropout(p, inplace)`: `F.dropout(x, p, training)` — the identity in eval mode (the default
/// here), inverted dropout with the default generator in training mode (see
/// `oxport_core::tensor::manual_seed`).
pub struct Dropout {
    /// Drop probability.
    pub p: f64,
    /// `inplace=True` records `dropout_`.
    pub inplace: bool,
    training: std::cell::Cell<bool>,
}

impl Module for Dropout {
    fn type_name(&self) -> String {
        "torch.nn.modules.dropout.Dropout".into()
    }
    fn set_own_training(&self, training: bool) {
        self.training.set(training)
    }
}

impl Dropout {
    /// `nn.Dropout(p, inplace)`, in eval mode.
    pub fn new(p: f64, inplace: bool) -> Dropout {
        Dropout {
            p,
            inplace,
            training: std::cell::Cell::new(false),
        }
    }

    /// `dropout(x, p, training)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            if self.inplace {
                x.dropout_(self.p, self.training.get())
            } else {
                x.dropout(self.p, self.training.get())
            }
        })
    }
}

/// `torch.nn.AvgPool2d(kernel_size)` (stride = kernel, no padding).
#[derive(Module)]
#[module(type_name = "torch.nn.modules.pooling.AvgPool2d", crate = "crate")]
pub struct AvgPool2d {
    /// Window (and stride).
    pub kernel_size: i64,
}

impl AvgPool2d {
    /// `avg_pool2d(x, [k, k], [k, k])`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = [self.kernel_size; 2];
        scope(self, || x.avg_pool2d(&k, &k, &[0, 0], false, true))
    }
}

/// `torch.nn.Embedding(num, dim)` (weights `N(0, 1)`, as PyTorch initializes them).
#[derive(Module)]
#[module(type_name = "torch.nn.modules.sparse.Embedding", crate = "crate")]
pub struct Embedding {
    /// `[num, dim]`
    #[param]
    pub weight: Tensor,
}

impl Embedding {
    /// `nn.Embedding(num_embeddings, embedding_dim)`.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        g: &mut Generator,
    ) -> Result<Embedding> {
        Ok(Embedding {
            weight: Tensor::randn(&[num_embeddings, embedding_dim], g)?,
        })
    }

    /// `embedding(weight, indices)`.
    pub fn forward(&self, indices: &Tensor) -> Result<Tensor> {
        scope(self, || self.weight.embedding(indices))
    }
}

layer!(
    ReLU6,
    Sigmoid,
    Tanh,
    Dropout,
    AvgPool2d,
    SiLU,
    Hardswish,
    Hardsigmoid
);

/// `torch.nn.ModuleList`: children named `0`, `1`, ...
pub struct ModuleList<T: Module> {
    /// The modules.
    pub modules: Vec<T>,
}

impl<T: Module> Module for ModuleList<T> {
    fn type_name(&self) -> String {
        "torch.nn.modules.container.ModuleList".into()
    }
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.modules
            .iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), m as &dyn Module))
            .collect()
    }
}

/// Options of [`LSTM`], with `torch.nn.LSTM`'s defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LSTMConfig {
    /// Stacked layers (`num_layers=1`).
    pub num_layers: usize,
    /// `b_ih` and `b_hh` in each cell (`bias=True`).
    pub bias: bool,
    /// Input and output are `(N, L, H)` instead of `(L, N, H)` (`batch_first=False`).
    pub batch_first: bool,
    /// Dropout on each layer's output but the last, in training mode (`dropout=0.0`).
    pub dropout: f64,
    /// A reverse direction per layer (`bidirectional=False`).
    pub bidirectional: bool,
}

impl Default for LSTMConfig {
    fn default() -> Self {
        LSTMConfig {
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
}

/// `torch.nn.LSTM(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)`
/// (no `proj_size`): parameters `weight_ih_l{k}[_reverse]`, `weight_hh_l{k}`, `bias_ih_l{k}`,
/// `bias_hh_l{k}` as PyTorch registers them; forward records `aten.lstm.input`.
///
/// ```
/// use oxport_core::prelude::*;
/// use oxport_export::nn::{LSTMConfig, LSTM};
/// let cfg = LSTMConfig { num_layers: 2, bidirectional: true, ..Default::default() };
/// let lstm = LSTM::with_config(8, 12, cfg, &mut Generator::new(0))?;
/// let (out, (h, c)) = lstm.forward(&Tensor::zeros(&[5, 3, 8], DType::F32)?)?;
/// assert_eq!((out.sizes(), h.sizes(), c.sizes()), (&[5, 3, 24][..], &[4, 3, 12][..], &[4, 3, 12][..]));
/// # Ok::<(), oxport_core::Error>(())
/// ```
pub struct LSTM {
    /// Input features.
    pub input_size: usize,
    /// Hidden features.
    pub hidden_size: usize,
    /// The options.
    pub config: LSTMConfig,
    /// The parameters by name, in PyTorch's order (`_flat_weights`).
    pub params: Vec<(String, Tensor)>,
    training: std::cell::Cell<bool>,
}

impl Module for LSTM {
    fn type_name(&self) -> String {
        "torch.nn.modules.rnn.LSTM".into()
    }
    fn named_own_parameters(&self) -> Vec<(String, &Tensor)> {
        self.params.iter().map(|(n, t)| (n.clone(), t)).collect()
    }
    fn set_own_training(&self, training: bool) {
        self.training.set(training)
    }
}

impl LSTM {
    /// `nn.LSTM(input_size, hidden_size)` with PyTorch's other defaults (sequence-first).
    pub fn new(input_size: usize, hidden_size: usize, g: &mut Generator) -> Result<LSTM> {
        LSTM::with_config(input_size, hidden_size, LSTMConfig::default(), g)
    }

    /// `nn.LSTM(input_size, hidden_size, ...)`. PyTorch's init: every parameter
    /// `U(-1/sqrt(H), 1/sqrt(H))`.
    pub fn with_config(
        input_size: usize,
        hidden_size: usize,
        config: LSTMConfig,
        g: &mut Generator,
    ) -> Result<LSTM> {
        if config.num_layers == 0 || hidden_size == 0 {
            return Err(Error::Value(
                "LSTM: num_layers and hidden_size must be positive".into(),
            ));
        }
        if !(0.0..=1.0).contains(&config.dropout) {
            return Err(Error::Value(format!(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed, got {}",
                config.dropout
            )));
        }
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let dirs = if config.bidirectional { 2 } else { 1 };
        let h4 = 4 * hidden_size;
        let mut params = vec![];
        for layer in 0..config.num_layers {
            let layer_in = if layer == 0 {
                input_size
            } else {
                hidden_size * dirs
            };
            for d in 0..dirs {
                let sfx = if d == 1 { "_reverse" } else { "" };
                params.push((
                    format!("weight_ih_l{layer}{sfx}"),
                    uniform(&[h4, layer_in], bound, g)?,
                ));
                params.push((
                    format!("weight_hh_l{layer}{sfx}"),
                    uniform(&[h4, hidden_size], bound, g)?,
                ));
                if config.bias {
                    params.push((format!("bias_ih_l{layer}{sfx}"), uniform(&[h4], bound, g)?));
                    params.push((format!("bias_hh_l{layer}{sfx}"), uniform(&[h4], bound, g)?));
                }
            }
        }
        Ok(LSTM {
            input_size,
            hidden_size,
            config,
            params,
            training: std::cell::Cell::new(false),
        })
    }

    /// `lstm(input)`: zero initial states. Returns `(output, (h_n, c_n))`.
    pub fn forward(&self, input: &Tensor) -> Result<(Tensor, (Tensor, Tensor))> {
        scope(self, || self.run(input, None))
    }

    /// `lstm(input, (h_0, c_0))`.
    pub fn forward_with_state(
        &self,
        input: &Tensor,
        hx: (&Tensor, &Tensor),
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        scope(self, || self.run(input, Some(hx)))
    }

    /// `LSTM.forward` (one op per source line, as in torch/nn/modules/rnn.py, for the stack-trace groups).
    #[rustfmt::skip]
    fn run(&self, input: &Tensor, hx: Option<(&Tensor, &Tensor)>) -> Result<(Tensor, (Tensor, Tensor))> {
        let c = &self.config;
        let dirs: i64 = if c.bidirectional { 2 } else { 1 };
        let batch_dim = if c.batch_first { 0 } else { 1 };
        let unbatched = input.dim() == 2;
        if input.dim() != 2 && input.dim() != 3 {
            return Err(Error::Value(format!("LSTM: Expected input to be 2D or 3D, got {}D instead", input.dim())));
        }
        let input = if unbatched {
            input.unsqueeze(batch_dim)?
        } else {
            input.clone()
        };
        let (h0, c0) = match hx {
            Some((h, c0)) if unbatched => {
                (h.unsqueeze(1)?, c0.unsqueeze(1)?)
            }
            Some((h, c0)) => (h.clone(), c0.clone()),
            None => {
                let size = [(c.num_layers as i64 * dirs).into(), input.sym_size(batch_dim)?, (self.hidden_size as i64).into()];
                let h_zeros = Tensor::zeros_on(size.clone(), input.dtype(), "cpu")?;
                let c_zeros = Tensor::zeros_on(size, input.dtype(), "cpu")?;
                (h_zeros, c_zeros)
            }
        };
        let params: Vec<Tensor> = self.params.iter().map(|(_, t)| t.clone()).collect();
        let (out, h_n, c_n) = input.lstm(&[h0, c0], &params, c.bias, c.num_layers as i64, c.dropout, self.training.get(), c.bidirectional, c.batch_first)?;
        if unbatched {
            let out = out.squeeze_dim(batch_dim)?;
            let (h_n, c_n) = (h_n.squeeze_dim(1)?, c_n.squeeze_dim(1)?);
            return Ok((out, (h_n, c_n)));
        }
        Ok((out, (h_n, c_n)))
    }
}

/// The feed-forward activation of a [`TransformerEncoderLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `"relu"` (PyTorch's default).
    #[default]
    Relu,
    /// `"gelu"`.
    Gelu,
}

/// Options of [`TransformerEncoderLayer`], with `torch.nn.TransformerEncoderLayer`'s defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerEncoderLayerConfig {
    /// Feed-forward width (`dim_feedforward=2048`).
    pub dim_feedforward: usize,
    /// Dropout probability, recorded by the dropout layers (`dropout=0.1`).
    pub dropout: f64,
    /// `activation="relu"`.
    pub activation: Activation,
    /// `layer_norm_eps=1e-5`.
    pub layer_norm_eps: f64,
    /// `(N, S, E)` inputs instead of `(S, N, E)` (`batch_first=False`).
    pub batch_first: bool,
    /// Layer norm before each block instead of after (`norm_first=False`).
    pub norm_first: bool,
}

impl Default for TransformerEncoderLayerConfig {
    fn default() -> Self {
        TransformerEncoderLayerConfig {
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
        }
    }
}

/// The optional arguments of `TransformerEncoderLayer.forward` / `TransformerEncoder.forward`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncoderArgs<'a> {
    /// `src_mask` / `mask`: `(S, S)` or `(N * heads, S, S)`, bool (true masks) or float (added).
    pub mask: Option<&'a Tensor>,
    /// `(N, S)`: true (bool) or `-inf` (float) masks a key.
    pub src_key_padding_mask: Option<&'a Tensor>,
    /// `is_causal`: `mask` is the causal mask. `TransformerEncoder` requires it with a mask (PyTorch
    /// otherwise inspects the mask's values, which export cannot do).
    pub is_causal: Option<bool>,
}

/// `torch.nn.TransformerEncoderLayer(d_model, nhead, ...)` (eval-mode dropout, bias=True).
#[derive(Module)]
#[module(
    type_name = "torch.nn.modules.transformer.TransformerEncoderLayer",
    crate = "crate"
)]
pub struct TransformerEncoderLayer {
    /// Self-attention.
    #[module]
    pub self_attn: MultiheadAttention,
    /// `d_model -> dim_feedforward`
    #[module]
    pub linear1: Linear,
    /// Dropout after the activation.
    #[module]
    pub dropout: Dropout,
    /// `dim_feedforward -> d_model`
    #[module]
    pub linear2: Linear,
    /// Around the attention block.
    #[module]
    pub norm1: LayerNorm,
    /// Around the feed-forward block.
    #[module]
    pub norm2: LayerNorm,
    /// On the attention output.
    #[module]
    pub dropout1: Dropout,
    /// On the feed-forward output.
    #[module]
    pub dropout2: Dropout,
    /// The options.
    pub config: TransformerEncoderLayerConfig,
}

impl TransformerEncoderLayer {
    /// `nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward)` with PyTorch's other defaults
    /// (sequence-first, ReLU, post-norm, dropout 0.1).
    pub fn new(
        d_model: usize,
        nhead: usize,
        dim_feedforward: usize,
        g: &mut Generator,
    ) -> Result<Self> {
        let config = TransformerEncoderLayerConfig {
            dim_feedforward,
            ..Default::default()
        };
        TransformerEncoderLayer::with_config(d_model, nhead, config, g)
    }

    /// `nn.TransformerEncoderLayer(d_model, nhead, ...)`.
    pub fn with_config(
        d_model: usize,
        nhead: usize,
        config: TransformerEncoderLayerConfig,
        g: &mut Generator,
    ) -> Result<Self> {
        let dropout = |p| Dropout::new(p, false);
        let norm = || -> Result<LayerNorm> {
            let mut n = LayerNorm::new(d_model)?;
            n.eps = config.layer_norm_eps;
            Ok(n)
        };
        Ok(TransformerEncoderLayer {
            self_attn: MultiheadAttention::new(d_model, nhead, g)?
                .batch_first(config.batch_first)
                .dropout(config.dropout),
            linear1: Linear::new(d_model, config.dim_feedforward, true, g)?,
            dropout: dropout(config.dropout),
            linear2: Linear::new(config.dim_feedforward, d_model, true, g)?,
            norm1: norm()?,
            norm2: norm()?,
            dropout1: dropout(config.dropout),
            dropout2: dropout(config.dropout),
            config,
        })
    }

    /// `layer(src)`.
    pub fn forward(&self, src: &Tensor) -> Result<Tensor> {
        self.forward_with(src, EncoderArgs::default())
    }

    /// `layer(src, src_mask=..., src_key_padding_mask=..., is_causal=...)`.
    #[rustfmt::skip]
    pub fn forward_with(&self, src: &Tensor, args: EncoderArgs) -> Result<Tensor> {
        scope(self, || {
            let dt = src.dtype();
            let kpm = crate::functional(|| canonical_mask(args.src_key_padding_mask, "src_key_padding_mask", dt))?;
            let mask = crate::functional(|| canonical_mask(args.mask, "src_mask", dt))?;
            let attn = AttnArgs { key_padding_mask: kpm.as_ref(), attn_mask: mask.as_ref(), need_weights: false, is_causal: args.is_causal.unwrap_or(false), ..Default::default() };
            if self.config.norm_first {
                let sa = crate::functional(|| self.sa_block(&self.norm1.forward(src)?, attn));
                let x = src.add(&sa?)?;
                let ff = crate::functional(|| self.ff_block(&self.norm2.forward(&x)?));
                return x.add(&ff?);
            }
            let sa = crate::functional(|| self.sa_block(src, attn));
            let x = self.norm1.forward(&src.add(&sa?)?)?;
            let ff = crate::functional(|| self.ff_block(&x));
            self.norm2.forward(&x.add(&ff?)?)
        })
    }

    /// `dropout1(self_attn(x, x, x, need_weights=False)[0])`.
    fn sa_block(&self, x: &Tensor, attn: AttnArgs) -> Result<Tensor> {
        self.dropout1
            .forward(&self.self_attn.forward(x, x, x, attn)?.0)
    }

    /// `dropout2(linear2(dropout(activation(linear1(x)))))`.
    fn ff_block(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.linear1.forward(x)?;
        let h = match self.config.activation {
            Activation::Relu => h.relu()?,
            Activation::Gelu => h.gelu("none")?,
        };
        self.dropout2
            .forward(&self.linear2.forward(&self.dropout.forward(&h)?)?)
    }
}

/// `torch.nn.TransformerEncoder(encoder_layer, num_layers, norm=None)` (no nested-tensor fast path, as
/// under export).
#[derive(Module)]
#[module(
    type_name = "torch.nn.modules.transformer.TransformerEncoder",
    crate = "crate"
)]
pub struct TransformerEncoder {
    /// The stacked layers.
    #[module]
    pub layers: ModuleList<TransformerEncoderLayer>,
    /// Final layer norm.
    #[module]
    pub norm: Option<LayerNorm>,
}

impl TransformerEncoder {
    /// `nn.TransformerEncoder(layer, num_layers, norm)`: `num_layers` copies of `layer` (equal initial
    /// weights in separate storage, as PyTorch's `deepcopy` makes them).
    pub fn new(
        layer: TransformerEncoderLayer,
        num_layers: usize,
        norm: Option<LayerNorm>,
    ) -> Result<Self> {
        let mut layers = vec![];
        let state = crate::state_dict(&layer);
        let (d_model, nhead) = (layer.self_attn.embed_dim, layer.self_attn.num_heads);
        for _ in 1..num_layers {
            let fresh = &mut Generator::new(0);
            let copy =
                TransformerEncoderLayer::with_config(d_model, nhead, layer.config.clone(), fresh)?;
            crate::load_state_dict(&copy, state.iter().map(|(k, t)| (k.as_str(), t)))?;
            layers.push(copy);
        }
        layers.insert(0, layer);
        Ok(TransformerEncoder {
            layers: ModuleList { modules: layers },
            norm,
        })
    }

    /// `encoder(src)`.
    pub fn forward(&self, src: &Tensor) -> Result<Tensor> {
        self.forward_with(src, EncoderArgs::default())
    }

    /// `encoder(src, mask=..., src_key_padding_mask=..., is_causal=...)`.
    #[rustfmt::skip]
    pub fn forward_with(&self, src: &Tensor, args: EncoderArgs) -> Result<Tensor> {
        if args.mask.is_some() && args.is_causal.is_none() {
            return Err(Error::Value("TransformerEncoder with a mask: pass is_causal (PyTorch's _detect_is_causal_mask compares the mask's values with a causal mask, which export cannot trace)".into()));
        }
        scope(self, || {
            let dt = src.dtype();
            let kpm = crate::functional(|| canonical_mask(args.src_key_padding_mask, "src_key_padding_mask", dt))?;
            let mask = crate::functional(|| canonical_mask(args.mask, "mask", dt))?;
            let layer_args = EncoderArgs { mask: mask.as_ref(), src_key_padding_mask: kpm.as_ref(), is_causal: args.is_causal };
            let mut x = src.clone();
            for l in &self.layers.modules {
                x = l.forward_with(&x, layer_args)?;
            }
            match &self.norm {
                Some(n) => n.forward(&x),
                None => Ok(x),
            }
        })
    }
}

impl crate::Forward for LSTM {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["input".into(), "hx".into()]
    }
    fn forward_py(
        &self,
        args: &[oxport_runtime::PyValue],
        _kwargs: &[(String, oxport_runtime::PyValue)],
    ) -> Result<oxport_runtime::PyValue> {
        use oxport_runtime::PyValue;
        let x = args
            .first()
            .and_then(PyValue::as_tensor)
            .ok_or_else(|| Error::Value("forward() missing 'input'".into()))?;
        let (out, (h, c)) = match args.get(1) {
            Some(PyValue::Tuple(hx)) | Some(PyValue::List(hx)) => match (
                hx.first().and_then(PyValue::as_tensor),
                hx.get(1).and_then(PyValue::as_tensor),
            ) {
                (Some(h0), Some(c0)) if hx.len() == 2 => self.forward_with_state(x, (h0, c0))?,
                _ => return Err(Error::Value("LSTM: hx must be a tuple (h_0, c_0)".into())),
            },
            None | Some(PyValue::None) => self.forward(x)?,
            Some(other) => {
                return Err(Error::Value(format!(
                    "LSTM: hx must be a tuple (h_0, c_0), got {other:?}"
                )))
            }
        };
        Ok(PyValue::Tuple(vec![
            out.into(),
            PyValue::Tuple(vec![h.into(), c.into()]),
        ]))
    }
}

/// Python-style argument binding for the `Forward` impls of torch.nn layers: argument `i` named `name`,
/// positional or keyword.
struct PyArgs<'a> {
    args: &'a [oxport_runtime::PyValue],
    kwargs: &'a [(String, oxport_runtime::PyValue)],
}

impl<'a> PyArgs<'a> {
    fn get(&self, i: usize, name: &str) -> Option<&'a oxport_runtime::PyValue> {
        let v = self
            .args
            .get(i)
            .or_else(|| self.kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v))?;
        (!matches!(v, oxport_runtime::PyValue::None)).then_some(v)
    }
    fn tensor(&self, i: usize, name: &str) -> Result<Option<&'a Tensor>> {
        match self.get(i, name) {
            None => Ok(None),
            Some(v) => v.as_tensor().map(Some).ok_or_else(|| {
                Error::Value(format!("forward(): '{name}' must be a tensor, got {v:?}"))
            }),
        }
    }
    fn required(&self, i: usize, name: &str) -> Result<&'a Tensor> {
        self.tensor(i, name)?
            .ok_or_else(|| Error::Value(format!("forward() missing required argument '{name}'")))
    }
    /// `(src, <mask>, src_key_padding_mask, is_causal)` of the transformer encoder forwards.
    fn encoder(&self, mask: &str) -> Result<(&'a Tensor, EncoderArgs<'a>)> {
        let call = EncoderArgs {
            mask: self.tensor(1, mask)?,
            src_key_padding_mask: self.tensor(2, "src_key_padding_mask")?,
            is_causal: self.bool(3, "is_causal")?,
        };
        Ok((self.required(0, "src")?, call))
    }
    fn bool(&self, i: usize, name: &str) -> Result<Option<bool>> {
        match self.get(i, name) {
            None => Ok(None),
            Some(oxport_runtime::PyValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Error::Value(format!(
                "forward(): '{name}' must be a bool, got {v:?}"
            ))),
        }
    }
}

impl crate::Forward for MultiheadAttention {
    fn forward_arg_names(&self) -> Vec<String> {
        [
            "query",
            "key",
            "value",
            "key_padding_mask",
            "need_weights",
            "attn_mask",
            "average_attn_weights",
            "is_causal",
        ]
        .map(String::from)
        .to_vec()
    }
    fn forward_py(
        &self,
        args: &[oxport_runtime::PyValue],
        kwargs: &[(String, oxport_runtime::PyValue)],
    ) -> Result<oxport_runtime::PyValue> {
        use oxport_runtime::PyValue;
        let a = PyArgs { args, kwargs };
        let call = AttnArgs {
            key_padding_mask: a.tensor(3, "key_padding_mask")?,
            need_weights: a.bool(4, "need_weights")?.unwrap_or(true),
            attn_mask: a.tensor(5, "attn_mask")?,
            average_attn_weights: a.bool(6, "average_attn_weights")?.unwrap_or(true),
            is_causal: a.bool(7, "is_causal")?.unwrap_or(false),
        };
        let (q, k, v) = (
            a.required(0, "query")?,
            a.required(1, "key")?,
            a.required(2, "value")?,
        );
        let (out, w) = self.forward(q, k, v, call)?;
        Ok(PyValue::Tuple(vec![
            out.into(),
            w.map(Into::into).unwrap_or(PyValue::None),
        ]))
    }
}

impl crate::Forward for TransformerEncoderLayer {
    fn forward_arg_names(&self) -> Vec<String> {
        ["src", "src_mask", "src_key_padding_mask", "is_causal"]
            .map(String::from)
            .to_vec()
    }
    fn forward_py(
        &self,
        args: &[oxport_runtime::PyValue],
        kwargs: &[(String, oxport_runtime::PyValue)],
    ) -> Result<oxport_runtime::PyValue> {
        let (src, call) = PyArgs { args, kwargs }.encoder("src_mask")?;
        Ok(self.forward_with(src, call)?.into())
    }
}

impl crate::Forward for TransformerEncoder {
    fn forward_arg_names(&self) -> Vec<String> {
        ["src", "mask", "src_key_padding_mask", "is_causal"]
            .map(String::from)
            .to_vec()
    }
    fn forward_py(
        &self,
        args: &[oxport_runtime::PyValue],
        kwargs: &[(String, oxport_runtime::PyValue)],
    ) -> Result<oxport_runtime::PyValue> {
        let (src, call) = PyArgs { args, kwargs }.encoder("mask")?;
        Ok(self.forward_with(src, call)?.into())
    }
}

/// `torch.nn.Conv1d` (zero padding).
#[derive(Module)]
#[module(type_name = "torch.nn.modules.conv.Conv1d", crate = "crate")]
pub struct Conv1d {
    /// `[out, in / groups, k]`
    #[param]
    pub weight: Tensor,
    /// `[out]`
    #[param]
    pub bias: Option<Tensor>,
    /// Stride.
    pub stride: i64,
    /// Zero padding.
    pub padding: i64,
    /// Dilation.
    pub dilation: i64,
    /// Groups.
    pub groups: i64,
}

impl Conv1d {
    /// `nn.Conv1d(in, out, kernel, stride, padding, dilation, groups, bias)` with PyTorch's default init.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: i64,
        padding: i64,
        dilation: i64,
        groups: usize,
        bias: bool,
        g: &mut Generator,
    ) -> Result<Conv1d> {
        let fan_in = (in_channels / groups.max(1)) * kernel;
        let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        Ok(Conv1d {
            weight: uniform(
                &[out_channels, in_channels / groups.max(1), kernel],
                bound,
                g,
            )?,
            bias: if bias {
                Some(uniform(&[out_channels], bound, g)?)
            } else {
                None
            },
            stride,
            padding,
            dilation,
            groups: groups as i64,
        })
    }

    /// `conv(x)`: `aten.conv1d`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            x.conv1d(
                &self.weight,
                self.bias.as_ref(),
                self.stride,
                self.padding,
                self.dilation,
                self.groups,
            )
        })
    }
}

/// `torch.nn.BatchNorm1d`: [`BatchNorm2d`]'s computation over `(N, C)` or `(N, C, L)` inputs.
pub struct BatchNorm1d(pub BatchNorm2d);

impl BatchNorm1d {
    /// `nn.BatchNorm1d(c, eps, momentum)` in eval mode.
    pub fn new(c: usize, eps: f64, momentum: f64) -> Result<BatchNorm1d> {
        Ok(BatchNorm1d(BatchNorm2d::new(c, eps, momentum)?))
    }

    /// `bn(x)`: `aten.batch_norm`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Entering this module (not the inner BatchNorm2d) keeps PyTorch's nn_module_stack.
        scope(self, || self.0.forward_unscoped(x))
    }
}

impl Module for BatchNorm1d {
    fn type_name(&self) -> String {
        "torch.nn.modules.batchnorm.BatchNorm1d".into()
    }
    fn named_own_parameters(&self) -> Vec<(String, &Tensor)> {
        self.0.named_own_parameters()
    }
    fn named_own_buffers(&self) -> Vec<(String, &Tensor, bool)> {
        self.0.named_own_buffers()
    }
    fn set_own_training(&self, training: bool) {
        self.0.set_own_training(training)
    }
}

/// `torch.nn.ModuleDict`: children by key, in insertion order.
pub struct ModuleDict {
    /// `(key, module)` in insertion order.
    pub modules: Vec<(String, Box<dyn Layer>)>,
}

impl ModuleDict {
    /// The module registered under `key`.
    pub fn get(&self, key: &str) -> Option<&dyn Layer> {
        self.modules
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m.as_ref())
    }
}

impl Module for ModuleDict {
    fn type_name(&self) -> String {
        "torch.nn.modules.container.ModuleDict".into()
    }
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.modules
            .iter()
            .map(|(k, m)| (k.clone(), m.as_ref() as &dyn Module))
            .collect()
    }
}

layer!(Conv1d, BatchNorm1d);

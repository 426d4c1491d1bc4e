//! Models mirroring PyTorch twins exactly (module names, inplace flags, op calls), for the examples, the
//! demo and the oracle tests. The twins are in `tools/gen_pt2_fixtures.py` and `tools/collect_ops.py`.
use crate::module::Forward;
use crate::nn::{
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Hardsigmoid, Hardswish, Layer, LayerNorm,
    Linear, MaxPool2d, MultiheadAttention, PaddingMode, ReLU, Sequential, GELU,
};
use crate::Module;
use oxport_core::prelude::*;
use oxport_runtime::PyValue;

fn tensor_arg<'a>(
    args: &'a [PyValue],
    kwargs: &'a [(String, PyValue)],
    i: usize,
    name: &str,
) -> Result<&'a Tensor> {
    args.get(i)
        .or_else(|| kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v))
        .and_then(PyValue::as_tensor)
        .ok_or_else(|| Error::Value(format!("forward() missing tensor argument '{name}'")))
}

/// `Forward` for a model whose forward takes one tensor `x`.
macro_rules! forward_x {
    ($t:ty) => {
        impl Forward for $t {
            fn forward_arg_names(&self) -> Vec<String> {
                vec!["x".into()]
            }
            fn forward_py(
                &self,
                args: &[PyValue],
                kwargs: &[(String, PyValue)],
            ) -> Result<PyValue> {
                Ok(self.forward(tensor_arg(args, kwargs, 0, "x")?)?.into())
            }
        }
    };
}

/// The first program of the torch.export overview: `sin(x) + cos(y)`.
pub struct SinCos;

impl Module for SinCos {
    fn type_name(&self) -> String {
        "__main__.SinCos".into()
    }
}

impl Forward for SinCos {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    fn forward_py(&self, args: &[PyValue], kwargs: &[(String, PyValue)]) -> Result<PyValue> {
        let (x, y) = (
            tensor_arg(args, kwargs, 0, "x")?,
            tensor_arg(args, kwargs, 1, "y")?,
        );
        let a = x.sin()?;
        let b = y.cos()?;
        Ok(a.add(&b)?.into())
    }
}

/// The second program of the torch.export overview:
/// `Conv2d(3, 16, 3, padding=1) -> add_(constant) -> ReLU -> MaxPool2d(3)`, `constant` a keyword argument.
#[derive(Module)]
#[module(type_name = "__main__.ConvReluMaxpool", crate = "crate")]
pub struct ConvReluMaxpool {
    /// `nn.Conv2d(3, 16, 3, padding=1)`
    #[module]
    pub conv: Conv2d,
    /// `nn.ReLU()`
    #[module]
    pub relu: ReLU,
    /// `nn.MaxPool2d(kernel_size=3)`
    #[module]
    pub maxpool: MaxPool2d,
}

impl ConvReluMaxpool {
    /// The model with PyTorch's default initialization drawn from `g`.
    pub fn new(g: &mut Generator) -> Result<ConvReluMaxpool> {
        Ok(ConvReluMaxpool {
            conv: Conv2d::new(3, 16, [3, 3], [1, 1], [1, 1], [1, 1], 1, true, g)?,
            relu: ReLU { inplace: false },
            maxpool: MaxPool2d::new(3),
        })
    }

    /// `forward(x, *, constant)`.
    pub fn forward(&self, x: &Tensor, constant: &Tensor) -> Result<Tensor> {
        let a = self.conv.forward(x)?;
        a.add_(constant)?;
        self.maxpool.forward(&self.relu.forward(&a)?)
    }

    /// The example inputs of the overview: `x` (1, 3, 256, 256) and `constant` ones (1, 16, 256, 256).
    pub fn example_inputs(g: &mut Generator) -> Result<(Tensor, Tensor)> {
        Ok((
            Tensor::randn(&[1, 3, 256, 256], g)?,
            Tensor::ones(&[1, 16, 256, 256], DType::F32)?,
        ))
    }
}

impl Forward for ConvReluMaxpool {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "constant".into()]
    }
    fn forward_py(&self, args: &[PyValue], kwargs: &[(String, PyValue)]) -> Result<PyValue> {
        let x = tensor_arg(args, kwargs, 0, "x")?;
        let constant = tensor_arg(args, kwargs, usize::MAX, "constant")?;
        Ok(self.forward(x, constant)?.into())
    }
}

/// torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")` conv without bias (ResNet and
/// MobileNetV3 both initialize their convolutions this way).
fn kaiming_conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: i64,
    padding: i64,
    groups: usize,
    g: &mut Generator,
) -> Result<Conv2d> {
    let std = (2.0 / (cout * k * k) as f64).sqrt();
    Ok(Conv2d {
        weight: Tensor::randn(&[cout, cin / groups, k, k], g)?.mul(std)?,
        bias: None,
        stride: [stride; 2],
        padding: [padding; 2],
        dilation: [1; 2],
        groups: groups as i64,
        padding_mode: PaddingMode::Zeros,
    })
}

/// torchvision's `BasicBlock`.
#[derive(Module)]
#[module(type_name = "torchvision.models.resnet.BasicBlock", crate = "crate")]
pub struct BasicBlock {
    /// 3x3 conv (stride on the first block of a stage).
    #[module]
    pub conv1: Conv2d,
    /// BatchNorm.
    #[module]
    pub bn1: BatchNorm2d,
    /// `ReLU(inplace=True)`, used twice.
    #[module]
    pub relu: ReLU,
    /// 3x3 conv.
    #[module]
    pub conv2: Conv2d,
    /// BatchNorm.
    #[module]
    pub bn2: BatchNorm2d,
    /// 1x1 conv + BatchNorm when the shape changes.
    #[module]
    pub downsample: Option<Sequential>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: i64, g: &mut Generator) -> Result<BasicBlock> {
        let downsample = if stride != 1 || cin != cout {
            Some(Sequential::new(vec![
                Box::new(kaiming_conv(cin, cout, 1, stride, 0, 1, g)?),
                Box::new(BatchNorm2d::new(cout, 1e-5, 0.1)?),
            ]))
        } else {
            None
        };
        Ok(BasicBlock {
            conv1: kaiming_conv(cin, cout, 3, stride, 1, 1, g)?,
            bn1: BatchNorm2d::new(cout, 1e-5, 0.1)?,
            relu: ReLU { inplace: true },
            conv2: kaiming_conv(cout, cout, 3, 1, 1, 1, g)?,
            bn2: BatchNorm2d::new(cout, 1e-5, 0.1)?,
            downsample,
        })
    }

    /// `out = relu(bn2(conv2(relu(bn1(conv1(x))))) + identity)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::scope(self, || {
            let identity = x.clone();
            let out = self.conv1.forward(x)?;
            let out = self.bn1.forward(&out)?;
            let out = self.relu.forward(&out)?;
            let out = self.conv2.forward(&out)?;
            let out = self.bn2.forward(&out)?;
            let identity = match &self.downsample {
                Some(d) => d.forward(x)?,
                None => identity,
            };
            out.add_(&identity)?;
            self.relu.forward(&out)
        })
    }
}

/// torchvision 0.29's `resnet18()` (eval mode), input `(N, 3, 224, 224)`.
#[derive(Module)]
#[module(type_name = "torchvision.models.resnet.ResNet", crate = "crate")]
pub struct ResNet {
    /// 7x7 stem conv.
    #[module]
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    #[module]
    pub bn1: BatchNorm2d,
    /// `ReLU(inplace=True)`.
    #[module]
    pub relu: ReLU,
    /// `MaxPool2d(3, 2, 1)`.
    #[module]
    pub maxpool: MaxPool2d,
    /// Stages of two BasicBlocks.
    #[module]
    pub layer1: Sequential,
    /// Stage 2.
    #[module]
    pub layer2: Sequential,
    /// Stage 3.
    #[module]
    pub layer3: Sequential,
    /// Stage 4.
    #[module]
    pub layer4: Sequential,
    /// `AdaptiveAvgPool2d((1, 1))`.
    #[module]
    pub avgpool: AdaptiveAvgPool2d,
    /// `Linear(512, 1000)`.
    #[module]
    pub fc: Linear,
}

impl ResNet {
    /// `torchvision.models.resnet18()` with torchvision's init drawn from `g`.
    pub fn resnet18(g: &mut Generator) -> Result<ResNet> {
        let stage =
            |cin: usize, cout: usize, stride: i64, g: &mut Generator| -> Result<Sequential> {
                Ok(Sequential::new(vec![
                    Box::new(BasicBlock::new(cin, cout, stride, g)?),
                    Box::new(BasicBlock::new(cout, cout, 1, g)?),
                ]))
            };
        Ok(ResNet {
            conv1: kaiming_conv(3, 64, 7, 2, 3, 1, g)?,
            bn1: BatchNorm2d::new(64, 1e-5, 0.1)?,
            relu: ReLU { inplace: true },
            maxpool: MaxPool2d {
                kernel_size: [3; 2],
                stride: [2; 2],
                padding: [1; 2],
                dilation: [1; 2],
                ceil_mode: false,
            },
            layer1: stage(64, 64, 1, g)?,
            layer2: stage(64, 128, 2, g)?,
            layer3: stage(128, 256, 2, g)?,
            layer4: stage(256, 512, 2, g)?,
            avgpool: AdaptiveAvgPool2d {
                output_size: [1, 1],
            },
            fc: Linear::new(512, 1000, true, g)?,
        })
    }

    /// `ResNet._forward_impl`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(x)?;
        let x = self.bn1.forward(&x)?;
        let x = self.relu.forward(&x)?;
        let x = self.maxpool.forward(&x)?;
        let x = self.layer1.forward(&x)?;
        let x = self.layer2.forward(&x)?;
        let x = self.layer3.forward(&x)?;
        let x = self.layer4.forward(&x)?;
        let x = self.avgpool.forward(&x)?;
        let x = x.flatten(1, -1)?;
        self.fc.forward(&x)
    }
}

forward_x!(ResNet);

/// The GPT block of issue 5 (`tools/collect_ops.py`): pre-norm self-attention and a GELU MLP,
/// `d = 64`, `h = 4`, input `(2, 16, 64)`.
#[derive(Module)]
#[module(type_name = "__main__.GPTBlock", crate = "crate")]
pub struct GPTBlock {
    /// `nn.LayerNorm(d)`
    #[module]
    pub ln1: LayerNorm,
    /// `nn.MultiheadAttention(d, h, batch_first=True)`
    #[module]
    pub attn: MultiheadAttention,
    /// `nn.LayerNorm(d)`
    #[module]
    pub ln2: LayerNorm,
    /// `nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))`
    #[module]
    pub mlp: Sequential,
}

impl GPTBlock {
    /// `GPTBlock(d, h)` with PyTorch's default initialization drawn from `g`.
    pub fn new(d: usize, h: usize, g: &mut Generator) -> Result<GPTBlock> {
        Ok(GPTBlock {
            ln1: LayerNorm::new(d)?,
            attn: MultiheadAttention::new(d, h, g)?.batch_first(true),
            ln2: LayerNorm::new(d)?,
            mlp: Sequential::new(vec![
                Box::new(Linear::new(d, 4 * d, true, g)?),
                Box::new(GELU),
                Box::new(Linear::new(4 * d, d, true, g)?),
            ]),
        })
    }

    /// `h = ln1(x); a, _ = attn(h, h, h, need_weights=False); x = x + a; return x + mlp(ln2(x))`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.ln1.forward(x)?;
        let a = self.attn.forward_self(&h)?;
        let x = x.add(&a)?;
        x.add(&self.mlp.forward(&self.ln2.forward(&x)?)?)
    }
}

forward_x!(GPTBlock);

/// torchvision's `_make_divisible`.
fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = d.max(((v + d / 2.0) / d).floor() * d);
    if new_v < 0.9 * v {
        new_v += d;
    }
    new_v as usize
}

/// torchvision's activation choice in MobileNetV3 blocks.
#[derive(Clone, Copy)]
enum Act {
    ReLU,
    Hardswish,
}

/// torchvision's `Conv2dNormActivation`: `Sequential(Conv2d(bias=False), BatchNorm2d(eps=1e-3,
/// momentum=0.01), activation(inplace=True))`.
fn conv_norm_act(
    cin: usize,
    cout: usize,
    k: usize,
    stride: i64,
    groups: usize,
    act: Option<Act>,
    g: &mut Generator,
) -> Result<Sequential> {
    let conv = kaiming_conv(cin, cout, k, stride, (k as i64 - 1) / 2, groups, g)?;
    let mut layers: Vec<Box<dyn Layer>> = vec![
        Box::new(conv),
        Box::new(BatchNorm2d::new(cout, 1e-3, 0.01)?),
    ];
    match act {
        Some(Act::ReLU) => layers.push(Box::new(ReLU { inplace: true })),
        Some(Act::Hardswish) => layers.push(Box::new(Hardswish { inplace: true })),
        None => {}
    }
    Ok(Sequential::new(layers))
}

/// torchvision's `SqueezeExcitation` with a hard-sigmoid gate.
#[derive(Module)]
#[module(type_name = "torchvision.ops.misc.SqueezeExcitation", crate = "crate")]
pub struct SqueezeExcitation {
    /// `AdaptiveAvgPool2d(1)`
    #[module]
    pub avgpool: AdaptiveAvgPool2d,
    /// 1x1 conv down.
    #[module]
    pub fc1: Conv2d,
    /// 1x1 conv up.
    #[module]
    pub fc2: Conv2d,
    /// `ReLU()`
    #[module]
    pub activation: ReLU,
    /// `Hardsigmoid()`
    #[module]
    pub scale_activation: Hardsigmoid,
}

impl SqueezeExcitation {
    fn new(c: usize, squeeze: usize, g: &mut Generator) -> Result<SqueezeExcitation> {
        Ok(SqueezeExcitation {
            avgpool: AdaptiveAvgPool2d {
                output_size: [1, 1],
            },
            fc1: Conv2d::new(c, squeeze, [1, 1], [1, 1], [0, 0], [1, 1], 1, true, g)?,
            fc2: Conv2d::new(squeeze, c, [1, 1], [1, 1], [0, 0], [1, 1], 1, true, g)?,
            activation: ReLU { inplace: false },
            scale_activation: Hardsigmoid { inplace: false },
        })
    }

    /// `scale = hardsigmoid(fc2(relu(fc1(avgpool(x))))); return scale * x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::scope(self, || {
            let scale = self.avgpool.forward(x)?;
            let scale = self.fc1.forward(&scale)?;
            let scale = self.activation.forward(&scale)?;
            let scale = self.fc2.forward(&scale)?;
            let scale = self.scale_activation.forward(&scale)?;
            scale.mul(x)
        })
    }
}

/// torchvision's MobileNetV3 `InvertedResidual`.
#[derive(Module)]
#[module(
    type_name = "torchvision.models.mobilenetv3.InvertedResidual",
    crate = "crate"
)]
pub struct InvertedResidual {
    /// expand, depthwise, squeeze-excitation, project.
    #[module]
    pub block: Sequential,
    /// `stride == 1 and cin == cout`.
    pub use_res_connect: bool,
}

impl InvertedResidual {
    #[allow(clippy::too_many_arguments)]
    fn new(
        cin: usize,
        k: usize,
        expanded: usize,
        cout: usize,
        use_se: bool,
        act: Act,
        stride: i64,
        g: &mut Generator,
    ) -> Result<InvertedResidual> {
        let mut layers: Vec<Box<dyn Layer>> = vec![];
        if expanded != cin {
            layers.push(Box::new(conv_norm_act(
                cin,
                expanded,
                1,
                1,
                1,
                Some(act),
                g,
            )?));
        }
        layers.push(Box::new(conv_norm_act(
            expanded,
            expanded,
            k,
            stride,
            expanded,
            Some(act),
            g,
        )?));
        if use_se {
            layers.push(Box::new(SqueezeExcitation::new(
                expanded,
                make_divisible(expanded as f64 / 4.0, 8),
                g,
            )?));
        }
        layers.push(Box::new(conv_norm_act(expanded, cout, 1, 1, 1, None, g)?));
        Ok(InvertedResidual {
            block: Sequential::new(layers),
            use_res_connect: stride == 1 && cin == cout,
        })
    }

    /// `result = block(x); if use_res_connect: result += x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::scope(self, || {
            let result = self.block.forward(x)?;
            if self.use_res_connect {
                result.add_(x)?;
            }
            Ok(result)
        })
    }
}

/// torchvision 0.29's `mobilenet_v3_small()` (eval mode), input `(N, 3, 224, 224)`.
#[derive(Module)]
#[module(
    type_name = "torchvision.models.mobilenetv3.MobileNetV3",
    crate = "crate"
)]
pub struct MobileNetV3 {
    /// Stem, 11 inverted residual blocks, last 1x1 conv.
    #[module]
    pub features: Sequential,
    /// `AdaptiveAvgPool2d(1)`
    #[module]
    pub avgpool: AdaptiveAvgPool2d,
    /// `Linear(576, 1024), Hardswish, Dropout(0.2), Linear(1024, 1000)`
    #[module]
    pub classifier: Sequential,
}

impl MobileNetV3 {
    /// `torchvision.models.mobilenet_v3_small()` with torchvision's init drawn from `g`.
    pub fn mobilenet_v3_small(g: &mut Generator) -> Result<MobileNetV3> {
        let (re, hs) = (Act::ReLU, Act::Hardswish);
        // (input, kernel, expanded, output, use_se, activation, stride)
        let conf = [
            (16, 3, 16, 16, true, re, 2),
            (16, 3, 72, 24, false, re, 2),
            (24, 3, 88, 24, false, re, 1),
            (24, 5, 96, 40, true, hs, 2),
            (40, 5, 240, 40, true, hs, 1),
            (40, 5, 240, 40, true, hs, 1),
            (40, 5, 120, 48, true, hs, 1),
            (48, 5, 144, 48, true, hs, 1),
            (48, 5, 288, 96, true, hs, 2),
            (96, 5, 576, 96, true, hs, 1),
            (96, 5, 576, 96, true, hs, 1),
        ];
        let mut features: Vec<Box<dyn Layer>> = vec![Box::new(conv_norm_act(
            3,
            16,
            3,
            2,
            1,
            Some(Act::Hardswish),
            g,
        )?)];
        for (cin, k, e, cout, se, act, s) in conf {
            features.push(Box::new(InvertedResidual::new(
                cin, k, e, cout, se, act, s, g,
            )?));
        }
        features.push(Box::new(conv_norm_act(
            96,
            576,
            1,
            1,
            1,
            Some(Act::Hardswish),
            g,
        )?));
        let linear = |i: usize, o: usize, g: &mut Generator| -> Result<Linear> {
            Ok(Linear {
                weight: Tensor::randn(&[o, i], g)?.mul(0.01)?,
                bias: Some(Tensor::zeros(&[o as i64], DType::F32)?),
            })
        };
        Ok(MobileNetV3 {
            features: Sequential::new(features),
            avgpool: AdaptiveAvgPool2d {
                output_size: [1, 1],
            },
            classifier: Sequential::new(vec![
                Box::new(linear(576, 1024, g)?),
                Box::new(Hardswish { inplace: true }),
                Box::new(Dropout::new(0.2, true)),
                Box::new(linear(1024, 1000, g)?),
            ]),
        })
    }

    /// `features -> avgpool -> flatten(1) -> classifier`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.features.forward(x)?;
        let x = self.avgpool.forward(&x)?;
        let x = x.flatten(1, -1)?;
        self.classifier.forward(&x)
    }
}

forward_x!(MobileNetV3);

crate::nn::layer!(BasicBlock, SqueezeExcitation, InvertedResidual);

/// The `lstm` zoo model: `nn.LSTM(16, 32, batch_first=True)`.
pub fn lstm(g: &mut Generator) -> Result<crate::nn::LSTM> {
    let config = crate::nn::LSTMConfig {
        batch_first: true,
        ..Default::default()
    };
    crate::nn::LSTM::with_config(16, 32, config, g)
}

/// The `transformer_encoder` zoo model:
/// `nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2)`.
pub fn transformer_encoder(g: &mut Generator) -> Result<crate::nn::TransformerEncoder> {
    let config = crate::nn::TransformerEncoderLayerConfig {
        dim_feedforward: 128,
        batch_first: true,
        ..Default::default()
    };
    let layer = crate::nn::TransformerEncoderLayer::with_config(64, 4, config, g)?;
    crate::nn::TransformerEncoder::new(layer, 2, None)
}

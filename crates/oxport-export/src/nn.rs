//! Layers mirroring `torch.nn`: same parameter names and shapes, same ops, same default initialization
//! distributions (drawn from oxport's generator, so not PyTorch's numbers).
use crate::module::{scope, Module};
use oxport_core::prelude::*;

/// `U(-bound, bound)` of `sizes`.
fn uniform(sizes: &[usize], bound: f64, g: &mut Generator) -> Result<Tensor> {
    Tensor::rand(sizes, g)?.mul(2.0 * bound)?.sub(bound)
}

/// `torch.nn.Conv2d` (zero padding).
pub struct Conv2d {
    /// `[out, in / groups, kh, kw]`
    pub weight: Tensor,
    /// `[out]`
    pub bias: Option<Tensor>,
    /// Stride.
    pub stride: [i64; 2],
    /// Zero padding.
    pub padding: [i64; 2],
    /// Dilation.
    pub dilation: [i64; 2],
    /// Groups.
    pub groups: i64,
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
        })
    }

    /// `conv(x)`: `aten.conv2d`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope(self, || {
            x.conv2d(
                &self.weight,
                self.bias.as_ref(),
                &self.stride,
                &self.padding,
                &self.dilation,
                self.groups,
            )
        })
    }
}

impl Module for Conv2d {
    fn type_name(&self) -> String {
        "torch.nn.modules.conv.Conv2d".into()
    }
    fn named_own_parameters(&self) -> Vec<(String, &Tensor)> {
        let mut v = vec![("weight".to_string(), &self.weight)];
        if let Some(b) = &self.bias {
            v.push(("bias".into(), b));
        }
        v
    }
}

/// `torch.nn.ReLU`.
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

impl Module for ReLU {
    fn type_name(&self) -> String {
        "torch.nn.modules.activation.ReLU".into()
    }
}

/// `torch.nn.MaxPool2d`.
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

impl Module for MaxPool2d {
    fn type_name(&self) -> String {
        "torch.nn.modules.pooling.MaxPool2d".into()
    }
}

/// `torch.nn.Linear`.
pub struct Linear {
    /// `[out, in]`
    pub weight: Tensor,
    /// `[out]`
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

impl Module for Linear {
    fn type_name(&self) -> String {
        "torch.nn.modules.linear.Linear".into()
    }
    fn named_own_parameters(&self) -> Vec<(String, &Tensor)> {
        let mut v = vec![("weight".to_string(), &self.weight)];
        if let Some(b) = &self.bias {
            v.push(("bias".into(), b));
        }
        v
    }
}

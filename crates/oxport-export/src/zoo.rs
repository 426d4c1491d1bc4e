//! Models mirroring PyTorch twins exactly (module names, inplace flags, op calls), for the examples, the
//! demo and the oracle tests. The twins are in `tools/gen_pt2_fixtures.py` and `tools/collect_ops.py`.
use crate::module::{Forward, Module};
use crate::nn::{Conv2d, MaxPool2d, ReLU};
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
pub struct ConvReluMaxpool {
    /// `nn.Conv2d(3, 16, 3, padding=1)`
    pub conv: Conv2d,
    /// `nn.ReLU()`
    pub relu: ReLU,
    /// `nn.MaxPool2d(kernel_size=3)`
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

impl Module for ConvReluMaxpool {
    fn type_name(&self) -> String {
        "__main__.ConvReluMaxpool".into()
    }
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("conv".into(), &self.conv),
            ("relu".into(), &self.relu),
            ("maxpool".into(), &self.maxpool),
        ]
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

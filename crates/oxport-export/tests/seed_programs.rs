//! The two programs of the torch.export overview, written in Rust like their PyTorch twins
//! (tools/gen_pt2_fixtures.py: SinCos, ConvReluMaxpool), must export to the program PyTorch prints
//! (tests/fixtures/pt2/*.train.txt) line for line, except the `# File:` lines, which point at Rust.
use oxport_core::prelude::*;
use oxport_export::nn::{Conv2d, MaxPool2d, ReLU};
use oxport_export::{export, Forward, Module};
use oxport_runtime::PyValue;
use std::path::Path;

struct SinCos;

impl Module for SinCos {
    fn type_name(&self) -> String {
        "__main__.SinCos".into()
    }
}

impl Forward for SinCos {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    fn forward_py(&self, args: &[PyValue], _kwargs: &[(String, PyValue)]) -> Result<PyValue> {
        let (x, y) = (args[0].as_tensor().unwrap(), args[1].as_tensor().unwrap());
        let a = x.sin()?;
        let b = y.cos()?;
        Ok(a.add(&b)?.into())
    }
}

struct ConvReluMaxpool {
    conv: Conv2d,
    relu: ReLU,
    maxpool: MaxPool2d,
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
        let x = args[0].as_tensor().unwrap();
        let constant = kwargs
            .iter()
            .find(|(k, _)| k == "constant")
            .and_then(|(_, v)| v.as_tensor())
            .unwrap();
        let a = self.conv.forward(x)?;
        a.add_(constant)?;
        Ok(self.maxpool.forward(&self.relu.forward(&a)?)?.into())
    }
}

fn without_file_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("# File:"))
        .map(str::to_string)
        .collect()
}

fn pytorch_print(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pt2")
            .join(name),
    )
    .unwrap()
}

#[test]
fn sin_cos_exports_as_pytorch_does() {
    let x = Tensor::zeros(&[10, 10], DType::F32).unwrap();
    let ep = export(&SinCos, vec![x.clone().into(), x.into()], vec![]).unwrap();
    let ours = ep.to_string();
    assert_eq!(
        without_file_lines(&ours),
        without_file_lines(&pytorch_print("sin_cos.train.txt")),
        "\n{ours}"
    );
    assert!(
        ours.contains("# File: crates/oxport-export/tests/seed_programs.rs:"),
        "{ours}"
    );
}

#[test]
fn conv_relu_maxpool_exports_as_pytorch_does() {
    let mut g = Generator::new(0);
    let model = ConvReluMaxpool {
        conv: Conv2d::new(3, 16, [3, 3], [1, 1], [1, 1], [1, 1], 1, true, &mut g).unwrap(),
        relu: ReLU { inplace: false },
        maxpool: MaxPool2d::new(3),
    };
    let x = Tensor::zeros(&[1, 3, 256, 256], DType::F32).unwrap();
    let constant = Tensor::ones(&[1, 16, 256, 256], DType::F32).unwrap();
    let ep = export(
        &model,
        vec![x.into()],
        vec![("constant".into(), constant.into())],
    )
    .unwrap();
    let ours = ep.to_string();
    assert_eq!(
        without_file_lines(&ours),
        without_file_lines(&pytorch_print("conv_relu_maxpool.train.txt")),
        "\n{ours}"
    );
}

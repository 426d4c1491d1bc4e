//! Zoo models export to the program torch.export prints for their PyTorch twins
//! (tests/fixtures/export/<model>.train.txt, written by tools/gen_export_fixtures.py without the
//! `# File:` lines), line for line.
use oxport_core::prelude::*;
use oxport_export::export;
use oxport_export::zoo::{GPTBlock, ResNet};
use std::path::Path;

fn pytorch_print(name: &str) -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/export")
        .join(name);
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn ours(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("# File:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn resnet18_exports_as_torchvision_resnet18() {
    let model = ResNet::resnet18(&mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[1, 3, 224, 224], DType::F32).unwrap();
    let ep = export(&model, vec![x.into()], vec![]).unwrap();
    let (got, want) = (ours(&ep.to_string()), pytorch_print("resnet18.train.txt"));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn gpt_block_exports_as_its_pytorch_twin() {
    let model = GPTBlock::new(64, 4, &mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[2, 16, 64], DType::F32).unwrap();
    let ep = export(&model, vec![x.into()], vec![]).unwrap();
    let (got, want) = (ours(&ep.to_string()), pytorch_print("gpt_block.train.txt"));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

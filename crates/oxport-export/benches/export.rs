//! Export time of each zoo model (`export()` alone: tracing, metas, program assembly).
//! Run: `cargo bench -p oxport-export --bench export`; `tools/compare_export.py` puts the same models next
//! to `torch.export.export` of their PyTorch twins.
use criterion::{criterion_group, criterion_main, Criterion};
use oxport_core::prelude::*;
use oxport_export::zoo::{ConvReluMaxpool, GPTBlock, MobileNetV3, ResNet, SinCos};
use oxport_export::{export, Forward};
use oxport_runtime::PyValue;

/// A zoo model with its example arguments and keyword arguments.
type Case = (
    &'static str,
    Box<dyn Forward>,
    Vec<PyValue>,
    Vec<(String, PyValue)>,
);

fn zoo() -> Vec<Case> {
    let mut g = Generator::new(0);
    let t = |s: &[i64]| -> PyValue { Tensor::zeros(s, DType::F32).unwrap().into() };
    vec![
        (
            "sin_cos",
            Box::new(SinCos),
            vec![t(&[10, 10]), t(&[10, 10])],
            vec![],
        ),
        (
            "conv_relu_maxpool",
            Box::new(ConvReluMaxpool::new(&mut g).unwrap()),
            vec![t(&[1, 3, 256, 256])],
            vec![("constant".into(), t(&[1, 16, 256, 256]))],
        ),
        (
            "resnet18",
            Box::new(ResNet::resnet18(&mut g).unwrap()),
            vec![t(&[1, 3, 224, 224])],
            vec![],
        ),
        (
            "mobilenet_v3_small",
            Box::new(MobileNetV3::mobilenet_v3_small(&mut g).unwrap()),
            vec![t(&[1, 3, 224, 224])],
            vec![],
        ),
        (
            "transformer_encoder",
            Box::new(oxport_export::zoo::transformer_encoder(&mut g).unwrap()),
            vec![t(&[2, 16, 64])],
            vec![],
        ),
        (
            "lstm",
            Box::new(oxport_export::zoo::lstm(&mut g).unwrap()),
            vec![t(&[2, 5, 16])],
            vec![],
        ),
        (
            "gpt_block",
            Box::new(GPTBlock::new(64, 4, &mut g).unwrap()),
            vec![t(&[2, 16, 64])],
            vec![],
        ),
    ]
}

fn bench_export(c: &mut Criterion) {
    let mut group = c.benchmark_group("export");
    for (name, model, args, kwargs) in zoo() {
        group.bench_function(name, |b| {
            b.iter(|| export(model.as_ref(), args.clone(), kwargs.clone()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_export);
criterion_main!(benches);

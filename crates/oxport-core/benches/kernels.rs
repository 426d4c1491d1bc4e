//! Kernel throughput. Throughput is reported in "elements" = floating-point operations, so criterion's
//! `Gelem/s` reads as GFLOP/s.  Run: `cargo bench -p oxport-core --bench kernels`
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxport_core::prelude::*;

fn matmul(c: &mut Criterion) {
    let mut g = Generator::new(0);
    let a = Tensor::randn(&[512, 512], &mut g).unwrap();
    let b = Tensor::randn(&[512, 512], &mut g).unwrap();
    let mut group = c.benchmark_group("matmul");
    group.throughput(Throughput::Elements(2 * 512 * 512 * 512));
    group.bench_function("mm_f32_512x512x512", |bench| bench.iter(|| a.mm(&b).unwrap()));
    group.finish();
}

fn conv(c: &mut Criterion) {
    let mut g = Generator::new(1);
    let x = Tensor::randn(&[1, 64, 56, 56], &mut g).unwrap();
    let w = Tensor::randn(&[64, 64, 3, 3], &mut g).unwrap();
    let mut group = c.benchmark_group("conv2d");
    group.throughput(Throughput::Elements(2 * 64 * 56 * 56 * 64 * 9));
    group.bench_function("conv2d_f32_1x64x56x56_k64x64x3x3_pad1", |bench| {
        bench.iter(|| x.conv2d(&w, None, &[1, 1], &[1, 1], &[1, 1], 1).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = matmul, conv
}
criterion_main!(benches);

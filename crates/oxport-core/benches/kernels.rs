//! Kernel throughput. Throughput is reported in "elements" = floating-point operations, so criterion's
//! `Gelem/s` reads as GFLOP/s.  Run: `cargo bench -p oxport-core --bench kernels`
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxport_core::prelude::*;
use std::time::Instant;

/// Prints GFLOP/s from the median of a few timed runs (criterion's `Gelem/s` says the same, with error bars).
fn print_gflops(name: &str, flops: u64, mut f: impl FnMut()) {
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{name}: {:.3} ms, {:.1} GFLOP/s",
        median * 1e3,
        flops as f64 / median / 1e9
    );
}

fn matmul(c: &mut Criterion) {
    let mut g = Generator::new(0);
    let a = Tensor::randn(&[512, 512], &mut g).unwrap();
    let b = Tensor::randn(&[512, 512], &mut g).unwrap();
    let mut group = c.benchmark_group("matmul");
    group.throughput(Throughput::Elements(2 * 512 * 512 * 512));
    group.bench_function("mm_f32_512x512x512", |bench| {
        bench.iter(|| a.mm(&b).unwrap())
    });
    group.finish();
    print_gflops("matmul f32 512x512x512", 2 * 512 * 512 * 512, || {
        a.mm(&b).unwrap();
    });
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
    print_gflops(
        "conv2d f32 (1,64,56,56)x(64,64,3,3) pad 1",
        2 * 64 * 56 * 56 * 64 * 9,
        || {
            x.conv2d(&w, None, &[1, 1], &[1, 1], &[1, 1], 1).unwrap();
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = matmul, conv
}
criterion_main!(benches);

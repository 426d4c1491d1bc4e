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

/// The generic (pre-`vmath`) f32 kernels, for comparison: the element loops the ops ran before.
mod generic {
    use oxport_core::prelude::*;
    use oxport_core::tensor::kernels::{elementwise::unary_map, reduce::along_dim};

    pub fn exp(t: &Tensor) -> Tensor {
        unary_map::<f32, f32>(t, |x| x.exp())
    }

    pub fn gelu(t: &Tensor) -> Tensor {
        unary_map::<f32, f32>(t, |x| {
            if x.is_infinite() {
                f32::NAN
            } else {
                x * 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
            }
        })
    }

    pub fn softmax(t: &Tensor) -> Tensor {
        along_dim::<f32>(t, t.dim() - 1, |s| {
            let m =
                s.iter().copied().fold(
                    f32::NEG_INFINITY,
                    |m, x| if x > m || x.is_nan() { x } else { m },
                );
            let mut sum = 0.0;
            for x in s.iter_mut() {
                *x = (*x - m).exp();
                sum += *x;
            }
            s.iter_mut().for_each(|x| *x /= sum);
        })
    }

    /// The f64 row loop `native_layer_norm` ran for every dtype.
    pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let seg = *x.sizes().last().unwrap();
        let data = x.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let w = w.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let b = b.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let mut out = vec![0f32; data.len()];
        for (s, os) in data.chunks(seg).zip(out.chunks_mut(seg)) {
            let m = s.iter().sum::<f64>() / seg as f64;
            let v = s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / seg as f64;
            let r = 1.0 / (v + eps).sqrt();
            for (i, (e, d)) in s.iter().zip(os.iter_mut()).enumerate() {
                *d = ((*e - m) * r * w[i] + b[i]) as f32;
            }
        }
        Tensor::from_vec(out, x.sizes()).unwrap()
    }
}

/// exp / gelu / softmax / layer_norm in f32: the generic element loops against the vectorised
/// kernels (through the ops, so including their dispatch and parallelism).
fn vmath(c: &mut Criterion) {
    let mut g = Generator::new(2);
    let flat = Tensor::randn(&[1 << 16], &mut g).unwrap();
    let rows = Tensor::randn(&[128, 768], &mut g).unwrap();
    let (w, b) = (
        Tensor::randn(&[768], &mut g).unwrap(),
        Tensor::randn(&[768], &mut g).unwrap(),
    );
    for (name, t) in [("65536", &flat), ("128x768", &rows)] {
        let mut group = c.benchmark_group(format!("vmath_{name}"));
        group.throughput(Throughput::Elements(t.numel() as u64));
        group.bench_function("exp_generic", |bench| bench.iter(|| generic::exp(t)));
        group.bench_function("exp", |bench| bench.iter(|| t.exp().unwrap()));
        group.bench_function("gelu_generic", |bench| bench.iter(|| generic::gelu(t)));
        group.bench_function("gelu", |bench| bench.iter(|| t.gelu("none").unwrap()));
        group.bench_function("gelu_tanh", |bench| bench.iter(|| t.gelu("tanh").unwrap()));
        group.bench_function("tanh", |bench| bench.iter(|| t.tanh().unwrap()));
        group.bench_function("sigmoid", |bench| bench.iter(|| t.sigmoid().unwrap()));
        group.bench_function("relu", |bench| bench.iter(|| t.relu().unwrap()));
        group.finish();
    }
    let mut group = c.benchmark_group("vmath_rows_128x768");
    group.throughput(Throughput::Elements(rows.numel() as u64));
    group.bench_function("softmax_generic", |bench| {
        bench.iter(|| generic::softmax(&rows))
    });
    group.bench_function("softmax", |bench| bench.iter(|| rows.softmax(-1).unwrap()));
    group.bench_function("log_softmax", |bench| {
        bench.iter(|| rows.log_softmax(-1).unwrap())
    });
    group.bench_function("softmax_dim0", |bench| {
        bench.iter(|| rows.softmax(0).unwrap())
    });
    group.bench_function("layer_norm_generic", |bench| {
        bench.iter(|| generic::layer_norm(&rows, &w, &b, 1e-5))
    });
    group.bench_function("layer_norm", |bench| {
        bench.iter(|| rows.layer_norm(&[768], Some(&w), Some(&b), 1e-5).unwrap())
    });
    group.finish();
}

/// Sequential against parallel (rayon, `VEC_CHUNK` chunks) vectorised maps by size: where the
/// parallel threshold (`Unary::par_threshold`) should sit.
fn vmath_par(c: &mut Criterion) {
    use oxport_core::tensor::kernels::elementwise::VEC_CHUNK;
    use oxport_core::tensor::kernels::simd;
    use oxport_core::tensor::kernels::vmath::{unary_slice, Unary};
    use rayon::prelude::*;
    let isa = simd::active();
    for op in [Unary::Relu, Unary::Exp, Unary::Gelu] {
        let mut group = c.benchmark_group(format!("vmath_par_{op:?}"));
        for log2 in [12usize, 13, 14, 15, 16, 18, 20] {
            let n = 1 << log2;
            let src: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.01 - 5.0).collect();
            let mut dst = vec![0f32; n];
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(format!("seq_2^{log2}"), |bench| {
                bench.iter(|| unary_slice(isa, op, &src, &mut dst))
            });
            group.bench_function(format!("par_2^{log2}"), |bench| {
                bench.iter(|| {
                    dst.par_chunks_mut(VEC_CHUNK.min(n / 2))
                        .zip(src.par_chunks(VEC_CHUNK.min(n / 2)))
                        .for_each(|(d, s)| unary_slice(isa, op, s, d))
                })
            });
        }
        group.finish();
    }
}

/// Linear layers on transformer shapes (tokens × in × out), 2 threads: the `gemm` crate on the
/// row-major `K × N` weight against [`sgemm::sgemm_packed_b`] on the weight packed once.
fn linear_packed(c: &mut Criterion) {
    for (m, k, n) in [
        (50, 768, 2304),
        (50, 768, 3072),
        (50, 3072, 768),
        (128, 768, 768),
        (128, 768, 3072),
        (32, 256, 1024),
        (197, 192, 576),
        (128, 3072, 768),
        (197, 768, 3072),
        (512, 512, 512),
    ] {
        linear_group(c, &format!("linear_{m}x{k}x{n}"), (m, k, n), 1);
    }
}

/// As [`linear_packed`], over 40 different weights in turn (a model's layers: the weights come
/// from memory, not from the caches).
fn linear_cold(c: &mut Criterion) {
    for (m, k, n) in [(197, 192, 576), (197, 768, 192), (50, 768, 3072)] {
        linear_group(c, &format!("linear_cold_{m}x{k}x{n}"), (m, k, n), 40);
    }
}

fn linear_group(c: &mut Criterion, name: &str, (m, k, n): (usize, usize, usize), weights: usize) {
    use oxport_core::tensor::kernels::matmul::gemm_strided;
    use oxport_core::tensor::kernels::{sgemm, simd};
    let isa = simd::active();
    let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.1).collect();
    let bs: Vec<Vec<f32>> = (0..weights)
        .map(|_| (0..k * n).map(|i| (i % 13) as f32 * 0.1).collect())
        .collect();
    let packed: Vec<_> = bs.iter().map(|b| sgemm::PackedB::new(b, n, k, n)).collect();
    let mut out = vec![0f32; m * n];
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements((2 * m * k * n * weights) as u64));
    group.bench_function("gemm_crate", |bench| {
        bench.iter(|| {
            for b in &bs {
                gemm_strided(
                    m, k, n, &a, k as isize, 1, b, n as isize, 1, &mut out, false, true,
                )
            }
        })
    });
    group.bench_function("packed", |bench| {
        bench.iter(|| {
            for p in &packed {
                sgemm::sgemm_packed_b(isa, m, &a, k, p, &mut out, false, true)
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = matmul, conv, vmath, vmath_par, linear_packed, linear_cold
}
criterion_main!(benches);

//! Convolution and pooling kernel timings on the layer shapes of resnet18, MobileNetV3-small and
//! EfficientNet-B0 (batch 1, f32). Run:
//! `cargo bench -p oxport-core --bench conv -- --warm-up-time 1 --measurement-time 2`
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oxport_core::tensor::kernels::activation::Activation;
use oxport_core::tensor::kernels::conv::{
    conv2d, conv2d_fused, conv2d_out_hw, Conv2dParams, Epilogue,
};
use oxport_core::tensor::kernels::conv_packed::{conv2d_fused_packed, PackedConvWeight};
use oxport_core::tensor::kernels::{pool, simd};

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// (name, input NCHW, weight OIhw, stride, padding, groups)
type Case = (&'static str, [usize; 4], [usize; 4], usize, usize, usize);

const CASES: &[Case] = &[
    // resnet18
    (
        "resnet_stem_3x224_7x7s2",
        [1, 3, 224, 224],
        [64, 3, 7, 7],
        2,
        3,
        1,
    ),
    ("resnet_64x56_3x3", [1, 64, 56, 56], [64, 64, 3, 3], 1, 1, 1),
    (
        "resnet_128x28_3x3",
        [1, 128, 28, 28],
        [128, 128, 3, 3],
        1,
        1,
        1,
    ),
    (
        "resnet_256x14_3x3",
        [1, 256, 14, 14],
        [256, 256, 3, 3],
        1,
        1,
        1,
    ),
    (
        "resnet_512x7_3x3",
        [1, 512, 7, 7],
        [512, 512, 3, 3],
        1,
        1,
        1,
    ),
    (
        "resnet_down_256x14_1x1s2",
        [1, 256, 14, 14],
        [512, 256, 1, 1],
        2,
        0,
        1,
    ),
    // resnext50_32x4d's grouped 3×3 (64 px input: 16×16 plane)
    (
        "resnext_g32_256x16_3x3",
        [1, 256, 16, 16],
        [256, 8, 3, 3],
        1,
        1,
        32,
    ),
    // 1x1 (pointwise) on small planes
    ("pw_96x7_to576", [1, 96, 7, 7], [576, 96, 1, 1], 1, 0, 1),
    (
        "pw_320x7_to1280",
        [1, 320, 7, 7],
        [1280, 320, 1, 1],
        1,
        0,
        1,
    ),
    ("pw_576x7_to96", [1, 576, 7, 7], [96, 576, 1, 1], 1, 0, 1),
    ("pw_96x14_to576", [1, 96, 14, 14], [576, 96, 1, 1], 1, 0, 1),
    ("pw_16x112_to64", [1, 16, 112, 112], [64, 16, 1, 1], 1, 0, 1),
    // depthwise (MobileNetV3-small, EfficientNet-B0 at 224 and 64 pixels)
    (
        "dw_16x112_3x3s2",
        [1, 16, 112, 112],
        [16, 1, 3, 3],
        2,
        1,
        16,
    ),
    (
        "dw_32x112_3x3s1",
        [1, 32, 112, 112],
        [32, 1, 3, 3],
        1,
        1,
        32,
    ),
    (
        "dw_96x112_3x3s2",
        [1, 96, 112, 112],
        [96, 1, 3, 3],
        2,
        1,
        96,
    ),
    (
        "dw_144x56_3x3s1",
        [1, 144, 56, 56],
        [144, 1, 3, 3],
        1,
        1,
        144,
    ),
    ("dw_96x14_5x5s1", [1, 96, 14, 14], [96, 1, 5, 5], 1, 2, 96),
    (
        "dw_240x28_5x5s2",
        [1, 240, 28, 28],
        [240, 1, 5, 5],
        2,
        2,
        240,
    ),
    ("dw_576x7_5x5s1", [1, 576, 7, 7], [576, 1, 5, 5], 1, 2, 576),
    (
        "dw_32x32_3x3s1_64px",
        [1, 32, 32, 32],
        [32, 1, 3, 3],
        1,
        1,
        32,
    ),
    (
        "dw_144x16_3x3s2_64px",
        [1, 144, 16, 16],
        [144, 1, 3, 3],
        2,
        1,
        144,
    ),
];

fn params(stride: usize, pad: usize, groups: usize) -> Conv2dParams {
    Conv2dParams {
        stride: [stride; 2],
        padding: [pad; 2],
        dilation: [1, 1],
        groups,
    }
}

fn out_len(is: [usize; 4], ws: [usize; 4], p: &Conv2dParams) -> usize {
    let [oh, ow] = conv2d_out_hw([is[2], is[3]], [ws[2], ws[3]], p).unwrap();
    is[0] * ws[0] * oh * ow
}

fn convs(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv");
    for &(name, is, ws, s, pad, groups) in CASES {
        let p = params(s, pad, groups);
        let x = data(is.iter().product(), 1);
        let w = data(ws.iter().product(), 2);
        let b = data(ws[0], 3);
        let n = out_len(is, ws, &p);
        let mut out = vec![0.0f32; n];
        let flops = 2 * n * ws[1] * ws[2] * ws[3];
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_function(BenchmarkId::new("bias", name), |bench| {
            bench.iter(|| conv2d(&x, is, &w, ws, Some(&b), &p, &mut out))
        });
        if ws[1] > 1 || groups == 1 {
            // The weight packed once, as a plan does (AVX-512 only; elsewhere the same as above).
            let packed = PackedConvWeight::new(&w, ws, groups);
            let epi = Epilogue::with_bias(Some(&b));
            let isa = simd::active();
            group.bench_function(BenchmarkId::new("packed", name), |bench| {
                bench.iter(|| conv2d_fused_packed(isa, &x, is, &w, &packed, &p, &epi, &mut out))
            });
        }
    }
    group.finish();
}

/// conv + bias, then residual add and ReLU as separate passes (what running the ops one by one does).
fn conv_add_relu_unfused(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_add_relu");
    for &(name, is, ws, s, pad, groups) in CASES {
        if !matches!(
            name,
            "resnet_64x56_3x3" | "resnet_512x7_3x3" | "dw_144x56_3x3s1"
        ) {
            continue;
        }
        let p = params(s, pad, groups);
        let x = data(is.iter().product(), 1);
        let w = data(ws.iter().product(), 2);
        let b = data(ws[0], 3);
        let n = out_len(is, ws, &p);
        let res = data(n, 4);
        let mut out = vec![0.0f32; n];
        let mut sum = vec![0.0f32; n];
        group.bench_function(BenchmarkId::new("unfused", name), |bench| {
            bench.iter(|| {
                conv2d(&x, is, &w, ws, Some(&b), &p, &mut out);
                for ((s, &o), &r) in sum.iter_mut().zip(&out).zip(&res) {
                    *s = o + r;
                }
                for v in out.iter_mut().zip(&sum) {
                    *v.0 = if v.1.is_nan() { *v.1 } else { v.1.max(0.0) };
                }
            })
        });
    }
    group.finish();
}

/// The same as [`conv_add_relu_unfused`] in one fused call.
fn conv_add_relu_fused(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_add_relu");
    for &(name, is, ws, s, pad, groups) in CASES {
        if !matches!(
            name,
            "resnet_64x56_3x3" | "resnet_512x7_3x3" | "dw_144x56_3x3s1"
        ) {
            continue;
        }
        let p = params(s, pad, groups);
        let x = data(is.iter().product(), 1);
        let w = data(ws.iter().product(), 2);
        let b = data(ws[0], 3);
        let n = out_len(is, ws, &p);
        let res = data(n, 4);
        let mut out = vec![0.0f32; n];
        let epi = Epilogue {
            bias: Some(&b[..]),
            residual: Some(&res[..]),
            activation: Activation::Relu,
        };
        group.bench_function(BenchmarkId::new("fused", name), |bench| {
            bench.iter(|| conv2d_fused(&x, is, &w, ws, &p, &epi, &mut out))
        });
    }
    group.finish();
}

fn pools(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool");
    let is = [1, 64, 112, 112];
    let x = data(is.iter().product(), 5);
    let mut out = vec![0.0f32; 64 * 56 * 56];
    group.bench_function("max_3x3s2_64x112", |bench| {
        bench.iter(|| {
            pool::max_pool2d(
                &x,
                is,
                [3, 3],
                [2, 2],
                [1, 1],
                [1, 1],
                false,
                &mut out,
                None,
            )
        })
    });
    let is = [1, 64, 56, 56];
    let x = data(is.iter().product(), 6);
    let mut out = vec![0.0f32; 64 * 56 * 56];
    group.bench_function("avg_3x3s1p1_64x56", |bench| {
        bench.iter(|| pool::avg_pool2d(&x, is, [3, 3], [1, 1], [1, 1], false, true, None, &mut out))
    });
    let is = [1, 64, 56, 56];
    let mut out = vec![0.0f32; 64 * 28 * 28];
    group.bench_function("avg_2x2s2_64x56", |bench| {
        bench.iter(|| pool::avg_pool2d(&x, is, [2, 2], [2, 2], [0, 0], false, true, None, &mut out))
    });
    for (name, is) in [
        ("gap_512x7", [1, 512, 7, 7]),
        ("gap_1280x7", [1, 1280, 7, 7]),
        ("gap_576x7", [1, 576, 7, 7]),
        ("gap_96x56", [1, 96, 56, 56]),
    ] {
        let x = data(is.iter().product(), 7);
        let mut out = vec![0.0f32; is[1]];
        group.bench_function(name, |bench| {
            bench.iter(|| pool::adaptive_avg_pool2d(&x, is, [1, 1], &mut out))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    convs,
    conv_add_relu_unfused,
    conv_add_relu_fused,
    pools
);
criterion_main!(benches);

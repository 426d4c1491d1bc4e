//! The command-line contracts: `oxport inspect`, `oxport run`, `oxport bench`, as a user runs them.
use std::path::{Path, PathBuf};
use std::process::Command;

fn oxport(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oxport"))
        .args(args)
        .output()
        .expect("runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pt2")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oxport-cli-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn inspect_prints_pytorchs_text_and_fails_cleanly() {
    let out = oxport(&["inspect", s(&fixture("db_cond_operands.train.pt2"))]);
    assert!(out.status.success());
    let expected = std::fs::read_to_string(fixture("db_cond_operands.train.txt")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    let out = oxport(&["inspect", s(&fixture("manifest.json"))]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a readable zip archive"), "{err}");
}

#[test]
fn run_writes_outputs_and_rejects_bad_inputs() {
    let dir = tmp("run");
    let (a, b) = (
        fixture("dynamic_batch.core.in_0.npy"),
        fixture("dynamic_batch.core.in_1.npy"),
    );
    let out = oxport(&[
        "run",
        s(&fixture("dynamic_batch.core.pt2")),
        "--input",
        s(&a),
        "--input",
        s(&b),
        "--output-dir",
        s(&dir),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for j in 0..4 {
        let got = oxport_core::Tensor::read_npy(dir.join(format!("output_{j}.npy"))).unwrap();
        let want =
            oxport_core::Tensor::read_npy(fixture(&format!("dynamic_batch.core.out_{j}.npy")))
                .unwrap();
        assert_eq!(got.sizes(), want.sizes());
        for (x, y) in got.to_vec_f64().iter().zip(want.to_vec_f64()) {
            assert!(
                (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
                "output_{j}: {x} vs {y}"
            );
        }
    }
    // Wrong count, wrong shape, and a file that is not .npy: non-zero exit, one line on stderr.
    let program = fixture("dynamic_batch.core.pt2");
    let bad_npy = dir.join("bad.npy");
    std::fs::write(&bad_npy, b"not numpy").unwrap();
    for (inputs, needle) in [
        (vec![s(&a)], "Expected 2 inputs (x, y), got 1"),
        (vec![s(&b), s(&b)], "Guard failed: x.size()[1] == 8"),
        (vec![s(&bad_npy), s(&b)], "not a .npy file"),
    ] {
        let mut args = vec!["run", s(&program)];
        for i in &inputs {
            args.extend(["--input", i]);
        }
        args.extend(["--output-dir", s(&dir)]);
        let out = oxport(&args);
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle) && err.lines().count() == 1, "{err}");
    }
}

#[test]
fn bench_ends_with_the_median() {
    let out = oxport(&[
        "bench",
        s(&fixture("small_cnn_bn_eval.core.pt2")),
        "--iters",
        "3",
        "--warmup",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().unwrap();
    let ms: f64 = last
        .strip_prefix("median_ms=")
        .expect(last)
        .parse()
        .unwrap();
    assert!(ms > 0.0);
    // The compile stage fuses the convolution with its BatchNorm; `--no-fuse` times the plain plan.
    assert!(text.contains("oxport.fused.conv2d"), "{text}");
    let plain = oxport(&[
        "bench",
        s(&fixture("small_cnn_bn_eval.core.pt2")),
        "--iters",
        "3",
        "--warmup",
        "1",
        "--no-fuse",
    ]);
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert!(plain.contains("aten.convolution.default"), "{plain}");
    // `--nodes 2`: a table of the two slowest nodes after the per-op one, a fused step named by
    // its nodes.
    let nodes = oxport(&[
        "bench",
        s(&fixture("small_cnn_bn_eval.core.pt2")),
        "--iters",
        "3",
        "--nodes",
        "2",
    ]);
    let nodes = String::from_utf8(nodes.stdout).unwrap();
    let table: Vec<&str> = nodes
        .lines()
        .skip_while(|l| !l.starts_with("node "))
        .skip(1)
        .take_while(|l| !l.starts_with("min_ms="))
        .collect();
    assert_eq!(table.len(), 2, "{nodes}");
    assert!(
        table
            .iter()
            .any(|l| l.contains('+') && l.contains("oxport.fused.conv2d")),
        "{nodes}"
    );
}

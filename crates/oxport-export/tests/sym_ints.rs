//! Symbolic ints wherever ints go, under export: Rust twins of `SymFactories`, `SymViews` and `SymScalars`
//! in tools/gen_export_fixtures.py, exported with dynamic dims, print as PyTorch prints its export of the
//! twin (tests/fixtures/export/<name>.train.txt, `# File:` lines aside), and the exported programs run in
//! oxport's runtime to the outputs of PyTorch's program at two sizes (`<name>.<sizes>.{in,out}_<i>.npy`).
//! With `OXPORT_SYM_INTS_PT2=DIR` the exports are also saved as `DIR/<name>.pt2`, which
//! tools/check_sym_ints_interop.py loads and runs in PyTorch (CI: tools/check_export_interop.sh).
use oxport_core::ops::Value;
use oxport_core::prelude::*;
use oxport_export::{export_dynamic, Dim, Forward};
use oxport_ir::ExportedProgram;
use oxport_runtime::{ExportedProgramExt, PyValue};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/export")
        .join(name)
}

/// The print minus the `# File:` lines, which point at Python sources in PyTorch's and Rust in ours.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("# File:"))
        .map(str::to_string)
        .collect()
}

fn check_print(ep: &ExportedProgram, name: &str) {
    if let Some(dir) = std::env::var_os("OXPORT_SYM_INTS_PT2") {
        std::fs::create_dir_all(&dir).unwrap();
        oxport_ir::pt2::save(ep, Path::new(&dir).join(format!("{name}.pt2"))).unwrap();
    }
    let want = std::fs::read_to_string(fixture(&format!("{name}.train.txt"))).unwrap();
    let (got, want) = (lines(&ep.to_string()), lines(&want));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "{name}: line {}", i + 1);
    }
    assert_eq!(got.len(), want.len(), "{name}: line count");
}

/// Runs the program on PyTorch's inputs recorded under `<name>.<tag>.in_<i>.npy` and compares with its
/// outputs: same dtype and shape, f32 within 1e-6 relative/absolute, integers exact.
fn check_run(ep: &ExportedProgram, name: &str, tag: &str) {
    let npys = |kind: &str| -> Vec<Tensor> {
        (0..)
            .map(|i| fixture(&format!("{name}.{tag}.{kind}_{i}.npy")))
            .take_while(|p| p.exists())
            .map(|p| Tensor::read_npy(p).unwrap())
            .collect()
    };
    let (inputs, want) = (npys("in"), npys("out"));
    assert!(
        !inputs.is_empty() && !want.is_empty(),
        "{name}.{tag}: no fixtures"
    );
    let got = ep
        .module()
        .unwrap()
        .call_flat(inputs.into_iter().map(Value::Tensor).collect())
        .unwrap();
    assert_eq!(got.len(), want.len(), "{name}.{tag}: outputs");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let Value::Tensor(g) = g else {
            panic!("{name}.{tag}: output {i} is {g:?}")
        };
        let what = format!("{name}.{tag}: output {i}");
        assert_eq!(g.dtype(), w.dtype(), "{what}");
        assert_eq!(g.sizes(), w.sizes(), "{what}");
        let (g, w) = (
            g.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
            w.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
        );
        for (j, (a, b)) in g.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "{what}[{j}]: {a} vs PyTorch's {b}"
            );
        }
    }
}

fn input(shape: &[i64]) -> PyValue {
    Tensor::zeros(shape, DType::F32).unwrap().into()
}

/// Twin of `SymFactories`: factories sized by the dynamic dim.
#[derive(oxport_export::Module)]
#[module(
    crate = "oxport_export",
    type_name = "gen_export_fixtures.SymFactories"
)]
struct SymFactories;

impl Forward for SymFactories {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        let o = TensorOptions::default;
        let n = x.sym_size(0)?;
        let pos = Tensor::arange_with(&n, o())?;
        let steps = Tensor::arange_with((1, &n + 1), o())?;
        let evens = Tensor::arange_with((0, &n * 2, 2), o())?;
        let f = Tensor::full_with([n.clone(), 4.into()], 1.5, o())?;
        let z = x.new_zeros([n.clone(), 3.into()])?;
        let ones = x.new_ones([2.into(), n.clone()])?;
        let e = Tensor::zeros_with([n.clone(), 2.into()], o())?;
        let shifted = x.add(&pos.unsqueeze(1)?)?;
        let outs = [pos, steps, evens, f, z, ones, e, shifted];
        Ok(PyValue::Tuple(outs.into_iter().map(Into::into).collect()))
    }
}

#[test]
fn factories_take_symbolic_sizes_like_pytorch() {
    let n = Dim::new("n", Some(2), Some(32));
    let ds = [("x".to_string(), 0, n)];
    let ep = export_dynamic(&SymFactories, vec![input(&[5, 6])], vec![], &ds).unwrap();
    check_print(&ep, "sym_factories");
    check_run(&ep, "sym_factories", "n5");
    check_run(&ep, "sym_factories", "n9");
}

/// Twin of `SymViews`: views, slices and repeats with sizes computed from two dynamic dims.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export", type_name = "gen_export_fixtures.SymViews")]
struct SymViews;

impl Forward for SymViews {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        let (b, t) = (x.sym_size(0)?, x.sym_size(1)?);
        let v = x.view([&b * 4, (-1).into()])?;
        let r = x.reshape([(-1).into(), &t * 2])?;
        // One line each, as in the twin: a node's stack trace is its line, and the print groups by it.
        let e = x.slice(1, 0, 1, 1)?.expand([b.clone(), t, 4.into()])?;
        let head = x.slice(1, 1, &x.sym_size(1)? - 1, 1)?;
        let n = x.narrow(1, 0, &x.sym_size(1)? - 1)?;
        let rep = x.slice(0, 0, 1, 1)?.repeat([b, 1.into(), 1.into()])?;
        let outs = [v, r, e, head, n, rep];
        Ok(PyValue::Tuple(outs.into_iter().map(Into::into).collect()))
    }
}

#[test]
fn views_and_slices_take_symbolic_sizes_like_pytorch() {
    let ds = [
        ("x".to_string(), 0, Dim::new("b", Some(2), Some(16))),
        ("x".to_string(), 1, Dim::new("t", Some(4), Some(32))),
    ];
    let ep = export_dynamic(&SymViews, vec![input(&[3, 5, 4])], vec![], &ds).unwrap();
    check_print(&ep, "sym_views");
    check_run(&ep, "sym_views", "b3t5");
    check_run(&ep, "sym_views", "b6t11");
}

/// Twin of `SymScalars`: numbers computed from dynamic sizes where ops take a Scalar.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export", type_name = "gen_export_fixtures.SymScalars")]
struct SymScalars;

impl Forward for SymScalars {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        let (t, d) = (x.sym_size(1)?, x.sym_size(2)?);
        let a = x.mul(&t)?;
        let c = x.add(&t - 1)?;
        let q = x.div(&t * &d)?;
        let g = Tensor::full_with([2.into(), t.clone()], &t, TensorOptions::default())?;
        let outs = [a, c, q, g];
        Ok(PyValue::Tuple(outs.into_iter().map(Into::into).collect()))
    }
}

#[test]
fn scalars_computed_from_sizes_are_graph_values_like_pytorch() {
    let ds = [
        ("x".to_string(), 1, Dim::new("t", Some(2), Some(32))),
        ("x".to_string(), 2, Dim::new("d", Some(2), Some(64))),
    ];
    let ep = export_dynamic(&SymScalars, vec![input(&[2, 5, 8])], vec![], &ds).unwrap();
    check_print(&ep, "sym_scalars");
    check_run(&ep, "sym_scalars", "t5d8");
    check_run(&ep, "sym_scalars", "t7d3");
}

/// Twin of `SymFloats`: symbolic floats computed from dynamic sizes, one per line as in the twin.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export", type_name = "gen_export_fixtures.SymFloats")]
struct SymFloats;

impl Forward for SymFloats {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        let (t, d) = (x.sym_size(1)?, x.sym_size(2)?);
        let a = x.mul(d.powf(-0.5))?;
        let b = x.div(sym_sqrt(&d))?;
        let c = x.view(&[2, -1])?.div(t.true_div(2))?;
        let e = x.mul(&t * 0.5 + 1.0)?;
        let f = x.mul(sym_float(&(&t * &d)))?;
        let g = x.mul(2.0 - sym_float(&t))?;
        let h = x.mul(1.0 / sym_float(&d))?;
        let i = x.mul(-t.true_div(&d))?;
        let j = x.mul(t.powi(2))?;
        let k = x.mul(sym_int(&t.true_div(2)))?;
        let m = x.mul(0.5 * sym_float(&d) * 3)?;
        let n = x.mul(&d * &t * 3)?;
        let outs = [a, b, c, e, f, g, h, i, j, k, m, n];
        Ok(PyValue::Tuple(outs.into_iter().map(Into::into).collect()))
    }
}

#[test]
fn symbolic_floats_are_recorded_like_pytorch() {
    let ds = [
        ("x".to_string(), 1, Dim::new("t", Some(2), Some(32))),
        ("x".to_string(), 2, Dim::new("d", Some(2), Some(64))),
    ];
    let ep = export_dynamic(&SymFloats, vec![input(&[2, 5, 8])], vec![], &ds).unwrap();
    check_print(&ep, "sym_floats");
    check_run(&ep, "sym_floats", "t5d8");
    check_run(&ep, "sym_floats", "t6d3");
}

/// Twin of `SymAttention`: attention scaled by `q.size(-1) ** -0.5` with dynamic sequence and head dims.
#[derive(oxport_export::Module)]
#[module(
    crate = "oxport_export",
    type_name = "gen_export_fixtures.SymAttention"
)]
struct SymAttention;

impl Forward for SymAttention {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    // One line, as in the twin: a node's stack trace is its line, and the print groups by it.
    #[rustfmt::skip]
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        let w = x.matmul(&x.transpose(-2, -1)?)?.mul(x.sym_size(-1)?.powf(-0.5))?;
        Ok(w.softmax(-1)?.matmul(x)?.into())
    }
}

#[test]
fn attention_scaled_by_a_dynamic_head_dim_is_recorded_like_pytorch() {
    let ds = [
        ("x".to_string(), 1, Dim::new("s", Some(2), Some(32))),
        ("x".to_string(), 2, Dim::new("d", Some(2), Some(64))),
    ];
    let ep = export_dynamic(&SymAttention, vec![input(&[2, 5, 8])], vec![], &ds).unwrap();
    check_print(&ep, "sym_attention");
    check_run(&ep, "sym_attention", "s5d8");
    check_run(&ep, "sym_attention", "s9d4");
}

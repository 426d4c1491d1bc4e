//! Runs every fixture program (tests/fixtures/pt2, exported by PyTorch 2.15) on its recorded inputs and
//! compares with the outputs PyTorch's `ep.module()` gave (floats: |a-b| <= 1e-5 + 1e-4|b|, or the
//! case's recorded `tol` [rtol, atol] for half-precision programs; integers and bools exact, as 64-bit
//! integers), including inputs the program mutates.
use oxport_core::{DType, Scalar, Tensor};
use oxport_runtime::{Module, PlanOptions, Value};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2")
}

fn input_value(spec: &serde_json::Value, path: &Path) -> Value {
    let kind = spec["kind"].as_str().unwrap_or("");
    if let Some(v) = spec.get("value") {
        return match v {
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) if n.is_i64() => Value::Int(n.as_i64().unwrap().into()),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap()),
            _ => Value::None,
        };
    }
    let t = Tensor::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match kind {
        "tensor" => Value::Tensor(t),
        "int" => Value::Int(t.item().unwrap().to_i64().into()),
        "float" => Value::Float(t.item().unwrap().to_f64()),
        "bool" => Value::Bool(t.item().unwrap().to_f64() != 0.0),
        other => panic!("input kind {other}"),
    }
}

/// None if equal within tolerance (`tol` = (rtol, atol) for floats), else a description.
fn compare(got: &Value, expected: &Tensor, tol: (f64, f64)) -> Option<String> {
    let g = match got {
        Value::Tensor(t) => t.clone(),
        Value::Int(i) => Tensor::scalar(i.as_int().unwrap_or(i64::MIN)),
        Value::Float(f) => Tensor::scalar(*f),
        Value::Bool(b) => Tensor::scalar(*b),
        Value::Scalar(Scalar::Int(i)) => Tensor::scalar(*i),
        other => return Some(format!("got a {}", other.kind())),
    };
    if g.sizes() != expected.sizes() {
        return Some(format!("shape {:?} vs {:?}", g.sizes(), expected.sizes()));
    }
    let float = expected.dtype().is_floating_point();
    if !float
        && g.dtype() != expected.dtype()
        && !(g.dtype() == DType::I64 && expected.dtype() == DType::I64)
    {
        return Some(format!("dtype {:?} vs {:?}", g.dtype(), expected.dtype()));
    }
    if expected.dtype().is_complex() {
        // complex outputs (.npy c8/c16): by distance, with the float tolerance
        let (a, b) = (g.to_vec_complex().ok()?, expected.to_vec_complex().ok()?);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if (x - y).norm() > 1e-5 + 1e-4 * y.norm() && x != y {
                return Some(format!("element {i}: {x} vs {y}"));
            }
        }
        return None;
    }
    if !float {
        // Exact, in 64 bits: a float64 detour would round values past 2**53.
        let as_i64 = |t: &Tensor| t.cast_untraced(DType::I64).to_vec::<i64>();
        let (a, b) = (as_i64(&g).ok()?, as_i64(expected).ok()?);
        return a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .map(|i| format!("element {i}: {} vs {}", a[i], b[i]));
    }
    let (rtol, atol) = tol;
    let (a, b) = (g.to_vec_f64(), expected.to_vec_f64());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let ok = (x - y).abs() <= atol + rtol * y.abs() || (x.is_nan() && y.is_nan()) || x == y;
        if !ok {
            return Some(format!("element {i}: {x} vs {y}"));
        }
    }
    None
}

/// Programs that do not run yet, and why (the test fails if one of them starts passing: update the list).
/// Programs expected to fail, with the reason (none today: db_tensor_setattr's dead `randn` runs since
/// aten.randn joined the registry).
const KNOWN_FAILURES: &[(&str, &str)] = &[];

#[test]
fn every_fixture_program_runs_and_matches_pytorch() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap())
            .unwrap();
    let mut passed = 0;
    let mut failures = vec![];
    for case in manifest["cases"].as_array().unwrap() {
        if !case["npy"].as_bool().unwrap_or(false) {
            continue;
        }
        let base = format!(
            "{}.{}",
            case["name"].as_str().unwrap(),
            case["form"].as_str().unwrap()
        );
        let tol = match case["tol"].as_array().map(|t| t.as_slice()) {
            Some([r, a]) => (r.as_f64().unwrap(), a.as_f64().unwrap()),
            _ => (1e-4, 1e-5),
        };
        // Both plans (the compile stage's, and the plain one it is checked against), each called
        // twice — the second call runs in buffers the first one left values in — unless the first
        // call changed the program's state.
        let run_with = |options: PlanOptions, call: usize| -> Result<(), String> {
            let ep = oxport_ir::pt2::load(dir().join(format!("{base}.pt2")))
                .map_err(|e| e.to_string())?;
            let m = Module::with_options(&ep, options).map_err(|e| e.to_string())?;
            let inputs = || -> Vec<Value> {
                case["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, s)| input_value(s, &dir().join(format!("{base}.in_{i}.npy"))))
                    .collect()
            };
            let state = |m: &Module| -> Vec<Vec<f64>> {
                m.buffers().map(|(_, t)| t.to_vec_f64()).collect()
            };
            let before = state(&m);
            let mut ins = inputs();
            let mut outs = m.call_flat(ins.clone()).map_err(|e| e.to_string())?;
            if call == 1 {
                if state(&m) != before {
                    return Ok(());
                }
                ins = inputs();
                outs = m.call_flat(ins.clone()).map_err(|e| e.to_string())?;
            }
            let inputs = ins;
            let n_expected = case["outputs"].as_array().unwrap().len();
            if outs.len() != n_expected {
                return Err(format!("{} outputs, expected {n_expected}", outs.len()));
            }
            for (j, o) in outs.iter().enumerate() {
                let expected = Tensor::read_npy(dir().join(format!("{base}.out_{j}.npy")))
                    .map_err(|e| e.to_string())?;
                if let Some(d) = compare(o, &expected, tol) {
                    return Err(format!("output {j}: {d}"));
                }
            }
            for (i, v) in inputs.iter().enumerate() {
                let after = dir().join(format!("{base}.in_{i}.after.npy"));
                if after.exists() {
                    let expected = Tensor::read_npy(&after).map_err(|e| e.to_string())?;
                    if let Some(d) = compare(v, &expected, tol) {
                        return Err(format!("mutated input {i}: {d}"));
                    }
                }
            }
            Ok(())
        };
        let run = || -> Result<(), String> {
            for (what, options) in [
                ("optimized", PlanOptions::default()),
                ("unoptimized", PlanOptions::unoptimized()),
            ] {
                for call in 0..2 {
                    run_with(options, call)
                        .map_err(|e| format!("{what} plan, call {call}: {e}"))?;
                }
            }
            Ok(())
        };
        let known = KNOWN_FAILURES.iter().any(|(k, _)| *k == base);
        match (run(), known) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => {
                failures.push(format!("{base}: passes now; remove it from KNOWN_FAILURES"))
            }
            (Err(_), true) => {}
            (Err(e), false) => failures.push(format!("{base}: {e}")),
        }
    }
    eprintln!("{passed} programs match PyTorch");
    assert!(
        failures.is_empty(),
        "{} programs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A program exported on CUDA runs on the CPU: the same program with every tensor's device and every
/// device argument set to `cuda:0` gives the CPU program's outputs.
#[test]
fn a_program_exported_on_cuda_runs_on_the_cpu() {
    use oxport_ir::schema::{Argument, Device};
    for form in ["train", "core"] {
        let base = format!("to_conversions.{form}");
        let mut ep = oxport_ir::pt2::load(dir().join(format!("{base}.pt2"))).unwrap();
        let cuda = Device {
            type_: "cuda".into(),
            index: Some(0),
        };
        let g = &mut ep.graph_module.graph;
        let mut devices = 0;
        for (_, m) in g.tensor_values.iter_mut() {
            m.device = cuda.clone();
            devices += 1;
        }
        for n in &mut g.nodes {
            for a in &mut n.inputs {
                if let Argument::AsDevice(d) = &mut a.arg {
                    *d = cuda.clone();
                    devices += 1;
                }
            }
        }
        assert!(devices > 5, "{base}: the program has devices to rewrite");
        let m = Module::new(&ep).unwrap();
        let x = Tensor::read_npy(dir().join(format!("{base}.in_0.npy"))).unwrap();
        let y = Tensor::read_npy(dir().join(format!("{base}.in_1.npy"))).unwrap();
        let outs = m
            .call_flat(vec![Value::Tensor(x), Value::Tensor(y)])
            .unwrap();
        for (j, o) in outs.iter().enumerate() {
            let expected = Tensor::read_npy(dir().join(format!("{base}.out_{j}.npy"))).unwrap();
            assert_eq!(
                compare(o, &expected, (1e-4, 1e-5)),
                None,
                "{base} output {j}"
            );
        }
    }
}

/// Symbolic ints where ints and numbers go (`arange(s)`, `full((s, 4))`, `new_zeros(s)`, `view(s * 4,
/// -1)`, a slice bound `s - 1`, `x / s`): the program traced at seq 6 gives, at seq 9, what PyTorch's
/// program traced at seq 9 gives (both forms).
#[test]
fn symbolic_ints_reach_scalar_and_list_arguments_at_every_size() {
    for form in ["train", "core"] {
        let ep = oxport_ir::pt2::load(dir().join(format!("sym_ints.{form}.pt2"))).unwrap();
        let m = Module::new(&ep).unwrap();
        for base in [format!("sym_ints.{form}"), format!("sym_ints_seq9.{form}")] {
            let x = Tensor::read_npy(dir().join(format!("{base}.in_0.npy"))).unwrap();
            let outs = m.call_flat(vec![Value::Tensor(x)]).unwrap();
            assert_eq!(outs.len(), 6);
            for (j, o) in outs.iter().enumerate() {
                let expected = Tensor::read_npy(dir().join(format!("{base}.out_{j}.npy"))).unwrap();
                assert_eq!(
                    compare(o, &expected, (1e-4, 1e-5)),
                    None,
                    "{base} output {j}"
                );
            }
        }
    }
}

/// A program with a symbolic batch gets a plan specialized to each batch it is called with (its
/// linears packed, its outputs in a planned arena, its `sym_size` arithmetic done at plan time):
/// every batch in range, in any order and more of them than the module keeps plans for, gives the
/// plain plan's outputs, the symbolic int output included.
#[test]
fn dynamic_programs_run_on_plans_specialized_to_each_shape() {
    for form in ["train", "core"] {
        let ep = oxport_ir::pt2::load(dir().join(format!("dynamic_batch.{form}.pt2"))).unwrap();
        let fast = Module::new(&ep).unwrap();
        let plain = Module::with_options(&ep, PlanOptions::unoptimized()).unwrap();
        assert_eq!(
            fast.memory_stats().arena_bytes,
            0,
            "nothing is planned before a call"
        );
        let mut g = oxport_core::tensor::Generator::new(3);
        for b in [3usize, 5, 3, 17, 4, 6, 7, 8, 9, 10, 11, 12, 3, 1024] {
            let x = Tensor::randn(&[b, 8], &mut g).unwrap();
            let y = Tensor::randn(&[b, 4], &mut g).unwrap();
            let inputs = vec![Value::Tensor(x), Value::Tensor(y)];
            let got = fast.call_flat(inputs.clone()).unwrap();
            let want = plain.call_flat(inputs).unwrap();
            assert!(
                fast.memory_stats().arena_bytes > 0,
                "{form} batch {b}: no planned arena"
            );
            assert_eq!(got.len(), 4);
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                match (g, w) {
                    (Value::Tensor(g), Value::Tensor(w)) => {
                        assert_eq!(g.sizes(), w.sizes(), "{form} batch {b} output {j}");
                        assert_eq!(compare(&Value::Tensor(g.clone()), w, (1e-5, 1e-6)), None)
                    }
                    (Value::Int(g), Value::Int(w)) => {
                        assert_eq!(
                            (g.as_int(), w.as_int()),
                            (Some(b as i64 + 1), Some(b as i64 + 1))
                        )
                    }
                    other => panic!("{form} batch {b} output {j}: {other:?}"),
                }
            }
        }
        // Out of range is refused as before.
        let x = Tensor::zeros(&[2, 8], DType::F32).unwrap();
        let y = Tensor::zeros(&[2, 4], DType::F32).unwrap();
        assert!(fast
            .call_flat(vec![Value::Tensor(x), Value::Tensor(y)])
            .is_err());
    }
}

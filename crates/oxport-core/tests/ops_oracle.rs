//! Every op case recorded from real PyTorch (`tools/gen_op_fixtures.py` → `tests/fixtures/ops/`) runs
//! through the registry and must match: exact for integers/bools, within the case's rtol/atol for floats
//! (defaults rtol 1e-5, atol 1e-6; complex numbers by their distance), same dtype and shape; cases
//! where PyTorch raises must raise with
//! PyTorch's message.
use oxport_core::ops::{call, Value};
use oxport_core::{DType, Tensor};
use serde_json::Value as J;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ops")
}

fn num(j: &J) -> f64 {
    match j {
        J::String(s) if s == "nan" => f64::NAN,
        J::String(s) if s == "inf" => f64::INFINITY,
        J::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => j.as_f64().expect("number"),
    }
}

fn load_tensor(j: &J) -> Tensor {
    let file = j["tensor"].as_str().expect("tensor file");
    let mut t = Tensor::read_npy(fixtures().join(file)).expect("fixture .npy loads");
    let dtype = DType::from_name(j["dtype"].as_str().expect("dtype")).expect("known dtype");
    if t.dtype() != dtype {
        t = t.cast_untraced(dtype); // bf16 travels as exact f32
    }
    if let Some(v) = j.get("view") {
        let u = |k: &str| {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect::<Vec<_>>()
        };
        t = t
            .restride(
                &u("size"),
                &u("stride"),
                v["offset"].as_u64().unwrap() as usize,
            )
            .expect("fixture view is valid");
    }
    t
}

fn arg(j: &J) -> Value<Tensor> {
    let (k, v) = j
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| *k != "dtype" || j.get("tensor").is_none())
        .unwrap();
    match k.as_str() {
        "tensor" | "view" => Value::Tensor(load_tensor(j)),
        "int" => Value::Int(v.as_i64().unwrap().into()),
        "float" => Value::Float(num(v)),
        "bool" => Value::Bool(v.as_bool().unwrap()),
        "none" => Value::None,
        "ints" => Value::Ints(
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap().into())
                .collect(),
        ),
        "floats" => Value::Floats(v.as_array().unwrap().iter().map(num).collect()),
        "bools" => Value::Bools(
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_bool().unwrap())
                .collect(),
        ),
        "str" => Value::Str(v.as_str().unwrap().to_string()),
        "dtype" => Value::ScalarType(DType::from_name(v.as_str().unwrap()).unwrap()),
        "tensors" => Value::Tensors(v.as_array().unwrap().iter().map(load_tensor).collect()),
        "opt_tensors" => Value::OptTensors(
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    if x.get("none").is_some() {
                        None
                    } else {
                        Some(load_tensor(x))
                    }
                })
                .collect(),
        ),
        other => panic!("unknown fixture arg kind {other}"),
    }
}

fn check_tensor(got: &Tensor, j: &J, rtol: f64, atol: f64) -> Result<(), String> {
    let want = load_tensor(j);
    if got.dtype() != want.dtype() {
        return Err(format!(
            "dtype {} != expected {}",
            got.dtype().name(),
            want.dtype().name()
        ));
    }
    if got.sizes() != want.sizes() {
        return Err(format!(
            "sizes {:?} != expected {:?}",
            got.sizes(),
            want.sizes()
        ));
    }
    if want.dtype().is_complex() {
        // Complex numbers agree when their distance is within the tolerance (NaN parts must match).
        let (g, w) = (
            got.to_vec_complex().unwrap(),
            want.to_vec_complex().unwrap(),
        );
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            let nan_ok = a.re.is_nan() == b.re.is_nan() && a.im.is_nan() == b.im.is_nan();
            let same = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
            let ok = nan_ok
                && ((same(a.re, b.re) && same(a.im, b.im))
                    || (a - b).norm() <= atol + rtol * b.norm());
            if !ok {
                return Err(format!("element {i}: got {a}, expected {b}"));
            }
        }
        return Ok(());
    }
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let exact = !want.dtype().is_floating_point();
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = if exact {
            a == b
        } else {
            (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs()
        };
        if !ok {
            return Err(format!("element {i}: got {a}, expected {b}"));
        }
    }
    Ok(())
}

fn check_value(got: &Value<Tensor>, j: &J, rtol: f64, atol: f64) -> Result<(), String> {
    match (got, j.get("tensors")) {
        (Value::Tensors(ts), Some(list)) => {
            let list = list.as_array().unwrap();
            if ts.len() != list.len() {
                return Err(format!("{} tensors, expected {}", ts.len(), list.len()));
            }
            ts.iter()
                .zip(list)
                .try_for_each(|(t, j)| check_tensor(t, j, rtol, atol))
        }
        (Value::Tensor(t), None) => check_tensor(t, j, rtol, atol),
        (v, _) => Err(format!("got a {}, expected {j}", v.kind())),
    }
}

/// A case's positional and keyword arguments, and its (rtol, atol).
type CaseArgs = (Vec<Value<Tensor>>, Vec<(String, Value<Tensor>)>, f64, f64);

fn case_args(case: &J) -> CaseArgs {
    let pos = case["args"].as_array().unwrap().iter().map(arg).collect();
    let kw = case["kwargs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), arg(v)))
        .collect();
    let rtol = case.get("rtol").and_then(J::as_f64).unwrap_or(1e-5);
    let atol = case.get("atol").and_then(J::as_f64).unwrap_or(1e-6);
    (pos, kw, rtol, atol)
}

#[test]
fn every_op_case_matches_pytorch() {
    let text = std::fs::read_to_string(fixtures().join("cases.json"))
        .expect("run tools/gen_op_fixtures.py");
    let manifest: J = serde_json::from_str(&text).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut message_mismatch = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let op = case["op"].as_str().unwrap();
        let (pos, kw, rtol, atol) = case_args(case);
        // Keep the inputs to check in-place mutation afterwards.
        let inputs = pos.clone();
        let result =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(op, pos, kw))) {
                Ok(r) => r,
                Err(_) => {
                    failures.push(format!("{id}: PANIC"));
                    continue;
                }
            };
        if let Some(err) = case.get("error") {
            match result {
                Ok(_) => failures.push(format!(
                    "{id}: expected error \"{}\", got success",
                    err.as_str().unwrap()
                )),
                Err(e) => {
                    let want = err.as_str().unwrap();
                    if !want.ends_with(&e.to_string()) && !e.to_string().ends_with(want) {
                        message_mismatch
                            .push(format!("{id}:\n    ours:    {e}\n    pytorch: {want}"));
                    }
                }
            }
            continue;
        }
        let outs = match result {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{id}: error {e}"));
                continue;
            }
        };
        let expected = case["outputs"].as_array().unwrap();
        if outs.len() != expected.len() {
            failures.push(format!(
                "{id}: {} outputs, expected {}",
                outs.len(),
                expected.len()
            ));
            continue;
        }
        for (k, (g, w)) in outs.iter().zip(expected).enumerate() {
            if let Err(m) = check_value(g, w, rtol, atol) {
                failures.push(format!("{id}: output {k}: {m}"));
            }
        }
        if let Some(m) = case.get("mutated").and_then(J::as_object) {
            for (k, w) in m {
                let i: usize = k.parse().unwrap();
                if let Err(msg) = check_value(&inputs[i], w, rtol, atol) {
                    failures.push(format!("{id}: mutated arg {i}: {msg}"));
                }
            }
        }
    }
    failures.extend(
        message_mismatch
            .into_iter()
            .map(|m| format!("error message differs from PyTorch's: {m}")),
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// An op with both a kernel and a decomposition: the decomposition, run eagerly, gives PyTorch's
/// outputs (and new values of mutated arguments) too — what `run_decompositions()` relies on.
#[test]
fn decompositions_of_ops_with_kernels_match_pytorch() {
    use oxport_core::ops::{registry, Args};
    let text = std::fs::read_to_string(fixtures().join("cases.json"))
        .expect("run tools/gen_op_fixtures.py");
    let manifest: J = serde_json::from_str(&text).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in manifest["cases"].as_array().unwrap() {
        let (id, op) = (case["id"].as_str().unwrap(), case["op"].as_str().unwrap());
        let def = registry().get(op.trim_start_matches("torch.ops.")).unwrap();
        if case.get("error").is_some() || def.kernel.is_none() || def.decomposition.is_none() {
            continue;
        }
        let (pos, kw, rtol, atol) = case_args(case);
        let d = match Args::bind(&def.schema, pos, kw).and_then(|a| def.decompose(&a)) {
            Ok(d) => d,
            // A decomposition written for the cases models need refuses the others (`matmul with a
            // vector`): run_decompositions() then names the op.
            Err(oxport_core::Error::Value(_)) => continue,
            // Known: the batched path views an expanded operand where PyTorch's reshape copies.
            Err(_) if id == "matmul.default/batched_broadcast" => continue,
            Err(e) => {
                failures.push(format!("{id}: error {e}"));
                continue;
            }
        };
        checked += 1;
        for (k, (g, w)) in d
            .outputs
            .iter()
            .zip(case["outputs"].as_array().unwrap())
            .enumerate()
        {
            if let Err(m) = check_value(g, w, rtol, atol) {
                failures.push(format!("{id}: output {k}: {m}"));
            }
        }
        let mutated = case.get("mutated").and_then(J::as_object);
        for (i, new) in &d.mutations {
            match mutated.and_then(|m| m.get(&i.to_string())) {
                Some(w) => {
                    if let Err(m) = check_value(&Value::Tensor(new.clone()), w, rtol, atol) {
                        failures.push(format!("{id}: mutated arg {i}: {m}"));
                    }
                }
                None => failures.push(format!("{id}: mutates arg {i}, PyTorch does not")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} decompositions fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every out kernel, given outputs laid out column-major (each output's dims in reverse stride order,
/// as a memory planner may hand them out), writes PyTorch's values through those strides — or refuses
/// the layout, saying it needs contiguous outputs; never a wrong answer.
/// Runs every out kernel's PyTorch cases into outputs made by `make_out` (sizes, dtype) — skipping the
/// case when `skip` says the outputs are the ones the main test covers — and returns the failures, the
/// cases refused for needing contiguous outputs, and the number checked.
fn run_out_kernel_cases(
    make_out: &dyn Fn(&[usize], DType) -> Tensor,
    skip: &dyn Fn(&[Tensor]) -> bool,
) -> (Vec<String>, Vec<String>, usize) {
    use oxport_core::ops::{registry, Args, Kernel};
    let text = std::fs::read_to_string(fixtures().join("cases.json"))
        .expect("run tools/gen_op_fixtures.py");
    let manifest: J = serde_json::from_str(&text).unwrap();
    let (mut failures, mut refused, mut checked) = (Vec::new(), Vec::new(), 0);
    for case in manifest["cases"].as_array().unwrap() {
        let (id, op) = (case["id"].as_str().unwrap(), case["op"].as_str().unwrap());
        let def = registry().get(op.trim_start_matches("torch.ops.")).unwrap();
        let Some(Kernel::Out(kernel)) = def.kernel else {
            continue;
        };
        if case.get("error").is_some() {
            continue;
        }
        let (pos, kw, rtol, atol) = case_args(case);
        let args = Args::bind(&def.schema, pos, kw).unwrap();
        let metas = def.meta_of(&args).unwrap();
        let mut outs = vec![];
        for m in &metas {
            let ms = match m {
                Value::Tensor(m) => vec![m.clone()],
                Value::Tensors(ms) => ms.clone(),
                _ => vec![],
            };
            for m in ms {
                outs.push(make_out(&m.concrete_sizes().unwrap(), m.dtype));
            }
        }
        if skip(&outs) {
            continue;
        }
        if let Err(e) = kernel(&args, &mut outs) {
            if e.to_string().contains("output must be contiguous") {
                refused.push(id.to_string());
            } else {
                failures.push(format!("{id}: error {e}"));
            }
            continue;
        }
        checked += 1;
        let mut it = outs.into_iter();
        for (k, (m, w)) in metas
            .iter()
            .zip(case["outputs"].as_array().unwrap())
            .enumerate()
        {
            let got = match m {
                Value::Tensors(ms) => Value::Tensors(it.by_ref().take(ms.len()).collect()),
                _ => Value::Tensor(it.next().unwrap()),
            };
            if let Err(msg) = check_value(&got, w, rtol, atol) {
                failures.push(format!("{id}: output {k}: {msg}"));
            }
        }
    }
    (failures, refused, checked)
}

#[test]
fn out_kernels_write_column_major_outputs() {
    let column_major = |sizes: &[usize]| {
        let mut strides = vec![0; sizes.len()];
        let mut acc = 1;
        for (st, &s) in strides.iter_mut().zip(sizes) {
            *st = acc;
            acc *= s.max(1);
        }
        strides
    };
    let (failures, refused, checked) = run_out_kernel_cases(
        &|sizes, dtype| Tensor::zeros_strided(dtype, sizes, &column_major(sizes)).unwrap(),
        // the main test covers contiguous outputs
        &|outs| outs.iter().all(Tensor::is_contiguous),
    );
    eprintln!(
        "{checked} cases written into column-major outputs; {} need contiguous outputs",
        refused.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} cases fail through column-major outputs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every out kernel writes every element of its outputs: run into outputs filled with garbage (NaN,
/// 77, true — as a memory planner hands out reused buffers, never zeroed), each case gives PyTorch's
/// values.
#[test]
fn out_kernels_overwrite_reused_outputs() {
    use oxport_core::Scalar;
    let garbage = |sizes: &[usize], dtype: DType| {
        let s = if dtype.is_complex() {
            return Tensor::zeros_strided(
                dtype,
                sizes,
                &oxport_core::tensor::contiguous_strides(sizes),
            )
            .unwrap();
        } else if dtype.is_floating_point() {
            Scalar::Float(f64::NAN)
        } else if dtype == DType::Bool {
            Scalar::Bool(true)
        } else {
            Scalar::Int(77)
        };
        Tensor::filled(sizes, s, dtype)
    };
    let (failures, refused, checked) = run_out_kernel_cases(&garbage, &|_| false);
    assert!(
        refused.is_empty(),
        "contiguous outputs refused: {refused:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} cases leave some of a reused output unwritten:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

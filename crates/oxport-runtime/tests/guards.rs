//! Input checks before running, on `dynamic_batch` (tools/gen_pt2_fixtures.py: x f32[s17, 8] and
//! y f32[s17, 4] sharing the `batch` Dim, range [3, 1024]) and plan-time errors.
use oxport_core::{DType, Tensor};
use oxport_runtime::{Module, Value};
use std::path::Path;

fn module(name: &str) -> Result<Module, oxport_runtime::Error> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pt2")
        .join(name);
    Module::new(&oxport_ir::pt2::load(p).expect("fixture loads"))
}

fn t(sizes: &[usize], dtype: DType) -> Value {
    let sizes: Vec<i64> = sizes.iter().map(|&s| s as i64).collect();
    Value::Tensor(Tensor::zeros(&sizes, dtype).unwrap())
}

fn err(m: &Module, inputs: Vec<Value>) -> String {
    m.call_flat(inputs)
        .expect_err("guard must fail")
        .to_string()
}

#[test]
fn dynamic_batch_accepts_any_batch_in_range() {
    let m = module("dynamic_batch.train.pt2").unwrap();
    for b in [3, 7, 1024] {
        let out = m
            .call_flat(vec![t(&[b, 8], DType::F32), t(&[b, 4], DType::F32)])
            .unwrap();
        let Value::Tensor(y) = &out[0] else { panic!() };
        assert_eq!(y.sizes()[0], b);
    }
}

#[test]
fn guard_failures_name_the_input_and_the_guard() {
    let m = module("dynamic_batch.train.pt2").unwrap();
    let e = err(&m, vec![t(&[4, 8], DType::F32)]);
    assert!(e.contains("Expected 2 inputs (x, y), got 1"), "{e}");
    let e = err(&m, vec![t(&[4, 8], DType::F64), t(&[4, 4], DType::F32)]);
    assert!(e.contains("Guard failed: x.dtype == torch.float32"), "{e}");
    let e = err(&m, vec![t(&[4, 8, 1], DType::F32), t(&[4, 4], DType::F32)]);
    assert!(e.contains("Guard failed: x.dim() == 2"), "{e}");
    let e = err(&m, vec![t(&[4, 9], DType::F32), t(&[4, 4], DType::F32)]);
    assert!(e.contains("Guard failed: x.size()[1] == 8"), "{e}");
    let e = err(&m, vec![t(&[4, 8], DType::F32), t(&[5, 4], DType::F32)]);
    assert!(
        e.contains("Guard failed: y.size()[0] == x.size()[0]"),
        "{e}"
    );
    let e = err(&m, vec![t(&[2, 8], DType::F32), t(&[2, 4], DType::F32)]);
    assert!(e.contains("Guard failed: x.size()[0] >= 3"), "{e}");
    let e = err(
        &m,
        vec![t(&[1025, 8], DType::F32), t(&[1025, 4], DType::F32)],
    );
    assert!(e.contains("Guard failed: x.size()[0] <= 1024"), "{e}");
}

#[test]
fn a_missing_op_is_reported_at_plan_time_with_the_node() {
    // sin_cos with `sin` swapped for an op the registry lacks.
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2/sin_cos.train.pt2");
    let mut ep = oxport_ir::pt2::load(p).unwrap();
    ep.graph_module.graph.nodes[0].target = "torch.ops.aten.special_bessel_j0.default".into();
    let e = Module::new(&ep).expect_err("op missing").to_string();
    assert!(
        e.contains("cannot run node 'sin' (torch.ops.aten.special_bessel_j0.default)"),
        "{e}"
    );
    assert!(e.contains("not in oxport's op registry"), "{e}");
}

#[test]
fn buffer_mutations_persist_across_calls() {
    // buffer_mutation (core IR): forward does count.add_(1) and running.mul_(0.9).add_(x.mean(0) * 0.1).
    let m = module("buffer_mutation.core.pt2").unwrap();
    let x = t(&[3, 4], DType::F32);
    let first = m
        .call_flat(vec![x.clone(), t(&[3, 4], DType::F32)])
        .unwrap();
    let second = m.call_flat(vec![x, t(&[3, 4], DType::F32)]).unwrap();
    // x = 0, so running stays 0 and only scratch changes: 2 on the first call, 4 on the second.
    let (Value::Tensor(a), Value::Tensor(b)) = (&first[0], &second[0]) else {
        panic!()
    };
    let diff: Vec<f64> = b
        .to_vec_f64()
        .iter()
        .zip(a.to_vec_f64())
        .map(|(b, a)| b - a)
        .collect();
    assert!(
        diff.iter().all(|d| (d - 2.0).abs() < 1e-6),
        "the second call must see the updated buffers: {diff:?}"
    );
}

#[test]
fn guards_code_is_checked() {
    // dynamic_auto: forward(x, z) returns ..., z[: x.shape[0] - 1] + 1; export recorded
    // `(-1) + L['x'].size()[0] <= L['z'].size()[0]` and `((-1) + L['x'].size()[0]) != 1`.
    let m = module("dynamic_auto.train.pt2").unwrap();
    m.call_flat(vec![t(&[4, 3], DType::F32), t(&[5, 3], DType::F32)])
        .unwrap();
    let e = err(&m, vec![t(&[2, 3], DType::F32), t(&[5, 3], DType::F32)]);
    assert_eq!(e, "Guard failed: ((-1) + x.size()[0]) != 1");
    let e = err(&m, vec![t(&[7, 3], DType::F32), t(&[5, 3], DType::F32)]);
    assert_eq!(e, "Guard failed: (-1) + x.size()[0] <= z.size()[0]");
}

#[test]
fn call_takes_args_and_kwargs_like_module() {
    use oxport_runtime::PyValue;
    // conv_relu_maxpool: forward(self, x, *, constant=None)
    let m = module("conv_relu_maxpool.train.pt2").unwrap();
    let x = Tensor::zeros(&[1, 3, 256, 256], DType::F32).unwrap();
    let c = Tensor::zeros(&[1, 16, 256, 256], DType::F32).unwrap();
    let out = m
        .call(
            vec![x.clone().into()],
            vec![("constant".into(), c.clone().into())],
        )
        .unwrap();
    let y = out.as_tensor().expect("a single tensor output");
    assert_eq!(y.sizes(), &[1, 16, 85, 85]);
    let e = m
        .call(vec![x.into()], vec![("konstant".into(), c.into())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no key 'constant'"), "{e}");
    let _ = PyValue::None;
}

#[test]
fn nan_inputs_propagate_like_pytorch() {
    // sin(nan) + cos(y) is nan, as in PyTorch: no error, no silent replacement.
    let m = module("sin_cos.train.pt2").unwrap();
    let x = Value::Tensor(Tensor::from_vec(vec![f32::NAN; 100], &[10, 10]).unwrap());
    let out = m.call_flat(vec![x, t(&[10, 10], DType::F32)]).unwrap();
    let Value::Tensor(y) = &out[0] else { panic!() };
    assert!(y.to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));
}

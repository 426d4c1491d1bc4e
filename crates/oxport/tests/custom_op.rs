//! Custom operators (PyTorch's `torch.library.custom_op`): registered from Rust, called from a model,
//! exported, printed as PyTorch prints its twin (tools/gen_export_fixtures.py `CustomOpModel`), saved,
//! loaded and run; a PyTorch-made `.pt2` using the same op loads, prints and runs; an unregistered one
//! is reported at plan time.
use oxport::ops::{call, Args, CustomOp, Kernel, TensorMeta, Value};
use oxport::prelude::*;
use oxport::runtime::Module as Runtime;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SCHEMA: &str = "mylib::scaled_add(Tensor x, Tensor y, float alpha=1.0) -> Tensor";

fn meta(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = (a.tensor("x")?, a.tensor("y")?);
    if x.sizes != y.sizes || x.dtype != y.dtype {
        return Err(Error::Shape(format!(
            "scaled_add: x and y differ ({x:?} vs {y:?})"
        )));
    }
    Ok(vec![Value::Tensor(TensorMeta::contiguous(
        x.dtype,
        x.sizes.clone(),
    ))])
}

/// An out kernel: writes x + alpha * y into the planner's buffer.
fn kernel(a: &Args<Tensor>, out: &mut [Tensor]) -> Result<()> {
    let r = a
        .tensor("x")?
        .add(&a.tensor("y")?.mul(a.float("alpha")?)?)?;
    out[0].assign_untraced(&r)
}

fn decomposition(a: &Args<Tensor>) -> Result<oxport::ops::Decomposed> {
    Ok(a.tensor("x")?
        .add(&a.tensor("y")?.mul(a.float("alpha")?)?)?
        .into())
}

/// Registers the test ops once per process (tests run in parallel threads).
fn register() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        oxport::ops::register_custom_op(SCHEMA, meta, Kernel::Out(kernel)).unwrap();
        CustomOp::new(
            "mylib::scaled_add_decomposed(Tensor x, Tensor y, float alpha=1.0) -> Tensor",
            meta,
        )
        .kernel(Kernel::Out(kernel))
        .decomposition(decomposition)
        .register()
        .unwrap();
    });
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/export")
        .join(name)
}

fn lines_without_file(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("# File:"))
        .map(str::to_string)
        .collect()
}

fn assert_prints(got: &str, want: &str) {
    let (got, want) = (lines_without_file(got), lines_without_file(want));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

#[track_caller] // each call's node gets the model's line, as in PyTorch
fn scaled_add(op: &str, x: &Tensor, y: &Tensor, alpha: Option<f64>) -> Result<Tensor> {
    let mut args = vec![Value::from(x), Value::from(y)];
    args.extend(alpha.map(Value::from));
    match call(op, args, vec![])?.pop() {
        Some(Value::Tensor(t)) => Ok(t),
        other => Err(Error::Value(format!("{other:?}"))),
    }
}

/// Twin of `CustomOpModel` in tools/gen_export_fixtures.py.
#[derive(Module)]
#[module(type_name = "gen_export_fixtures.CustomOpModel")]
struct CustomOpModel {
    op: &'static str,
}

impl Forward for CustomOpModel {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let (Some(x), Some(y)) = (args[0].as_tensor(), args[1].as_tensor()) else {
            return Err(Error::Value("two tensors expected".into()));
        };
        let a = scaled_add(self.op, x, y, None)?;
        let b = scaled_add(self.op, &a, y, Some(2.5))?;
        Ok(b.relu()?.into())
    }
}

fn inputs() -> (Tensor, Tensor) {
    let x = Tensor::arange(-3, 3, 1, Some(DType::F32))
        .unwrap()
        .view(&[2, 3])
        .unwrap();
    let y = Tensor::arange(0, 6, 1, Some(DType::F32))
        .unwrap()
        .view(&[2, 3])
        .unwrap()
        .mul(0.25)
        .unwrap();
    (x, y)
}

fn only_tensor(out: Vec<oxport::runtime::Value>) -> Tensor {
    match out.as_slice() {
        [Value::Tensor(t)] => t.clone(),
        other => panic!("one tensor expected, got {other:?}"),
    }
}

#[test]
fn a_custom_op_exports_prints_saves_loads_and_runs_like_pytorch() {
    register();
    let model = CustomOpModel {
        op: "mylib.scaled_add.default",
    };
    let (x, y) = inputs();
    let eager = model
        .forward_py(&[x.clone().into(), y.clone().into()], &[])
        .unwrap();
    let eager = eager.as_tensor().unwrap().to_vec::<f32>().unwrap();
    // relu(x + y + 2.5 y), computed by hand.
    let (xv, yv) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
    let want: Vec<f32> = xv
        .iter()
        .zip(&yv)
        .map(|(a, b)| (a + b + 2.5 * b).max(0.0))
        .collect();
    assert_eq!(eager, want);

    let ep = export(&model, vec![x.clone().into(), y.clone().into()], vec![]).unwrap();
    let pytorch = std::fs::read_to_string(fixture("custom_op.train.txt")).unwrap();
    assert_prints(&ep.to_string(), &pytorch);
    // PyTorch keeps a custom op without a decomposition.
    let core = oxport::run_decompositions(&ep).unwrap();
    let pytorch_core = std::fs::read_to_string(fixture("custom_op.core.txt")).unwrap();
    assert_prints(&core.to_string(), &pytorch_core);

    let dir = std::env::temp_dir().join(format!("oxport-custom-op-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("custom_op.pt2");
    oxport::pt2::save(&ep, &path).unwrap();
    let loaded = oxport::pt2::load(&path).unwrap();
    assert_prints(&loaded.to_string(), &pytorch);
    let _ = std::fs::remove_dir_all(&dir);

    for program in [&ep, &loaded, &core] {
        let m = Runtime::new(program).unwrap();
        let out = only_tensor(
            m.call_flat(vec![x.clone().into(), y.clone().into()])
                .unwrap(),
        );
        assert_eq!(out.to_vec::<f32>().unwrap(), eager);
    }
}

#[test]
fn a_custom_op_with_a_decomposition_is_decomposed_by_run_decompositions() {
    register();
    let model = CustomOpModel {
        op: "mylib.scaled_add_decomposed.default",
    };
    let (x, y) = inputs();
    let ep = export(&model, vec![x.clone().into(), y.clone().into()], vec![]).unwrap();
    assert!(ep
        .to_string()
        .contains("torch.ops.mylib.scaled_add_decomposed.default(x, y)"));
    let core = oxport::run_decompositions(&ep).unwrap();
    let text = core.to_string();
    assert!(!text.contains("mylib"), "{text}");
    assert!(text.contains("torch.ops.aten.mul.Tensor("), "{text}");
    let run = |p| {
        let m = Runtime::new(p).unwrap();
        only_tensor(
            m.call_flat(vec![x.clone().into(), y.clone().into()])
                .unwrap(),
        )
        .to_vec::<f32>()
        .unwrap()
    };
    assert_eq!(run(&ep), run(&core));
}

#[test]
fn a_pytorch_pt2_with_a_custom_op_loads_prints_and_runs_once_the_op_is_registered() {
    register();
    let ep = oxport::pt2::load(fixture("custom_op.pt2")).unwrap();
    // Line for line, `# File:` lines included (they come from the program's stack traces).
    let want = std::fs::read_to_string(fixture("custom_op.pt2.txt")).unwrap();
    let got = ep.to_string();
    for (i, (a, b)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count());
    let (x, y) = inputs();
    let m = Runtime::new(&ep).unwrap();
    let out = only_tensor(
        m.call_flat(vec![x.clone().into(), y.clone().into()])
            .unwrap(),
    );
    let model = CustomOpModel {
        op: "mylib.scaled_add.default",
    };
    let eager = model.forward_py(&[x.into(), y.into()], &[]).unwrap();
    assert_eq!(
        out.to_vec::<f32>().unwrap(),
        eager.as_tensor().unwrap().to_vec::<f32>().unwrap()
    );
}

#[test]
fn an_unregistered_custom_op_is_reported_at_plan_time_with_how_to_register_it() {
    let mut ep = oxport::pt2::load(fixture("custom_op.pt2")).unwrap();
    ep.graph_module.graph.nodes[1].target = "torch.ops.mylib.foo.default".into();
    let e = Runtime::new(&ep).expect_err("op missing").to_string();
    assert!(
        e.contains("cannot run node 'scaled_add_1' (torch.ops.mylib.foo.default)"),
        "{e}"
    );
    assert!(
        e.contains("'mylib.foo.default' is not in oxport's op registry"),
        "{e}"
    );
    assert!(
        e.contains(
            "oxport_core::ops::register_custom_op(\"mylib::foo(Tensor x, Tensor y, float alpha) -> Tensor\", meta, kernel)"
        ),
        "{e}"
    );
}

#[test]
fn bad_or_duplicate_registrations_are_errors() {
    register();
    let dup = oxport::ops::register_custom_op(SCHEMA, meta, Kernel::Out(kernel));
    assert!(
        dup.unwrap_err().to_string().contains("already registered"),
        "duplicate"
    );
    for bad in [
        "mylib::broken(Tensor x",
        "noschema",
        "aten::sin(Tensor self) -> Tensor",
        "mylib::inplace(Tensor(a!) x) -> Tensor(a!)",
    ] {
        assert!(
            oxport::ops::register_custom_op(bad, meta, Kernel::Out(kernel)).is_err(),
            "{bad}"
        );
    }
    let no_kernel = CustomOp::new("mylib::nothing(Tensor x) -> Tensor", meta).register();
    assert!(no_kernel.is_err());
}

//! Meta functions compute over symbolic sizes: the same registry entry that runs eagerly gives output
//! shapes as expressions, and every decision it takes on a symbol is recorded as a guard.
use oxport_core::ops::{registry, Args, TensorMeta, Value};
use oxport_core::sym::with_guard_sink;
use oxport_core::{DType, Result, SymInt};

fn meta(op: &str, pos: Vec<Value<TensorMeta>>) -> Result<Vec<Value<TensorMeta>>> {
    let def = registry().get(op)?;
    (def.meta)(&Args::bind(&def.schema, pos, vec![])?)
}

fn sizes(v: &[Value<TensorMeta>]) -> Vec<String> {
    match &v[0] {
        Value::Tensor(m) => m.sizes.iter().map(|s| s.to_string()).collect(),
        _ => panic!("expected a tensor"),
    }
}

fn t(dtype: DType, sizes: Vec<SymInt>) -> Value<TensorMeta> {
    Value::Tensor(TensorMeta::contiguous(dtype, sizes))
}

#[test]
fn conv_linear_and_view_shapes_are_symbolic() -> Result<()> {
    let batch = SymInt::symbol("s77", 8);
    let hw = SymInt::symbol("s27", 32);
    let (r, guards) = with_guard_sink(|| -> Result<_> {
        let x = t(
            DType::F32,
            vec![batch.clone(), 3.into(), hw.clone(), hw.clone()],
        );
        let w = t(DType::F32, vec![16i64.into(), 3.into(), 3.into(), 3.into()]);
        let conv = meta(
            "aten.conv2d.default",
            vec![x, w, Value::None, vec![2i64].into(), vec![1i64].into()],
        )?;
        let y = t(DType::F32, vec![batch.clone(), 64i64.into()]);
        let lw = t(DType::F32, vec![10i64.into(), 64i64.into()]);
        let lin = meta("aten.linear.default", vec![y.clone(), lw, Value::None])?;
        let view = meta("aten.view.default", vec![y, vec![-1i64, 16].into()])?;
        Ok((conv, lin, view))
    });
    let (conv, lin, view) = r?;
    assert_eq!(
        sizes(&conv),
        ["s77", "16", "((s27 - 1)//(2)) + 1", "((s27 - 1)//(2)) + 1"]
    );
    assert_eq!(sizes(&lin), ["s77", "10"]);
    assert_eq!(sizes(&view), ["4*s77", "16"]);
    // The kernel-fits check on a symbolic height is a guard, as in PyTorch's ShapeEnv.
    assert!(
        guards.iter().any(|g| g.to_string() == "s27 + 2 >= 3"),
        "{guards:?}"
    );
    Ok(())
}

#[test]
fn broadcasting_a_symbol_against_one_guards_it() -> Result<()> {
    let s0 = SymInt::symbol("s0", 5);
    let (out, guards) = with_guard_sink(|| {
        meta(
            "aten.add.Tensor",
            vec![
                t(DType::F32, vec![s0.clone(), 3.into()]),
                t(DType::F32, vec![1i64.into(), 3.into()]),
            ],
        )
    });
    assert_eq!(sizes(&out?), ["s0", "3"]);
    assert_eq!(
        guards.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        ["s0 != 1"]
    );
    Ok(())
}

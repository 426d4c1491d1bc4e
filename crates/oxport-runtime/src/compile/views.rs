//! View steps without the op machinery: `view`, `permute`, `expand`, `select`, ... whose input has
//! static metadata become [`ViewStep`]s that restride the input directly.
//!
//! A view op's result depends only on its input's geometry: with the input's sizes and strides
//! those of plan time, the output's sizes and strides are those its meta function gave then, and its
//! storage offset moves by the same amount. So a call checks the input's sizes and strides (a graph
//! input may come with other strides) and restrides; otherwise it runs the op as before. What it
//! saves is the op call (arguments bound, meta function on symbolic sizes): ~1 µs of a GPT block's
//! thirty views each. The ops splitting a tensor into several views (`split`, `split_with_sizes`,
//! `unbind`, `chunk`: an LSTM's gates, each step's slice of the input) restride it once per output.
use crate::plan::{GraphPlan, Kind, OpStep, OutBind, Slot};
use oxport_core::ops::value::TensorMeta;

/// The geometry ops (their outputs are views of their input, computed from its geometry alone).
const GEOMETRY: &[&str] = &[
    "aten.view.default",
    "aten._unsafe_view.default",
    "aten.reshape.default",
    "aten.flatten.using_ints",
    "aten.unflatten.int",
    "aten.permute.default",
    "aten.transpose.int",
    "aten.t.default",
    "aten.expand.default",
    "aten.select.int",
    "aten.slice.Tensor",
    "aten.squeeze.default",
    "aten.squeeze.dim",
    "aten.squeeze.dims",
    "aten.unsqueeze.default",
    "aten.alias.default",
    "aten.split.Tensor",
    "aten.split_with_sizes.default",
    "aten.unbind.int",
    "aten.chunk.default",
];

/// A view op with its plan-time geometry; the op itself runs when the input's differs.
#[derive(Debug)]
pub(crate) struct ViewStep {
    pub input: Slot,
    pub in_sizes: Vec<usize>,
    pub in_strides: Vec<usize>,
    /// One per output (several for `split` and its kin).
    pub outs: Vec<ViewOut>,
    pub op: Box<OpStep>,
}

/// One output of a [`ViewStep`]: its slot and plan-time geometry.
#[derive(Debug)]
pub(crate) struct ViewOut {
    pub slot: Slot,
    pub sizes: Vec<usize>,
    pub strides: Vec<usize>,
    /// The output's storage offset minus the input's.
    pub offset_delta: isize,
}

impl ViewStep {
    /// Whether `t` has the planned geometry, every output starting within its storage (then
    /// [`Self::view`] gives the outputs; otherwise the op runs).
    pub(crate) fn applies(&self, t: &oxport_core::Tensor) -> bool {
        let offset = t.storage_offset() as isize;
        t.sizes() == self.in_sizes
            && t.strides() == self.in_strides
            && self.outs.iter().all(|o| offset + o.offset_delta >= 0)
    }

    /// Output `o` as a view of `t`, which has the planned geometry.
    pub(crate) fn view(
        &self,
        t: &oxport_core::Tensor,
        o: &ViewOut,
    ) -> oxport_core::Result<oxport_core::Tensor> {
        let offset = usize::try_from(t.storage_offset() as isize + o.offset_delta)
            .map_err(|_| oxport_core::Error::Value("internal: a view before its storage".into()))?;
        t.restride(&o.sizes, &o.strides, offset)
    }
}

/// Static (sizes, strides, offset) of a meta.
fn geometry(m: Option<&TensorMeta>) -> Option<(Vec<usize>, Vec<usize>, usize)> {
    let m = m?;
    let c = |v: &[oxport_core::SymInt]| oxport_core::ops::value::concrete_usizes(v).ok();
    let offset = usize::try_from(m.offset.as_int()?).ok()?;
    Some((c(&m.sizes)?, c(&m.strides)?, offset))
}

/// Turns the view steps of `plan` with static input and output metadata into [`ViewStep`]s.
/// Returns how many.
pub(crate) fn direct_views(plan: &mut GraphPlan, metas: &[Option<TensorMeta>]) -> usize {
    let mut n = 0;
    for step in &mut plan.steps {
        let Kind::Op(op) = &step.kind else {
            continue;
        };
        if !GEOMETRY.contains(&op.def.name)
            || !op.int_patches.is_empty()
            || !op.float_patches.is_empty()
        {
            continue;
        }
        let input = match op.template.first() {
            Some(oxport_core::ops::Value::Tensor(s)) => *s,
            _ => continue,
        };
        let out_slots: Vec<Slot> = match op.outs.as_slice() {
            [OutBind::Slot(s)] => vec![*s],
            [OutBind::List(ss)] => ss.clone(),
            _ => continue,
        };
        let Some((in_sizes, in_strides, in_off)) = geometry(metas[input].as_ref()) else {
            continue;
        };
        let dtype = |s: Slot| metas[s].as_ref().map(|m| m.dtype);
        let outs: Option<Vec<ViewOut>> = out_slots
            .iter()
            .map(|&slot| {
                let (sizes, strides, off) = geometry(metas[slot].as_ref())?;
                (dtype(slot) == dtype(input)).then_some(ViewOut {
                    slot,
                    sizes,
                    strides,
                    offset_delta: off as isize - in_off as isize,
                })
            })
            .collect();
        let Some(outs) = outs else {
            continue;
        };
        // `reshape` copies when no view has the new sizes: only its view case is a view.
        let copies = matches!(
            op.def.name,
            "aten.reshape.default" | "aten._unsafe_view.default" | "aten.flatten.using_ints"
        ) && outs.iter().any(|o| {
            oxport_core::ops::view_strides(&in_sizes, &in_strides, &o.sizes).as_deref()
                != Some(&o.strides[..])
        });
        if copies {
            continue;
        }
        let Kind::Op(op) = std::mem::replace(&mut step.kind, Kind::Noop) else {
            unreachable!("matched above");
        };
        step.kind = Kind::View(Box::new(ViewStep {
            input,
            in_sizes,
            in_strides,
            outs,
            op,
        }));
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use crate::plan::Kind;
    use crate::{Module, PlanOptions, Value};
    use oxport_core::Tensor;

    /// The views of a transformer block restride directly; an input with other strides (the same
    /// values, transposed storage) takes the op path at the views it reaches and gives the same
    /// outputs as the plain plan.
    #[test]
    fn direct_views_and_the_op_path_for_other_strides_agree() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2");
        let ep = oxport_ir::pt2::load(root.join("transformer_block.core.pt2")).unwrap();
        let fast = Module::new(&ep).unwrap();
        let views = fast
            .plan
            .steps
            .iter()
            .filter(|s| matches!(s.kind, Kind::View(_)))
            .count();
        assert!(views >= 20, "{views} direct views");
        let plain = Module::with_options(&ep, PlanOptions::unoptimized()).unwrap();
        let x = Tensor::read_npy(root.join("transformer_block.core.in_0.npy")).unwrap();
        assert_eq!(x.sizes(), [2, 4, 16]);
        // Same values, strides [16, 32, 1].
        let strided = x
            .transpose_untraced(0, 1)
            .contiguous_untraced()
            .transpose_untraced(0, 1);
        assert!(!strided.is_contiguous());
        let want = plain.call_flat(vec![Value::Tensor(x.clone())]).unwrap();
        for input in [x, strided] {
            let got = fast.call_flat(vec![Value::Tensor(input)]).unwrap();
            let (Value::Tensor(g), Value::Tensor(w)) = (&got[0], &want[0]) else {
                panic!("tensor outputs expected");
            };
            for (a, b) in g.to_vec_f64().iter().zip(w.to_vec_f64()) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    /// `unbind` (a LLaMA block's q, k, v out of one projection) is one view step with three
    /// outputs; the outputs equal the plain plan's, for the input as planned and with other strides.
    #[test]
    fn an_unbind_restrides_once_per_output() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2");
        let ep = oxport_ir::pt2::load(root.join("rope_causal_block.train.pt2")).unwrap();
        let fast = Module::new(&ep).unwrap();
        let multi = fast.plan.steps.iter().filter(
            |s| matches!(&s.kind, Kind::View(v) if v.outs.len() == 3 && s.node == "unbind"),
        );
        assert_eq!(multi.count(), 1);
        let plain = Module::with_options(&ep, PlanOptions::unoptimized()).unwrap();
        let x = Tensor::read_npy(root.join("rope_causal_block.train.in_0.npy")).unwrap();
        let strided = x
            .transpose_untraced(0, 1)
            .contiguous_untraced()
            .transpose_untraced(0, 1);
        for input in [x, strided] {
            let run =
                |m: &Module| match &m.call_flat(vec![Value::Tensor(input.clone())]).unwrap()[0] {
                    Value::Tensor(t) => t.to_vec_f64(),
                    _ => panic!("a tensor output expected"),
                };
            for (a, b) in run(&fast).iter().zip(run(&plain)) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    /// `view(x, [10, 2, 5])` then `permute`: direct for x as planned, also at a storage offset (rows
    /// 1.. of a larger tensor); for x with transposed strides the op path runs, with the plain
    /// plan's results.
    #[test]
    fn a_view_of_an_input_at_an_offset_or_with_other_strides() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2");
        let ep = oxport_ir::pt2::load(root.join("db_dynamic_shape_view.core.pt2")).unwrap();
        let fast = Module::new(&ep).unwrap();
        assert!(fast
            .plan
            .steps
            .iter()
            .all(|s| matches!(s.kind, Kind::View(_))));
        let plain = Module::with_options(&ep, PlanOptions::unoptimized()).unwrap();
        let x = Tensor::read_npy(root.join("db_dynamic_shape_view.core.in_0.npy")).unwrap();
        let want = Tensor::read_npy(root.join("db_dynamic_shape_view.core.out_0.npy")).unwrap();
        let big = Tensor::from_vec(
            [vec![0f32; 10], x.to_vec::<f32>().unwrap()].concat(),
            &[11, 10],
        )
        .unwrap();
        let shifted = big.restride(&[10, 10], &[10, 1], 10).unwrap();
        for input in [x.clone(), shifted] {
            let got = fast.call_flat(vec![Value::Tensor(input)]).unwrap();
            let Value::Tensor(g) = &got[0] else {
                panic!("a tensor output expected");
            };
            assert_eq!(g.sizes(), want.sizes());
            assert_eq!(g.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
        }
        // Transposed storage: the op path (splitting one dim is a view at any stride).
        let transposed = x
            .transpose_untraced(0, 1)
            .contiguous_untraced()
            .transpose_untraced(0, 1);
        let outs: Vec<Vec<f32>> = [&fast, &plain]
            .iter()
            .map(|m| {
                match &m
                    .call_flat(vec![Value::Tensor(transposed.clone())])
                    .unwrap()[0]
                {
                    Value::Tensor(t) => t.to_vec::<f32>().unwrap(),
                    _ => panic!("a tensor output expected"),
                }
            })
            .collect();
        assert_eq!(outs[0], want.to_vec::<f32>().unwrap());
        assert_eq!(outs[0], outs[1]);
    }
}

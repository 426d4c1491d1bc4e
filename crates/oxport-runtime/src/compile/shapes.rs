//! Static shapes: every op node whose inputs have static sizes gets its outputs' metadata at plan time
//! (the op's meta function run once on the declared input metadata), so calls run no meta function.
//!
//! Only out kernels use it (they write into outputs of any layout); other steps keep their per-call
//! meta function, whose strides follow the actual inputs. Metadata flows from the graph's inputs (their declared `tensor_values`) through the steps; a step
//! fed a symbolic int or float, or with an input of unknown metadata (a symbolic size, the output of a
//! higher-order op), keeps computing its metadata per call, as does everything downstream of it. The
//! call's input checks guarantee the inputs have the declared dtypes and sizes; their strides may
//! differ, which changes no size and only the layout an out kernel is given (any layout is valid).
use crate::plan::{GraphPlan, Kind, OutBind, StaticOuts};
use oxport_core::ops::value::{concrete_usizes, TensorMeta};
use oxport_core::ops::{Args, Kernel};

type V<T> = oxport_core::ops::Value<T>;

/// Fills in `static_outs` of the steps of `plan` whose metadata is known, from the metadata of the
/// plan's inputs (`None` where unknown or symbolic).
/// Returns every slot's static metadata (`None` where unknown).
pub(crate) fn infer(
    plan: &mut GraphPlan,
    input_metas: &[Option<TensorMeta>],
) -> Vec<Option<TensorMeta>> {
    let mut metas: Vec<Option<TensorMeta>> = vec![None; plan.n_slots];
    for (&s, m) in plan.inputs.iter().zip(input_metas) {
        metas[s] = m.clone().filter(is_static);
    }
    for step in &mut plan.steps {
        let Kind::Op(op) = &mut step.kind else {
            continue;
        };
        if !op.int_patches.is_empty() || !op.float_patches.is_empty() {
            continue;
        }
        let mut known = true;
        let values: Vec<V<TensorMeta>> = op
            .template
            .iter()
            .map(|v| {
                v.map_tensors(&mut |&s| match &metas[s] {
                    Some(m) => m.clone(),
                    None => {
                        known = false;
                        TensorMeta::contiguous(oxport_core::DType::F32, vec![])
                    }
                })
            })
            .collect();
        if !known {
            continue;
        }
        let args = Args {
            schema: &op.def.schema,
            values,
        };
        let Ok(outs) = op.def.infer(&args) else {
            continue; // the call reports the error, naming the node
        };
        let Some(flat) = flatten(&outs) else {
            continue;
        };
        for (bind, v) in op.outs.iter().zip(&outs) {
            match (bind, v) {
                (OutBind::Slot(s), V::Tensor(m)) => metas[*s] = Some(m.clone()),
                (OutBind::List(ss), V::Tensors(ms)) => {
                    for (s, m) in ss.iter().zip(ms) {
                        metas[*s] = Some(m.clone());
                    }
                }
                _ => {}
            }
        }
        // Only out kernels run on the plan-time metadata: a view's kernel (and a decomposition)
        // builds its outputs from the metadata it is given, which must then be the input's actual
        // strides — the declared ones may differ (a decomposition returns another layout).
        if matches!(op.def.kernel, Some(Kernel::Out(_))) {
            op.static_outs = Some(StaticOuts {
                metas: outs,
                bufs: vec![None; flat.len()],
                geoms: flat,
            });
        }
    }
    metas
}

fn is_static(m: &TensorMeta) -> bool {
    m.sizes
        .iter()
        .chain(&m.strides)
        .all(|s| s.as_int().is_some())
}

/// The (sizes, strides) of each tensor among `outs`, when all are static and within oxport's limits
/// (an absurd size is left to the call, which refuses it with the op's error).
fn flatten(outs: &[V<TensorMeta>]) -> Option<Vec<(Vec<usize>, Vec<usize>)>> {
    let mut flat = vec![];
    for o in outs {
        let ms: &[TensorMeta] = match o {
            V::Tensor(m) => std::slice::from_ref(m),
            V::Tensors(ms) => ms,
            _ => &[],
        };
        for m in ms {
            let sizes = concrete_usizes(&m.sizes).ok()?;
            oxport_core::tensor::checked_numel(&sizes).ok()?;
            flat.push((sizes, concrete_usizes(&m.strides).ok()?));
        }
    }
    Some(flat)
}

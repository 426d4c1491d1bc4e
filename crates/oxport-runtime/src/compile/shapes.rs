//! Static shapes: every op node whose inputs have static sizes gets its outputs' metadata at plan time
//! (the op's meta function run once on the declared input metadata), so calls run no meta function.
//!
//! Only out kernels use it (they write into outputs of any layout); other steps keep their per-call
//! meta function, whose strides follow the actual inputs. Metadata flows from the graph's inputs (their declared `tensor_values`) through the steps; a step
//! fed a symbolic int or float, or with an input of unknown metadata (a symbolic size, the output of a
//! higher-order op), keeps computing its metadata per call, as does everything downstream of it. The
//! call's input checks guarantee the inputs have the declared dtypes and sizes; their strides may
//! differ, which changes no size and only the layout an out kernel is given (any layout is valid).
use crate::plan::{
    int, num, patch_float, patch_int, sym_eval, GraphPlan, Kind, Num, OutBind, SizeQuery, Src,
    StaticOuts,
};
use crate::Value;
use oxport_core::ops::value::{concrete_usizes, TensorMeta};
use oxport_core::ops::{Args, Kernel};

type V<T> = oxport_core::ops::Value<T>;

/// Fills in `static_outs` of the steps of `plan` whose metadata is known, from the metadata of the
/// plan's inputs (`None` where unknown or symbolic) and the values of its int/float inputs (`None`
/// where unknown). Symbolic arithmetic that becomes known on the way — sizes of tensors with static
/// metadata, `sym_size`/`_operator` steps on known ints — is done here: those steps become
/// constants of the plan, and ops waiting for their values get them in their arguments.
/// Returns every slot's static metadata (`None` where unknown).
pub(crate) fn infer(
    plan: &mut GraphPlan,
    input_metas: &[Option<TensorMeta>],
    input_values: &[Option<Value>],
) -> Vec<Option<TensorMeta>> {
    let mut metas: Vec<Option<TensorMeta>> = vec![None; plan.n_slots];
    let mut known: Vec<Option<Value>> = vec![None; plan.n_slots];
    for (&s, m) in plan.inputs.iter().zip(input_metas) {
        metas[s] = m.clone().filter(is_static);
    }
    for (&s, v) in plan.inputs.iter().zip(input_values) {
        known[s] = v.clone().filter(|v| num(v).is_some());
    }
    let mut removed = vec![false; plan.steps.len()];
    let mut folded = vec![];
    for (i, step) in plan.steps.iter_mut().enumerate() {
        let op = match &mut step.kind {
            Kind::SymSize { t, dim, what, out } => {
                let v = metas[*t]
                    .as_ref()
                    .and_then(|m| concrete_usizes(&m.sizes).ok())
                    .and_then(|sizes| match what {
                        SizeQuery::Size => {
                            let d = oxport_core::tensor::wrap_dim(*dim, sizes.len()).ok()?;
                            Some(sizes[d])
                        }
                        SizeQuery::Numel => sizes.iter().try_fold(1usize, |a, &b| a.checked_mul(b)),
                        // Strides and offsets follow the actual input, not the declared one.
                        SizeQuery::Stride | SizeQuery::StorageOffset => None,
                    })
                    .and_then(|v| i64::try_from(v).ok());
                if let Some(v) = v {
                    known[*out] = Some(int(v));
                    folded.push((*out, int(v)));
                    removed[i] = true;
                }
                continue;
            }
            Kind::Sym { op, args, out } => {
                let nums: Option<Vec<Num>> = args
                    .iter()
                    .map(|a| match a {
                        Src::Slot(s) => known[*s].as_ref().and_then(num),
                        Src::Const(v) => num(v),
                    })
                    .collect();
                if let Some(v) = nums.and_then(|n| sym_eval(*op, &n)) {
                    known[*out] = Some(v.clone());
                    folded.push((*out, v));
                    removed[i] = true;
                }
                continue;
            }
            Kind::Op(op) => op,
            _ => continue,
        };
        let resolved = op
            .int_patches
            .iter()
            .all(|p| known[p.2].as_ref().and_then(num).and_then(Num::i).is_some())
            && op
                .float_patches
                .iter()
                .all(|p| known[p.1].as_ref().and_then(num).is_some());
        if !resolved {
            continue;
        }
        for (ai, j, s) in std::mem::take(&mut op.int_patches) {
            let n = known[s].as_ref().and_then(num).and_then(Num::i);
            patch_int(&mut op.template[ai], j, n.expect("checked above"));
        }
        for (ai, s) in std::mem::take(&mut op.float_patches) {
            let f = known[s].as_ref().and_then(num).map(Num::f);
            patch_float(&mut op.template[ai], f.expect("checked above"));
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
    plan.consts.extend(folded);
    super::rewrite::apply(plan, std::collections::HashMap::new(), &removed);
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

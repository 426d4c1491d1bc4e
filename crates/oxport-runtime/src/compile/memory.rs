//! Memory planning: the outputs of out kernels with static shapes live in buffers reused across the
//! values whose lifetimes do not overlap, and across calls.
//!
//! A value lives from the step that defines it to the last step that reads it — or any value that may
//! alias it (a view, an in-place op's result, a higher-order op's output), which the planner assumes
//! of every output of a step that is not an out kernel. Values that reach the graph's outputs are never
//! planned (the caller keeps them). Values are assigned to buffers greedily, largest first (TFLite's
//! "greedy by size"): a value goes to the first buffer of its dtype none of whose values is live at the
//! same time, and a buffer is as long as its longest value.
//!
//! At run time an [`Arena`] holds one storage per buffer. A step takes its output from the arena only
//! when nobody else still holds that storage (its reference count says so): a planning mistake or a
//! view the analysis did not see costs an allocation, never a wrong answer.
use oxport_core::{DType, Result, Tensor};
use std::sync::{Arc, Mutex};

/// A buffer's identity in a [`MemoryPlan`].
pub(crate) type BufId = usize;

/// One planned value: the step that defines it, the last step its alias group is read at, its size.
#[derive(Debug, Clone)]
pub(crate) struct Lifetime {
    pub start: usize,
    pub end: usize,
    pub dtype: DType,
    pub len: usize,
}

/// The buffers of one graph and the statistics `oxport bench` reports.
#[derive(Debug, Default)]
pub(crate) struct MemoryPlan {
    /// (dtype, length in elements) per buffer.
    pub buffers: Vec<(DType, usize)>,
    /// The largest sum of the planned values' bytes live at one step: no plan can use less.
    pub peak_live_bytes: usize,
}

impl MemoryPlan {
    /// Assigns each value (by index in `values`) to a buffer.
    pub fn assign(values: &[Lifetime]) -> (MemoryPlan, Vec<BufId>) {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by_key(|&i| {
            (
                std::cmp::Reverse(values[i].len * values[i].dtype.itemsize()),
                values[i].start,
            )
        });
        let mut plan = MemoryPlan::default();
        let mut members: Vec<Vec<usize>> = vec![];
        let mut ids = vec![0; values.len()];
        let overlaps = |a: &Lifetime, b: &Lifetime| a.start <= b.end && b.start <= a.end;
        for i in order {
            let v = &values[i];
            let found = (0..plan.buffers.len()).find(|&b| {
                plan.buffers[b].0 == v.dtype && members[b].iter().all(|&j| !overlaps(&values[j], v))
            });
            let b = match found {
                Some(b) => b,
                None => {
                    plan.buffers.push((v.dtype, 0));
                    members.push(vec![]);
                    plan.buffers.len() - 1
                }
            };
            plan.buffers[b].1 = plan.buffers[b].1.max(v.len);
            members[b].push(i);
            ids[i] = b;
        }
        let steps = values.iter().map(|v| v.end + 1).max().unwrap_or(0);
        let mut live = vec![0usize; steps + 1];
        for v in values {
            let bytes = v.len * v.dtype.itemsize();
            for x in &mut live[v.start..=v.end] {
                *x += bytes;
            }
        }
        plan.peak_live_bytes = live.into_iter().max().unwrap_or(0);
        (plan, ids)
    }

    /// Bytes of all buffers.
    pub fn arena_bytes(&self) -> usize {
        self.buffers.iter().map(|(d, n)| d.itemsize() * n).sum()
    }
}

/// The storages of one call's buffers (kept between calls in an [`ArenaPool`]).
#[derive(Debug, Default)]
pub(crate) struct Arena {
    bases: Vec<Option<Tensor>>,
}

impl Arena {
    /// An output with `sizes`/`strides` (spanning at most the buffer's length) in buffer `id`: its
    /// storage when no other tensor holds it any more, else a fresh one that becomes the buffer's.
    /// A reused storage holds the previous values: out kernels write every element of their outputs.
    pub fn output(
        &mut self,
        plan: &MemoryPlan,
        id: BufId,
        sizes: &[usize],
        strides: &[usize],
    ) -> Result<Tensor> {
        if self.bases.len() < plan.buffers.len() {
            self.bases.resize(plan.buffers.len(), None);
        }
        if let Some(base) = &self.bases[id] {
            if Arc::strong_count(base.storage()) == 1 {
                return base.restride(sizes, strides, 0);
            }
        }
        let (dtype, len) = plan.buffers[id];
        let base = Tensor::zeros_strided(dtype, &[len], &[1])?;
        let t = base.restride(sizes, strides, 0)?;
        self.bases[id] = Some(base);
        Ok(t)
    }
}

/// Arenas for concurrent calls: each call takes one (or starts an empty one) and gives it back.
#[derive(Debug, Default)]
pub(crate) struct ArenaPool(Mutex<Vec<Arena>>);

impl ArenaPool {
    pub fn take(&self) -> Arena {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }
    pub fn give_back(&self, a: Arena) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(a);
    }
}

/// Plans the buffers of `plan`'s out-kernel outputs with static shapes (see the module docs) and
/// records them in the steps.
pub(crate) fn plan(plan: &mut crate::plan::GraphPlan) {
    use crate::plan::{reads, Kind, OutBind, Src};
    type V<T> = oxport_core::ops::Value<T>;
    let n = plan.n_slots;
    // Alias groups (union-find over slots).
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut last_read = vec![None::<usize>; n];
    let mut planned: Vec<(usize, usize, Option<usize>)> = vec![]; // (step, flat output, slot)
    for (i, step) in plan.steps.iter().enumerate() {
        let mut r = vec![];
        reads(&step.kind, &mut r);
        for &s in &r {
            last_read[s] = Some(i);
        }
        let mut written = vec![];
        crate::plan::writes(&step.kind, &mut written);
        match &step.kind {
            Kind::Op(op) if op.static_outs.as_ref().is_some_and(|s| !s.bufs.is_empty()) => {
                let st = op.static_outs.as_ref().expect("checked above");
                let mut k = 0;
                for (bind, m) in op.outs.iter().zip(&st.metas) {
                    let count = match m {
                        V::Tensor(_) => 1,
                        V::Tensors(ms) => ms.len(),
                        _ => 0,
                    };
                    for j in 0..count {
                        let slot = match bind {
                            OutBind::Slot(s) => Some(*s),
                            OutBind::List(ss) => ss.get(j).copied(),
                            OutBind::Skip => None,
                        };
                        planned.push((i, k, slot));
                        k += 1;
                    }
                }
            }
            Kind::Prepared(p) => planned.push((i, 0, Some(p.out))),
            _ => {
                // Anything else may return (views of) its inputs.
                for &w in &written {
                    for &s in &r {
                        let (a, b) = (root(&mut parent, w), root(&mut parent, s));
                        parent[a] = b;
                    }
                }
            }
        }
    }
    let mut group_end = vec![Some(0usize); n];
    for (s, read) in last_read.iter().enumerate() {
        let g = root(&mut parent, s);
        if let (Some(e), Some(r)) = (group_end[g], *read) {
            group_end[g] = Some(e.max(r));
        }
    }
    for o in &plan.outputs {
        if let Src::Slot(s) = o {
            let g = root(&mut parent, *s);
            group_end[g] = None; // the caller keeps it
        }
    }
    let mut values = vec![];
    let mut which = vec![];
    for &(i, k, slot) in &planned {
        let end = match slot {
            Some(s) => {
                let g = root(&mut parent, s);
                match group_end[g] {
                    Some(e) => e.max(i),
                    None => continue,
                }
            }
            None => i,
        };
        let (sizes, strides, dtype) = match &plan.steps[i].kind {
            Kind::Op(op) => {
                let st = op
                    .static_outs
                    .as_ref()
                    .expect("planned steps have static outputs");
                let (sizes, strides) = &st.geoms[k];
                (
                    sizes.clone(),
                    strides.clone(),
                    crate::plan::flat_dtype(&st.metas, k),
                )
            }
            Kind::Prepared(p) => (
                p.out_shape.clone(),
                oxport_core::tensor::contiguous_strides(&p.out_shape),
                p.dtype,
            ),
            _ => continue,
        };
        let len = if sizes.contains(&0) {
            0
        } else {
            1 + sizes
                .iter()
                .zip(&strides)
                .map(|(&s, &st)| (s - 1) * st)
                .sum::<usize>()
        };
        values.push(Lifetime {
            start: i,
            end,
            dtype,
            len,
        });
        which.push((i, k));
    }
    let (memory, ids) = MemoryPlan::assign(&values);
    for ((i, k), id) in which.into_iter().zip(ids) {
        match &mut plan.steps[i].kind {
            Kind::Op(op) => {
                if let Some(st) = &mut op.static_outs {
                    st.bufs[k] = Some(id);
                }
            }
            Kind::Prepared(p) => p.buf = Some(id),
            _ => {}
        }
    }
    plan.memory = memory;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(start: usize, end: usize, len: usize) -> Lifetime {
        Lifetime {
            start,
            end,
            dtype: DType::F32,
            len,
        }
    }

    #[test]
    fn disjoint_lifetimes_share_a_buffer() {
        // a chain x0 -> x1 -> x2 -> x3: each value dies at the next step.
        let vals = [lt(0, 1, 100), lt(1, 2, 50), lt(2, 3, 100), lt(3, 4, 10)];
        let (plan, ids) = MemoryPlan::assign(&vals);
        assert_eq!(plan.buffers.len(), 2);
        assert_eq!(ids[0], ids[2]);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(plan.arena_bytes(), 4 * 150);
        assert_eq!(plan.peak_live_bytes, 4 * 150);
    }

    #[test]
    fn dtypes_never_share() {
        let mut b = lt(5, 6, 100);
        b.dtype = DType::I64;
        let (plan, ids) = MemoryPlan::assign(&[lt(0, 1, 100), b]);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(plan.buffers.len(), 2);
    }

    #[test]
    fn a_held_storage_is_not_reused() {
        let (plan, _) = MemoryPlan::assign(&[lt(0, 1, 4)]);
        let mut arena = Arena::default();
        let a = arena.output(&plan, 0, &[2, 2], &[2, 1]).unwrap();
        let b = arena.output(&plan, 0, &[4], &[1]).unwrap();
        assert!(!a.shares_storage(&b), "a is still alive");
        drop(a);
        let c = arena.output(&plan, 0, &[4], &[1]).unwrap();
        assert!(!b.shares_storage(&c), "b is the buffer now and still alive");
        drop(b);
        drop(c);
        let d = arena.output(&plan, 0, &[3], &[1]).unwrap();
        let e = arena.output(&plan, 0, &[3], &[1]).unwrap();
        assert!(!d.shares_storage(&e));
    }
}

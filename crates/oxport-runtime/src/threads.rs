//! A call runs inside rayon's pool with the other workers kept awake for its duration.
//!
//! Kernels split large ops between rayon tasks. Called from a thread outside the pool, every parallel
//! region is injected into the pool, and an idle worker goes to sleep after a few dozen rounds of
//! looking for work: waking it again costs tens of microseconds (on a 2-vCPU VM, 60–90 µs for a
//! region that computes in 2 µs), more than a transformer block's ops take. So a call runs as one
//! pool job, and every other worker runs a spinner that keeps taking work (`rayon::yield_now`)
//! until the call ends: a region's tasks are then stolen within a microsecond (the same 2 × 50 µs
//! region: 180 µs → 79 µs; a GPT block, 0.25 → ~0.1 ms). What it costs: the other cores spin while
//! the call runs its sequential parts, as ONNX Runtime's and OpenMP's spinning pools do.
use std::sync::atomic::{AtomicBool, Ordering};

/// Tensors of at least this many elements may be worth splitting between threads (an f32
/// [32, 256] linear output is, 1.4× on 2 threads; an LSTM cell's [2, 128] gates are not).
const SPLIT_MIN_NUMEL: usize = 4096;

/// Whether the steps of `plan`, whose values have the metadata `metas` (`None`: not a tensor, or
/// not known at plan time), may run kernels that split between threads: some step computes a value
/// known to be large, or none is known at all. (The weights a step reads do not count: an LSTM's
/// [128, 32] weight with 2 rows of input is a small product.)
pub(crate) fn may_split(
    plan: &crate::plan::GraphPlan,
    metas: &[Option<oxport_core::ops::value::TensorMeta>],
) -> bool {
    let mut computed = vec![];
    for step in &plan.steps {
        // Views (an expanded or permuted weight) compute nothing.
        if let crate::plan::Kind::Op(op) = &step.kind {
            let returns = &op.def.schema.returns;
            if !returns.is_empty() && returns.iter().all(|r| r.alias.is_some()) {
                continue;
            }
        }
        crate::plan::writes(&step.kind, &mut computed);
    }
    let mut known = computed
        .iter()
        .filter_map(|&s| metas.get(s)?.as_ref())
        .peekable();
    known.peek().is_none()
        || known.any(|m| {
            m.concrete_sizes()
                .map_or(true, |s| s.iter().product::<usize>() >= SPLIT_MIN_NUMEL)
        })
}

/// Runs `f` on one of rayon's workers while the others spin waiting for its tasks. Already on a
/// worker (a nested call, a call from a rayon task) or with one thread, `f` runs as it is.
pub(crate) fn with_warm_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 || rayon::current_thread_index().is_some() {
        return f();
    }
    let stop = AtomicBool::new(false);
    let stop = &stop;
    rayon::scope(|s| {
        let body = rayon::current_thread_index();
        for _ in 1..threads {
            s.spawn(move |_| {
                // The call's own worker may pick a spinner up while it waits for stolen tasks:
                // spinning there would never let the call go on.
                if rayon::current_thread_index() == body {
                    return;
                }
                while !stop.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let r = f();
        stop.store(true, Ordering::Release);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn runs_parallel_work_and_nested_calls_to_the_end() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // From outside the pool (the spinners' path), with nested calls and parallel regions inside.
        let sum: u64 = std::thread::scope(|s| {
            let h = s.spawn(|| {
                pool.install(|| {
                    // install runs on a worker: with_warm_pool must run f as it is there.
                    with_warm_pool(|| (0..1000u64).into_par_iter().sum::<u64>())
                })
            });
            h.join().unwrap()
        });
        assert_eq!(sum, 499_500);
        let v: Vec<u64> = (0..20)
            .map(|i| {
                with_warm_pool(|| {
                    let inner = with_warm_pool(|| (0..i as u64).into_par_iter().sum::<u64>());
                    inner + (0..10_000u64).into_par_iter().map(|x| x % 7).sum::<u64>()
                })
            })
            .collect();
        let want: Vec<u64> = (0..20)
            .map(|i| (0..i as u64).sum::<u64>() + (0..10_000u64).map(|x| x % 7).sum::<u64>())
            .collect();
        assert_eq!(v, want);
    }

    #[test]
    fn concurrent_callers_all_finish() {
        let sums: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|t| {
                    s.spawn(move || {
                        (0..50)
                            .map(|_| {
                                with_warm_pool(|| {
                                    (0..5000u64).into_par_iter().map(|x| x * t).sum::<u64>()
                                })
                            })
                            .sum::<u64>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (t, s) in sums.iter().enumerate() {
            assert_eq!(*s, 50 * t as u64 * (0..5000u64).sum::<u64>());
        }
    }
}

//! The compile stage between the IR and the kernels (design.md, "Runtime").
//!
//! `Module::new` lowers the program into the typed plan of [`crate::plan`] (op ids as `&'static
//! OpDef`, values as slots; no strings on the call path), then runs these passes over it:
//!
//! 0. [`substitute`]: cheaper ops where outputs go unread (`max_pool2d_with_indices` → `max_pool2d`).
//! 1. [`shapes`]: output metadata of every step with static shapes, computed once — calls run no
//!    meta function for them.
//!    [`alias`]: identity aliases (`alias`, `to` the same dtype) dropped, their readers reading the
//!    input.
//!    [`activations`]: the core IR's decomposed `hardswish`, `hardsigmoid` and `silu` as one step
//!    each (which the fusions below take as they take the training IR's).
//! 2. [`fold`]: steps computing only from constants (a weight's `permute`, an f16 weight's cast)
//!    run once at plan time.
//! 3. [`fuse`]: convolution chains (BatchNorm folded, residual add and activation in the epilogue)
//!    become one step with prepared f32 weights.
//! 4. [`attention`], [`rms_norm`], [`rotary`]: decomposed attention, RMS norms and rotary
//!    position embeddings as one step each.
//! 5. [`linear`]: `linear`/`addmm`/`mm` with constant weights packed once (row-major `K × N`),
//!    bias and a following activation in the same step.
//! 6. [`pointwise`]: chains of f32 pointwise ops as one blocked loop.
//! 7. [`views`]: view ops with static geometry restride their input directly (no op call).
//! 8. [`memory`]: the outputs of out kernels with static shapes get buffers planned from value
//!    lifetimes, reused across values and calls (an arena per concurrent call).
//!
//! A program with symbolic sizes is planned twice over: once generically (its symbolic steps left to
//! each call), and again for each shape signature it is called with (cached, at most eight): with
//! the sizes known, [`shapes`] turns the `sym_size`/`_operator` arithmetic into constants and the
//! other passes apply as to a static program. The weights the passes prepare are shared by all of a
//! program's plans ([`ConstCache`]).
//!
//! [`PlanOptions`] turns passes off, for comparison with the plain path (`oxport bench --no-fuse`).
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) mod activations;
pub(crate) mod alias;
pub(crate) mod attention;
pub(crate) mod fold;
pub(crate) mod fuse;
pub(crate) mod linear;
pub(crate) mod memory;
pub(crate) mod pointwise;
pub(crate) mod rewrite;
pub(crate) mod rms_norm;
pub(crate) mod rotary;
pub(crate) mod shapes;
pub(crate) mod substitute;
pub(crate) mod views;

/// What the passes make from a program's constants (packed weights, folded BatchNorms, folded
/// values), kept by the nodes it stands for, so that all the plans of one program (the plans
/// specialized to each call's shapes) share one copy and make it once.
#[derive(Default)]
pub(crate) struct ConstCache(Mutex<HashMap<(String, &'static str), SharedConst>>);

type SharedConst = Arc<dyn Any + Send + Sync>;

impl std::fmt::Debug for ConstCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |m| m.len());
        write!(f, "ConstCache({n} entries)")
    }
}

impl ConstCache {
    /// The value kept for (`key`, `what`), made by `make` when there is none yet (`None`: nothing
    /// is kept, and the pass leaves the step alone).
    pub(crate) fn get_or_insert<T: Any + Send + Sync>(
        &self,
        key: &str,
        what: &'static str,
        make: impl FnOnce() -> Option<T>,
    ) -> Option<Arc<T>> {
        let k = (key.to_string(), what);
        if let Some(v) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&k) {
            return v.clone().downcast::<T>().ok();
        }
        // Made outside the lock: two plans made at once may both make it; the first one is kept.
        let v: SharedConst = Arc::new(make()?);
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(k).or_insert(v).clone().downcast::<T>().ok()
    }
}

/// A step the compile stage made: a prepared kernel reading `inputs` and writing one contiguous
/// output of `dtype` and `out_shape` (from the arena when planned).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub inputs: Vec<crate::plan::Slot>,
    pub out: crate::plan::Slot,
    pub out_shape: Vec<usize>,
    pub dtype: oxport_core::DType,
    pub kernel: Box<dyn PreparedKernel>,
    /// The output's arena buffer ([`memory`]).
    pub buf: Option<memory::BufId>,
}

/// A kernel prepared at plan time (weights packed, parameters bound).
pub(crate) trait PreparedKernel: std::fmt::Debug + Send + Sync {
    /// Computes the output from the step's inputs (in [`Prepared::inputs`] order).
    fn run(
        &self,
        inputs: &[&oxport_core::Tensor],
        out: &oxport_core::Tensor,
    ) -> oxport_core::Result<()>;
}

/// How [`crate::Module`] plans a program: which of the compile stage's passes run.
///
/// ```
/// use oxport_runtime::{Module, PlanOptions};
/// # let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2");
/// let ep = oxport_ir::pt2::load(dir.join("small_cnn_bn_eval.train.pt2"))?;
/// let fast = Module::with_options(&ep, PlanOptions::default())?;
/// let plain = Module::with_options(&ep, PlanOptions::unoptimized())?;
/// assert!(fast.memory_stats().arena_bytes > 0);
/// assert_eq!(plain.memory_stats().arena_bytes, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Output metadata computed at plan time for static shapes ([`shapes`]); the other passes need it.
    pub static_shapes: bool,
    /// Constant folding ([`fold`]).
    pub fold: bool,
    /// Convolution chains and matrix products with constant weights as prepared kernels ([`fuse`],
    /// [`linear`]).
    pub fuse: bool,
    /// Outputs in a planned, reused arena ([`memory`]).
    pub memory_plan: bool,
}

impl Default for PlanOptions {
    /// Every pass.
    fn default() -> Self {
        PlanOptions {
            static_shapes: true,
            fold: true,
            fuse: true,
            memory_plan: true,
        }
    }
}

impl PlanOptions {
    /// The plain path, no pass at all: every call runs each node's meta function and kernel on
    /// freshly allocated outputs — what the optimized plan is checked against.
    pub fn unoptimized() -> Self {
        PlanOptions {
            static_shapes: false,
            fold: false,
            fuse: false,
            memory_plan: false,
        }
    }
}

/// What the memory plan of a program's top-level graph uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStats {
    /// All arena buffers (the planned intermediate values).
    pub arena_bytes: usize,
    /// The largest sum of planned values live at one step: the least any plan could use.
    pub peak_live_bytes: usize,
    /// Parameters, buffers and constants the module holds.
    pub weight_bytes: usize,
}

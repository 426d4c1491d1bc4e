//! The compile stage between the IR and the kernels (design.md, "Runtime").
//!
//! `Module::new` lowers the program into the typed plan of [`crate::plan`] (op ids as `&'static
//! OpDef`, values as slots; no strings on the call path), then runs these passes over it:
//!
//! 1. [`shapes`]: output metadata of every step with static shapes, computed once — calls run no
//!    meta function for them.
//! 2. [`fuse`]: convolution chains (BatchNorm folded, residual add and activation in the epilogue)
//!    become one step with prepared f32 weights.
//! 3. [`memory`]: the outputs of out kernels with static shapes get buffers planned from value
//!    lifetimes, reused across values and calls (an arena per concurrent call).
//!
//! [`PlanOptions`] turns the optimizing passes off, for comparison with the plain path.
pub(crate) mod fuse;
pub(crate) mod memory;
pub(crate) mod shapes;

/// How [`crate::Module`] plans a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Run the optimizing passes (static shapes, memory planning, folding, fusion). Off, every call
    /// runs each node's meta function and kernel on freshly allocated outputs: the reference path
    /// fused results are checked against.
    pub optimize: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { optimize: true }
    }
}

impl PlanOptions {
    /// The plain path: no pass runs.
    pub fn unoptimized() -> Self {
        PlanOptions { optimize: false }
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

//! oxport-runtime: runs an [`ExportedProgram`] on the CPU, as PyTorch's `ep.module()` does.
//!
//! [`Module::new`] builds the execution plan once — every node's kernel resolved from the op registry,
//! its arguments bound to the schema, value slots assigned and freed after their last use — and
//! [`Module::call_flat`] runs it any number of times. Inputs are checked against the program's guards
//! first (count, dtype, rank, static sizes, symbolic sizes consistent across inputs and within their range
//! constraints). Parameters, buffers and constants come from the program's state; a `BUFFER_MUTATION`
//! output updates the held buffer and a `USER_INPUT_MUTATION` output writes into the caller's tensor.
//!
//! ```
//! use oxport_runtime::{Module, Value};
//! # let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2");
//! let ep = oxport_ir::pt2::load(dir.join("sin_cos.train.pt2"))?;
//! let m = Module::new(&ep)?;
//! let x = oxport_core::Tensor::from_vec(vec![0.0f32; 100], &[10, 10])?;
//! let out = m.call_flat(vec![Value::Tensor(x.clone()), Value::Tensor(x)])?;
//! let Value::Tensor(y) = &out[0] else { unreachable!() };
//! assert_eq!(y.to_vec::<f32>()?[0], 1.0); // sin(0) + cos(0)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod compile;
mod error;
mod guards;
mod plan;
pub mod pytree;
mod threads;
mod verify;

pub use compile::{MemoryStats, PlanOptions};
pub use error::{Error, Result};
pub use oxport_core::ops::Value as CoreValue;
pub use plan::{argument_value, Module, Profile};
pub use pytree::PyValue;

/// A runtime value: a tensor, a number, a bool, a list of tensors, ... (`oxport_core::ops::Value`).
pub type Value = oxport_core::ops::Value<oxport_core::Tensor>;

use oxport_ir::ExportedProgram;

/// `ep.module()`: the program as a callable [`Module`].
pub trait ExportedProgramExt {
    /// Builds the execution plan (resolving every op) and returns the callable module.
    fn module(&self) -> Result<Module>;
}

impl ExportedProgramExt for ExportedProgram {
    fn module(&self) -> Result<Module> {
        Module::new(self)
    }
}

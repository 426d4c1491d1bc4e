//! oxport: torch.export in Rust.
//!
//! This crate re-exports the layers: tensors with PyTorch semantics and the ATen op registry
//! (`oxport-core`), the ExportedProgram IR and `.pt2` files (`oxport-ir`). See `docs/architecture.md`.
//!
//! ```
//! use oxport::prelude::*;
//! let x = Tensor::arange(0, 6, 1, Some(DType::F32))?.view(&[2, 3])?;
//! let y = x.sin()?.add(&x.cos()?)?;
//! assert_eq!(y.sizes(), &[2, 3]);
//! # Ok::<(), oxport::Error>(())
//! ```
pub use oxport_core::*;

/// Export: the `Module`/`Forward` traits, nn layers, the model zoo and [`export()`].
pub use oxport_export as export_api;
pub use oxport_export::{
    cond, export, export_dynamic, load_state_dict, nn, run_decompositions, zoo, Dim, Forward,
    Module,
};
/// The ExportedProgram IR (torch.export's serialized schema 8.x) and its printer.
pub use oxport_ir as ir;
/// `.pt2` archives: load what `torch.export.save` writes, save what `torch.export.load` reads.
pub use oxport_ir::pt2;
pub use oxport_ir::ExportedProgram;
/// Running programs: `ep.module()` ([`runtime::ExportedProgramExt`]), guards, the execution plan.
pub use oxport_runtime as runtime;

/// Everything a model author needs in scope.
pub mod prelude {
    pub use oxport_core::prelude::*;
    pub use oxport_export::{export, export_dynamic, Dim, Forward, Module};
    pub use oxport_runtime::{ExportedProgramExt, PyValue};
}

/// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

//! oxport: torch.export in Rust.
//!
//! Today this crate re-exports the core layers: tensors with PyTorch semantics and the ATen op registry.
//! Export, the IR, `.pt2` files and the runtime build on them (see `docs/architecture.md`).
//!
//! ```
//! use oxport::prelude::*;
//! let x = Tensor::arange(0, 6, 1, Some(DType::F32))?.view(&[2, 3])?;
//! let y = x.sin()?.add(&x.cos()?)?;
//! assert_eq!(y.sizes(), &[2, 3]);
//! # Ok::<(), oxport::Error>(())
//! ```
pub use oxport_core::*;

/// Everything a model author needs in scope.
pub mod prelude {
    pub use oxport_core::prelude::*;
}

/// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

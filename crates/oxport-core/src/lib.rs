//! oxport-core: the bottom layers of oxport.
//!
//! * [`dtype`] — PyTorch's dtypes (with the serialized `ScalarType` codes), scalars, type promotion.
//! * [`sym`] — symbolic integers (`SymInt`) that meta functions compute over, and guard recording.
//! * [`tensor`] — strided tensors whose views share storage, plus the raw CPU kernels.
//! * [`ops`] — THE op registry: one entry per ATen overload with its PyTorch schema, meta function and
//!   CPU kernel. Every user-facing tensor operation dispatches through it.
//!
//! ```
//! use oxport_core::prelude::*;
//! let x = Tensor::arange_f32(6).view(&[2, 3])?;
//! let y = x.t()?.relu()?.sum_all()?;
//! assert_eq!(y.item_f64()?, 15.0);
//! # Ok::<(), oxport_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod dtype;
pub mod error;
pub mod ops;
pub mod sym;
pub mod sym_ops;
pub mod tensor;

pub use dtype::{DType, Scalar};
pub use error::{Error, Result};
/// The complex number types of complex64 / complex128 tensors (`Complex32`, `Complex64`).
pub use num_complex;
pub use sym::{SymFloat, SymInt};
pub use sym_ops::{sym_float, sym_int, sym_sqrt, IntoOptSymInt, IntoSymFloat, IntoSymInts};
pub use tensor::Tensor;

/// The names most programs need.
pub mod prelude {
    pub use crate::dtype::{DType, Scalar};
    pub use crate::error::{Error, Result};
    pub use crate::ops::{ArangeArgs, Operand, SymScalar, TensorOptions};
    pub use crate::sym::{SymFloat, SymInt};
    pub use crate::sym_ops::{
        sym_float, sym_int, sym_sqrt, IntoOptSymInt, IntoSymFloat, IntoSymInts,
    };
    pub use crate::tensor::{Generator, Tensor};
}

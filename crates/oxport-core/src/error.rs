//! The one error type of the core layers.
use crate::dtype::DType;

/// Errors raised by tensor operations, op dispatch and schema handling.
///
/// Messages follow PyTorch's wording where PyTorch has one, so that a user searching for the message finds
/// the same explanations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A shape is invalid for the operation (PyTorch's `RuntimeError` about sizes).
    #[error("{0}")]
    Shape(String),
    /// A dimension index is out of range.
    #[error("Dimension out of range (expected to be in range of [{min}, {max}], but got {dim})")]
    DimOutOfRange {
        /// The dim that was passed.
        dim: i64,
        /// Lowest valid dim.
        min: i64,
        /// Highest valid dim.
        max: i64,
    },
    /// An operation does not support a dtype.
    #[error("\"{op}\" not implemented for '{dtype}'")]
    DTypeNotSupported {
        /// The op name as PyTorch prints it (e.g. `add_cpu`, or the ATen overload).
        op: String,
        /// The offending dtype.
        dtype: DType,
    },
    /// A dtype mismatch between operands.
    #[error("{0}")]
    DType(String),
    /// An argument value is invalid.
    #[error("{0}")]
    Value(String),
    /// An argument does not match the op's schema.
    #[error("{op}: {msg}")]
    Schema {
        /// The overload, e.g. `aten.add.Tensor`.
        op: String,
        /// What is wrong.
        msg: String,
    },
    /// The registry has no such overload.
    #[error("operator '{0}' is not in oxport's op registry")]
    UnknownOp(String),
    /// A symbolic decision could not be made.
    #[error("{0}")]
    Symbolic(String),
    /// A tensor's values were needed while tracing (export): the graph cannot depend on them.
    #[error("{0}")]
    DataDependent(String),
    /// I/O or file-format problems (e.g. `.npy`).
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(msg.into())
    }
    pub(crate) fn value(msg: impl Into<String>) -> Self {
        Error::Value(msg.into())
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Return early with an [`Error::Value`] / [`Error::Shape`] built with `format!`.
#[macro_export]
#[doc(hidden)]
macro_rules! bail {
    (shape, $($arg:tt)*) => { return Err($crate::Error::Shape(format!($($arg)*))) };
    ($($arg:tt)*) => { return Err($crate::Error::Value(format!($($arg)*))) };
}

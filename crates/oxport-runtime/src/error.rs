//! Errors of planning and running a program.

/// Why a program cannot be planned or a call fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program uses something the runtime cannot run; found at plan time, before any call.
    #[error("cannot run node '{node}' ({target}): {reason}")]
    Unsupported {
        /// The node's name.
        node: String,
        /// Its target.
        target: String,
        /// What is missing.
        reason: String,
    },
    /// An input does not satisfy the program's guards.
    #[error("{0}")]
    Guard(String),
    /// An op failed while running.
    #[error("node '{node}' ({target}): {source}")]
    Op {
        /// The node's name.
        node: String,
        /// Its target.
        target: String,
        /// The op's error.
        source: oxport_core::Error,
    },
    /// A runtime assertion of the program failed (`_assert_scalar`, `sym_constrain_range`).
    #[error("{0}")]
    Assert(String),
    /// The program itself is invalid.
    #[error(transparent)]
    Ir(#[from] oxport_ir::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

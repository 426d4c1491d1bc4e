//! Errors of the IR and `.pt2` layers.

/// Why a program could not be loaded, validated or saved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The archive is not a readable `.pt2` (not a zip, corrupt, missing or unsafe entries).
    #[error("{0}")]
    Archive(String),
    /// An entry holds invalid JSON or JSON that does not match the schema.
    #[error("{entry}: invalid program JSON: {reason}")]
    Json {
        /// The archive entry.
        entry: String,
        /// serde's description, with line and column.
        reason: String,
    },
    /// The program violates an invariant of the IR (undefined or duplicate names, inconsistent
    /// signature, ...).
    #[error("invalid program: {0}")]
    Invalid(String),
    /// The file uses something oxport cannot represent (pickled tensors, custom objects, dtypes).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] oxport_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

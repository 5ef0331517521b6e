//! The error type of `selfsup-vision`.

use thiserror::Error;

/// What can go wrong in a vision method.
#[derive(Debug, Error)]
pub enum Error {
    /// A loss or other core computation failed.
    #[error(transparent)]
    Core(#[from] selfsup_core::Error),
    /// Weights to load do not fit the model.
    #[error("weights: {0}")]
    Weights(String),
    /// Writing a picture failed.
    #[error("{path}: {message}")]
    Picture {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

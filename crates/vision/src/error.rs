//! The error type of `selfsup-vision`.

use thiserror::Error;

/// What can go wrong in a vision run.
#[derive(Debug, Error)]
pub enum Error {
    /// A config value, a run folder or training failed (the message names
    /// the key or file).
    #[error(transparent)]
    Train(#[from] selfsup_train::Error),
    /// Data could not be read.
    #[error(transparent)]
    Data(#[from] selfsup_data::Error),
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

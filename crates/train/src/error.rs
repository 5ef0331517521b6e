//! The error type of `selfsup-train`.

use std::path::PathBuf;
use thiserror::Error;

/// What can stop a run.
#[derive(Debug, Error)]
pub enum Error {
    /// A config file or override is invalid; the message names the key.
    #[error("config {origin}: {message}")]
    Config {
        /// The file, or `--set key=value`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file of the run failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("loss is {value} at step {step}; stopping (the last checkpoint, if any, is kept)")]
    NonFiniteLoss {
        /// The optimizer step at which it happened.
        step: usize,
        /// The value.
        value: f64,
    },
    /// The weights became NaN or infinite (a diverging update after the last finite loss).
    #[error("the weights are NaN or infinite after step {step}: training diverged (lower optim.lr); stopping, the last checkpoint is kept")]
    NonFiniteWeights {
        /// The optimizer steps done.
        step: usize,
    },
    /// The device ran out of memory.
    #[error("out of memory at step {step} with batch size {batch_size}: {message}; lower trainer.batch_size (or raise trainer.accumulate to keep the effective batch)")]
    OutOfMemory {
        /// The step that failed.
        step: usize,
        /// The configured batch size.
        batch_size: usize,
        /// libtorch's message.
        message: String,
    },
    /// Data could not be read.
    #[error(transparent)]
    Data(#[from] selfsup_data::Error),
    /// A core computation failed (e.g. a shape error).
    #[error(transparent)]
    Core(#[from] selfsup_core::Error),
    /// libtorch raised an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// A collective, the rendezvous or another rank failed.
    #[error("distributed: {0}")]
    Distributed(String),
}

/// The distributed layer's errors, as the run reports them.
impl From<selfsup_dist::Error> for Error {
    fn from(error: selfsup_dist::Error) -> Self {
        match error {
            selfsup_dist::Error::Distributed(message) => Error::Distributed(message),
            selfsup_dist::Error::Io { path, source } => Error::Io { path, source },
        }
    }
}

impl Error {
    /// A failure of the distributed layer.
    pub fn distributed(message: impl Into<String>) -> Self {
        Error::Distributed(message.into())
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

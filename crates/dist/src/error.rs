//! The error type of `selfsup-dist`: the rendezvous, a collective, another
//! rank or the launcher failed.

use std::path::PathBuf;
use thiserror::Error;

/// What can go wrong running on several processes.
#[derive(Debug, Error)]
pub enum Error {
    /// A collective, the rendezvous or another rank failed.
    #[error("distributed: {0}")]
    Distributed(String),
    /// A file of the launch (a rank's log, the rendezvous file, the program).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
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

//! The error type of `selfsup-data`: every variant names the file at fault.

use std::path::PathBuf;
use thiserror::Error;

/// What can go wrong reading data.
#[derive(Debug, Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file was read but its contents are not what the format requires.
    #[error("{path}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. "bad magic number 0x00000000, expected 0x00000803".
        problem: String,
    },
    /// Two inputs that must agree do not (e.g. image and label counts).
    #[error("{0}")]
    Mismatch(String),
    /// A download failed.
    #[error("downloading {url}: {problem}")]
    Download {
        /// The address.
        url: String,
        /// What went wrong (HTTP status, network error, short read).
        problem: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error in `path`.
    pub fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Reads a whole file, transparently gunzipping it when its name ends in `.gz`.
pub fn read_maybe_gz(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("not a valid gzip file ({e})")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

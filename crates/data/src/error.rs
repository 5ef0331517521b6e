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

/// The most bytes [`read_maybe_gz`] decompresses: above any data set file
/// it reads (MNIST's largest is 47 MB, GPT-2's encoder.json 1 MB), so that
/// a gzip bomb (a few KB declaring gigabytes) stops with an error.
pub const MAX_DECOMPRESSED_BYTES: u64 = 768 << 20;

/// Reads a whole file, transparently gunzipping it when its name ends in
/// `.gz`, streaming, with at most [`MAX_DECOMPRESSED_BYTES`] decompressed.
pub fn read_maybe_gz(path: &std::path::Path) -> Result<Vec<u8>> {
    read_maybe_gz_limited(path, MAX_DECOMPRESSED_BYTES)
}

/// [`read_maybe_gz`] with the decompressed size capped at `limit` bytes.
pub fn read_maybe_gz_limited(path: &std::path::Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_none_or(|e| e != "gz") {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(path, format!("not a valid gzip file ({e})")))?;
    if out.len() as u64 > limit {
        return Err(Error::format(
            path,
            format!("decompresses to more than {limit} bytes, the limit for one file"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 4 << 20]).unwrap();
        let compressed = encoder.finish().unwrap();
        assert!(compressed.len() < 8 << 10, "{} bytes", compressed.len());
        std::fs::write(&path, compressed).unwrap();
        let error = read_maybe_gz_limited(&path, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("bomb.gz") && error.contains("more than 1048576 bytes"),
            "{error}"
        );
        assert_eq!(
            read_maybe_gz_limited(&path, 4 << 20).unwrap().len(),
            4 << 20
        );
    }
}

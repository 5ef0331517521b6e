//! Is a data file the published one? First by the archive's published MD5;
//! failing that, for gzipped files whose uncompressed MD5 is published too,
//! by the MD5 of what they decompress to. A copy that was recompressed (as
//! a Linux distribution's Fashion-MNIST package is: same images, other
//! `.gz` bytes) passes the second check and is still the official data.

use crate::error::{Error, Result};
use md5::{Digest, Md5};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Which check a file passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Byte for byte the published archive.
    PublishedArchive,
    /// Another archive of the published content (recompressed).
    DecompressedContent,
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verified::PublishedArchive => "the published archive's MD5",
            Verified::DecompressedContent => {
                "the published MD5 of its decompressed content (a recompressed copy)"
            }
        })
    }
}

/// The MD5 of everything `reader` yields, lowercase hex; `path` names the
/// source in errors.
fn md5_of(mut reader: impl Read, path: &Path) -> Result<String> {
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn open(path: &Path) -> Result<BufReader<File>> {
    Ok(BufReader::new(
        File::open(path).map_err(|e| Error::io(path, e))?,
    ))
}

/// The MD5 of a file, lowercase hex.
pub fn md5_hex(path: &Path) -> Result<String> {
    md5_of(open(path)?, path)
}

/// The MD5 of a gzipped file's decompressed content, lowercase hex.
pub fn gunzipped_md5_hex(path: &Path) -> Result<String> {
    let decoder = flate2::read::GzDecoder::new(open(path)?);
    md5_of(decoder, path).map_err(|_| Error::format(path, "not a readable gzip file".to_string()))
}

/// Checks `path` against its published MD5.
pub fn verify_md5(path: &Path, expected: &str) -> Result<()> {
    verify(path, expected, None).map(|_| ())
}

/// Checks `path` against the published archive MD5 `archive`, then, if it
/// differs and `content` (the published MD5 of the gzipped file's
/// decompressed bytes) is known, against that; says which check passed.
pub fn verify(path: &Path, archive: &str, content: Option<&str>) -> Result<Verified> {
    let actual = md5_hex(path)?;
    if actual == archive {
        return Ok(Verified::PublishedArchive);
    }
    let Some(content) = content else {
        return Err(Error::format(
            path,
            format!(
                "MD5 {actual}, expected {archive}: a different or damaged copy \
                 (delete it and fetch again)"
            ),
        ));
    };
    let decompressed = gunzipped_md5_hex(path).unwrap_or_else(|_| "unreadable".to_string());
    if decompressed == content {
        return Ok(Verified::DecompressedContent);
    }
    Err(Error::format(
        path,
        format!(
            "MD5 {actual}, expected {archive} (the published archive); decompressed \
             MD5 {decompressed}, expected {content} (its content): a different or \
             damaged copy (delete it and fetch again)"
        ),
    ))
}

//! What every target shares: a scratch folder per input, and the limits
//! the readers must keep to (an input may declare any size; the fuzzer's
//! `-rss_limit_mb=1024` fails a run that lets one allocate past 1 GB).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The pixel limit the targets decode with: small enough that an image
/// the limit admits cannot come near the memory limit.
pub const MAX_PIXELS: u64 = 1 << 22;

/// Writes `bytes` as `name` in a fresh temporary folder and returns both.
pub fn write(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("the input is written");
    (dir, path)
}

/// `bytes` cut in two at the first `0xFF 0x00` (or in the middle): inputs
/// whose reader takes two files.
pub fn two_parts(bytes: &[u8]) -> (&[u8], &[u8]) {
    let at = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0x00])
        .unwrap_or(bytes.len() / 2);
    (&bytes[..at], &bytes[(at + 2).min(bytes.len())..])
}

/// An error must name the file it is about.
pub fn names_file<T>(result: Result<T, selfsup_data::Error>, file: &Path) {
    if let Err(error) = result {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = error.to_string();
        assert!(
            text.contains(&name) || text.contains("images but"),
            "{text}"
        );
    }
}

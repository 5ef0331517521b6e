//! How much memory the machine can still give, so a reader that is about
//! to hold a whole set in memory can refuse with a message instead of
//! being killed by the kernel (or aborting on a failed allocation) half
//! way through.

use std::path::Path;

use crate::error::{Error, Result};

/// `MemAvailable` of `/proc/meminfo` in bytes, or `None` where there is no
/// such file (not Linux) or it does not parse.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Refuses to go on when holding `bytes` for `what` (read from `path`)
/// would take more memory than the machine has available; passes where
/// the available memory is unknown.
pub fn ensure_fits(path: &Path, what: &str, bytes: u64) -> Result<()> {
    ensure_fits_in(path, what, bytes, available_bytes())
}

fn ensure_fits_in(path: &Path, what: &str, bytes: u64, available: Option<u64>) -> Result<()> {
    match available {
        Some(available) if bytes > available => Err(Error::format(
            path,
            format!(
                "{what} would take {:.1} GiB but {:.1} GiB of memory is available",
                gib(bytes),
                gib(available)
            ),
        )),
        _ => Ok(()),
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_mem_available(text), Some(2048 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert!(
            available_bytes().is_some_and(|b| b > 0),
            "Linux has /proc/meminfo"
        );
    }

    #[test]
    fn refuses_more_than_available_naming_the_file() {
        let path = Path::new("photos/train");
        let error = ensure_fits_in(path, "8 images at 8192x8192", 3 << 30, Some(1 << 30));
        let message = error.unwrap_err().to_string();
        assert!(
            message.starts_with("photos/train: 8 images at 8192x8192"),
            "{message}"
        );
        assert!(
            message.contains("3.0 GiB") && message.contains("1.0 GiB"),
            "{message}"
        );
        assert!(ensure_fits_in(path, "x", 1 << 30, Some(3 << 30)).is_ok());
        assert!(ensure_fits_in(path, "x", u64::MAX, None).is_ok());
    }
}

//! A run folder: `runs/<name>-<timestamp>/` with the resolved config, metrics,
//! checkpoints and pictures.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The folder of one run.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `<parent>/<name>-<UTC timestamp>` (with a counter when that
    /// exists). The folder is made with one `create_dir`, which fails if it
    /// exists, so two runs started in the same second never share one; the
    /// name must be one plain path component ([`check_run_name`]).
    pub fn create(parent: &Path, name: &str) -> Result<Self> {
        check_run_name(name)?;
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let stamp = utc_stamp(std::time::SystemTime::now());
        for attempt in 0u32.. {
            let suffix = match attempt {
                0 => String::new(),
                n => format!("-{n}"),
            };
            let path = parent.join(format!("{name}-{stamp}{suffix}"));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let checkpoints = path.join("checkpoints");
                    std::fs::create_dir(&checkpoints).map_err(|e| Error::io(&checkpoints, e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 10_000 => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        unreachable!("the loop returns")
    }

    /// A folder this process never writes (a data-parallel rank other than
    /// 0 holds one); nothing is created.
    pub fn unwritten(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// Opens an existing run folder (for `eval` and `--resume`).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.join("config.toml").is_file() {
            let missing = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a run folder (no config.toml)",
            );
            return Err(Error::io(path, missing));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The checkpoints folder.
    pub fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoints")
    }
}

/// A run name is one plain path component: no separator, no `..`, not
/// empty, no control character, so `<runs>/<name>-<stamp>` stays inside
/// `<runs>` whatever a config says.
pub fn check_run_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 100
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(crate::check::invalid(
            "name",
            format!(
                "{name:?} must be one folder name of 1 to 100 characters, without `/`, `\\`, \
                 a leading `.` or control characters (the run folder is <runs>/<name>-<time>)"
            ),
        ));
    }
    Ok(())
}

/// `YYYYmmdd-HHMMSS` in UTC, from the civil-from-days algorithm (no time crate needed).
fn utc_stamp(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101-000000");
        // 2026-11-27 20:31:05 UTC
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_811_465)),
            "20261127-203105"
        );
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229-000000"
        );
    }

    #[test]
    fn a_name_that_leaves_the_runs_folder_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let runs = parent.path().join("runs");
        for name in [
            "../x",
            "/abs/x",
            "a/b",
            "..",
            ".hidden",
            "",
            "a\\b",
            "tab\there",
        ] {
            let error = RunDir::create(&runs, name).unwrap_err().to_string();
            assert!(error.contains("config name"), "{name}: {error}");
        }
        assert!(!runs.exists(), "nothing created for a bad name");
        assert!(!parent.path().join("x-").exists());
        assert!(RunDir::create(&runs, "simclr-cifar10_v2.1").is_ok());
    }

    #[test]
    fn runs_started_together_get_their_own_folders() {
        let parent = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let parent = parent.path().to_path_buf();
                std::thread::spawn(move || RunDir::create(&parent, "same").unwrap())
            })
            .collect();
        let mut paths: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().unwrap().path().to_path_buf())
            .collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 8);
    }

    #[test]
    fn create_never_reuses_a_folder() {
        let parent = tempfile::tempdir().unwrap();
        let a = RunDir::create(parent.path(), "x").unwrap();
        let b = RunDir::create(parent.path(), "x").unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a.checkpoints().is_dir());
        assert!(RunDir::open(a.path()).is_err(), "no config.toml yet");
    }
}

//! Logs go to stderr and to `train.log` in the run folder.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the stderr logger; `RUST_LOG` overrides the `info` default.
pub fn init_stderr() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer())
        .try_init();
}

/// [`init_with_file`] on rank 0 (or alone); stderr only on the other ranks
/// of a data-parallel run, whose output the launcher keeps per rank.
pub fn init_for_rank(path: &Path) {
    if selfsup_train::distributed::is_primary() {
        init_with_file(path);
    } else {
        init_stderr();
    }
}

/// Installs stderr plus a log file; falls back to stderr alone if the file cannot be created.
pub fn init_with_file(path: &Path) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Append: a resumed run keeps the log of its first part.
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(file) => {
            let to_file = fmt::layer().with_ansi(false).with_writer(Mutex::new(file));
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(stderr_layer())
                .with(to_file)
                .try_init();
        }
        Err(e) => {
            init_stderr();
            tracing::warn!(
                "cannot write {}: {e}; logging to stderr only",
                path.display()
            );
        }
    }
}

/// Colours only on a terminal, so CI logs and files stay plain text.
fn stderr_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
}

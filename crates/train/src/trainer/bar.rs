//! The progress bar: live on a terminal, hidden in CI and pipes (where the
//! loop writes periodic log lines instead).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A bar over `total` steps starting at `position`.
pub(super) fn progress_bar(total: u64, position: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total).with_position(position);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

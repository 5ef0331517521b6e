//! The modality-free parts of an experiment, which `selfsup-vision` and
//! `selfsup-text` build their experiments on: where a run's folder comes
//! from (new, or resumed), training between a random-init and a trained
//! evaluation, the summary and plots, and opening a finished run folder.

mod compare;
mod run_folder;

pub use compare::{fit_and_compare, write_summary, AsMethod, Comparison, Fitting, Stage};
pub use run_folder::{start_run, try_one_step, RunStart, TrainedRun};

//! Pretraining between two evaluations: the same model scored at its random
//! initialisation and after training, which is how every run shows what
//! self-supervision bought.

use crate::error::{Error, Result};
use crate::method::Method;
use crate::metrics::MetricsCsv;
use crate::run_dir::RunDir;
use crate::source::BatchSource;
use crate::trainer::{FitReport, Trainer};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

/// A modality's method type seen as the trainer's [`Method`]: one line per
/// modality (`impl AsMethod for dyn VisionMethod { … self }`), since generic
/// code cannot upcast a trait object by itself.
pub trait AsMethod {
    /// `self` as a `Method`.
    fn as_method(&mut self) -> &mut dyn Method;
}

impl AsMethod for dyn Method {
    fn as_method(&mut self) -> &mut dyn Method {
        self
    }
}

/// What a comparison trains; `M` is the modality's method type.
pub struct Fitting<'a, M: ?Sized> {
    /// Loop and optimizer settings.
    pub trainer: &'a Trainer,
    /// The method, freshly built from the run's seed.
    pub method: &'a mut M,
    /// Its variables.
    pub vs: &'a VarStore,
    /// Training batches.
    pub source: &'a dyn BatchSource,
    /// The run folder (metrics, checkpoints, plots).
    pub run: &'a RunDir,
    /// The checkpoint to continue from, when resuming.
    pub resume: Option<&'a Path>,
}

/// The outcome: the fit, both evaluations and the plots of `metrics.csv`.
#[derive(Debug)]
pub struct Comparison<E> {
    /// The training loop's report.
    pub report: FitReport,
    /// The evaluation of the model before training (its random init; on
    /// resume, the init the run started from).
    pub random_init: E,
    /// The evaluation after training.
    pub trained: E,
    /// PNG plots of every curve in `metrics.csv`.
    pub plots: Vec<PathBuf>,
}

/// Evaluates the method, trains it, evaluates it again; `evaluate` also
/// writes its metrics rows (it gets the file, the step and whether the
/// model is trained). In a data-parallel run every rank trains and rank 0
/// alone evaluates and writes; the others report `E::default()` and no plots.
pub fn fit_and_compare<M: ?Sized + AsMethod, E: Default>(
    fitting: Fitting<'_, M>,
    mut evaluate: impl FnMut(&M, &mut MetricsCsv, Stage) -> Result<E>,
) -> Result<Comparison<E>> {
    let primary = crate::distributed::is_primary();
    let mut evaluate = |method: &M, metrics: &mut MetricsCsv, stage| match primary {
        true => crate::distributed::with_node_threads(|| evaluate(method, metrics, stage)),
        false => Ok(E::default()),
    };
    let mut metrics = MetricsCsv::open_on_primary(&fitting.run.file("metrics.csv"))?;
    let random_init = evaluate(&*fitting.method, &mut metrics, Stage::RandomInit)?;
    let report = fitting.trainer.fit(
        fitting.method.as_method(),
        fitting.vs,
        fitting.source,
        fitting.run,
        &mut metrics,
        fitting.resume,
    )?;
    let trained = evaluate(
        &*fitting.method,
        &mut metrics,
        Stage::Trained { step: report.steps },
    )?;
    drop(metrics);
    let plots = match primary {
        true => crate::plots::plot_metrics(&fitting.run.file("metrics.csv"), fitting.run.path())?,
        false => Vec::new(),
    };
    Ok(Comparison {
        report,
        random_init,
        trained,
        plots,
    })
}

/// Which evaluation of a comparison is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before training (metrics rows at step 0, names suffixed `_random_init`).
    RandomInit,
    /// After training, at optimizer step `step`.
    Trained {
        /// Steps trained.
        step: usize,
    },
}

impl Stage {
    /// The step to write rows at.
    pub fn step(self) -> usize {
        match self {
            Stage::RandomInit => 0,
            Stage::Trained { step } => step,
        }
    }

    /// `name`, suffixed `_random_init` before training.
    pub fn metric(self, name: &str) -> String {
        match self {
            Stage::RandomInit => format!("{name}_random_init"),
            Stage::Trained { .. } => name.to_string(),
        }
    }
}

/// Writes `summary` as `summary.toml` in `run`: the numbers benchmarks compare.
pub fn write_summary(run: &RunDir, summary: &impl Serialize) -> Result<PathBuf> {
    let path = run.file("summary.toml");
    if !crate::distributed::is_primary() {
        return Ok(path);
    }
    let text = toml::to_string(summary).map_err(|e| Error::Config {
        origin: path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

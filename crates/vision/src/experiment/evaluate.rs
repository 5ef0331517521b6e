//! `selfsup eval <run folder>`: the protocols papers report, on the run's
//! last checkpoint (or on the same encoder at its random initialisation):
//! weighted k-NN, a linear probe on frozen features, and fine-tuning on
//! class-balanced fractions of the labels. Rows go to `metrics.csv` too.

use super::loaded::LoadedRun;
use crate::data::{LabelledImages, Normalizer};
use crate::registry::VisionRegistry;
use crate::Result;
use selfsup_train::eval::{run_protocols, EvalRow};
use selfsup_train::metrics::MetricsCsv;
use std::path::{Path, PathBuf};

/// What `selfsup eval` was asked.
#[derive(Debug, Clone, Copy)]
pub struct EvalRequest<'a> {
    /// The run folder.
    pub run: &'a Path,
    /// Evaluate the encoder at its random initialisation instead.
    pub random_init: bool,
    /// `--set key=value` overrides of the run's config (e.g. `eval.fine_tune.fractions=[0.1]`).
    pub overrides: &'a [String],
}

/// The protocols' results.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// The run folder.
    pub run: PathBuf,
    /// `last checkpoint` or `random init`.
    pub which: &'static str,
    /// Held-out images scored.
    pub held_out: usize,
    /// One row per protocol.
    pub rows: Vec<EvalRow>,
}

/// Runs every protocol of the run's `[eval]` config.
pub fn evaluate(registry: &VisionRegistry, request: EvalRequest<'_>) -> Result<EvalReport> {
    let loaded = LoadedRun::open(registry, request.run, request.overrides)?;
    let device = loaded.device()?;
    let splits = loaded.config.data.load_splits()?;
    let channels = splits.train.channels() as i64;
    loaded.config.eval.validate_for(splits.memory().len())?;
    let (mean, std) = loaded.config.data.mean_std();
    let normalizer = Normalizer::new(&mean, &std, device);
    let memory = LabelledImages {
        images: splits.memory(),
        normalizer: &normalizer,
    };
    let held_out = LabelledImages {
        images: &splits.held_out,
        normalizer: &normalizer,
    };
    let build = || loaded.build(device, Some(channels), request.random_init);
    let rows = run_protocols(
        build,
        |m| m.backbone(),
        &memory,
        &held_out,
        &loaded.config.eval,
    )?;
    let mut metrics = MetricsCsv::open(&loaded.run.dir.file("metrics.csv"))?;
    let suffix = if request.random_init {
        "_random_init"
    } else {
        ""
    };
    for row in &rows {
        metrics.write(0, 0, "eval", &format!("{}{suffix}", row.key), row.value)?;
    }
    Ok(EvalReport {
        run: loaded.run.dir.path().to_path_buf(),
        which: if request.random_init {
            "random init"
        } else {
            "last checkpoint"
        },
        held_out: splits.held_out.len(),
        rows,
    })
}

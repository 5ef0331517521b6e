//! What a checkpoint holds, under name prefixes: the model (`model.`), the
//! optimizer (`optim.`), the method's own state (`method.`: teachers,
//! queues), the online probe (`probe.`) and the loop's counters
//! (`trainer.`). Everything a resumed run needs to continue bit for bit is
//! here, so the final checkpoint of a resumed run equals an uninterrupted one.

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::method::Method;
use crate::online_probe::OnlineProbe;
use crate::run_dir::RunDir;
use selfsup_core::optim::Optimizer;
use std::path::Path;
use tch::nn::VarStore;
use tch::Tensor;

/// Prefix of the model's variables in a checkpoint.
pub const MODEL_PREFIX: &str = "model.";
const OPTIM: &str = "optim.";
const METHOD: &str = "method.";
const PROBE: &str = "probe.";
const STEP: &str = "trainer.step";
const BEST: &str = "trainer.best_score";
const EPOCH_LOSS: &str = "trainer.epoch_loss_sum";
const EPOCH_STEPS: &str = "trainer.epoch_steps";

/// The loop's counters.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counters {
    /// Optimizer steps done.
    pub step: usize,
    /// The best epoch score so far (probe accuracy, or minus the epoch loss).
    pub best_score: f64,
    /// Sum of this epoch's step losses read back so far.
    pub epoch_loss_sum: f64,
    /// Steps of this epoch read back so far.
    pub epoch_steps: usize,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            step: 0,
            best_score: f64::NEG_INFINITY,
            epoch_loss_sum: 0.0,
            epoch_steps: 0,
        }
    }
}

/// Everything a checkpoint is made of.
pub(super) struct Snapshot<'a> {
    pub vs: &'a VarStore,
    pub optimizer: &'a dyn Optimizer,
    pub method: &'a dyn Method,
    pub probe: Option<&'a OnlineProbe>,
    pub counters: Counters,
}

fn prefixed(
    prefix: &str,
    named: Vec<(String, Tensor)>,
) -> impl Iterator<Item = (String, Tensor)> + '_ {
    named
        .into_iter()
        .map(move |(n, t)| (format!("{prefix}{n}"), t))
}

/// Writes checkpoint `name` (`last` or `best`) atomically into `run`;
/// refuses (keeping the previous one) when a weight is NaN or infinite.
pub(super) fn save(run: &RunDir, snapshot: &Snapshot<'_>, name: &str) -> Result<()> {
    if !all_finite(snapshot.vs) {
        return Err(Error::NonFiniteWeights {
            step: snapshot.counters.step,
        });
    }
    let mut tensors = checkpoint::named_variables(snapshot.vs, MODEL_PREFIX);
    tensors.extend(prefixed(OPTIM, snapshot.optimizer.state()));
    tensors.extend(prefixed(METHOD, snapshot.method.state()));
    if let Some(probe) = snapshot.probe {
        tensors.extend(prefixed(PROBE, probe.state()));
    }
    let counters = snapshot.counters;
    tensors.push((STEP.into(), Tensor::from(counters.step as i64)));
    tensors.push((BEST.into(), Tensor::from(counters.best_score)));
    tensors.push((EPOCH_LOSS.into(), Tensor::from(counters.epoch_loss_sum)));
    tensors.push((
        EPOCH_STEPS.into(),
        Tensor::from(counters.epoch_steps as i64),
    ));
    checkpoint::save_atomic(&run.checkpoints(), name, &tensors)?;
    Ok(())
}

/// Whether every variable of `vs` is finite (one host sync).
fn all_finite(vs: &VarStore) -> bool {
    let checks: Vec<Tensor> = vs
        .trainable_variables()
        .iter()
        .map(|t| t.isfinite().all())
        .collect();
    checks.is_empty() || Tensor::stack(&checks, 0).all().int64_value(&[]) == 1
}

/// Restores a checkpoint written by [`save`] into the model, optimizer and
/// method; returns the counters and the online probe, if one was saved.
pub(super) fn restore(
    path: &Path,
    vs: &VarStore,
    optimizer: &mut dyn Optimizer,
    method: &mut dyn Method,
) -> Result<(Counters, Option<OnlineProbe>)> {
    let saved = checkpoint::load(path)?;
    checkpoint::restore_variables(vs, MODEL_PREFIX, &saved, path)?;
    let strip = |prefix: &str| -> Vec<(String, Tensor)> {
        saved
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(prefix)
                    .map(|n| (n.to_string(), t.shallow_clone()))
            })
            .collect()
    };
    optimizer.load_state(&strip(OPTIM))?;
    method.load_state(&strip(METHOD))?;
    let probe = OnlineProbe::restore(&strip(PROBE), vs.device())?;
    let counters = read_counters(&saved, path)?;
    tracing::info!(step = counters.step, checkpoint = %path.display(), "resuming");
    Ok((counters, probe))
}

/// The trainer's counters in `saved`: each a finite scalar (a crafted or
/// damaged checkpoint with a vector there is an error naming the key, not
/// a panic), the step a whole number.
fn read_counters(saved: &[(String, Tensor)], path: &Path) -> Result<Counters> {
    let invalid = |problem: String| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, problem),
        )
    };
    let find = |key: &str| -> Result<Option<f64>> {
        let Some((_, t)) = saved.iter().find(|(n, _)| n == key) else {
            return Ok(None);
        };
        if t.numel() != 1 {
            return Err(invalid(format!(
                "`{key}` has shape {:?}; a counter is one number",
                t.size()
            )));
        }
        let value = t
            .reshape([])
            .f_double_value(&[])
            .map_err(|e| invalid(format!("`{key}`: {e}")))?;
        Ok(Some(value))
    };
    let step = find(STEP)?.ok_or_else(|| invalid(format!("no `{STEP}` entry")))?;
    if !(step >= 0.0 && step.fract() == 0.0 && step < 1e15) {
        return Err(invalid(format!("`{STEP}` is {step}, not a step count")));
    }
    let epoch_steps = find(EPOCH_STEPS)?.unwrap_or(0.0);
    if !(0.0..1e15).contains(&epoch_steps) {
        return Err(invalid(format!(
            "`{EPOCH_STEPS}` is {epoch_steps}, not a step count"
        )));
    }
    Ok(Counters {
        step: step as usize,
        best_score: find(BEST)?.unwrap_or(f64::NEG_INFINITY),
        epoch_loss_sum: find(EPOCH_LOSS)?.unwrap_or(0.0),
        epoch_steps: epoch_steps as usize,
    })
}

/// Checks, without changing anything, that the checkpoint at `path` can
/// resume a run of the model in `vs`: every model variable present with its
/// shape, the counters readable. `--resume` calls it before it touches the
/// run folder, so a run that cannot resume is left as it was.
pub fn check_resumable(vs: &VarStore, path: &Path) -> Result<()> {
    let saved = checkpoint::load(path)?;
    checkpoint::check_variables(vs, MODEL_PREFIX, &saved, path)?;
    read_counters(&saved, path).map(|_| ())
}

/// Loads the model variables of the checkpoint at `path` into `vs` (every
/// variable must be there with its shape): how evaluation, export and
/// generation read a trained run.
pub fn restore_model(vs: &VarStore, path: &Path) -> Result<()> {
    checkpoint::restore_variables(vs, MODEL_PREFIX, &checkpoint::load(path)?, path)
}

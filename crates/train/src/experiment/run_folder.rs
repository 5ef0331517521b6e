//! Run folders as an experiment sees them: one to train into (new, or the
//! one being resumed), and a finished one to evaluate, export or sample from.

use crate::batch::Batch;
use crate::check;
use crate::error::{Error, Result};
use crate::method::Method;
use crate::run_dir::RunDir;
use crate::trainer::{check_resumable, restore_model};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

/// Where a run goes.
#[derive(Debug, Clone, Default)]
pub struct RunStart {
    /// Parent folder of new run folders (`--runs`).
    pub runs: PathBuf,
    /// Continue the run in this folder from its last checkpoint (`--resume`).
    pub resume: Option<PathBuf>,
}

/// Creates the run folder (or opens the resumed one) and writes the
/// resolved config into it; returns the folder and, when resuming, the
/// checkpoint to continue from. Call it last, once everything that can
/// fail on bad input has been checked: a run that cannot start leaves no folder.
/// Only rank 0 of a data-parallel run writes: the others get the resumed
/// folder to read from, or a folder name that is never created. On resume
/// the checkpoint is checked against the model in `vs` first
/// ([`check_resumable`]): a run that cannot resume (a `--set` that changed a
/// shape) keeps its config, metrics and checkpoints as they were.
pub fn start_run(
    start: &RunStart,
    name: &str,
    resolved_config: &str,
    vs: &VarStore,
) -> Result<(RunDir, Option<PathBuf>)> {
    let checkpoint = |run: &RunDir| {
        start
            .resume
            .as_ref()
            .map(|_| run.checkpoints().join("last.safetensors"))
    };
    if !crate::distributed::is_primary() {
        let run = match &start.resume {
            Some(dir) => RunDir::open(dir)?,
            None => RunDir::unwritten(
                &start
                    .runs
                    .join(format!("{name}-rank{}", crate::distributed::rank())),
            ),
        };
        let resume = checkpoint(&run);
        return Ok((run, resume));
    }
    let run = match &start.resume {
        Some(dir) => {
            let run = RunDir::open(dir)?;
            check_resumable(vs, &run.checkpoints().join("last.safetensors"))?;
            run
        }
        None => RunDir::create(&start.runs, name)?,
    };
    let config_file = run.file("config.toml");
    std::fs::write(&config_file, resolved_config).map_err(|e| Error::io(&config_file, e))?;
    let resume = checkpoint(&run);
    Ok((run, resume))
}

/// One evaluation-mode step of `method` on `batch`, without gradients: a
/// model that cannot read the data (sizes, channels) fails here, with
/// libtorch's message, before a run folder exists. It changes no weight,
/// buffer or queue. `doing` says what was tried, for the message.
pub fn try_one_step(method: &mut dyn Method, batch: &Batch, doing: &str) -> Result<()> {
    let step = || {
        let _no_grad = tch::no_grad_guard();
        method.step(batch, false).map(|_| ())
    };
    check::guard("method", doing, step)
}

/// A finished (or interrupted) run's folder: its config and its checkpoint.
#[derive(Debug, Clone)]
pub struct TrainedRun {
    /// The folder.
    pub dir: RunDir,
    /// The text of its `config.toml`.
    pub config_text: String,
    /// The config file's path, for messages.
    pub config_origin: String,
}

impl TrainedRun {
    /// Opens the run folder at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let dir = RunDir::open(path)?;
        let config_file = dir.file("config.toml");
        let config_text =
            std::fs::read_to_string(&config_file).map_err(|e| Error::io(&config_file, e))?;
        Ok(Self {
            dir,
            config_origin: config_file.display().to_string(),
            config_text,
        })
    }

    /// The last checkpoint's path.
    pub fn last_checkpoint(&self) -> PathBuf {
        self.dir.checkpoints().join("last.safetensors")
    }

    /// Loads the last checkpoint's model into `vs`.
    pub fn restore_model(&self, vs: &VarStore) -> Result<()> {
        restore_model(vs, &self.last_checkpoint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-layer model; its initialisation draws from libtorch's
    /// generator, so callers hold `lock_torch_rng` (other tests seed it).
    fn model(width: i64) -> VarStore {
        let vs = VarStore::new(tch::Device::Cpu);
        let _ = tch::nn::linear(vs.root() / "layer", 3, width, Default::default());
        vs
    }

    fn save_checkpoint(run: &RunDir, vs: &VarStore, step: tch::Tensor) {
        let mut tensors = crate::checkpoint::named_variables(vs, crate::trainer::MODEL_PREFIX);
        tensors.push(("trainer.step".into(), step));
        crate::checkpoint::save_atomic(&run.checkpoints(), "last", &tensors).unwrap();
    }

    #[test]
    fn a_new_run_gets_its_config_and_a_resumed_one_its_checkpoint() {
        let _rng = crate::testing::lock_torch_rng();
        let parent = tempfile::tempdir().unwrap();
        let start = RunStart {
            runs: parent.path().into(),
            resume: None,
        };
        let vs = model(4);
        let (run, checkpoint) = start_run(&start, "toy", "name = \"toy\"\n", &vs).unwrap();
        assert!(checkpoint.is_none());
        let opened = TrainedRun::open(run.path()).unwrap();
        assert_eq!(opened.config_text, "name = \"toy\"\n");
        save_checkpoint(&run, &vs, tch::Tensor::from(7i64));
        let resume = RunStart {
            runs: parent.path().into(),
            resume: Some(run.path().into()),
        };
        let (again, checkpoint) = start_run(&resume, "toy", "name = \"toy\"\n", &vs).unwrap();
        assert_eq!(again.path(), run.path());
        assert_eq!(
            checkpoint.unwrap(),
            run.checkpoints().join("last.safetensors")
        );
        let error = TrainedRun::open(&parent.path().join("nothing"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a run folder"), "{error}");
    }

    #[test]
    fn a_resume_that_cannot_load_leaves_the_run_folder_untouched() {
        let _rng = crate::testing::lock_torch_rng();
        let parent = tempfile::tempdir().unwrap();
        let start = RunStart {
            runs: parent.path().into(),
            resume: None,
        };
        let vs = model(4);
        let (run, _) = start_run(&start, "toy", "width = 4\n", &vs).unwrap();
        save_checkpoint(&run, &vs, tch::Tensor::from(7i64));
        let resume = RunStart {
            resume: Some(run.path().into()),
            ..start
        };
        // A `--set` that changed a shape.
        let error = start_run(&resume, "toy", "width = 5\n", &model(5))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("model.layer.bias") && error.contains("shape [4], the model [5]"),
            "{error}"
        );
        assert_eq!(
            std::fs::read_to_string(run.file("config.toml")).unwrap(),
            "width = 4\n"
        );
        // A crafted checkpoint whose step is a vector: an error, not a panic.
        save_checkpoint(&run, &vs, tch::Tensor::from_slice(&[1i64, 2, 3]));
        let error = start_run(&resume, "toy", "width = 4\n", &vs)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`trainer.step` has shape [3]"), "{error}");
        save_checkpoint(&run, &vs, tch::Tensor::from(-2.5f64));
        let error = start_run(&resume, "toy", "width = 4\n", &vs)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a step count"), "{error}");
    }
}

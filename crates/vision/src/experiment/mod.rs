//! The vision experiment behind `selfsup train vision-<method>`: read and
//! check the config, load the data, build the method, then (in a new run
//! folder) k-NN of the random-init encoder, pretraining, k-NN again, the
//! method's pictures and `summary.toml`. Everything that can fail on user
//! input fails in [`Experiment::prepare`], before the run folder exists.
//! `evaluate.rs` holds `selfsup eval`'s protocols, `export.rs` the export.

mod evaluate;
mod export;
mod finetune;
mod loaded;

pub use evaluate::{evaluate, EvalReport, EvalRequest};
pub use export::export;
pub use finetune::{finetune_images, ImageFinetuneReport};

use crate::data::{recipes, ImageSource, LabelledImages, Normalizer, Splits};
use crate::registry::{VisionContext, VisionMethod, VisionRegistry, VisionRunConfig};
use crate::Result;
use selfsup_data::views::ViewRecipe;
use selfsup_train::check;
use selfsup_train::device::parse_device;
use selfsup_train::eval::knn_accuracy;
use selfsup_train::experiment::{fit_and_compare, start_run, write_summary, Fitting, RunStart};
use selfsup_train::run_dir::RunDir;
use selfsup_train::trainer::FitReport;
use selfsup_train::{BatchSource, Trainer};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

/// What `selfsup train <vision task>` was asked to do.
pub struct TrainRequest<'a> {
    /// The task's name, for the report (`vision-mae`).
    pub task: &'a str,
    /// The config's text and where it came from (for messages).
    pub config_text: &'a str,
    /// The config's origin, e.g. `configs/vision/mae-mnist.toml (built in)`.
    pub origin: &'a str,
    /// `--set key=value` overrides.
    pub overrides: &'a [String],
    /// `--data <format>`: replaces `data.dataset`.
    pub dataset: Option<&'a str>,
    /// `--data-dir <folder>`: replaces `data.path`.
    pub data_dir: Option<&'a Path>,
    /// Where the run folder goes, or which one to resume.
    pub start: RunStart,
    /// Installs a standard set (`mnist`, `cifar10`, …) that is not on disk and
    /// returns its folder (the CLI downloads it with a progress bar).
    pub fetch: &'a dyn Fn(&str) -> Result<PathBuf>,
}

/// A vision run, checked and ready: its data, method and run folder.
pub struct Experiment {
    task: String,
    config: VisionRunConfig,
    splits: Splits,
    normalizer: Normalizer,
    recipes: Vec<ViewRecipe>,
    vs: VarStore,
    method: Box<dyn VisionMethod>,
    run: RunDir,
    resume: Option<PathBuf>,
}

/// What a vision run reports.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// The task.
    pub task: String,
    /// The data's folder.
    pub data_path: PathBuf,
    /// Training images.
    pub train_images: usize,
    /// Held-out images (k-NN's queries).
    pub held_out_images: usize,
    /// The training loop's report.
    pub fit: FitReport,
    /// k-NN top-1 of the trained encoder (0–1).
    pub knn: f64,
    /// k-NN top-1 of the same encoder at its random initialisation.
    pub knn_random_init: f64,
    /// k-NN's neighbours and temperature.
    pub knn_k: usize,
    /// k-NN's temperature.
    pub knn_temperature: f64,
    /// The run folder.
    pub run: PathBuf,
    /// Plots and pictures written.
    pub pictures: Vec<PathBuf>,
}

/// `summary.toml`: the numbers a benchmark compares.
#[derive(Serialize)]
struct Summary<'a> {
    task: &'a str,
    steps: usize,
    train_seconds: f64,
    images_per_second: f64,
    data_wait_share: f64,
    first_loss: f64,
    final_loss: f64,
    knn_top1: f64,
    knn_top1_random_init: f64,
}

impl Experiment {
    /// Parses and checks the config, loads the data, builds the method and
    /// tries one step on two images; then creates (or reopens) the run
    /// folder. An error here leaves no run folder behind.
    pub fn prepare(registry: &VisionRegistry, request: TrainRequest<'_>) -> Result<Self> {
        let mut overrides = request.overrides.to_vec();
        if let Some(dataset) = request.dataset {
            overrides.push(format!("data.dataset=\"{dataset}\""));
        }
        let mut config: VisionRunConfig =
            registry.parse_run(request.config_text, request.origin, &overrides)?;
        config.data.path = data_folder(&config, request.data_dir, request.fetch)?;
        let device = parse_device(&config.trainer.device)?;
        let splits = config.data.load_splits()?;
        let channels = splits.train.channels();
        let (mean, std) = config.data.mean_std();
        if mean.len() != channels {
            let message = format!("{} values for images of {channels} channel(s)", mean.len());
            return Err(check::invalid("data.mean", message).into());
        }
        let recipes = recipes(&config.data.views, channels)?;
        config.eval.validate_for(splits.memory().len())?;
        let trainer = Trainer::of(&config);
        trainer.schedule(splits.train.len())?;
        tch::manual_seed(config.trainer.seed as i64);
        let vs = VarStore::new(device);
        let context = VisionContext {
            channels: Some(channels as i64),
        };
        let mut method = config.method.build(vs.root(), &context)?;
        check_sizes(&config, &splits, method.backbone_spec().0.min_input_size())?;
        let normalizer = Normalizer::new(&mean, &std, device);
        let source = ImageSource {
            images: &splits.train,
            normalizer: &normalizer,
            recipes: recipes.clone(),
            seed: config.trainer.seed,
        };
        try_one_step(method.as_mut(), &source)?;
        // A misspelt `optim.lr_scales` path fails here, before the run folder.
        selfsup_train::optimizer::param_groups(&vs, &config.optim)?;
        let (run, resume) = start_run(&request.start, &config.name, &config.to_toml()?, &vs)?;
        Ok(Self {
            task: request.task.to_string(),
            config,
            splits,
            normalizer,
            recipes,
            vs,
            method,
            run,
            resume,
        })
    }

    /// The run folder (for the log file).
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// Trains between two k-NN evaluations and writes the summary and pictures.
    pub fn run(mut self) -> Result<TrainReport> {
        let trainer = Trainer::of(&self.config);
        let steps_per_epoch = trainer.schedule(self.splits.train.len())?.steps_per_epoch;
        let memory = LabelledImages {
            images: self.splits.memory(),
            normalizer: &self.normalizer,
        };
        let held_out = LabelledImages {
            images: &self.splits.held_out,
            normalizer: &self.normalizer,
        };
        let source = ImageSource {
            images: &self.splits.train,
            normalizer: &self.normalizer,
            recipes: self.recipes.clone(),
            seed: self.config.trainer.seed,
        };
        let eval = &self.config.eval;
        let fitting = Fitting {
            trainer: &trainer,
            method: self.method.as_mut(),
            vs: &self.vs,
            source: &source,
            run: &self.run,
            resume: self.resume.as_deref(),
        };
        let comparison = fit_and_compare(fitting, |method, metrics, stage| {
            let knn = knn_accuracy(method.backbone(), &memory, &held_out, eval)?;
            let epoch = stage.step() / steps_per_epoch;
            metrics.write(stage.step(), epoch, "eval", &stage.metric("knn_top1"), knn)?;
            tracing::info!(knn_top1 = knn, stage = ?stage, "k-NN");
            Ok(knn)
        })?;
        drop(source);
        self.finish(
            comparison.report,
            comparison.random_init,
            comparison.trained,
            comparison.plots,
        )
    }

    fn finish(
        &self,
        fit: FitReport,
        random_init: f64,
        trained: f64,
        plots: Vec<PathBuf>,
    ) -> Result<TrainReport> {
        let summary = Summary {
            task: &self.task,
            steps: fit.steps,
            train_seconds: fit.seconds,
            images_per_second: fit.units_per_second,
            data_wait_share: fit.data_wait_share,
            first_loss: fit.first_loss,
            final_loss: fit.final_loss,
            knn_top1: trained,
            knn_top1_random_init: random_init,
        };
        write_summary(&self.run, &summary)?;
        let pictures = match selfsup_train::distributed::is_primary() {
            true => self.write_pictures()?,
            false => Vec::new(),
        };
        Ok(TrainReport {
            task: self.task.clone(),
            data_path: self.config.data.path.clone(),
            train_images: self.splits.train.len(),
            held_out_images: self.splits.held_out.len(),
            fit,
            knn: trained,
            knn_random_init: random_init,
            knn_k: self.config.eval.knn_k,
            knn_temperature: self.config.eval.knn_temperature,
            run: self.run.path().to_path_buf(),
            pictures: plots.into_iter().chain(pictures).collect(),
        })
    }
}

impl Experiment {
    /// The method's pictures of the first held-out images.
    fn write_pictures(&self) -> Result<Vec<PathBuf>> {
        let shown: Vec<usize> = (0..self.splits.held_out.len().min(8)).collect();
        let images = self.normalizer.apply(&self.splits.held_out.gather(&shown)?);
        self.method
            .write_pictures(&images, &self.normalizer, self.run.path())
    }
}

/// Every view (or, without views, every image) is at least `min` pixels a
/// side, the least the backbone reads.
fn check_sizes(config: &VisionRunConfig, splits: &Splits, min: usize) -> Result<()> {
    for (i, view) in config.data.views.iter().enumerate() {
        if view.size < min {
            let message = format!("{} px, but the backbone needs at least {min}", view.size);
            return Err(check::invalid(&format!("data.views[{i}].size"), message).into());
        }
    }
    let (height, width) = splits.train.size();
    if config.data.views.is_empty() && height.min(width) < min {
        let message =
            format!("reads images of at least {min} px a side; these are {height}x{width}");
        return Err(check::invalid("method.backbone", message).into());
    }
    Ok(())
}

/// One evaluation-mode step on two training images (see `train::experiment::try_one_step`).
fn try_one_step(method: &mut dyn VisionMethod, source: &ImageSource<'_>) -> Result<()> {
    let count = source.len().min(2);
    let batch = source.batch(0, &(0..count).collect::<Vec<_>>())?;
    selfsup_train::experiment::try_one_step(method, &batch, "a first step on two training images")?;
    Ok(())
}

/// The data's folder: `--data-dir`, else the config's path, else (for a
/// standard set that is not on disk) the cached copy, fetched if needed.
fn data_folder(
    config: &VisionRunConfig,
    data_dir: Option<&Path>,
    fetch: &dyn Fn(&str) -> Result<PathBuf>,
) -> Result<PathBuf> {
    if let Some(dir) = data_dir {
        return Ok(dir.to_path_buf());
    }
    let path = &config.data.path;
    let standard = selfsup_data::download::lookup(config.data.dataset.name()).is_ok();
    if path.exists() || !standard {
        return Ok(path.clone());
    }
    fetch(config.data.dataset.name())
}

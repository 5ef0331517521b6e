//! `selfsup train <task>`: pretrain, then evaluate the encoder with k-NN on the
//! held-out split, next to the same encoder at its random initialisation.

use crate::eval::{knn_accuracy, load_data};
use crate::{logging, tasks};
use anyhow::{Context, Result};

use selfsup_train::image_data::{parse_device, ImageSource};
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::view_config::recipes;
use selfsup_train::{FeatureExtractor, RunConfig, Trainer};
use selfsup_vision::VisionMethodConfig;
use std::path::PathBuf;
use tch::nn::VarStore;

/// Arguments of `selfsup train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The task, e.g. `vision-mae` (`selfsup tasks` lists them).
    pub(crate) task: String,
    /// A config file to use instead of the task's built-in default.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Override a config value, e.g. `--set trainer.epochs=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Which built-in config of the task: `mnist` (the default, bundled
    /// data), `cifar10` (the published recipe, for a GPU) or `cifar10-cpu`
    /// (a 2-core budget).
    #[arg(long, conflicts_with = "config")]
    pub(crate) recipe: Option<String>,
    /// Vision: the data set's format (replaces `data.dataset`): mnist,
    /// cifar10, cifar100, stl10, imagefolder; picks the task's recipe of that
    /// name, if it has one and `--recipe` is not given. Text: a text file or
    /// folder to train on (replaces `data.path`).
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// Folder holding the data set's files (replaces `data.path`).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint, with its config.
    #[arg(long, value_name = "RUN_FOLDER", conflicts_with = "config")]
    pub(crate) resume: Option<PathBuf>,
    /// Parent folder of run folders.
    #[arg(long, default_value_os_t = crate::default_runs_dir())]
    pub(crate) runs: PathBuf,
}

/// `summary.toml` in the run folder: the numbers a benchmark compares.
#[derive(serde::Serialize)]
struct Summary {
    task: String,
    steps: usize,
    train_seconds: f64,
    images_per_second: f64,
    data_wait_share: f64,
    first_loss: f64,
    final_loss: f64,
    knn_top1: f64,
    knn_top1_random_init: f64,
}

/// A vision run's config.
pub type VisionRunConfig = RunConfig<VisionMethodConfig>;

/// Parses a vision config with overrides.
pub fn parse_config(text: &str, origin: &str, overrides: &[String]) -> Result<VisionRunConfig> {
    Ok(RunConfig::parse(text, origin, overrides)?)
}

/// Runs `selfsup train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let task = tasks::find(&args.task)?;
    let resumed_config = args.resume.as_ref().map(|dir| dir.join("config.toml"));
    let (text, origin) = match resumed_config.as_ref().or(args.config.as_ref()) {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            (text, path.display().to_string())
        }
        None => {
            let recipe = match (&args.recipe, &args.data) {
                (None, Some(data)) => task
                    .recipe_for_data(data)
                    .map_or_else(|| task.recipe(None), Ok)?,
                (name, _) => task.recipe(name.as_deref())?,
            };
            (
                recipe.text.to_string(),
                format!("{} (built in)", recipe.path),
            )
        }
    };
    if task.kind == tasks::Kind::Text {
        return crate::text_train::run(&args, &text, &origin);
    }
    let mut overrides = args.set.clone();
    if let Some(dataset) = &args.data {
        overrides.push(format!("data.dataset=\"{dataset}\""));
    }
    let mut config = parse_config(&text, &origin, &overrides)?;
    if let Some(dir) = &args.data_dir {
        config.data.path = dir.clone();
    } else if !config.data.path.exists() {
        // A standard set not on disk: use the cache, fetching it if needed.
        if let Ok(set) = selfsup_data::download::lookup(config.data.dataset.name()) {
            config.data.path = crate::data::fetch(set, None)?;
        }
    }
    let device =
        parse_device(&config.trainer.device).map_err(|e| anyhow::anyhow!("trainer.device: {e}"))?;
    // Data first: a run that cannot start leaves no run folder behind.
    let data = load_data(&config, device)?;
    let view_recipes = recipes(&config.data.views, data.train.image_shape().2)?;
    let run = match &args.resume {
        Some(dir) => RunDir::open(dir)?,
        None => RunDir::create(&args.runs, &config.name)?,
    };
    logging::init_with_file(&run.file("train.log"));
    let config_file = run.file("config.toml");
    std::fs::write(&config_file, config.to_toml())
        .with_context(|| format!("writing {}", config_file.display()))?;
    tracing::info!(task = task.name, run = %run.path().display(), ?device, "starting");

    let (train, held_out, normalizer) = (&data.train, &data.held_out, &data.normalizer);
    tracing::info!(train = train.len(), held_out = held_out.len(), "data");
    let source = ImageSource {
        images: train,
        normalizer,
        recipes: view_recipes,
        seed: config.trainer.seed,
    };

    tch::manual_seed(config.trainer.seed as i64);
    let vs = VarStore::new(device);
    let mut method = config.method.build(vs.root());
    let knn = |extractor: &dyn FeatureExtractor| knn_accuracy(extractor, &data, &config);
    let random_init = knn(method.backbone());
    tracing::info!(knn_top1 = random_init, "random-init encoder");

    let mut metrics = MetricsCsv::open(&run.file("metrics.csv"))?;
    let trainer = Trainer {
        config: config.trainer.clone(),
        optim: config.optim.clone(),
    };
    let checkpoint = run.checkpoints().join("last.safetensors");
    let resume = args.resume.is_some().then_some(checkpoint.as_path());
    let report = trainer.fit(method.as_mut(), &vs, &source, &run, &mut metrics, resume)?;
    let trained = knn(method.backbone());
    metrics.write(
        report.steps,
        config.trainer.epochs,
        "eval",
        "knn_top1",
        trained,
    )?;
    metrics.write(0, 0, "eval", "knn_top1_random_init", random_init)?;

    let summary = Summary {
        task: task.name.to_string(),
        steps: report.steps,
        train_seconds: report.seconds,
        images_per_second: report.images_per_second,
        data_wait_share: report.data_wait_share,
        first_loss: report.first_loss,
        final_loss: report.final_loss,
        knn_top1: trained,
        knn_top1_random_init: random_init,
    };
    let summary_file = run.file("summary.toml");
    let text = toml::to_string(&summary).context("writing the run summary")?;
    std::fs::write(&summary_file, text)
        .with_context(|| format!("writing {}", summary_file.display()))?;

    let plots = selfsup_train::plots::plot_metrics(&run.file("metrics.csv"), run.path())?;
    let shown: Vec<usize> = (0..held_out.len().min(8)).collect();
    let pictures = method.write_pictures(
        &normalizer.apply(&held_out.gather(&shown)),
        normalizer,
        run.path(),
    )?;

    println!();
    println!(
        "{} on {} ({} train / {} held-out images)",
        task.name,
        config.data.path.display(),
        train.len(),
        held_out.len()
    );
    println!(
        "  pretraining: {} steps in {:.0} s ({:.0} images/s, {:.0} % waiting for data), loss {:.4} -> {:.4}",
        report.steps,
        report.seconds,
        report.images_per_second,
        report.data_wait_share * 100.0,
        report.first_loss,
        report.final_loss
    );
    println!(
        "  k-NN top-1 on held-out (k = {}, T = {}):",
        config.eval.knn_k, config.eval.knn_temperature
    );
    println!(
        "    {:<28} {:>6.2} %",
        format!("{} (trained)", task.name),
        trained * 100.0
    );
    println!(
        "    {:<28} {:>6.2} %",
        "same encoder, random init",
        random_init * 100.0
    );
    println!("  run folder: {}", run.path().display());
    for file in plots.into_iter().chain(pictures) {
        println!("  picture:    {}", file.display());
    }
    Ok(())
}

//! `selfsup eval <run folder>`: the protocols papers report, on the run's last
//! checkpoint (or, with `--random-init`, on the same encoder at initialisation):
//! weighted k-NN, a linear probe on frozen features, and fine-tuning on
//! class-balanced fractions of the labels.

use crate::train::{parse_config, VisionRunConfig};
use anyhow::{Context, Result};
use selfsup_data::sampler::balanced_subset;
use selfsup_data::ImageDataset;
use selfsup_train::checkpoint;
use selfsup_train::eval::{extract_features, fine_tune, knn_top1, linear_probe};
use selfsup_train::image_data::{parse_device, Normalizer};
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::FeatureExtractor;
use selfsup_vision::VisionMethod;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Arguments of `selfsup eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// The run folder (holds config.toml and checkpoints/last.safetensors).
    run: PathBuf,
    /// Evaluate the encoder at its random initialisation instead of the checkpoint.
    #[arg(long)]
    random_init: bool,
    /// Override a config value, e.g. `--set eval.fine_tune.fractions=[0.1]`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// The data of a run: training and held-out splits, on `device`.
pub struct RunData {
    /// The training split (k-NN memory bank, probe and fine-tune training set).
    pub train: ImageDataset,
    /// The held-out split every protocol is scored on.
    pub held_out: ImageDataset,
    /// Device-side normalisation.
    pub normalizer: Normalizer,
}

/// Loads and splits the data a config names.
pub fn load_data(config: &VisionRunConfig, device: Device) -> Result<RunData> {
    let (train, held_out) = config.data.load_train_and_held_out().with_context(|| {
        format!(
            "loading the {:?} data in {}",
            config.data.dataset,
            config.data.path.display()
        )
    })?;
    let (mean, std) = config.data.mean_std();
    Ok(RunData {
        train,
        held_out,
        normalizer: Normalizer::new(&mean, &std, device),
    })
}

/// k-NN top-1 of `extractor`'s features: the training split is the memory bank.
pub fn knn_accuracy(
    extractor: &dyn FeatureExtractor,
    data: &RunData,
    config: &VisionRunConfig,
) -> f64 {
    let (train, test) = features(extractor, data, config);
    knn_top1(
        &train,
        &labels(&data.train),
        &test,
        &labels(&data.held_out),
        data.train.num_classes as i64,
        config.eval.knn_k as i64,
        config.eval.knn_temperature,
    )
}

fn features(
    extractor: &dyn FeatureExtractor,
    data: &RunData,
    config: &VisionRunConfig,
) -> (Tensor, Tensor) {
    let batch = config.eval.batch_size;
    (
        extract_features(extractor, &data.train, &data.normalizer, batch),
        extract_features(extractor, &data.held_out, &data.normalizer, batch),
    )
}

fn labels(data: &ImageDataset) -> Tensor {
    Tensor::from_slice(&data.labels)
}

/// Runs `selfsup eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    crate::logging::init_stderr();
    let run = RunDir::open(&args.run)?;
    let config_path = run.file("config.toml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config = parse_config(&text, &config_path.display().to_string(), &args.set)?;
    let device =
        parse_device(&config.trainer.device).map_err(|e| anyhow::anyhow!("trainer.device: {e}"))?;
    let data = load_data(&config, device)?;
    let checkpoint_path = run.checkpoints().join("last.safetensors");
    let saved = if args.random_init {
        None
    } else {
        Some(checkpoint::load(&checkpoint_path)?)
    };
    // A fresh model per protocol: fine-tuning changes the weights.
    let build = || -> Result<(VarStore, Box<dyn VisionMethod>)> {
        tch::manual_seed(config.trainer.seed as i64);
        let vs = VarStore::new(device);
        let method = config.method.build(vs.root());
        if let Some(saved) = &saved {
            checkpoint::restore_variables(&vs, "model.", saved, &checkpoint_path)?;
        }
        Ok((vs, method))
    };
    let which = if args.random_init {
        "random init"
    } else {
        "last checkpoint"
    };
    let mut rows: Vec<(String, f64)> = Vec::new();
    {
        let (_vs, method) = build()?;
        let (train_features, test_features) = features(method.backbone(), &data, &config);
        let (train_labels, test_labels) = (labels(&data.train), labels(&data.held_out));
        let classes = data.train.num_classes as i64;
        let knn = knn_top1(
            &train_features,
            &train_labels,
            &test_features,
            &test_labels,
            classes,
            config.eval.knn_k as i64,
            config.eval.knn_temperature,
        );
        rows.push((
            format!(
                "k-NN (k = {}, T = {})",
                config.eval.knn_k, config.eval.knn_temperature
            ),
            knn,
        ));
        tracing::info!(knn, "k-NN done; linear probe next");
        let probe = linear_probe(
            &train_features,
            &train_labels,
            &test_features,
            &test_labels,
            classes,
            &config.eval.linear_probe,
        );
        rows.push((
            format!("linear probe ({} epochs)", config.eval.linear_probe.epochs),
            probe,
        ));
    }
    for &fraction in &config.eval.fine_tune.fractions {
        tracing::info!(fraction, "fine-tuning");
        let (vs, method) = build()?;
        let subset = data.train.subset(&balanced_subset(
            &data.train.labels,
            fraction,
            config.eval.fine_tune.seed,
        ));
        let accuracy = fine_tune(
            method.backbone(),
            &vs,
            &subset,
            &data.held_out,
            &data.normalizer,
            &config.eval.fine_tune,
        );
        rows.push((
            format!(
                "fine-tune, {} % of labels ({} images)",
                fraction * 100.0,
                subset.len()
            ),
            accuracy,
        ));
    }
    let mut metrics = MetricsCsv::open(&run.file("metrics.csv"))?;
    let suffix = if args.random_init { "_random_init" } else { "" };
    println!(
        "\n{} ({which}), top-1 on {} held-out images",
        run.path().display(),
        data.held_out.len()
    );
    for (name, accuracy) in &rows {
        println!("  {name:<44} {:>6.2} %", accuracy * 100.0);
        let key: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        metrics.write(
            0,
            0,
            "eval",
            &format!("{}{suffix}", key.trim_matches('_')),
            *accuracy,
        )?;
    }
    Ok(())
}

//! `RunConfig`: one TOML file per recipe, typed, with unknown keys rejected and
//! `--set key=value` overrides checked the same way.

use crate::autocast::Precision;
use crate::error::{Error, Result};
use crate::image_data::DataConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A whole run: data, method (generic, so this crate never names methods),
/// optimizer, trainer and evaluation settings. `D` is the data section: image
/// data sets by default, a text corpus for the text methods.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig<M, D = DataConfig> {
    /// Short name; the run folder is `<runs>/<name>-<timestamp>`.
    pub name: String,
    /// Which data set and split.
    pub data: D,
    /// The method and its hyper-parameters (an enum tagged by `name` in the caller).
    pub method: M,
    /// Optimizer and learning-rate schedule.
    #[serde(default)]
    pub optim: OptimConfig,
    /// Loop settings.
    #[serde(default)]
    pub trainer: TrainerConfig,
    /// Evaluation settings.
    #[serde(default)]
    pub eval: EvalConfig,
}

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW (ViTs, MAE, text).
    Adamw,
    /// SGD with momentum.
    Sgd,
    /// LARS (large-batch SimCLR, MoCo v3 ResNets).
    Lars,
}

/// The optimizer with linear warmup and cosine decay (per step).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// `adamw`, `sgd` or `lars`.
    pub optimizer: OptimizerKind,
    /// Peak learning rate (after warmup).
    pub lr: f64,
    /// Learning rate at the end of the cosine.
    pub min_lr: f64,
    /// Decoupled weight decay (not applied to biases and norms).
    pub weight_decay: f64,
    /// When set, weight decay follows a cosine from `weight_decay` to this value
    /// over the run (DINO: 0.04 → 0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay_end: Option<f64>,
    /// AdamW β1.
    pub beta1: f64,
    /// AdamW β2.
    pub beta2: f64,
    /// SGD / LARS momentum.
    pub momentum: f64,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// LARS trust coefficient.
    pub trust_coefficient: f64,
    /// Warmup length in epochs (may be fractional).
    pub warmup_epochs: f64,
    /// Warmup length in optimizer steps; replaces `warmup_epochs` when set
    /// (nanoGPT counts iterations, not epochs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<usize>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adamw,
            momentum: 0.9,
            nesterov: false,
            trust_coefficient: 0.001,
            lr: 1.5e-4,
            min_lr: 0.0,
            weight_decay: 0.05,
            weight_decay_end: None,
            beta1: 0.9,
            beta2: 0.95,
            warmup_epochs: 1.0,
            warmup_steps: None,
        }
    }
}

/// How long and where to train.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Stop after this many optimizer steps (schedules span this budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
    /// Samples per optimizer step.
    pub batch_size: usize,
    /// Seeds the model init, the data order and every random op.
    pub seed: u64,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
    pub device: String,
    /// Log a metrics row every this many steps.
    pub log_every: usize,
    /// Also write the `last` checkpoint every this many steps (0: at epoch ends only).
    pub checkpoint_every: usize,
    /// Clip the global gradient norm to this value (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// Accumulate gradients over this many batches per optimizer step.
    pub accumulate: usize,
    /// `fp32`, or `bf16`: autocast the forward pass to bfloat16 (on CUDA, or
    /// CPU) while the optimizer keeps fp32 master weights.
    pub precision: Precision,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            max_steps: None,
            batch_size: 256,
            seed: 0,
            device: "auto".into(),
            log_every: 10,
            checkpoint_every: 0,
            grad_clip: None,
            accumulate: 1,
            precision: Precision::Fp32,
        }
    }
}

/// Evaluation on frozen features.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Neighbours in the weighted k-NN vote.
    pub knn_k: usize,
    /// Temperature of the k-NN vote weights `exp(sim / T)`.
    pub knn_temperature: f64,
    /// Batch size for feature extraction.
    pub batch_size: usize,
    /// The linear probe of `selfsup eval`.
    pub linear_probe: crate::eval::LinearProbeConfig,
    /// Fine-tuning on label fractions in `selfsup eval`.
    pub fine_tune: crate::eval::FineTuneConfig,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            knn_k: 200,
            knn_temperature: 0.1,
            batch_size: 512,
            linear_probe: Default::default(),
            fine_tune: Default::default(),
        }
    }
}

impl<M: DeserializeOwned + Serialize, D: DeserializeOwned + Serialize> RunConfig<M, D> {
    /// Parses `text` (from `origin`, a file name for messages), then applies
    /// `overrides` of the form `a.b=value`. Values parse as TOML (`3`, `0.5`,
    /// `true`, `[1, 2]`, `"text"`); anything else is taken as a string.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        let config_error = |origin: &str, message: String| Error::Config {
            origin: origin.to_string(),
            message,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| config_error(origin, e.to_string()))?;
        for spec in overrides {
            apply_override(&mut table, spec)
                .map_err(|m| config_error(&format!("--set {spec}"), m))?;
        }
        let origin = if overrides.is_empty() {
            origin.to_string()
        } else {
            format!("{origin} with --set overrides")
        };
        let resolved = toml::to_string(&table).map_err(|e| config_error(&origin, e.to_string()))?;
        serde_path_to_error::deserialize(toml::Deserializer::new(&resolved)).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            config_error(&origin, format!("{key}{}", e.into_inner().message()))
        })
    }

    /// The resolved config as TOML, as written into the run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config serialises")
    }
}

fn apply_override(table: &mut toml::Table, spec: &str) -> std::result::Result<(), String> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or("expected key=value, e.g. optim.lr=0.3")?;
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, parents) = parts.split_last().expect("split gives at least one part");
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` in `{key}` is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(tag = "name", deny_unknown_fields)]
    enum TestMethod {
        #[serde(rename = "toy")]
        Toy { width: usize },
    }

    const TEXT: &str = r#"
name = "toy-run"
[data]
dataset = "mnist"
path = "datasets/mnist"
split = "t10k"
held_out_every = 5
[method]
name = "toy"
width = 3
[trainer]
epochs = 2
"#;

    fn parse(text: &str, overrides: &[&str]) -> Result<RunConfig<TestMethod>> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        RunConfig::parse(text, "toy.toml", &overrides)
    }

    #[test]
    fn parses_with_defaults_and_round_trips() {
        let config = parse(TEXT, &[]).unwrap();
        assert_eq!(config.trainer.epochs, 2);
        assert_eq!(
            config.trainer.batch_size,
            TrainerConfig::default().batch_size
        );
        assert_eq!(config.method, TestMethod::Toy { width: 3 });
        let again = parse(&config.to_toml(), &[]).unwrap();
        assert_eq!(again.to_toml(), config.to_toml());
    }

    #[test]
    fn overrides_are_typed() {
        let config = parse(
            TEXT,
            &["optim.lr=0.3", "method.width=5", "trainer.device=cpu"],
        )
        .unwrap();
        assert_eq!(config.optim.lr, 0.3);
        assert_eq!(config.method, TestMethod::Toy { width: 5 });
        assert_eq!(config.trainer.device, "cpu");
        let err = parse(TEXT, &["trainer.epochs=many"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trainer.epochs") && err.contains("invalid type"),
            "{err}"
        );
        let err = parse(TEXT, &["trainer.epochs"]).unwrap_err().to_string();
        assert!(err.contains("key=value"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse(TEXT, &["trainer.epoch=3"]).unwrap_err().to_string();
        assert!(
            err.contains("trainer") && err.contains("unknown field `epoch`"),
            "{err}"
        );
        let bad_file = TEXT.replace("width = 3", "width = 3\ndepth = 2");
        let err = parse(&bad_file, &[]).unwrap_err().to_string();
        assert!(err.contains("toy.toml") && err.contains("depth"), "{err}");
        let err = parse("name = ", &[]).unwrap_err().to_string();
        assert!(err.contains("toy.toml"), "{err}");
    }
}

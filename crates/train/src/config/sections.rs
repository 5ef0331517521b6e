//! The modality-free sections of a run's config: `[optim]`, `[trainer]` and
//! `[eval]`, each with the paper-style defaults and a `validate` that names
//! the first bad key.

use crate::autocast::Precision;
use crate::check;
use crate::device::parse_device;
use crate::error::Result;
pub use crate::eval::EvalConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Learning-rate multipliers by module path: `{ predictor = 10.0 }`
    /// scales the lr of every variable under `predictor.` (the longest
    /// matching path wins). Short BYOL and SimSiam runs learn faster when
    /// their predictor adapts faster than the encoder it chases (the
    /// DirectPred analysis, and SimSiam's fixed predictor lr).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lr_scales: BTreeMap<String, f64>,
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
            lr_scales: BTreeMap::new(),
        }
    }
}

impl OptimConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<()> {
        check::positive("optim.lr", self.lr)?;
        check::non_negative("optim.min_lr", self.min_lr)?;
        check::non_negative("optim.weight_decay", self.weight_decay)?;
        if let Some(end) = self.weight_decay_end {
            check::non_negative("optim.weight_decay_end", end)?;
        }
        check::fraction_below_one("optim.beta1", self.beta1)?;
        check::fraction_below_one("optim.beta2", self.beta2)?;
        check::fraction_below_one("optim.momentum", self.momentum)?;
        check::positive("optim.trust_coefficient", self.trust_coefficient)?;
        for (path, &scale) in &self.lr_scales {
            check::positive(&format!("optim.lr_scales.{path}"), scale)?;
        }
        check::non_negative("optim.warmup_epochs", self.warmup_epochs)
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
    /// Samples per optimizer step (per rank in a data-parallel run, whose
    /// global batch is the world size times this).
    pub batch_size: usize,
    /// Seeds the model init, the data order and every random op.
    pub seed: u64,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
    pub device: String,
    /// Log a metrics row every this many steps; the loss is read back from
    /// the device (a sync) only then, at epoch ends and before checkpoints.
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
    /// Data-parallel runs: batch norm computes its training statistics over
    /// every rank's batch (`torch.nn.SyncBatchNorm`), so that N ranks of
    /// batch B normalise as one batch of N·B. No effect alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync_batch_norm: bool,
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
            sync_batch_norm: false,
        }
    }
}

impl TrainerConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<()> {
        check::at_least_one("trainer.epochs", self.epochs)?;
        if let Some(steps) = self.max_steps {
            check::at_least_one("trainer.max_steps", steps)?;
        }
        check::size("trainer.batch_size", self.batch_size)?;
        check::size("trainer.accumulate", self.accumulate)?;
        check::at_least_one("trainer.log_every", self.log_every)?;
        if let Some(norm) = self.grad_clip {
            check::positive("trainer.grad_clip", norm)?;
        }
        parse_device(&self.device).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        OptimConfig::default().validate().unwrap();
        TrainerConfig::default().validate().unwrap();
        EvalConfig::default().validate().unwrap();
        let optim = OptimConfig {
            lr: f64::NAN,
            ..Default::default()
        };
        assert!(optim
            .validate()
            .unwrap_err()
            .to_string()
            .contains("optim.lr"));
        let mut optim = OptimConfig::default();
        optim.lr_scales.insert("predictor".into(), 0.0);
        let error = optim.validate().unwrap_err().to_string();
        assert!(error.contains("optim.lr_scales.predictor"), "{error}");
        let trainer = TrainerConfig {
            batch_size: 0,
            ..Default::default()
        };
        let error = trainer.validate().unwrap_err().to_string();
        assert!(error.contains("trainer.batch_size"), "{error}");
        let trainer = TrainerConfig {
            device: "tpu".into(),
            ..Default::default()
        };
        let error = trainer.validate().unwrap_err().to_string();
        assert!(
            error.contains("trainer.device") && error.contains("tpu"),
            "{error}"
        );
        let eval = EvalConfig {
            knn_k: 0,
            ..Default::default()
        };
        assert!(eval
            .validate()
            .unwrap_err()
            .to_string()
            .contains("eval.knn_k"));
        let error = EvalConfig::default()
            .validate_for(50)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("eval.knn_k") && error.contains("50"),
            "{error}"
        );
    }
}

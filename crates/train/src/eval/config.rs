//! `[eval]`: the evaluation protocols' settings, kept with the protocols
//! (the config module re-exports it), so that `eval` needs nothing of
//! `config`.

use super::{FineTuneConfig, LinearProbeConfig};
use crate::check;
use crate::error::Result;
use serde::{Deserialize, Serialize};

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
    pub linear_probe: LinearProbeConfig,
    /// Fine-tuning on label fractions in `selfsup eval`.
    pub fine_tune: FineTuneConfig,
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

impl EvalConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<()> {
        check::size("eval.knn_k", self.knn_k)?;
        check::positive("eval.knn_temperature", self.knn_temperature)?;
        check::size("eval.batch_size", self.batch_size)?;
        self.linear_probe.validate("eval.linear_probe")?;
        self.fine_tune.validate("eval.fine_tune")
    }

    /// Checks the values that depend on the data: k-NN needs at least
    /// `knn_k` samples in its memory bank.
    pub fn validate_for(&self, memory_bank: usize) -> Result<()> {
        if self.knn_k > memory_bank {
            return Err(check::invalid(
                "eval.knn_k",
                format!(
                    "{} neighbours, but the k-NN memory bank has only {memory_bank} samples",
                    self.knn_k
                ),
            ));
        }
        Ok(())
    }
}

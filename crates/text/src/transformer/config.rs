//! The transformer's shape in a config (`[method.model]`) and how it
//! encodes positions: learned, fixed sinusoids or ALiBi's attention biases.

use selfsup_train::{check, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// How token positions are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// A learned embedding per position (GPT-2, BERT).
    #[default]
    Learned,
    /// Fixed sinusoids (the original Transformer).
    Sinusoidal,
    /// No position embedding: ALiBi's distance biases on the attention
    /// scores (Press et al., 2022), which start attention out local; the
    /// masked-LM defaults use them (see `selfsup_core::attention_mask`).
    Alibi,
}

/// Shape of the transformer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Longest sequence (nanoGPT's `block_size`).
    pub context: i64,
    /// Width.
    pub dim: i64,
    /// Blocks.
    pub depth: i64,
    /// Attention heads per block.
    pub heads: i64,
    /// MLP width as a multiple of `dim`.
    #[serde(default = "four")]
    pub mlp_ratio: f64,
    /// Dropout on embeddings, attention weights and residual branches (training only).
    #[serde(default)]
    pub dropout: f64,
    /// Learned or sinusoidal positions.
    #[serde(default)]
    pub positions: Positions,
}

fn four() -> f64 {
    4.0
}

impl TransformerConfig {
    /// Checks every value; `at` is the table's key (`method.model`).
    pub fn validate(&self, at: &str) -> Result<()> {
        let key = |field: &str| format!("{at}.{field}");
        check::size(&key("context"), self.context)?;
        // Even: sinusoidal positions pair the channels.
        check::transformer_shape(at, self.dim, self.heads, self.depth, self.mlp_ratio, 2)?;
        check::fraction_below_one(&key("dropout"), self.dropout)
    }
}

/// `[positions, dim]` sinusoids: sin on even channels, cos on odd ones.
pub fn sinusoids(positions: i64, dim: i64, device: tch::Device) -> Tensor {
    let position = Tensor::arange(positions, (Kind::Float, device)).unsqueeze(1);
    let rates = (Tensor::arange_start_step(0, dim, 2, (Kind::Float, device))
        * (-(10_000f64.ln()) / dim as f64))
        .exp();
    let angles = position * rates.unsqueeze(0); // [positions, dim / 2]
    Tensor::stack(&[angles.sin(), angles.cos()], 2).view([positions, dim])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn sinusoids_follow_the_formula() {
        let table = sinusoids(4, 6, Device::Cpu);
        // Position 3, channel pair 1: rate 10000^(-2/6).
        let rate = 10_000f64.powf(-2.0 / 6.0);
        let sin = table.double_value(&[3, 2]);
        let cos = table.double_value(&[3, 3]);
        assert!((sin - (3.0 * rate).sin()).abs() < 1e-6 && (cos - (3.0 * rate).cos()).abs() < 1e-6);
    }
}

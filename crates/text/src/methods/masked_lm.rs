//! Masked language modelling (BERT; Devlin et al., 2019): 15 % of the tokens
//! are selected, of those 80 % replaced by a mask token, 10 % by a random
//! token and 10 % left alone; a bidirectional transformer predicts the
//! originals at the selected positions only. The MLM head is BERT's: a dense
//! layer, GELU and LayerNorm, then the output projection tied to the token
//! embeddings plus a per-token bias.

use crate::registry::{Text, TextContext, TextMethod};
use crate::source::Objective;
use crate::transformer::{Transformer, TransformerConfig};
use selfsup_core::blocks::{normal_linear, Attention};
use selfsup_core::losses::masked_lm;
use selfsup_data::token_batches::Masking;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

/// Masked-LM settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskedLmConfig {
    /// The encoder.
    pub model: TransformerConfig,
    /// Share of tokens selected for prediction (0.15).
    #[serde(default = "fifteen_percent")]
    pub select: f64,
    /// Share of the selected replaced by the mask token (0.8; the rest split
    /// evenly between a random token and the original).
    #[serde(default = "eighty_percent")]
    pub mask: f64,
}

fn fifteen_percent() -> f64 {
    0.15
}

fn eighty_percent() -> f64 {
    0.8
}

/// A BERT-style masked language model.
#[derive(Debug)]
pub struct MaskedLm {
    config: MaskedLmConfig,
    /// The mask token's id: the first after the tokenizer's.
    mask_id: u32,
    model: Transformer,
    head: MlmHead,
}

/// BERT's MLM head: dense, GELU, LayerNorm, then the token embeddings
/// (tied) plus a per-token bias.
#[derive(Debug)]
pub struct MlmHead {
    dense: nn::Linear,
    norm: nn::LayerNorm,
    output_bias: Tensor,
}

impl MlmHead {
    /// Builds it under `path` (`mlm_head.*`, `mlm_head_bias`) for `dim`
    /// wide states and `vocab_size` tokens.
    pub fn new(path: &nn::Path, dim: i64, vocab_size: i64) -> Self {
        Self {
            dense: normal_linear(path / "mlm_head" / "dense", dim, dim),
            norm: nn::layer_norm(path / "mlm_head" / "norm", vec![dim], Default::default()),
            output_bias: path.zeros("mlm_head_bias", &[vocab_size]),
        }
    }

    /// `[batch, tokens, dim]` states of `model` → `[batch, tokens, vocab]` logits.
    pub fn logits(&self, model: &Transformer, hidden: &Tensor) -> Tensor {
        let transformed = self.dense.forward(hidden).gelu("none").apply(&self.norm);
        model.tied_logits(&transformed) + &self.output_bias
    }
}

impl MaskedLm {
    /// Builds encoder and MLM head under `path` for a tokenizer of
    /// `tokenizer_vocab` tokens; the model has one more, the mask token.
    pub fn new(path: nn::Path, config: &MaskedLmConfig, tokenizer_vocab: usize) -> Result<Self> {
        check::probability("method.select", config.select)?;
        if config.select == 0.0 {
            return Err(check::invalid("method.select", "0 selects no token to predict"));
        }
        check::probability("method.mask", config.mask)?;
        let vocab_size = tokenizer_vocab as i64 + 1;
        Ok(Self {
            config: config.clone(),
            mask_id: tokenizer_vocab as u32,
            model: Transformer::new(&path / "encoder", &config.model, vocab_size, Attention::Bidirectional)?,
            head: MlmHead::new(&path, config.model.dim, vocab_size),
        })
    }

    /// The transformer.
    pub fn transformer(&self) -> &Transformer {
        &self.model
    }

    /// `[batch, tokens]` ids → `[batch, tokens, vocab]` logits at every position.
    pub fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        self.head.logits(&self.model, &self.model.hidden(ids, train))
    }
}

impl Register<Text> for MaskedLm {
    const NAME: &'static str = "mlm";
    const SUMMARY: &'static str = "masked-LM (BERT): a bidirectional transformer fills in masked tokens";
    const TEST_TABLE: &'static str = "name = \"mlm\"\nselect = 0.15\nmask = 0.8\n[model]\ncontext = 16\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\ndropout = 0.1\n";
    type Config = MaskedLmConfig;
    fn build(config: &MaskedLmConfig, path: nn::Path, context: &TextContext) -> Result<Box<dyn TextMethod>> {
        Ok(Box::new(Self::new(path, config, context.tokenizer_vocab)?))
    }
}

impl TextMethod for MaskedLm {
    fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        MaskedLm::logits(self, ids, train)
    }
    fn transformer(&self) -> &Transformer {
        &self.model
    }
    /// BERT's masking; the mask token is never selected, no other is special.
    fn objective(&self) -> Objective {
        let mut masking = Masking::bert(self.mask_id, self.mask_id + 1, vec![self.mask_id]);
        (masking.select, masking.mask) = (self.config.select, self.config.mask);
        Objective::Masked(masking)
    }
    fn mask_id(&self) -> Option<u32> {
        Some(self.mask_id)
    }
}

impl Method for MaskedLm {
    /// Input `tokens`: masked ids; target `tokens`: the original ids at
    /// selected positions, −100 elsewhere.
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let logits = self.logits(batch.inputs.get("tokens")?, train);
        Ok(StepOutput::new(masked_lm(&logits, batch.targets.get("tokens")?)?))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self
    }
}

impl FeatureExtractor for MaskedLm {
    /// Mean of the encoder's final hidden states over the tokens: `[batch, dim]`.
    fn features(&self, ids: &Tensor, train: bool) -> Tensor {
        self.model.mean_features(ids, train)
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{trains_and_resumes, Smoke};

    #[test]
    fn trains_and_resumes_exactly() {
        // Masked-LM predicts 15 % of the tokens: less signal per step, so more
        // steps, and it leaves the unigram level more slowly.
        trains_and_resumes(module_path!(), Smoke {
            name: "mlm",
            steps: 200,
            batch_size: 32,
            factor: 0.9,
        });
    }
}

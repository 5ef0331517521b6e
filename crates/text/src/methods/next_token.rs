//! Next-token prediction (GPT; Radford et al., 2018/2019), as nanoGPT trains
//! it: a causal transformer reads a window of tokens and predicts each
//! following token; the loss is the mean cross-entropy over all positions.

use crate::transformer::{Transformer, TransformerConfig};
use selfsup_core::losses::next_token;
use selfsup_train::{Batch, FeatureExtractor, Method, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

/// Next-token settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NextTokenConfig {
    /// The decoder.
    pub model: TransformerConfig,
}

/// A GPT-style language model.
#[derive(Debug)]
pub struct NextToken {
    model: Transformer,
}

impl NextToken {
    /// Builds the decoder under `path` for `vocab_size` tokens.
    pub fn new(path: nn::Path, config: &NextTokenConfig, vocab_size: i64) -> Self {
        Self {
            model: Transformer::new(path, &config.model, vocab_size, true),
        }
    }

    /// `[batch, tokens]` ids → `[batch, tokens, vocab]` logits.
    pub fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        self.model.tied_logits(&self.model.hidden(ids, train))
    }

    /// The transformer.
    pub fn transformer(&self) -> &Transformer {
        &self.model
    }

    /// The context length.
    pub fn context(&self) -> i64 {
        self.model.config.context
    }
}

impl Method for NextToken {
    /// `batch.views[0]`: `[batch, tokens]` input ids; `batch.labels`: the
    /// same shape, shifted by one.
    fn step(&mut self, batch: &Batch, train: bool) -> selfsup_train::Result<StepOutput> {
        let logits = self.logits(&batch.views[0], train);
        Ok(StepOutput {
            loss: next_token(&logits, &batch.labels)?,
            features: None,
        })
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self
    }
}

impl FeatureExtractor for NextToken {
    /// Mean of the final hidden states over the tokens: `[batch, dim]`.
    fn features(&self, ids: &Tensor, train: bool) -> Tensor {
        self.model
            .hidden(ids, train)
            .mean_dim(1, false, Kind::Float)
    }
}

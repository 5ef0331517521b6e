//! Masked language modelling (BERT; Devlin et al., 2019): 15 % of the tokens
//! are selected, of those 80 % replaced by a mask token, 10 % by a random
//! token and 10 % left alone; a bidirectional transformer predicts the
//! originals at the selected positions only. The MLM head is BERT's: a dense
//! layer, GELU and LayerNorm, then the output projection tied to the token
//! embeddings plus a per-token bias.

use crate::transformer::{Transformer, TransformerConfig};
use selfsup_core::losses::masked_lm;
use selfsup_train::{Batch, FeatureExtractor, Method, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

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
    model: Transformer,
    dense: nn::Linear,
    norm: nn::LayerNorm,
    output_bias: Tensor,
}

impl MaskedLm {
    /// Builds encoder and MLM head under `path` for `vocab_size` tokens
    /// (the mask token included).
    pub fn new(path: nn::Path, config: &MaskedLmConfig, vocab_size: i64) -> Self {
        let dim = config.model.dim;
        let normal = nn::LinearConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        Self {
            model: Transformer::new(&path / "encoder", &config.model, vocab_size, false),
            dense: nn::linear(&path / "mlm_head" / "dense", dim, dim, normal),
            norm: nn::layer_norm(&path / "mlm_head" / "norm", vec![dim], Default::default()),
            output_bias: path.zeros("mlm_head_bias", &[vocab_size]),
        }
    }

    /// The transformer.
    pub fn transformer(&self) -> &Transformer {
        &self.model
    }

    /// `[batch, tokens]` ids → `[batch, tokens, vocab]` logits at every position.
    pub fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        let hidden = self.model.hidden(ids, train);
        let transformed = self.dense.forward(&hidden).gelu("none").apply(&self.norm);
        self.model.tied_logits(&transformed) + &self.output_bias
    }
}

impl Method for MaskedLm {
    /// `batch.views[0]`: masked input ids; `batch.labels`: the original ids at
    /// selected positions, −100 elsewhere.
    fn step(&mut self, batch: &Batch, train: bool) -> selfsup_train::Result<StepOutput> {
        let logits = self.logits(&batch.views[0], train);
        Ok(StepOutput {
            loss: masked_lm(&logits, &batch.labels)?,
            features: None,
        })
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self
    }
}

impl FeatureExtractor for MaskedLm {
    /// Mean of the encoder's final hidden states over the tokens: `[batch, dim]`.
    fn features(&self, ids: &Tensor, train: bool) -> Tensor {
        self.model
            .hidden(ids, train)
            .mean_dim(1, false, Kind::Float)
    }
}

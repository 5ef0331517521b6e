//! Next-token prediction (GPT; Radford et al., 2018/2019), as nanoGPT trains
//! it: a causal transformer reads a window of tokens and predicts each
//! following token; the loss is the mean cross-entropy over all positions.

use crate::registry::{Text, TextContext, TextMethod};
use crate::source::Objective;
use crate::transformer::{Transformer, TransformerConfig};
use selfsup_core::blocks::Attention;
use selfsup_core::losses::next_token;
use selfsup_train::{Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

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
    pub fn new(path: nn::Path, config: &NextTokenConfig, vocab_size: i64) -> Result<Self> {
        Ok(Self {
            model: Transformer::new(path, &config.model, vocab_size, Attention::Causal)?,
        })
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

impl Register<Text> for NextToken {
    const NAME: &'static str = "gpt";
    const SUMMARY: &'static str = "next-token prediction (GPT): a causal transformer";
    const TEST_TABLE: &'static str = "name = \"gpt\"\n[model]\ncontext = 16\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\ndropout = 0.1\n";
    type Config = NextTokenConfig;
    fn build(config: &NextTokenConfig, path: nn::Path, context: &TextContext) -> Result<Box<dyn TextMethod>> {
        Ok(Box::new(Self::new(path, config, context.tokenizer_vocab as i64)?))
    }
}

impl TextMethod for NextToken {
    fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        NextToken::logits(self, ids, train)
    }
    fn transformer(&self) -> &Transformer {
        &self.model
    }
    fn objective(&self) -> Objective {
        Objective::NextToken
    }
}

impl Method for NextToken {
    /// Input `tokens`: `[batch, tokens]` ids; target `tokens`: the same
    /// shape, shifted by one.
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let logits = self.logits(batch.inputs.get("tokens")?, train);
        Ok(StepOutput::new(next_token(&logits, batch.targets.get("tokens")?)?))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self
    }
}

impl FeatureExtractor for NextToken {
    /// Mean of the final hidden states over the tokens: `[batch, dim]`.
    fn features(&self, ids: &Tensor, train: bool) -> Tensor {
        self.model.mean_features(ids, train)
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{data_parallel_matches, trains_and_resumes, Smoke};

    #[test]
    fn two_ranks_train_as_one_process() {
        data_parallel_matches(module_path!(), "gpt");
    }

    #[test]
    fn trains_and_resumes_exactly() {
        // Next-token learns the toy language fast.
        trains_and_resumes(module_path!(), Smoke {
            name: "gpt",
            steps: 60,
            batch_size: 16,
            factor: 0.7,
        });
    }
}

//! The `[data]` and `[method]` sections of a text run's config, and building
//! the method they name.

use crate::methods::masked_lm::{MaskedLm, MaskedLmConfig};
use crate::methods::next_token::{NextToken, NextTokenConfig};
use crate::source::Objective;
use crate::transformer::TransformerConfig;
use selfsup_data::bpe::Gpt2Tokenizer;
use selfsup_data::token_batches::Masking;
use selfsup_data::tokenizer::Tokenizer;
use selfsup_train::{FeatureExtractor, Method, RunConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::{nn, Tensor};

/// How text becomes tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// One token per character of the corpus's alphabet.
    #[default]
    Char,
    /// GPT-2's byte-level BPE from `encoder.json` and `vocab.bpe` in `tokenizer_files`.
    Gpt2,
}

/// Which text to train on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextDataConfig {
    /// A text file (`.txt`, or `.gz`), a folder of them, or a `.tokens` file
    /// made by `selfsup data tokenize` (its tokenizer replaces `tokenizer`).
    pub path: PathBuf,
    /// The tokenizer.
    #[serde(default)]
    pub tokenizer: TokenizerKind,
    /// `gpt2` only: the folder holding `encoder.json` and `vocab.bpe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_files: Option<PathBuf>,
    /// The first this share of the tokens trains, the rest validates (nanoGPT: 0.9).
    #[serde(default = "ninety_percent")]
    pub train_fraction: f64,
}

fn ninety_percent() -> f64 {
    0.9
}

impl TextDataConfig {
    /// Reads the corpus and tokenises it as configured; a `.tokens` file
    /// (from `selfsup data tokenize`) is memory-mapped with its own tokenizer.
    pub fn load(&self) -> selfsup_data::Result<crate::TokenCorpus> {
        if self.path.extension().is_some_and(|e| e == "tokens") {
            return crate::TokenCorpus::open_token_file(&self.path, self.train_fraction);
        }
        let text = selfsup_data::text::read_corpus(&self.path)?;
        match self.tokenizer {
            TokenizerKind::Char => crate::TokenCorpus::from_text_chars(&text, self.train_fraction),
            TokenizerKind::Gpt2 => {
                let tokenizer = self.gpt2_tokenizer()?;
                crate::TokenCorpus::new(&text, tokenizer, self.train_fraction)
            }
        }
    }

    /// The GPT-2 tokenizer from `tokenizer_files`.
    pub fn gpt2_tokenizer(&self) -> selfsup_data::Result<Tokenizer> {
        let dir = self.tokenizer_files.clone().ok_or_else(|| {
            selfsup_data::Error::Mismatch(
                "data.tokenizer_files: `gpt2` needs the folder of encoder.json and vocab.bpe"
                    .into(),
            )
        })?;
        let bpe = Gpt2Tokenizer::load(&dir.join("encoder.json"), &dir.join("vocab.bpe"))?;
        Ok(Tokenizer::Gpt2(Box::new(bpe)))
    }
}

/// Every text method, selected by `name` in `[method]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum TextMethodConfig {
    /// Next-token prediction (GPT).
    Gpt(NextTokenConfig),
    /// Masked-LM (BERT).
    Mlm(MaskedLmConfig),
}

/// A text run's whole config.
pub type TextRunConfig = RunConfig<TextMethodConfig, TextDataConfig>;

/// A built text model: a trainer `Method` that also gives logits.
pub trait TextMethod: Method + FeatureExtractor {
    /// `[batch, tokens]` ids → `[batch, tokens, vocab]` logits.
    fn logits(&self, ids: &Tensor, train: bool) -> Tensor;
    /// The transformer (for features of padded inputs).
    fn transformer(&self) -> &crate::transformer::Transformer;
    /// The next-token model, when this is one (for generation).
    fn as_next_token(&self) -> Option<&NextToken> {
        None
    }
}

impl TextMethod for NextToken {
    fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        NextToken::logits(self, ids, train)
    }
    fn transformer(&self) -> &crate::transformer::Transformer {
        NextToken::transformer(self)
    }
    fn as_next_token(&self) -> Option<&NextToken> {
        Some(self)
    }
}

impl TextMethod for MaskedLm {
    fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        MaskedLm::logits(self, ids, train)
    }
    fn transformer(&self) -> &crate::transformer::Transformer {
        MaskedLm::transformer(self)
    }
}

impl TextMethodConfig {
    /// The transformer's shape.
    pub fn model(&self) -> &TransformerConfig {
        match self {
            TextMethodConfig::Gpt(c) => &c.model,
            TextMethodConfig::Mlm(c) => &c.model,
        }
    }

    /// Tokens the model needs for a tokenizer of `tokenizer_vocab`: masked-LM
    /// adds its mask token (id `tokenizer_vocab`).
    pub fn model_vocab(&self, tokenizer_vocab: usize) -> usize {
        match self {
            TextMethodConfig::Gpt(_) => tokenizer_vocab,
            TextMethodConfig::Mlm(_) => tokenizer_vocab + 1,
        }
    }

    /// What the training batches ask for.
    pub fn objective(&self, tokenizer_vocab: usize) -> Objective {
        match self {
            TextMethodConfig::Gpt(_) => Objective::NextToken,
            TextMethodConfig::Mlm(c) => {
                let mask_id = tokenizer_vocab as u32;
                let mut masking = Masking::bert(mask_id, mask_id + 1, vec![mask_id]);
                (masking.select, masking.mask) = (c.select, c.mask);
                Objective::Masked(masking)
            }
        }
    }

    /// Builds the model under `path` for a tokenizer of `tokenizer_vocab` tokens.
    pub fn build(&self, path: nn::Path, tokenizer_vocab: usize) -> Box<dyn TextMethod> {
        let vocab = self.model_vocab(tokenizer_vocab) as i64;
        match self {
            TextMethodConfig::Gpt(c) => Box::new(NextToken::new(path, c, vocab)),
            TextMethodConfig::Mlm(c) => Box::new(MaskedLm::new(path, c, vocab)),
        }
    }
}

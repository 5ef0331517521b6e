//! `[data]` of a text run: which text, which tokenizer, and where the
//! training text ends and the validation text begins.

use selfsup_data::bpe::Gpt2Tokenizer;
use selfsup_data::tokenizer::Tokenizer;
use selfsup_train::check;
use selfsup_train::config::Validate;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

impl Validate for TextDataConfig {
    fn validate(&self) -> selfsup_train::Result<()> {
        check::open_fraction("data.train_fraction", self.train_fraction)?;
        if self.tokenizer == TokenizerKind::Gpt2 && self.tokenizer_files.is_none() {
            let message =
                "`gpt2` needs the folder of encoder.json and vocab.bpe in data.tokenizer_files";
            return Err(check::invalid("data.tokenizer_files", message));
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let mut config: TextDataConfig = toml::from_str("path = \"x.txt\"").unwrap();
        config.validate().unwrap();
        config.train_fraction = 1.0;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("data.train_fraction"));
        config.train_fraction = 0.9;
        config.tokenizer = TokenizerKind::Gpt2;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("data.tokenizer_files"));
    }
}

//! `[data]` of a text run: which text, which tokenizer, and where the
//! training text ends and the validation text begins.

use selfsup_data::bpe::Gpt2Tokenizer;
use selfsup_data::hf_tokenizer::HfTokenizer;
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
    /// A Hugging Face `tokenizer.json` (BPE, WordPiece or Unigram):
    /// `tokenizer_files` is the file, or the folder holding it.
    #[serde(rename = "huggingface")]
    HuggingFace,
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
    /// `gpt2`: the folder holding `encoder.json` and `vocab.bpe`;
    /// `huggingface`: the `tokenizer.json`, or the folder holding it.
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
        let message = match self.tokenizer {
            TokenizerKind::Gpt2 => {
                "`gpt2` needs the folder of encoder.json and vocab.bpe in data.tokenizer_files"
            }
            TokenizerKind::HuggingFace => {
                "`huggingface` needs the tokenizer.json (or its folder) in data.tokenizer_files"
            }
            TokenizerKind::Char => return Ok(()),
        };
        if self.tokenizer_files.is_none() {
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
            TokenizerKind::Gpt2 | TokenizerKind::HuggingFace => {
                let tokenizer = self.file_tokenizer()?;
                crate::TokenCorpus::new(&text, tokenizer, self.train_fraction)
            }
        }
    }

    /// The tokenizer that `tokenizer_files` holds (GPT-2's files or a
    /// `tokenizer.json`).
    pub fn file_tokenizer(&self) -> selfsup_data::Result<Tokenizer> {
        match self.tokenizer {
            TokenizerKind::HuggingFace => {
                let path = self.tokenizer_files.clone().ok_or_else(|| {
                    selfsup_data::Error::Mismatch(
                        "data.tokenizer_files: `huggingface` needs a tokenizer.json".into(),
                    )
                })?;
                let file = if path.is_dir() {
                    path.join("tokenizer.json")
                } else {
                    path
                };
                Ok(Tokenizer::HuggingFace(Box::new(HfTokenizer::load(&file)?)))
            }
            _ => self.gpt2_tokenizer(),
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
        config.tokenizer = TokenizerKind::HuggingFace;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tokenizer.json"));
    }

    #[test]
    fn a_tokenizer_json_tokenizes_the_corpus() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/hf");
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("corpus.txt");
        std::fs::write(&corpus, "Call me Ishmael. ".repeat(50)).unwrap();
        let text = format!(
            "path = {corpus:?}\ntokenizer = \"huggingface\"\ntokenizer_files = {:?}\n",
            fixtures.join("wordpiece.json")
        );
        let config: TextDataConfig = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        let corpus = config.load().unwrap();
        let tokenizer = HfTokenizer::load(&fixtures.join("wordpiece.json")).unwrap();
        assert_eq!(corpus.tokenizer.vocab_size(), tokenizer.vocab_size());
        assert_eq!(
            corpus.tokenizer.encode("call me").unwrap(),
            tokenizer.encode("call me").unwrap()
        );
        let missing = TextDataConfig {
            tokenizer_files: Some(dir.path().to_path_buf()),
            ..config
        };
        let error = missing.load().unwrap_err().to_string();
        assert!(error.contains("tokenizer.json"), "{error}");
    }
}

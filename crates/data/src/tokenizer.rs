//! One type for the tokenizers a text run can use: character-level, GPT-2's
//! byte-level BPE, or a Hugging Face `tokenizer.json`.

use crate::bpe::Gpt2Tokenizer;
use crate::error::{Error, Result};
use crate::hf_tokenizer::HfTokenizer;
use crate::text::CharTokenizer;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A tokenizer of either kind.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// One token per character of the corpus's alphabet.
    Char(CharTokenizer),
    /// GPT-2's byte-level BPE (50,257 tokens).
    Gpt2(Box<Gpt2Tokenizer>),
    /// A Hugging Face `tokenizer.json` (BPE, WordPiece or Unigram).
    HuggingFace(Box<HfTokenizer>),
}

impl Tokenizer {
    /// Token ids of `text`; the character tokenizer rejects characters it never saw.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Char(t) => t.encode(text),
            Tokenizer::Gpt2(t) => Ok(t.encode(text)),
            Tokenizer::HuggingFace(t) => t.encode(text),
        }
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Tokenizer::Char(t) => t.decode(ids),
            Tokenizer::Gpt2(t) => t.decode(ids),
            Tokenizer::HuggingFace(t) => t.decode(ids),
        }
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Char(t) => t.vocab_size(),
            Tokenizer::Gpt2(t) => t.vocab_size(),
            Tokenizer::HuggingFace(t) => t.vocab_size(),
        }
    }

    /// What one token is, for reports: `char` or `token`.
    pub fn unit(&self) -> &'static str {
        match self {
            Tokenizer::Char(_) => "char",
            Tokenizer::Gpt2(_) | Tokenizer::HuggingFace(_) => "token",
        }
    }
}

/// A tokenizer written down, so tokens can be turned back into text without
/// the corpus: `tokenizer.toml` in a run folder, `<file>.toml` next to a token
/// file. Holds the character vocabulary, the folder of a byte-level BPE's
/// `encoder.json` and `vocab.bpe` (GPT-2's, or one trained here), or the path
/// of a Hugging Face `tokenizer.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTokenizer {
    /// Every character of the vocabulary, in id order (character tokenizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characters: Option<String>,
    /// The folder of `encoder.json` and `vocab.bpe` (byte-level BPE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpt2_files: Option<PathBuf>,
    /// A Hugging Face `tokenizer.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_json: Option<PathBuf>,
}

impl SavedTokenizer {
    /// What to save for `tokenizer`; a BPE needs the folder it was loaded from.
    pub fn of(tokenizer: &Tokenizer, bpe_files: Option<&Path>) -> Result<Self> {
        Ok(match tokenizer {
            Tokenizer::Char(t) => Self {
                characters: Some(t.vocabulary()),
                gpt2_files: None,
                tokenizer_json: None,
            },
            Tokenizer::HuggingFace(t) => {
                let path = t.path().ok_or_else(|| {
                    Error::Mismatch(
                        "a Hugging Face tokenizer is saved by its file; save it first".into(),
                    )
                })?;
                Self {
                    characters: None,
                    gpt2_files: None,
                    tokenizer_json: Some(std::fs::canonicalize(path).unwrap_or(path.to_path_buf())),
                }
            }
            Tokenizer::Gpt2(_) => {
                let dir = bpe_files.ok_or_else(|| {
                    Error::Mismatch("a BPE tokenizer is saved by the folder of its files".into())
                })?;
                Self {
                    characters: None,
                    gpt2_files: Some(std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf())),
                    tokenizer_json: None,
                }
            }
        })
    }

    /// The tokenizer back.
    pub fn load(&self) -> Result<Tokenizer> {
        match (&self.characters, &self.gpt2_files, &self.tokenizer_json) {
            (Some(chars), None, None) => Ok(Tokenizer::Char(CharTokenizer::fit(chars))),
            (None, Some(dir), None) => Ok(Tokenizer::Gpt2(Box::new(Gpt2Tokenizer::load(
                &dir.join("encoder.json"),
                &dir.join("vocab.bpe"),
            )?))),
            (None, None, Some(path)) => Ok(Tokenizer::HuggingFace(Box::new(HfTokenizer::load(path)?))),
            (None, None, None) => Err(Error::Mismatch(
                "the saved tokenizer names no tokenizer".into(),
            )),
            _ => Err(Error::Mismatch(
                "the saved tokenizer names more than one of characters, gpt2_files and tokenizer_json".into(),
            )),
        }
    }

    /// Writes it as TOML.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = toml::to_string(self).expect("a saved tokenizer serialises");
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }

    /// Reads one written by [`SavedTokenizer::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::format(path, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_tokenizers_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let chars = Tokenizer::Char(CharTokenizer::fit("hello world"));
        let saved = SavedTokenizer::of(&chars, None).unwrap();
        let path = dir.path().join("tokenizer.toml");
        saved.write(&path).unwrap();
        let back = SavedTokenizer::read(&path).unwrap().load().unwrap();
        assert_eq!(back.encode("low").unwrap(), chars.encode("low").unwrap());
        std::fs::write(&path, "characters = 3").unwrap();
        let error = SavedTokenizer::read(&path).unwrap_err().to_string();
        assert!(error.contains("tokenizer.toml"), "{error}");
    }
}

//! A tokenised corpus split into a training and a validation part by position
//! (the first fraction trains, the rest validates, as nanoGPT does), so that
//! validation text is never seen in training.

use selfsup_data::text::{read_text, CharTokenizer};
use selfsup_data::tokenizer::Tokenizer;
use std::path::Path;

/// Token ids of a corpus, split by position, with the tokenizer that made them.
#[derive(Debug, Clone)]
pub struct TokenCorpus {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The first `train_fraction` of the tokens.
    pub train: Vec<u32>,
    /// The rest.
    pub validation: Vec<u32>,
}

impl TokenCorpus {
    /// `text` tokenised with `tokenizer`, split at `train_fraction` (in `(0, 1)`).
    pub fn new(
        text: &str,
        tokenizer: Tokenizer,
        train_fraction: f64,
    ) -> selfsup_data::Result<Self> {
        assert!(
            train_fraction > 0.0 && train_fraction < 1.0,
            "train_fraction must be in (0, 1)"
        );
        let mut train = tokenizer.encode(text)?;
        let validation = train.split_off((train.len() as f64 * train_fraction) as usize);
        Ok(Self {
            tokenizer,
            train,
            validation,
        })
    }

    /// Character-level tokens of `text` (the vocabulary of the whole text).
    pub fn from_text_chars(text: &str, train_fraction: f64) -> selfsup_data::Result<Self> {
        Self::new(
            text,
            Tokenizer::Char(CharTokenizer::fit(text)),
            train_fraction,
        )
    }

    /// Reads a text file (or `.gz`) and tokenises it by character.
    pub fn read_chars(path: &Path, train_fraction: f64) -> selfsup_data::Result<Self> {
        Self::from_text_chars(&read_text(path)?, train_fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_by_position_and_decodes_back() {
        let corpus = TokenCorpus::from_text_chars("abcdefghij", 0.9).unwrap();
        assert_eq!(corpus.train.len(), 9);
        assert_eq!(corpus.tokenizer.decode(&corpus.validation).unwrap(), "j");
    }

    #[test]
    fn reads_the_bundled_novel() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/text/moby-dick.txt.gz");
        let corpus = TokenCorpus::read_chars(&path, 0.9).unwrap();
        let text = corpus.tokenizer.decode(&corpus.train[..2000]).unwrap();
        assert!(text.contains("Ishmael"), "{text}");
        assert!(corpus.validation.len() > 100_000);
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = TokenCorpus::read_chars(Path::new("/no/such/corpus.txt"), 0.9).unwrap_err();
        assert!(err.to_string().contains("/no/such/corpus.txt"));
    }
}

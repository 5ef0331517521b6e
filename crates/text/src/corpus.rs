//! A tokenised corpus split into a training and a validation part by position
//! (the first fraction trains, the rest validates, as nanoGPT does), so that
//! validation text is never seen in training. The tokens are in memory, or
//! in a memory-mapped token file for corpora larger than memory.

use selfsup_data::text::{read_text, CharTokenizer};
use selfsup_data::token_file::{tokenizer_path, TokenFile, Tokens};
use selfsup_data::tokenizer::{SavedTokenizer, Tokenizer};
use std::path::Path;
use std::sync::Arc;

/// Token ids of a corpus, split by position, with the tokenizer that made them.
#[derive(Clone)]
pub struct TokenCorpus {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The first `train_fraction` of the tokens.
    pub train: Arc<dyn Tokens>,
    /// The rest.
    pub validation: Arc<dyn Tokens>,
}

impl std::fmt::Debug for TokenCorpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCorpus")
            .field("tokenizer", &self.tokenizer)
            .field("train", &self.train.len())
            .field("validation", &self.validation.len())
            .finish()
    }
}

impl TokenCorpus {
    /// `text` tokenised with `tokenizer`, split at `train_fraction` (in `(0, 1)`).
    pub fn new(
        text: &str,
        tokenizer: Tokenizer,
        train_fraction: f64,
    ) -> selfsup_data::Result<Self> {
        check_fraction(train_fraction)?;
        let mut train = tokenizer.encode(text)?;
        let validation = train.split_off((train.len() as f64 * train_fraction) as usize);
        Ok(Self {
            tokenizer,
            train: Arc::new(train),
            validation: Arc::new(validation),
        })
    }

    /// A token file written by `selfsup data tokenize` (memory-mapped, not
    /// read), with the tokenizer saved next to it (`<file>.toml`).
    pub fn open_token_file(path: &Path, train_fraction: f64) -> selfsup_data::Result<Self> {
        check_fraction(train_fraction)?;
        let tokenizer = SavedTokenizer::read(&tokenizer_path(path))?.load()?;
        let file = Arc::new(TokenFile::open(path)?);
        if file.vocab_size() as usize != tokenizer.vocab_size() {
            return Err(selfsup_data::Error::format(
                path,
                format!(
                    "written for a vocabulary of {}, but its tokenizer has {}",
                    file.vocab_size(),
                    tokenizer.vocab_size()
                ),
            ));
        }
        let split = (file.len() as f64 * train_fraction) as usize;
        Ok(Self {
            tokenizer,
            train: Arc::new(file.span(0..split)),
            validation: Arc::new(file.span(split..file.len())),
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

/// The split must leave tokens on both sides.
fn check_fraction(train_fraction: f64) -> selfsup_data::Result<()> {
    if train_fraction > 0.0 && train_fraction < 1.0 {
        Ok(())
    } else {
        Err(selfsup_data::Error::Mismatch(format!(
            "data.train_fraction: {train_fraction} must be strictly between 0 and 1"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_by_position_and_decodes_back() {
        let corpus = TokenCorpus::from_text_chars("abcdefghij", 0.9).unwrap();
        assert_eq!(corpus.train.len(), 9);
        let validation = corpus.validation.to_vec(0..1).unwrap();
        assert_eq!(corpus.tokenizer.decode(&validation).unwrap(), "j");
    }

    #[test]
    fn reads_the_bundled_novel() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/text/moby-dick.txt.gz");
        let corpus = TokenCorpus::read_chars(&path, 0.9).unwrap();
        let text = corpus
            .tokenizer
            .decode(&corpus.train.to_vec(0..2000).unwrap())
            .unwrap();
        assert!(text.contains("Ishmael"), "{text}");
        assert!(corpus.validation.len() > 100_000);
    }

    #[test]
    fn a_token_file_gives_the_same_corpus_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = "It was the best of times, it was the worst of times.";
        let in_memory = TokenCorpus::from_text_chars(text, 0.75).unwrap();
        let path = dir.path().join("dickens.tokens");
        let vocab = in_memory.tokenizer.vocab_size() as u32;
        let all = [
            in_memory.train.to_vec(0..in_memory.train.len()).unwrap(),
            in_memory
                .validation
                .to_vec(0..in_memory.validation.len())
                .unwrap(),
        ]
        .concat();
        selfsup_data::token_file::write_token_file(&path, &all, vocab).unwrap();
        let error = TokenCorpus::open_token_file(&path, 0.75)
            .unwrap_err()
            .to_string();
        assert!(error.contains("dickens.tokens.toml"), "{error}");
        SavedTokenizer::of(&in_memory.tokenizer, None)
            .unwrap()
            .write(&tokenizer_path(&path))
            .unwrap();
        let mapped = TokenCorpus::open_token_file(&path, 0.75).unwrap();
        assert_eq!(mapped.train.len(), in_memory.train.len());
        assert_eq!(
            mapped
                .validation
                .to_vec(0..mapped.validation.len())
                .unwrap(),
            in_memory
                .validation
                .to_vec(0..in_memory.validation.len())
                .unwrap()
        );
        assert_eq!(
            mapped
                .tokenizer
                .decode(&mapped.train.to_vec(0..6).unwrap())
                .unwrap(),
            "It was"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = TokenCorpus::read_chars(Path::new("/no/such/corpus.txt"), 0.9).unwrap_err();
        assert!(err.to_string().contains("/no/such/corpus.txt"));
    }
}

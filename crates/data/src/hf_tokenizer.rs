//! Hugging Face tokenizers: any `tokenizer.json` (BPE, WordPiece, Unigram,
//! with their normalisers, pre-tokenisers and decoders) through the
//! `tokenizers` crate, the implementation behind the Python package, so the
//! ids are the ones a user's Python pipeline gives; and training a byte-level
//! BPE of that format from a corpus.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

/// A tokenizer read from a `tokenizer.json`.
#[derive(Clone)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    /// The file it was read from, or last written to (run folders record it).
    path: Option<PathBuf>,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

/// What a caught panic said.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<String>(),
        payload.downcast_ref::<&str>(),
    ) {
        (Some(text), _) => text.clone(),
        (None, Some(text)) => text.to_string(),
        (None, None) => "the tokenizers crate panicked".to_string(),
    }
}

impl HfTokenizer {
    /// Reads a `tokenizer.json`; a missing, unreadable or malformed file is
    /// an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // The `tokenizers` crate panics (`expect("Helper")`) on a syntax
        // error inside some sections (found by `cargo xtask fuzz`): the
        // JSON is checked first, and a panic on valid JSON still becomes
        // this file's error instead of ending the process.
        serde_json::from_str::<serde::de::IgnoredAny>(&text)
            .map_err(|e| Error::format(path, format!("not a Hugging Face tokenizer.json: {e}")))?;
        let parsed = std::panic::catch_unwind(|| text.parse::<tokenizers::Tokenizer>())
            .unwrap_or_else(|payload| Err(panic_text(payload.as_ref()).into()));
        let inner = parsed
            .map_err(|e| Error::format(path, format!("not a Hugging Face tokenizer.json: {e}")))?;
        let tokenizer = Self {
            inner,
            path: Some(path.to_path_buf()),
        };
        if tokenizer.vocab_size() == 0 {
            return Err(Error::format(path, "the tokenizer has an empty vocabulary"));
        }
        // The model's embedding has `vocab_size` rows: an id at or past it
        // would index outside it mid-run (or, taken as the size, ask for a
        // huge embedding), so it is refused here, naming the token.
        let size = tokenizer.vocab_size();
        let vocabulary = tokenizer.inner.get_vocab(true);
        if let Some((token, id)) = vocabulary.iter().find(|(_, &id)| id as usize >= size) {
            return Err(Error::format(
                path,
                format!(
                    "token {token:?} has id {id} but the vocabulary has {size} tokens: ids must be 0 to {}",
                    size - 1
                ),
            ));
        }
        Ok(tokenizer)
    }

    /// Trains a byte-level BPE (GPT-2's scheme: every byte is a symbol, so no
    /// text is out of vocabulary) with `vocab_size` tokens on `lines`, one of
    /// them `<|endoftext|>`; pairs seen fewer than `min_frequency` times are
    /// not merged. The same training as the Python package's `BpeTrainer`
    /// with `ByteLevel` pre-tokenisation, merge for merge.
    pub fn train_byte_level_bpe<'a>(
        lines: impl Iterator<Item = &'a str> + Send,
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self> {
        let alphabet = ByteLevel::alphabet().into_iter().collect();
        let trainer = BpeTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
            .initial_alphabet(alphabet)
            .build();
        let mut inner = tokenizers::Tokenizer::new(BPE::default());
        inner
            .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_decoder(Some(ByteLevel::default()));
        inner
            .train(&mut TrainerWrapper::from(trainer), lines)
            .map_err(|e| Error::Mismatch(format!("training the BPE failed: {e}")))?;
        Ok(Self { inner, path: None })
    }

    /// Writes the tokenizer as `tokenizer.json` at `path` (atomically: a
    /// temporary file, then a rename) and remembers the path.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        let text = self
            .inner
            .to_string(true)
            .map_err(|e| Error::Mismatch(format!("serialising the tokenizer failed: {e}")))?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text).map_err(|e| Error::io(&temporary, e))?;
        std::fs::rename(&temporary, path).map_err(|e| Error::io(path, e))?;
        self.path = Some(path.to_path_buf());
        Ok(())
    }

    /// Token ids of `text`, without special tokens (`[CLS]`, `[SEP]`): a
    /// corpus is one long stream.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Mismatch(format!("tokenizing failed: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens included; an id outside the
    /// vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let size = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= size) {
            return Err(Error::Mismatch(format!(
                "token id {bad} is outside the vocabulary of {size}"
            )));
        }
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::Mismatch(format!("decoding failed: {e}")))
    }

    /// Number of tokens, added (special) tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of `token` (e.g. `[MASK]`), if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The file it came from or was saved to.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

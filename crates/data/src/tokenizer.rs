//! One type for the tokenizers a text run can use: character-level, or
//! GPT-2's byte-level BPE.

use crate::bpe::Gpt2Tokenizer;
use crate::error::Result;
use crate::text::CharTokenizer;

/// A tokenizer of either kind.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// One token per character of the corpus's alphabet.
    Char(CharTokenizer),
    /// GPT-2's byte-level BPE (50,257 tokens).
    Gpt2(Box<Gpt2Tokenizer>),
}

impl Tokenizer {
    /// Token ids of `text`; the character tokenizer rejects characters it never saw.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Char(t) => t.encode(text),
            Tokenizer::Gpt2(t) => Ok(t.encode(text)),
        }
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Tokenizer::Char(t) => t.decode(ids),
            Tokenizer::Gpt2(t) => t.decode(ids),
        }
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Char(t) => t.vocab_size(),
            Tokenizer::Gpt2(t) => t.vocab_size(),
        }
    }

    /// What one token is, for reports: `char` or `token`.
    pub fn unit(&self) -> &'static str {
        match self {
            Tokenizer::Char(_) => "char",
            Tokenizer::Gpt2(_) => "token",
        }
    }
}

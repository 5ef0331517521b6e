//! GPT-2's byte-level BPE tokenizer, loaded from its two files: `encoder.json`
//! (token string → id) and `vocab.bpe` (merges, best first).
//!
//! Encoding follows GPT-2: the text is split into pieces by its
//! pre-tokenisation pattern (contractions, optional space + letters, optional
//! space + digits, optional space + other symbols, whitespace), each piece's
//! UTF-8 bytes are mapped to printable characters, and adjacent symbols are
//! merged by rank until no listed merge applies. Any byte string encodes, so
//! there is no unknown token; decoding inverts the byte mapping.

use crate::error::{read_maybe_gz, Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// A loaded byte-level BPE vocabulary.
#[derive(Debug, Clone)]
pub struct Gpt2Tokenizer {
    encoder: HashMap<String, u32>,
    decoder: Vec<String>,
    ranks: HashMap<(String, String), usize>,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
}

/// GPT-2's reversible map from bytes to printable characters: printable
/// Latin-1 bytes stand for themselves, the other 68 get code points from 256 up.
pub(crate) fn byte_chars() -> [char; 256] {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        out[b as usize] = if printable(b) {
            char::from_u32(b).expect("Latin-1")
        } else {
            next += 1;
            char::from_u32(next - 1).expect("below the surrogates")
        };
    }
    out
}

impl Gpt2Tokenizer {
    /// Reads `encoder.json` and `vocab.bpe` (either may be gzipped); errors
    /// name the file and what is wrong with it.
    pub fn load(encoder_json: &Path, vocab_bpe: &Path) -> Result<Self> {
        let text = |path: &Path| -> Result<String> {
            String::from_utf8(read_maybe_gz(path)?).map_err(|_| Error::format(path, "not UTF-8"))
        };
        let encoder: HashMap<String, u32> =
            serde_json::from_str(&text(encoder_json)?).map_err(|e| {
                Error::format(encoder_json, format!("not a JSON object of token ids: {e}"))
            })?;
        let merges = text(vocab_bpe)?;
        let mut ranks = HashMap::new();
        for (line_number, line) in merges.lines().enumerate() {
            if line.starts_with("#version") || line.trim().is_empty() {
                continue;
            }
            let (a, b) = line.split_once(' ').ok_or_else(|| {
                Error::format(
                    vocab_bpe,
                    format!(
                        "line {}: expected two symbols, got {line:?}",
                        line_number + 1
                    ),
                )
            })?;
            ranks.insert((a.to_string(), b.to_string()), ranks.len());
        }
        Self::new(encoder, ranks).map_err(|problem| Error::format(encoder_json, problem))
    }

    /// From a vocabulary and merge ranks (lower merges first).
    pub fn new(
        encoder: HashMap<String, u32>,
        ranks: HashMap<(String, String), usize>,
    ) -> std::result::Result<Self, String> {
        // Contiguous ids are 0..len: a larger one is a hole, refused before
        // the id decides an allocation (a crafted 4294967295 would ask
        // for 103 GB).
        if let Some((token, &id)) = encoder.iter().find(|(_, &id)| id as usize >= encoder.len()) {
            return Err(format!(
                "token {token:?} has id {id} but the vocabulary has {} tokens: ids must be 0 to {}",
                encoder.len(),
                encoder.len().saturating_sub(1)
            ));
        }
        let size = encoder.len();
        let mut decoder = vec![String::new(); size];
        for (token, &id) in &encoder {
            decoder[id as usize] = token.clone();
        }
        if let Some(hole) = decoder.iter().position(String::is_empty) {
            return Err(format!(
                "token ids are not contiguous: no token has id {hole}"
            ));
        }
        let byte_to_char = byte_chars();
        let char_to_byte = byte_to_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        for c in byte_to_char {
            if !encoder.contains_key(&c.to_string()) {
                return Err(format!("the vocabulary lacks the byte symbol {c:?}"));
            }
        }
        Ok(Self {
            encoder,
            decoder,
            ranks,
            byte_to_char,
            char_to_byte,
        })
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.decoder.len()
    }

    /// The id of a token string (e.g. `<|endoftext|>`), if it is in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    /// Token ids of `text`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut cache: HashMap<&str, Vec<u32>> = HashMap::new();
        for piece in pretokenize(text) {
            let piece_ids = cache
                .entry(piece)
                .or_insert_with(|| self.encode_piece(piece));
            ids.extend_from_slice(piece_ids);
        }
        ids
    }

    fn encode_piece(&self, piece: &str) -> Vec<u32> {
        let mut symbols: Vec<String> = piece
            .bytes()
            .map(|b| self.byte_to_char[b as usize].to_string())
            .collect();
        while symbols.len() > 1 {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| {
                    self.ranks
                        .get(&(pair[0].clone(), pair[1].clone()))
                        .map(|&r| (r, i))
                })
                .min();
            let Some((_, i)) = best else { break };
            let merged = format!("{}{}", symbols[i], symbols[i + 1]);
            symbols.splice(i..i + 2, [merged]);
        }
        symbols.iter().map(|s| self.encoder[s]).collect()
    }

    /// The text of `ids` (invalid UTF-8 from a partial sequence becomes U+FFFD);
    /// an id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            let token = self.decoder.get(id as usize).ok_or_else(|| {
                Error::Mismatch(format!(
                    "token id {id} is outside the vocabulary of {}",
                    self.decoder.len()
                ))
            })?;
            bytes.extend(
                token
                    .chars()
                    .map(|c| self.char_to_byte.get(&c).copied().unwrap_or(b'?')),
            );
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// What a character is for GPT-2's pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

fn class(c: char) -> Class {
    if c.is_whitespace() {
        Class::Space
    } else if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else {
        Class::Other
    }
}

/// GPT-2's pre-tokenisation, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
/// ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, as a scanner.
pub fn pretokenize(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |&(at, _)| at);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = chars[i].0;
        let rest = &text[start..];
        if let Some(c) = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
            .iter()
            .find(|c| rest.starts_with(**c))
        {
            pieces.push(&rest[..c.len()]);
            i += c.chars().count();
            continue;
        }
        let lead = usize::from(chars[i].1 == ' ');
        let run_class = chars.get(i + lead).map(|&(_, c)| class(c));
        match run_class {
            Some(kind) if kind != Class::Space => {
                let mut j = i + lead;
                while j < chars.len() && class(chars[j].1) == kind {
                    j += 1;
                }
                pieces.push(&text[start..end_of(j)]);
                i = j;
            }
            _ => {
                let mut j = i;
                while j < chars.len() && class(chars[j].1) == Class::Space {
                    j += 1;
                }
                // Leave the last space for the word that follows (`\s+(?!\S)`).
                if j < chars.len() && j - i > 1 {
                    j -= 1;
                }
                pieces.push(&text[start..end_of(j)]);
                i = j;
            }
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn pretokenization_follows_the_gpt2_pattern() {
        assert_eq!(pretokenize("Hello world"), ["Hello", " world"]);
        assert_eq!(
            pretokenize("I'll don't 42x"),
            ["I", "'ll", " don", "'t", " 42", "x"]
        );
        assert_eq!(
            pretokenize("a  b\n\nc  "),
            ["a", " ", " b", "\n", "\n", "c", "  "]
        );
        assert_eq!(pretokenize("wait...!? ok"), ["wait", "...!?", " ok"]);
        assert_eq!(pretokenize("ünïcödé 日本"), ["ünïcödé", " 日本"]);
    }

    /// A toy vocabulary: the 256 byte symbols plus two merges.
    fn toy() -> Gpt2Tokenizer {
        let chars = byte_chars();
        let mut encoder: HashMap<String, u32> = chars
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), i as u32))
            .collect();
        encoder.insert("ab".into(), 256);
        encoder.insert("Ġab".into(), 257);
        let mut ranks = HashMap::new();
        ranks.insert(("a".into(), "b".into()), 0);
        ranks.insert(("Ġ".into(), "ab".into()), 1);
        Gpt2Tokenizer::new(encoder, ranks).unwrap()
    }

    #[test]
    fn merges_apply_by_rank_and_bytes_round_trip() {
        let tok = toy();
        assert_eq!(tok.encode("ab ab abc"), [256, 257, 257, 99]);
        for text in ["ab ab abc", "tab\tand\nnewline", "ünï 日本 🐋"] {
            assert_eq!(tok.decode(&tok.encode(text)).unwrap(), text);
        }
        assert!(tok
            .decode(&[9999])
            .unwrap_err()
            .to_string()
            .contains("9999"));
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let encoder = dir.path().join("encoder.json");
        let merges = dir.path().join("vocab.bpe");
        std::fs::write(&encoder, "[1, 2]").unwrap();
        std::fs::write(&merges, "#version: 0.2\na b\n").unwrap();
        let err = Gpt2Tokenizer::load(&encoder, &merges)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("encoder.json") && err.contains("JSON"),
            "{err}"
        );
        std::fs::write(&encoder, "{\"a\": 0, \"b\": 2}").unwrap();
        let err = Gpt2Tokenizer::load(&encoder, &merges)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("id 2 but the vocabulary has 2 tokens"),
            "{err}"
        );
        std::fs::write(&encoder, "{\"a\": 0, \"b\": 4294967295}").unwrap();
        let err = Gpt2Tokenizer::load(&encoder, &merges)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("encoder.json") && err.contains("4294967295"),
            "{err}"
        );
        std::fs::write(&merges, "#version: 0.2\nab\n").unwrap();
        let err = Gpt2Tokenizer::load(&encoder, &merges)
            .unwrap_err()
            .to_string();
        assert!(err.contains("vocab.bpe") && err.contains("line 2"), "{err}");
    }

    /// The real GPT-2 files, where this machine has them (CI does, in
    /// `../shared/datasets/tokenizers/gpt2`); ids checked against GPT-2's.
    #[test]
    fn real_gpt2_files_give_gpt2_ids() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/datasets/tokenizers/gpt2");
        if !dir.join("encoder.json").is_file() {
            eprintln!("skipped: {} is not on this machine", dir.display());
            return;
        }
        let tok = Gpt2Tokenizer::load(&dir.join("encoder.json"), &dir.join("vocab.bpe")).unwrap();
        assert_eq!(tok.vocab_size(), 50257);
        assert_eq!(tok.encode("Hello world"), [15496, 995]);
        assert_eq!(tok.encode("hello world"), [31373, 995]);
        assert_eq!(tok.token_id("<|endoftext|>"), Some(50256));
        let text =
            "Call me Ishmael. Some years ago—never mind how long precisely—\n\n  naïve 1851!";
        assert_eq!(tok.decode(&tok.encode(text)).unwrap(), text);
    }
}

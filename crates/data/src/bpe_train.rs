//! Training a byte-level BPE vocabulary on a corpus, GPT-2 style: the text is
//! pre-tokenised with GPT-2's pattern, every piece starts as its UTF-8 bytes
//! (the 256 byte symbols), and the most frequent adjacent pair is merged
//! into a new token until the vocabulary is full. Ties go to the pair of
//! older tokens (lower ids), so training is deterministic. The result is
//! written as `encoder.json` + `vocab.bpe`, the files [`Gpt2Tokenizer`]
//! loads, so a trained vocabulary is used exactly like GPT-2's.

use crate::bpe::{byte_chars, pretokenize, Gpt2Tokenizer};
use crate::error::{Error, Result};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;

/// What to train.
#[derive(Debug, Clone)]
pub struct BpeTrainer {
    /// Tokens in all: 256 byte symbols, the merges, and `special` tokens.
    pub vocab_size: usize,
    /// A pair seen fewer times than this is never merged.
    pub min_frequency: u64,
    /// Tokens appended after the merges (e.g. `<|endoftext|>`); never produced by encoding text.
    pub special: Vec<String>,
}

/// A trained vocabulary: token strings by id and merges in the order learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedBpe {
    /// Token strings (GPT-2's printable byte alphabet), index = id.
    pub tokens: Vec<String>,
    /// The merges, first learnt first.
    pub merges: Vec<(String, String)>,
    /// How often each merge's pair occurred when it was merged.
    pub merge_counts: Vec<u64>,
}

impl BpeTrainer {
    /// Learns merges from `texts` (pieces of a corpus, e.g. its files).
    pub fn train<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Result<TrainedBpe> {
        if self.vocab_size < 256 + self.special.len() {
            return Err(Error::Mismatch(format!(
                "a vocabulary of {} cannot hold the 256 byte symbols and {} special tokens",
                self.vocab_size,
                self.special.len()
            )));
        }
        // Distinct pieces and their counts.
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for text in texts {
            for piece in pretokenize(text) {
                *counts.entry(piece).or_default() += 1;
            }
        }
        let mut pieces: Vec<(&str, u64)> = counts.into_iter().collect();
        pieces.sort_unstable();
        let mut index = PairIndex::new(&pieces);
        let mut tokens: Vec<String> = byte_chars().iter().map(|c| c.to_string()).collect();
        let (mut merges, mut merge_counts) = (Vec::new(), Vec::new());
        let target = self.vocab_size - self.special.len();
        while tokens.len() < target {
            let Some((pair, count)) = index.most_frequent(self.min_frequency.max(1)) else {
                break;
            };
            let new = tokens.len() as u32;
            let (a, b) = (
                tokens[pair.0 as usize].clone(),
                tokens[pair.1 as usize].clone(),
            );
            tokens.push(format!("{a}{b}"));
            merges.push((a, b));
            merge_counts.push(count);
            index.merge(pair, new);
        }
        tokens.extend(self.special.iter().cloned());
        Ok(TrainedBpe {
            tokens,
            merges,
            merge_counts,
        })
    }
}

/// Every piece as symbol ids, with how often each adjacent pair occurs
/// (weighted by the piece's count), which pieces hold it, and a heap of
/// pairs by count (ties: the smaller pair first) with stale entries skipped.
struct PairIndex {
    words: Vec<Vec<u32>>,
    frequency: Vec<u64>,
    pair_counts: HashMap<(u32, u32), u64>,
    holders: HashMap<(u32, u32), HashSet<usize>>,
    heap: BinaryHeap<(u64, Reverse<(u32, u32)>)>,
}

impl PairIndex {
    fn new(pieces: &[(&str, u64)]) -> Self {
        let words: Vec<Vec<u32>> = pieces
            .iter()
            .map(|(piece, _)| piece.bytes().map(u32::from).collect())
            .collect();
        let frequency: Vec<u64> = pieces.iter().map(|&(_, n)| n).collect();
        let mut pair_counts: HashMap<(u32, u32), u64> = HashMap::new();
        let mut holders: HashMap<(u32, u32), HashSet<usize>> = HashMap::new();
        for (w, word) in words.iter().enumerate() {
            for pair in word.windows(2) {
                *pair_counts.entry((pair[0], pair[1])).or_default() += frequency[w];
                holders.entry((pair[0], pair[1])).or_default().insert(w);
            }
        }
        let heap = pair_counts
            .iter()
            .map(|(&pair, &count)| (count, Reverse(pair)))
            .collect();
        Self {
            words,
            frequency,
            pair_counts,
            holders,
            heap,
        }
    }

    /// The most frequent pair and its count, if seen at least `min` times.
    fn most_frequent(&mut self, min: u64) -> Option<((u32, u32), u64)> {
        while let Some((count, Reverse(pair))) = self.heap.pop() {
            if self.pair_counts.get(&pair) != Some(&count) {
                continue; // stale: the pair's count changed since it was pushed
            }
            return (count >= min).then_some((pair, count));
        }
        None
    }

    /// Replaces `pair` by symbol `new` in every piece holding it, updating
    /// the counts of the pairs around it.
    fn merge(&mut self, pair: (u32, u32), new: u32) {
        let mut touched = HashSet::new();
        for w in self.holders.remove(&pair).unwrap_or_default() {
            let word = &mut self.words[w];
            for old in word.windows(2) {
                let old = (old[0], old[1]);
                if let Some(c) = self.pair_counts.get_mut(&old) {
                    *c -= self.frequency[w];
                }
                touched.insert(old);
            }
            *word = merge_pair(word, pair, new);
            for next in word.windows(2) {
                let next = (next[0], next[1]);
                *self.pair_counts.entry(next).or_default() += self.frequency[w];
                self.holders.entry(next).or_default().insert(w);
                touched.insert(next);
            }
        }
        self.pair_counts.remove(&pair);
        for pair in touched {
            match self.pair_counts.get(&pair) {
                Some(&0) => {
                    self.pair_counts.remove(&pair);
                }
                Some(&count) => self.heap.push((count, Reverse(pair))),
                None => {}
            }
        }
    }
}

/// `word` with every non-overlapping `pair`, left to right, replaced by `new`.
fn merge_pair(word: &[u32], pair: (u32, u32), new: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if i + 1 < word.len() && (word[i], word[i + 1]) == pair {
            out.push(new);
            i += 2;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    out
}

impl TrainedBpe {
    /// The tokenizer this vocabulary defines.
    pub fn tokenizer(&self) -> Gpt2Tokenizer {
        let encoder = self.encoder();
        let ranks = self
            .merges
            .iter()
            .enumerate()
            .map(|(rank, pair)| (pair.clone(), rank))
            .collect();
        Gpt2Tokenizer::new(encoder, ranks).expect("a trained vocabulary is complete")
    }

    fn encoder(&self) -> HashMap<String, u32> {
        self.tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect()
    }

    /// Writes `encoder.json` and `vocab.bpe` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let encoder = serde_json::to_string(&self.encoder()).expect("strings serialise");
        let encoder_path = dir.join("encoder.json");
        std::fs::write(&encoder_path, encoder).map_err(|e| Error::io(&encoder_path, e))?;
        let mut merges = String::from("#version: 0.2 (trained by selfsup)\n");
        for (a, b) in &self.merges {
            merges.push_str(&format!("{a} {b}\n"));
        }
        let merges_path = dir.join("vocab.bpe");
        std::fs::write(&merges_path, merges).map_err(|e| Error::io(&merges_path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = "low low low low low lower lower newest newest newest \
                          newest newest newest widest widest widest";

    fn train(vocab_size: usize) -> TrainedBpe {
        BpeTrainer {
            vocab_size,
            min_frequency: 2,
            special: vec!["<|endoftext|>".into()],
        }
        .train([CORPUS])
        .unwrap()
    }

    #[test]
    fn the_first_merge_is_the_most_frequent_pair() {
        // Count adjacent byte pairs within pieces by hand.
        let mut counts: HashMap<(u8, u8), u64> = HashMap::new();
        for piece in pretokenize(CORPUS) {
            for pair in piece.as_bytes().windows(2) {
                *counts.entry((pair[0], pair[1])).or_default() += 1;
            }
        }
        let best = counts.values().max().unwrap();
        let bpe = train(300);
        assert_eq!(bpe.merge_counts[0], *best);
        let (a, b) = &bpe.merges[0];
        let alphabet = byte_chars();
        let as_bytes = |s: &str| -> Vec<u8> {
            s.chars()
                .map(|c| alphabet.iter().position(|&x| x == c).unwrap() as u8)
                .collect()
        };
        let pair = (as_bytes(a)[0], as_bytes(b)[0]);
        assert_eq!(counts[&pair], *best, "{pair:?}");
    }

    #[test]
    fn merges_come_in_falling_frequency_and_stop_at_the_size() {
        let bpe = train(270);
        assert_eq!(bpe.tokens.len(), 270);
        assert_eq!(bpe.tokens.last().unwrap(), "<|endoftext|>");
        assert!(
            bpe.merge_counts.windows(2).all(|w| w[0] >= w[1]),
            "{:?}",
            bpe.merge_counts
        );
        // With min_frequency 2 a big vocabulary stops when no pair repeats.
        let all = train(10_000);
        assert!(all.tokens.len() < 10_000);
        assert!(*all.merge_counts.last().unwrap() >= 2);
        // Whole frequent words become single tokens: "Ġnewest" (Ġ is the space byte).
        let newest = all.tokenizer().encode(" newest");
        assert_eq!(newest.len(), 1);
    }

    #[test]
    fn written_files_load_and_round_trip_any_text() {
        let dir = tempfile::tempdir().unwrap();
        let bpe = train(270);
        bpe.write(dir.path()).unwrap();
        let loaded = Gpt2Tokenizer::load(
            &dir.path().join("encoder.json"),
            &dir.path().join("vocab.bpe"),
        )
        .unwrap();
        assert_eq!(loaded.vocab_size(), 270);
        assert_eq!(loaded.encode(CORPUS), bpe.tokenizer().encode(CORPUS));
        assert!(
            loaded.encode(CORPUS).len() < CORPUS.len() / 2,
            "it compresses"
        );
        let unseen = "Ünïcödé — and lowest widths!";
        assert_eq!(loaded.decode(&loaded.encode(unseen)).unwrap(), unseen);
        assert_eq!(loaded.token_id("<|endoftext|>"), Some(269));
    }

    #[test]
    fn too_small_a_vocabulary_is_refused() {
        let error = BpeTrainer {
            vocab_size: 100,
            min_frequency: 1,
            special: vec![],
        }
        .train([CORPUS])
        .unwrap_err()
        .to_string();
        assert!(error.contains("100") && error.contains("256"), "{error}");
    }
}

//! BERT's sentence pairs (Devlin et al., 2019), and ALBERT's sentence-order
//! variant (Lan et al., 2020): `[CLS] A [SEP] B [SEP]`, packed to the
//! context as BERT's `create_pretraining_data` does. Each document is cut
//! once into chunks of whole sentences of about the context's length (10 %
//! of chunks aim shorter, so short inputs are seen too); a sample splits its
//! chunk at a random sentence into A and B. For next-sentence prediction B
//! is, half the time, replaced by whole sentences from another document of
//! about the same length (BERT fills B up to the context instead, so that
//! short documents make "next" pairs shorter than random ones: a length cue
//! a random network already reads); for sentence order, A and B swap
//! places half the time. A one-sentence chunk is split inside the sentence
//! (BERT always gives it a random B: a sentence-count cue).
//! The pair is trimmed to fit by dropping tokens from the longer side, at
//! its front or back at random. The randomness of a sample comes from the
//! RNG it is given, so batches are the same whichever thread builds them.

mod packing;

use crate::documents::Documents;
use crate::{Error, Result};
use packing::{chunk, trim_pair, Chunk};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which sentence-level task the pairs pose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairTask {
    /// Next-sentence prediction (BERT): is B the text that follows A (label
    /// 0) or from another document (1)?
    #[default]
    Nsp,
    /// Sentence-order prediction (ALBERT): are A and B in order (0) or
    /// swapped (1)?
    Sop,
}

/// The special tokens a pair is framed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairTokens {
    /// `[CLS]`, first of every input; the sentence head reads its state.
    pub cls: u32,
    /// `[SEP]`, after A and after B.
    pub sep: u32,
    /// `[PAD]`, filling the input to the context.
    pub pad: u32,
}

/// One framed pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// `[CLS] A [SEP] B [SEP]` then padding: `length` ids.
    pub tokens: Vec<u32>,
    /// 0 for `[CLS]`, A and its `[SEP]`; 1 for B, its `[SEP]` and padding.
    pub segments: Vec<i64>,
    /// Ids before the padding.
    pub real: usize,
    /// The sentence task's label (see [`PairTask`]).
    pub label: i64,
}

/// Sentence pairs over a set of documents.
#[derive(Debug, Clone)]
pub struct SentencePairs {
    documents: Documents,
    chunks: Vec<Chunk>,
    length: usize,
    task: PairTask,
    tokens: PairTokens,
}

impl SentencePairs {
    /// Chunks `documents` for inputs of `length` ids (three of them
    /// special); `seed` fixes the chunking. Next-sentence pairs need two
    /// documents; `length` must leave room for two tokens.
    pub fn new(
        documents: Documents,
        length: usize,
        task: PairTask,
        tokens: PairTokens,
        seed: u64,
    ) -> Result<Self> {
        if length < 5 {
            return Err(Error::Mismatch(format!(
                "sentence pairs of {length} tokens: `[CLS] A [SEP] B [SEP]` needs at least 5"
            )));
        }
        if task == PairTask::Nsp && documents.len() < 2 {
            return Err(Error::Mismatch(
                "next-sentence pairs need at least two documents".into(),
            ));
        }
        let chunks = chunk(&documents, length - 3, seed);
        Ok(Self {
            documents,
            chunks,
            length,
            task,
            tokens,
        })
    }

    /// Pairs per epoch: one per chunk.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// True when there is no chunk.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Ids in every pair, padding included.
    pub fn length(&self) -> usize {
        self.length
    }

    /// The task.
    pub fn task(&self) -> PairTask {
        self.task
    }

    /// The documents.
    pub fn documents(&self) -> &Documents {
        &self.documents
    }

    /// The pair of chunk `index`, drawn with `rng`.
    pub fn pair(&self, index: usize, rng: &mut impl Rng) -> Pair {
        let chunk = self.chunks[index % self.chunks.len()];
        let sentences = &self.documents.documents[chunk.document][chunk.first..chunk.end];
        let split = match sentences.len() {
            1 => 1,
            n => rng.gen_range(1..n),
        };
        let mut a: Vec<u32> = sentences[..split].concat();
        let mut rest: Vec<u32> = sentences[split..].concat();
        if rest.is_empty() && a.len() >= 2 {
            // One sentence: split inside it, so that no label follows from
            // the chunk's sentence count.
            rest = a.split_off(rng.gen_range(1..a.len()));
        }
        let (mut b, label) = match self.task {
            PairTask::Nsp if rng.gen_bool(0.5) => {
                // As long as the B it replaces, so that length tells nothing.
                (
                    self.random_segment(chunk.document, rest.len().max(1), rng),
                    1,
                )
            }
            PairTask::Nsp => (rest, 0),
            PairTask::Sop if rng.gen_bool(0.5) => (std::mem::replace(&mut a, rest), 1),
            PairTask::Sop => (rest, 0),
        };
        trim_pair(&mut a, &mut b, self.length - 3, rng);
        self.frame(&a, &b, label)
    }

    /// Whole sentences from a random other document, from a random
    /// sentence with at least `wanted` tokens after it (if any), as close to
    /// `wanted` tokens as sentence ends allow (at least one sentence).
    fn random_segment(&self, not: usize, wanted: usize, rng: &mut impl Rng) -> Vec<u32> {
        let mut document = rng.gen_range(0..self.documents.len() - 1);
        if document >= not {
            document += 1;
        }
        let sentences = &self.documents.documents[document];
        // Start where enough text follows, when the document has such a place.
        let mut left = sentences.iter().map(Vec::len).sum::<usize>();
        let mut starts = 0;
        for sentence in sentences {
            if left < wanted {
                break;
            }
            left -= sentence.len();
            starts += 1;
        }
        let mut segment: Vec<u32> = Vec::new();
        for sentence in &sentences[rng.gen_range(0..starts.max(1))..] {
            let (short, long) = (segment.len(), segment.len() + sentence.len());
            if !segment.is_empty() && long > wanted && long - wanted > wanted - short {
                break;
            }
            segment.extend_from_slice(sentence);
            if segment.len() >= wanted {
                break;
            }
        }
        segment
    }

    fn frame(&self, a: &[u32], b: &[u32], label: i64) -> Pair {
        let PairTokens { cls, sep, pad } = self.tokens;
        let mut tokens = Vec::with_capacity(self.length);
        tokens.push(cls);
        tokens.extend_from_slice(a);
        tokens.push(sep);
        let first = tokens.len();
        tokens.extend_from_slice(b);
        tokens.push(sep);
        let real = tokens.len();
        tokens.resize(self.length, pad);
        let segments = (0..self.length).map(|i| i64::from(i >= first)).collect();
        Pair {
            tokens,
            segments,
            real,
            label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_batches::sample_rng;

    const TOKENS: PairTokens = PairTokens {
        cls: 100_000,
        sep: 100_001,
        pad: 100_002,
    };

    /// Document `d`, sentence `s` is `d*1000 + s*10 + [0, 1, 2]`: three
    /// tokens that grow through the text.
    fn documents(count: u32, sentences: u32) -> Documents {
        Documents {
            documents: (0..count)
                .map(|d| {
                    (0..sentences)
                        .map(|s| (0..3).map(|k| d * 1000 + s * 10 + k).collect())
                        .collect()
                })
                .collect(),
        }
    }

    fn owner(token: u32) -> u32 {
        token / 1000
    }

    #[test]
    fn pairs_are_framed_segmented_and_padded() {
        let pairs = SentencePairs::new(documents(4, 8), 16, PairTask::Nsp, TOKENS, 0).unwrap();
        // 13 tokens a chunk: five sentences (15) reach it, so two chunks a
        // document, more where a chunk aims shorter.
        assert!(pairs.len() >= 8, "{}", pairs.len());
        for index in 0..pairs.len() {
            let pair = pairs.pair(index, &mut sample_rng(1, 0, index as u64));
            assert_eq!(pair.tokens.len(), 16);
            assert_eq!(pair.tokens[0], TOKENS.cls);
            assert_eq!(pair.tokens[pair.real - 1], TOKENS.sep);
            assert!(pair.tokens[pair.real..].iter().all(|&t| t == TOKENS.pad));
            let seps: Vec<usize> = (0..pair.real)
                .filter(|&i| pair.tokens[i] == TOKENS.sep)
                .collect();
            assert_eq!(seps.len(), 2, "{pair:?}");
            assert!(pair.segments[..=seps[0]].iter().all(|&s| s == 0));
            assert!(pair.segments[seps[0] + 1..].iter().all(|&s| s == 1));
        }
    }

    #[test]
    fn next_sentence_labels_say_whether_b_follows_a() {
        let pairs = SentencePairs::new(documents(6, 12), 32, PairTask::Nsp, TOKENS, 0).unwrap();
        let mut random = 0;
        let total = 400;
        for index in 0..total {
            let pair = pairs.pair(index, &mut sample_rng(2, 0, index as u64));
            let sep = pair.tokens.iter().position(|&t| t == TOKENS.sep).unwrap();
            let a = &pair.tokens[1..sep];
            let b = &pair.tokens[sep + 1..pair.real - 1];
            let (last_a, first_b) = (*a.last().unwrap(), b[0]);
            match pair.label {
                0 => assert!(
                    owner(last_a) == owner(first_b) && first_b > last_a,
                    "B continues A's document: {pair:?}"
                ),
                _ => {
                    random += 1;
                    assert_ne!(owner(last_a), owner(first_b), "B is from another document");
                }
            }
        }
        let share = random as f64 / total as f64;
        assert!((share - 0.5).abs() < 0.1, "{share}");
    }

    #[test]
    fn next_and_random_pairs_are_equally_long() {
        // Paragraph-sized documents of 2-5 sentences of 2-9 tokens: short
        // chunks, where filling B to the context would give the label away.
        let documents = Documents {
            documents: (0..60u32)
                .map(|d| {
                    (0..2 + d % 4)
                        .map(|s| vec![d * 1000 + s; (2 + (d + s) % 8) as usize])
                        .collect()
                })
                .collect(),
        };
        let pairs = SentencePairs::new(documents, 64, PairTask::Nsp, TOKENS, 0).unwrap();
        let (mut sums, mut counts) = ([0.0; 2], [0.0; 2]);
        for index in 0..2000 {
            let pair = pairs.pair(index, &mut sample_rng(4, 0, index as u64));
            sums[pair.label as usize] += pair.real as f64;
            counts[pair.label as usize] += 1.0;
        }
        let (next, random) = (sums[0] / counts[0], sums[1] / counts[1]);
        assert!(
            (next - random).abs() < 0.1 * next,
            "mean lengths {next:.1} vs {random:.1}"
        );
    }

    #[test]
    fn sentence_order_swaps_half_the_pairs() {
        let pairs = SentencePairs::new(documents(1, 20), 24, PairTask::Sop, TOKENS, 0).unwrap();
        let mut swapped = 0;
        for index in 0..200 {
            let pair = pairs.pair(index, &mut sample_rng(3, 0, index as u64));
            let sep = pair.tokens.iter().position(|&t| t == TOKENS.sep).unwrap();
            let (a, b) = (pair.tokens[sep - 1], pair.tokens[sep + 1]);
            assert_eq!(
                pair.label == 1,
                a > b,
                "label 1 exactly when B comes first: {pair:?}"
            );
            swapped += pair.label;
        }
        assert!((60..140).contains(&swapped), "{swapped}");
        let one = Documents {
            documents: vec![vec![vec![1, 2, 3, 4]]],
        };
        let pairs = SentencePairs::new(one, 10, PairTask::Sop, TOKENS, 0).unwrap();
        let pair = pairs.pair(0, &mut sample_rng(0, 0, 0));
        assert_eq!(
            pair.real, 7,
            "a single sentence is split, not dropped: {pair:?}"
        );
    }

    #[test]
    fn long_pairs_are_trimmed_from_the_longer_side() {
        let mut rng = sample_rng(0, 0, 0);
        let long = Documents {
            documents: vec![vec![(0..500).collect()], vec![(500..1000).collect()]],
        };
        let pairs = SentencePairs::new(long, 12, PairTask::Nsp, TOKENS, 0).unwrap();
        let pair = pairs.pair(0, &mut rng);
        assert_eq!(pair.real, 12);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(SentencePairs::new(documents(3, 3), 4, PairTask::Nsp, TOKENS, 0).is_err());
        let error = SentencePairs::new(documents(1, 3), 16, PairTask::Nsp, TOKENS, 0).unwrap_err();
        assert!(error.to_string().contains("two documents"), "{error}");
    }
}

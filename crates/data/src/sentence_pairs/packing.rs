//! How documents become pairs' raw material: chunks of whole sentences of
//! about the context's length, and BERT's trimming of a pair that is too
//! long.

use crate::documents::Documents;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Share of chunks that aim at a random shorter length (BERT's `short_seq_prob`).
const SHORT_SHARE: f64 = 0.1;

/// Where a chunk lies: document and sentence range.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chunk {
    pub document: usize,
    pub first: usize,
    pub end: usize,
}

/// Cuts each document into runs of whole sentences of about `max` tokens
/// (a chunk ends once it reaches its target, or with its document).
pub(super) fn chunk(documents: &Documents, max: usize, seed: u64) -> Vec<Chunk> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let target_of = |rng: &mut ChaCha8Rng| match rng.gen_bool(SHORT_SHARE) {
        true => rng.gen_range(2.min(max)..=max),
        false => max,
    };
    let mut chunks = Vec::new();
    for (document, sentences) in documents.documents.iter().enumerate() {
        let (mut first, mut size, mut target) = (0, 0, target_of(&mut rng));
        for (index, sentence) in sentences.iter().enumerate() {
            size += sentence.len();
            if size >= target || index + 1 == sentences.len() {
                chunks.push(Chunk {
                    document,
                    first,
                    end: index + 1,
                });
                (first, size, target) = (index + 1, 0, target_of(&mut rng));
            }
        }
    }
    chunks
}

/// Drops tokens from the longer of `a` and `b`, at its front or back at
/// random, until both fit in `max` (BERT's `truncate_seq_pair`).
pub(super) fn trim_pair(a: &mut Vec<u32>, b: &mut Vec<u32>, max: usize, rng: &mut impl Rng) {
    // Far too long sides lose their tail first, so the loop stays short.
    a.truncate(max);
    b.truncate(max);
    let (mut a_drop_front, mut b_drop_front) = (0, 0);
    while a.len() - a_drop_front + b.len() - b_drop_front > max {
        let a_longer = a.len() - a_drop_front > b.len() - b_drop_front;
        let (side, front) = match a_longer {
            true => (&mut *a, &mut a_drop_front),
            false => (&mut *b, &mut b_drop_front),
        };
        match rng.gen_bool(0.5) {
            true => *front += 1,
            false => {
                side.pop();
            }
        }
    }
    a.drain(..a_drop_front);
    b.drain(..b_drop_front);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_batches::sample_rng;

    #[test]
    fn long_pairs_are_trimmed_from_the_longer_side() {
        let mut rng = sample_rng(0, 0, 0);
        let (mut a, mut b) = (
            (0..50).collect::<Vec<u32>>(),
            (100..110).collect::<Vec<u32>>(),
        );
        trim_pair(&mut a, &mut b, 20, &mut rng);
        assert_eq!((a.len(), b.len()), (10, 10));
        assert!(
            a.windows(2).all(|w| w[1] == w[0] + 1),
            "a contiguous span stays: {a:?}"
        );
    }
}

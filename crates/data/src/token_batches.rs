//! Training samples from a token stream: random windows for next-token
//! prediction (GPT) and BERT-style masking for masked-LM. Each sample's
//! randomness comes from an RNG seeded by `(seed, epoch, sample index)`, so
//! batches do not depend on the thread that builds them.

use crate::sampler::mix;
use crate::token_file::Tokens;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Label value the token losses ignore (PyTorch's convention).
pub const IGNORE: i64 = -100;

/// The RNG of sample `index` in `epoch`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(mix(seed, epoch), index))
}

/// A random window of `length + 1` tokens: `(input, target)` with the target
/// shifted by one, as nanoGPT's `get_batch`. Needs `tokens.len() > length`;
/// an error when the tokens' file cannot be read.
pub fn next_token_window(
    tokens: &(impl Tokens + ?Sized),
    length: usize,
    rng: &mut impl Rng,
) -> crate::Result<(Vec<i64>, Vec<i64>)> {
    assert!(
        tokens.len() > length,
        "a window of {length} needs more than {length} tokens"
    );
    let start = rng.gen_range(0..tokens.len() - length);
    let window = tokens.to_vec(start..start + length + 1)?;
    let input = window[..length].iter().map(|&t| t as i64).collect();
    let target = window[1..].iter().map(|&t| t as i64).collect();
    Ok((input, target))
}

/// BERT's masking settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Masking {
    /// Share of (non-special) tokens selected for prediction (0.15).
    pub select: f64,
    /// Of the selected: share replaced by the mask token (0.8); of the rest,
    /// half get a random token and half stay (0.1 / 0.1).
    pub mask: f64,
    /// The mask token's id.
    pub mask_id: u32,
    /// Vocabulary size (random replacements come from `0..vocab_size`, specials excluded).
    pub vocab_size: u32,
    /// Tokens never selected nor drawn as random replacements (mask, padding, …).
    pub special: Vec<u32>,
}

impl Masking {
    /// BERT's 15 % / 80-10-10.
    pub fn bert(mask_id: u32, vocab_size: u32, special: Vec<u32>) -> Self {
        Self {
            select: 0.15,
            mask: 0.8,
            mask_id,
            vocab_size,
            special,
        }
    }

    /// Masks `tokens`: returns `(input, labels)` where labels hold the
    /// original token at selected positions and [`IGNORE`] elsewhere.
    pub fn apply(&self, tokens: &[u32], rng: &mut impl Rng) -> (Vec<i64>, Vec<i64>) {
        let mut input = Vec::with_capacity(tokens.len());
        let mut labels = Vec::with_capacity(tokens.len());
        for &token in tokens {
            if self.special.contains(&token) || !rng.gen_bool(self.select) {
                input.push(token as i64);
                labels.push(IGNORE);
                continue;
            }
            labels.push(token as i64);
            let roll: f64 = rng.gen();
            let replaced = if roll < self.mask {
                self.mask_id
            } else if roll < self.mask + (1.0 - self.mask) / 2.0 {
                self.random_token(rng)
            } else {
                token
            };
            input.push(replaced as i64);
        }
        (input, labels)
    }

    fn random_token(&self, rng: &mut impl Rng) -> u32 {
        loop {
            let token = rng.gen_range(0..self.vocab_size);
            if !self.special.contains(&token) {
                return token;
            }
        }
    }
}

/// The first `max_windows` consecutive, non-overlapping windows of `length`
/// tokens (evaluation reads the validation text in order): `(input, target)`
/// pairs for next-token loss.
pub fn sequential_windows(
    tokens: &(impl Tokens + ?Sized),
    length: usize,
    max_windows: usize,
) -> crate::Result<Vec<(Vec<i64>, Vec<i64>)>> {
    if tokens.len() <= length {
        return Ok(Vec::new());
    }
    (0..((tokens.len() - 1) / length).min(max_windows))
        .map(|w| {
            let window = tokens.to_vec(w * length..w * length + length + 1)?;
            Ok((
                window[..length].iter().map(|&t| t as i64).collect(),
                window[1..].iter().map(|&t| t as i64).collect(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_shifted_by_one_and_in_range() {
        let tokens: Vec<u32> = (0..100).collect();
        let mut rng = sample_rng(1, 0, 7);
        for _ in 0..50 {
            let (input, target) = next_token_window(&tokens, 10, &mut rng).unwrap();
            assert_eq!(input.len(), 10);
            assert!(input.iter().zip(&target).all(|(a, b)| b - a == 1));
            assert!(*target.last().unwrap() <= 99);
        }
        let again = next_token_window(&tokens, 10, &mut sample_rng(1, 0, 7)).unwrap();
        let first = next_token_window(&tokens, 10, &mut sample_rng(1, 0, 7)).unwrap();
        assert_eq!(again, first, "same (seed, epoch, index), same window");
    }

    #[test]
    fn masking_follows_bert_proportions_and_never_touches_specials() {
        // Token 0 is special (say padding); the mask token is 1.
        let masking = Masking::bert(1, 50, vec![0, 1]);
        let tokens: Vec<u32> = (0..200_000)
            .map(|i| if i % 10 == 0 { 0 } else { 2 + (i % 48) as u32 })
            .collect();
        let (input, labels) = masking.apply(&tokens, &mut sample_rng(0, 0, 0));
        let candidates = tokens.iter().filter(|&&t| t != 0).count() as f64;
        let selected: Vec<usize> = (0..tokens.len()).filter(|&i| labels[i] != IGNORE).collect();
        let share = selected.len() as f64 / candidates;
        assert!((share - 0.15).abs() < 0.005, "selected {share}");
        for (i, &t) in tokens.iter().enumerate() {
            if t == 0 {
                assert_eq!(
                    (input[i], labels[i]),
                    (0, IGNORE),
                    "specials stay and are not predicted"
                );
            }
            if labels[i] == IGNORE {
                assert_eq!(input[i], t as i64, "unselected tokens stay");
            } else {
                assert_eq!(labels[i], t as i64, "labels hold the original");
            }
        }
        let n = selected.len() as f64;
        let masked = selected.iter().filter(|&&i| input[i] == 1).count() as f64 / n;
        let kept = selected
            .iter()
            .filter(|&&i| input[i] == tokens[i] as i64)
            .count() as f64
            / n;
        let random = 1.0 - masked - kept;
        assert!((masked - 0.8).abs() < 0.01, "masked {masked}");
        // A random replacement equals the original 1 time in 48.
        assert!((kept - (0.1 + 0.1 / 48.0)).abs() < 0.01, "kept {kept}");
        assert!(
            (random - (0.1 - 0.1 / 48.0)).abs() < 0.01,
            "random {random}"
        );
        assert!(
            !selected.iter().any(|&i| input[i] == 0),
            "random replacements are never special"
        );
    }

    #[test]
    fn sequential_windows_cover_the_text_once() {
        let tokens: Vec<u32> = (0..25).collect();
        let windows = sequential_windows(&tokens, 8, usize::MAX).unwrap();
        assert_eq!(windows.len(), 3);
        assert_eq!(windows[2].0[0], 16);
        assert_eq!(*windows[2].1.last().unwrap(), 24);
        assert!(sequential_windows(&tokens[..8], 8, usize::MAX)
            .unwrap()
            .is_empty());
        assert_eq!(sequential_windows(&tokens, 8, 2).unwrap(), windows[..2]);
    }
}

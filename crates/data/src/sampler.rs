//! Which samples go into which batch: a per-epoch shuffle derived only from
//! `(seed, epoch)`, so a resumed run sees the same order as an uninterrupted one.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A seeded, per-epoch shuffling batch sampler.
#[derive(Debug, Clone)]
pub struct EpochSampler {
    /// Number of samples in the data set.
    pub len: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Drop the last, smaller batch (what SSL training wants: batch-norm and
    /// contrastive losses behave differently on a tiny batch).
    pub drop_last: bool,
    /// Base seed of the run.
    pub seed: u64,
}

impl EpochSampler {
    /// Number of batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.len / self.batch_size
        } else {
            self.len.div_ceil(self.batch_size)
        }
    }

    /// The batches of `epoch`, as sample indices.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(self.seed, epoch)));
        let mut batches: Vec<Vec<usize>> = order
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if self.drop_last && batches.last().is_some_and(|b| b.len() < self.batch_size) {
            batches.pop();
        }
        batches
    }
}

/// Combines two numbers into one well-spread seed (SplitMix64's finaliser), so
/// neighbouring epochs or samples do not get correlated streams.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_epoch_is_a_permutation_and_epochs_differ() {
        let sampler = EpochSampler {
            len: 10,
            batch_size: 3,
            drop_last: false,
            seed: 1,
        };
        let first: Vec<usize> = sampler.epoch(0).concat();
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_ne!(first, sampler.epoch(1).concat());
        assert_eq!(
            sampler.epoch(0),
            sampler.epoch(0),
            "same seed and epoch, same order"
        );
    }

    #[test]
    fn drop_last_keeps_full_batches_only() {
        let sampler = EpochSampler {
            len: 10,
            batch_size: 3,
            drop_last: true,
            seed: 0,
        };
        let batches = sampler.epoch(0);
        assert_eq!(batches.len(), 3);
        assert_eq!(sampler.batches_per_epoch(), 3);
        assert!(batches.iter().all(|b| b.len() == 3));
        let keep = EpochSampler {
            drop_last: false,
            ..sampler
        };
        assert_eq!(keep.batches_per_epoch(), 4);
        assert_eq!(keep.epoch(0).last().unwrap().len(), 1);
    }
}

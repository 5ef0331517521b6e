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
        self.batches(&order)
    }

    /// `order` (a permutation of `0..len`) cut into batches.
    pub fn batches(&self, order: &[usize]) -> Vec<Vec<usize>> {
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

/// A class-balanced subset for semi-supervised evaluation: from each class,
/// `fraction` of its samples (at least one), chosen by a seeded shuffle.
/// Returns sorted indices, the same for the same labels, fraction and seed.
pub fn balanced_subset(labels: &[i64], fraction: f64, seed: u64) -> Vec<usize> {
    let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (index, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(index);
    }
    let mut chosen = Vec::new();
    for (class, mut members) in by_class {
        members.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, class as u64)));
        let take = ((members.len() as f64 * fraction).round() as usize).clamp(1, members.len());
        chosen.extend_from_slice(&members[..take]);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod subset_tests {
    use super::*;

    #[test]
    fn balanced_subset_takes_the_fraction_of_every_class() {
        let labels: Vec<i64> = (0..1000).map(|i| if i < 900 { 0 } else { 1 }).collect();
        let subset = balanced_subset(&labels, 0.1, 3);
        let ones = subset.iter().filter(|&&i| labels[i] == 1).count();
        assert_eq!((subset.len() - ones, ones), (90, 10));
        assert_eq!(subset, balanced_subset(&labels, 0.1, 3), "deterministic");
        assert_ne!(subset, balanced_subset(&labels, 0.1, 4), "the seed matters");
        assert_eq!(
            balanced_subset(&labels, 0.0001, 0).len(),
            2,
            "at least one per class"
        );
    }
}

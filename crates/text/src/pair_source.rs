//! Training batches of BERT's sentence pairs for the shared trainer, each
//! pair drawn and masked by an RNG seeded with `(seed, epoch, index)`.

use crate::source::PairObjective;
use selfsup_data::sentence_pairs::SentencePairs;
use selfsup_data::token_batches::sample_rng;
use selfsup_train::{Batch, BatchSource, Named, Result};
use tch::{Device, Tensor};

/// Sentence pairs of the training documents.
#[derive(Debug)]
pub struct PairSource<'a> {
    /// The chunked documents.
    pub pairs: &'a SentencePairs,
    /// Masking, task and special tokens.
    pub objective: PairObjective,
    /// Seeds every pair's drawing and masking.
    pub seed: u64,
    /// Where batches go.
    pub device: Device,
}

impl BatchSource for PairSource<'_> {
    /// One pair per chunk of the documents.
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn batch(&self, epoch: usize, indices: &[usize]) -> Result<Batch> {
        let seed = |index: usize| (self.seed, epoch as u64, index as u64);
        Ok(pair_batch(
            self.pairs,
            &self.objective,
            indices,
            seed,
            self.device,
        ))
    }

    fn unit(&self) -> &'static str {
        "tokens"
    }

    fn units_per_sample(&self) -> usize {
        self.pairs.length()
    }
}

/// The pairs of chunks `indices`, each drawn with `sample_rng(rng_of(index))`.
/// Inputs: `tokens` (masked), `segments` and `keep` (false at padding),
/// `[batch, length]`; targets: `tokens` (originals at masked positions,
/// −100 elsewhere) and `sentence` (`[batch]`, the pair's label).
pub fn pair_batch(
    pairs: &SentencePairs,
    objective: &PairObjective,
    indices: &[usize],
    rng_of: impl Fn(usize) -> (u64, u64, u64),
    device: Device,
) -> Batch {
    let length = pairs.length();
    let rows = indices.len() as i64;
    let (mut inputs, mut labels, mut segments, mut keep, mut sentence) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &index in indices {
        let (seed, epoch, sample) = rng_of(index);
        let mut rng = sample_rng(seed, epoch, sample);
        let pair = pairs.pair(index, &mut rng);
        let (masked, targets) = objective.masking.apply(&pair.tokens, &mut rng);
        inputs.extend(masked);
        labels.extend(targets);
        segments.extend(pair.segments);
        keep.extend((0..length).map(|i| i < pair.real));
        sentence.push(pair.label);
    }
    let grid = |values: &[i64]| {
        Tensor::from_slice(values)
            .view([rows, length as i64])
            .to_device(device)
    };
    let keep = Tensor::from_slice(&keep)
        .view([rows, length as i64])
        .to_device(device);
    Batch {
        inputs: Named::new()
            .with("tokens", grid(&inputs))
            .with("segments", grid(&segments))
            .with("keep", keep),
        targets: Named::new()
            .with("tokens", grid(&labels))
            .with("sentence", Tensor::from_slice(&sentence).to_device(device)),
        labels: None,
        indices: indices.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfsup_data::documents::Documents;
    use selfsup_data::sentence_pairs::{PairTask, PairTokens};
    use selfsup_data::token_batches::{Masking, IGNORE};
    use tch::Kind;

    #[test]
    fn batches_hold_masked_pairs_with_their_labels() {
        let documents = Documents {
            documents: (0..5)
                .map(|d| (0..6).map(|s| vec![(d * 6 + s) as u32 % 30; 4]).collect())
                .collect(),
        };
        let tokens = PairTokens {
            cls: 31,
            sep: 32,
            pad: 33,
        };
        let pairs = SentencePairs::new(documents, 20, PairTask::Nsp, tokens, 0).unwrap();
        let source = PairSource {
            pairs: &pairs,
            objective: PairObjective {
                masking: Masking::bert(30, 30, vec![30, 31, 32, 33]),
                task: PairTask::Nsp,
                tokens,
            },
            seed: 4,
            device: Device::Cpu,
        };
        let indices: Vec<usize> = (0..source.len()).collect();
        let batch = source.batch(0, &indices).unwrap();
        let get = |name: &str| batch.inputs.get(name).unwrap();
        assert_eq!(get("tokens").size(), vec![indices.len() as i64, 20]);
        assert_eq!(get("keep").kind(), Kind::Bool);
        assert_eq!(
            batch.targets.get("sentence").unwrap().size(),
            vec![indices.len() as i64]
        );
        let labels: Vec<i64> =
            Vec::try_from(batch.targets.get("tokens").unwrap().flatten(0, -1)).unwrap();
        let input: Vec<i64> = Vec::try_from(get("tokens").flatten(0, -1)).unwrap();
        let keep: Vec<bool> = Vec::try_from(get("keep").flatten(0, -1)).unwrap();
        for ((&label, &id), &kept) in labels.iter().zip(&input).zip(&keep) {
            if label != IGNORE {
                assert!(
                    kept && label < 30,
                    "only real, non-special tokens are predicted"
                );
            }
            assert_eq!(kept, id != 33, "keep is false exactly at padding");
        }
        assert!(labels.iter().any(|&l| l != IGNORE));
        let again = source.batch(0, &indices).unwrap();
        assert!(again.inputs.get("tokens").unwrap().equal(get("tokens")));
    }
}

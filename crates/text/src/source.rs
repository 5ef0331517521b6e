//! Training batches from a token stream, for the shared trainer: random
//! windows (next-token) or masked windows (masked-LM), each sample seeded by
//! `(seed, epoch, index)`.

use selfsup_data::sentence_pairs::{PairTask, PairTokens};
use selfsup_data::token_batches::{next_token_window, sample_rng, Masking};
use selfsup_data::token_file::Tokens;
use selfsup_train::{Batch, BatchSource, Named, Result};
use tch::{Device, Tensor};

/// What each sample asks the model to predict.
#[derive(Debug, Clone)]
pub enum Objective {
    /// The next token at every position.
    NextToken,
    /// The original tokens at BERT-masked positions.
    Masked(Masking),
    /// Sentence pairs (BERT, ALBERT): masked tokens and the pair's label.
    Pairs(PairObjective),
}

/// What a sentence-pair model is trained on.
#[derive(Debug, Clone)]
pub struct PairObjective {
    /// Masking of the pair's tokens (the special tokens never masked).
    pub masking: Masking,
    /// Next-sentence or sentence-order.
    pub task: PairTask,
    /// `[CLS]`, `[SEP]` and `[PAD]`.
    pub tokens: PairTokens,
}

impl Objective {
    /// The masking, for the masked objectives.
    pub fn masking(&self) -> Option<&Masking> {
        match self {
            Objective::NextToken => None,
            Objective::Masked(masking) => Some(masking),
            Objective::Pairs(pairs) => Some(&pairs.masking),
        }
    }
}

/// Windows of `length` tokens from `tokens`.
#[derive(Debug)]
pub struct TextSource<'a> {
    /// The training tokens (in memory or a memory-mapped token file).
    pub tokens: &'a dyn Tokens,
    /// Tokens per window (the model's context or less).
    pub length: usize,
    /// Next-token or masked.
    pub objective: Objective,
    /// Seeds every window's position and masking.
    pub seed: u64,
    /// Where batches go.
    pub device: Device,
}

impl TextSource<'_> {
    /// `(input, labels)` of sample `index` in `epoch`; an error when the
    /// token file can no longer be read.
    pub fn sample(&self, epoch: usize, index: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        let mut rng = sample_rng(self.seed, epoch as u64, index as u64);
        Ok(match &self.objective {
            Objective::NextToken => next_token_window(self.tokens, self.length, &mut rng)?,
            Objective::Masked(masking) | Objective::Pairs(PairObjective { masking, .. }) => {
                let (window, _) = next_token_window(self.tokens, self.length, &mut rng)?;
                let window: Vec<u32> = window.iter().map(|&t| t as u32).collect();
                masking.apply(&window, &mut rng)
            }
        })
    }
}

impl BatchSource for TextSource<'_> {
    /// As many windows per epoch as fit in the tokens side by side.
    fn len(&self) -> usize {
        self.tokens.len() / self.length
    }

    /// Input `tokens` and target `tokens` (the next token, or the original
    /// at masked positions and −100 elsewhere), each `[batch, length]`.
    fn batch(&self, epoch: usize, indices: &[usize]) -> Result<Batch> {
        let samples = indices
            .iter()
            .map(|&i| self.sample(epoch, i))
            .collect::<Result<Vec<_>>>()?;
        let (inputs, labels): (Vec<Vec<i64>>, Vec<Vec<i64>>) = samples.into_iter().unzip();
        let stack = |rows: Vec<Vec<i64>>| {
            Tensor::from_slice(&rows.concat())
                .view([indices.len() as i64, self.length as i64])
                .to_device(self.device)
        };
        Ok(Batch {
            inputs: Named::new().with("tokens", stack(inputs)),
            targets: Named::new().with("tokens", stack(labels)),
            labels: None,
            indices: indices.to_vec(),
        })
    }

    fn unit(&self) -> &'static str {
        "tokens"
    }

    fn units_per_sample(&self) -> usize {
        self.length
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfsup_data::token_batches::IGNORE;

    #[test]
    fn next_token_batches_are_shifted_windows() {
        let tokens: Vec<u32> = (0..1000).collect();
        let source = TextSource {
            tokens: &tokens,
            length: 16,
            objective: Objective::NextToken,
            seed: 3,
            device: Device::Cpu,
        };
        assert_eq!(source.len(), 62);
        let batch = source.batch(0, &[0, 5, 9]).unwrap();
        let (inputs, targets) = (
            batch.inputs.get("tokens").unwrap(),
            batch.targets.get("tokens").unwrap(),
        );
        assert_eq!(inputs.size(), vec![3, 16]);
        let diff = (targets - inputs).eq(1).all().int64_value(&[]);
        assert_eq!(diff, 1, "every target is the next token");
        let again = source.batch(0, &[0, 5, 9]).unwrap();
        assert!(again.inputs.get("tokens").unwrap().equal(inputs));
        let next_epoch = source.batch(1, &[0, 5, 9]).unwrap();
        assert!(
            !next_epoch.inputs.get("tokens").unwrap().equal(inputs),
            "new epoch, new windows"
        );
    }

    #[test]
    fn masked_batches_predict_only_selected_tokens() {
        let tokens: Vec<u32> = (0..5000).map(|i| 1 + i % 40).collect();
        let source = TextSource {
            tokens: &tokens,
            length: 64,
            objective: Objective::Masked(Masking::bert(0, 41, vec![0])),
            seed: 1,
            device: Device::Cpu,
        };
        let batch = source.batch(0, &(0..32).collect::<Vec<_>>()).unwrap();
        let labels: Vec<i64> =
            Vec::try_from(batch.targets.get("tokens").unwrap().flatten(0, -1)).unwrap();
        let inputs: Vec<i64> =
            Vec::try_from(batch.inputs.get("tokens").unwrap().flatten(0, -1)).unwrap();
        let selected = labels.iter().filter(|&&l| l != IGNORE).count() as f64 / labels.len() as f64;
        assert!((selected - 0.15).abs() < 0.03, "{selected}");
        let masked = inputs
            .iter()
            .zip(&labels)
            .filter(|(&i, &l)| l != IGNORE && i == 0)
            .count();
        assert!(
            masked > 0
                && inputs
                    .iter()
                    .zip(&labels)
                    .all(|(&i, &l)| l != IGNORE || i != 0)
        );
    }
}

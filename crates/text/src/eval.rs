//! Language-model evaluation: validation loss with perplexity and bits per
//! character, held-out sentence-pair accuracy, and fill-mask. Sampling is
//! in `generate.rs` (re-exported here).

pub use crate::generate::{generate, Sampling};
use crate::methods::bert::Bert;
use crate::pair_source::pair_batch;
use crate::registry::TextMethod;
use crate::source::Objective;
use crate::source::PairObjective;
use selfsup_core::losses::IGNORE_INDEX;
use selfsup_data::sentence_pairs::SentencePairs;
use selfsup_data::token_batches::{sample_rng, sequential_windows};
use selfsup_data::token_file::Tokens;
use tch::{Device, Kind, Tensor};

/// Loss on held-out text, and what papers derive from it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LmScore {
    /// Mean cross-entropy per predicted token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// `loss / ln 2`: bits per token (per character for the char tokenizer).
    pub bits_per_token: f64,
    /// Tokens predicted.
    pub tokens: usize,
    /// Share of the predicted tokens whose most likely token is the right
    /// one (masked-token accuracy for masked-LM, next-token for GPT).
    pub top1: f64,
    /// Sentence-pair models: the share of held-out pairs whose
    /// next-sentence (or sentence-order) label is right; chance is 0.5.
    pub sentence_accuracy: Option<f64>,
}

impl LmScore {
    fn from_sums(sums: Sums) -> Self {
        let tokens = sums.predicted.max(1) as f64;
        let loss = sums.loss / tokens;
        Self {
            loss,
            perplexity: loss.exp(),
            bits_per_token: loss / std::f64::consts::LN_2,
            tokens: sums.predicted,
            top1: sums.right as f64 / tokens,
            sentence_accuracy: None,
        }
    }
}

/// Running totals over the predicted tokens of a validation pass.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    loss: f64,
    predicted: usize,
    right: usize,
}

impl std::ops::AddAssign for Sums {
    fn add_assign(&mut self, other: Self) {
        self.loss += other.loss;
        self.predicted += other.predicted;
        self.right += other.right;
    }
}

/// Summed cross-entropy of `logits` `[batch, tokens, vocab]` against
/// `target` `[batch, tokens]` (−100: not predicted), the tokens predicted
/// and how many of them the most likely token gets right.
fn summed_loss(logits: &Tensor, target: &Tensor) -> Sums {
    let vocab = logits.size()[2];
    let logits = logits.view([-1, vocab]).to_kind(Kind::Float);
    let target = target.view([-1]);
    let sum =
        logits.cross_entropy_loss::<Tensor>(&target, None, tch::Reduction::Sum, IGNORE_INDEX, 0.0);
    let predicted = target.ne(IGNORE_INDEX);
    let right = logits
        .argmax(-1, false)
        .eq_tensor(&target)
        .logical_and(&predicted);
    Sums {
        loss: sum.double_value(&[]),
        predicted: predicted.sum(Kind::Int64).int64_value(&[]) as usize,
        right: right.sum(Kind::Int64).int64_value(&[]) as usize,
    }
}

/// Scores a BERT model on up to `max_pairs` held-out pairs (drawn and masked
/// with fixed seeds, so runs compare): MLM loss over the masked tokens and
/// the sentence task's accuracy.
pub fn pair_score(
    bert: &Bert,
    objective: &PairObjective,
    pairs: &SentencePairs,
    max_pairs: usize,
    batch: usize,
    device: Device,
) -> selfsup_train::Result<LmScore> {
    let indices: Vec<usize> = (0..pairs.len().min(max_pairs)).collect();
    let (mut sums, mut right) = (Sums::default(), 0i64);
    tch::no_grad(|| -> selfsup_train::Result<()> {
        for chunk in indices.chunks(batch.max(1)) {
            let batch = pair_batch(pairs, objective, chunk, |i| (0, u64::MAX, i as u64), device);
            let (mlm, sentence) = bert.pair_logits(&batch, false)?;
            sums += summed_loss(&mlm, batch.targets.get("tokens")?);
            let labels = batch.targets.get("sentence")?;
            right += sentence
                .argmax(-1, false)
                .eq_tensor(labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
        Ok(())
    })?;
    let mut score = LmScore::from_sums(sums);
    score.sentence_accuracy = Some(right as f64 / indices.len().max(1) as f64);
    Ok(score)
}

/// Scores `method` on `tokens` (validation text) in consecutive windows of
/// `length`, at most `max_windows` of them, `batch` windows at a time. For
/// masked-LM the windows are masked with a fixed seed, so runs compare.
/// An error when the tokens' file can no longer be read.
pub fn validation_score(
    method: &dyn TextMethod,
    objective: &Objective,
    tokens: &dyn Tokens,
    length: usize,
    batch: usize,
    max_windows: usize,
    device: Device,
) -> selfsup_data::Result<LmScore> {
    let mut windows = sequential_windows(tokens, length, max_windows)?;
    if let Some(masking) = objective.masking() {
        for (index, (input, target)) in windows.iter_mut().enumerate() {
            let original: Vec<u32> = input.iter().map(|&t| t as u32).collect();
            (*input, *target) =
                masking.apply(&original, &mut sample_rng(0, u64::MAX, index as u64));
        }
    }
    let mut sums = Sums::default();
    tch::no_grad(|| {
        for chunk in windows.chunks(batch.max(1)) {
            let rows = chunk.len() as i64;
            let stack = |rows_of: Vec<&Vec<i64>>| {
                let flat: Vec<i64> = rows_of.into_iter().flatten().copied().collect();
                Tensor::from_slice(&flat)
                    .view([rows, length as i64])
                    .to_device(device)
            };
            let input = stack(chunk.iter().map(|w| &w.0).collect());
            let target = stack(chunk.iter().map(|w| &w.1).collect());
            sums += summed_loss(&method.logits(&input, false), &target);
        }
    });
    Ok(LmScore::from_sums(sums))
}

/// The `k` most likely tokens (id, probability) at each position of `ids`
/// holding `mask_id`, most likely first; only the tokenizer's ids (those
/// below `mask_id`) are candidates. A BERT model reads `[CLS] ids [SEP]`.
pub fn fill_mask(
    method: &dyn TextMethod,
    ids: &[u32],
    mask_id: u32,
    k: i64,
    device: Device,
) -> Vec<(usize, Vec<(u32, f64)>)> {
    let (input, shift) = method.framed(ids);
    let input = Tensor::from_slice(&input).view([1, -1]).to_device(device);
    // The mask token and any special after it are never answers: candidates
    // come from the tokenizer's own tokens.
    let probabilities = tch::no_grad(|| {
        let logits = method.logits(&input, false).get(0);
        let real = logits.size()[1].min(mask_id as i64);
        logits.narrow(-1, 0, real).softmax(-1, Kind::Float)
    });
    let k = k.clamp(1, probabilities.size()[1]);
    ids.iter()
        .enumerate()
        .filter(|(_, &t)| t == mask_id)
        .map(|(position, _)| {
            let (p, top) = probabilities
                .get((position + shift) as i64)
                .topk(k, 0, true, true);
            let candidates = (0..k)
                .map(|j| (top.int64_value(&[j]) as u32, p.double_value(&[j])))
                .collect();
            (position, candidates)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_derivations() {
        let score = LmScore::from_sums(Sums {
            loss: 2.0 * std::f64::consts::LN_2 * 10.0,
            predicted: 10,
            right: 4,
        });
        assert!((score.bits_per_token - 2.0).abs() < 1e-12);
        assert!((score.perplexity - 4.0).abs() < 1e-9);
        assert!((score.top1 - 0.4).abs() < 1e-12);
    }

    #[test]
    fn summed_loss_counts_only_predicted_tokens() {
        // Two rows of two positions over 3 tokens; the second row's first
        // position is not predicted (its argmax would be right).
        let logits = Tensor::from_slice(&[
            5.0f32, 0.0, 0.0, 0.0, 5.0, 0.0, //
            0.0, 0.0, 5.0, 0.0, 5.0, 0.0,
        ])
        .view([2, 2, 3]);
        let target = Tensor::from_slice(&[0i64, 2, IGNORE_INDEX, 1]).view([2, 2]);
        let sums = summed_loss(&logits, &target);
        assert_eq!((sums.predicted, sums.right), (3, 2));
        let expected = logits
            .view([4, 3])
            .log_softmax(-1, Kind::Float)
            .neg()
            .gather(1, &Tensor::from_slice(&[0i64, 2, 0, 1]).view([4, 1]), false)
            .view([4]);
        let want =
            expected.double_value(&[0]) + expected.double_value(&[1]) + expected.double_value(&[3]);
        assert!((sums.loss - want).abs() < 1e-4, "{} vs {want}", sums.loss);
    }
}

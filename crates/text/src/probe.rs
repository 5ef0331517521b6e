//! A downstream probe for text features: which source a passage comes from
//! (e.g. which book), decided by a linear classifier on frozen, mean-pooled
//! features, trained vs random-init.

use crate::config::TextMethod;
use selfsup_data::tokenizer::Tokenizer;
use tch::{Device, Kind, Tensor};

/// Labelled passages of token ids.
#[derive(Debug, Clone, Default)]
pub struct Passages {
    /// Token ids of each passage.
    pub ids: Vec<Vec<u32>>,
    /// Index of the text each passage comes from.
    pub labels: Vec<i64>,
    /// Passages left out because the tokenizer could not encode them.
    pub skipped: usize,
}

/// Up to `per_text` passages of `chars` characters from each text, at
/// evenly spaced positions (deterministic), tokenised; a passage with a
/// character the tokenizer lacks is skipped and counted.
pub fn passages(
    texts: &[String],
    tokenizer: &Tokenizer,
    chars: usize,
    per_text: usize,
) -> Passages {
    let mut out = Passages::default();
    for (label, text) in texts.iter().enumerate() {
        let characters: Vec<char> = text.chars().collect();
        let available = characters.len() / chars;
        let step = (available / per_text.max(1)).max(1);
        for k in (0..available).step_by(step).take(per_text) {
            let passage: String = characters[k * chars..(k + 1) * chars].iter().collect();
            match tokenizer.encode(&passage) {
                Ok(ids) => {
                    out.ids.push(ids);
                    out.labels.push(label as i64);
                }
                Err(_) => out.skipped += 1,
            }
        }
    }
    out
}

/// `[passages, dim]` features: each passage is cut into windows of `context`
/// tokens (a shorter tail is dropped), and the model's mean-pooled features
/// of its windows are averaged.
pub fn passage_features(
    method: &dyn TextMethod,
    passages: &[Vec<u32>],
    context: usize,
    device: Device,
) -> Tensor {
    let windows_per = passages
        .iter()
        .map(|p| p.len() / context)
        .min()
        .unwrap_or(0)
        .max(1);
    let rows: Vec<i64> = passages
        .iter()
        .flat_map(|p| {
            let mut padded = p.clone();
            padded.resize(padded.len().max(context), 0);
            padded[..windows_per * context]
                .iter()
                .map(|&t| t as i64)
                .collect::<Vec<_>>()
        })
        .collect();
    let all = Tensor::from_slice(&rows).view([-1, context as i64]);
    let features: Vec<Tensor> = tch::no_grad(|| {
        (0..all.size()[0])
            .step_by(64)
            .map(|start| {
                let len = 64.min(all.size()[0] - start);
                method.features(&all.narrow(0, start, len).to_device(device), false)
            })
            .collect()
    });
    let features = Tensor::cat(&features, 0).to_kind(Kind::Float);
    let dim = features.size()[1];
    features
        .view([passages.len() as i64, windows_per as i64, dim])
        .mean_dim(1, false, Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfsup_data::text::CharTokenizer;

    #[test]
    fn passages_are_spread_labelled_and_skip_unknown_characters() {
        let a = "abcd".repeat(100);
        let b = format!("{}{}", "dcba".repeat(50), "zz".repeat(100));
        let tokenizer = Tokenizer::Char(CharTokenizer::fit("abcd"));
        let found = passages(&[a, b], &tokenizer, 40, 5);
        assert_eq!(
            found.labels,
            [0, 0, 0, 0, 0, 1, 1, 1, 1, 1][..found.labels.len()]
        );
        assert_eq!(found.ids.len() + found.skipped, 10);
        assert!(found.skipped > 0, "passages with `z` are skipped");
        assert!(found.ids.iter().all(|p| p.len() == 40));
    }
}

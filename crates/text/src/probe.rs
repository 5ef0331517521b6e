//! A downstream probe for text features: which source a passage comes from
//! (e.g. which book), decided by a linear classifier on frozen, mean-pooled
//! features, trained vs random-init.

use crate::experiment::LoadedText;
use crate::registry::TextMethod;
use selfsup_data::tokenizer::Tokenizer;
use selfsup_train::eval::linear_probe;
use selfsup_train::{check, Result};
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

/// `[passages, dim]` features: each passage is cut into windows of at most
/// `context` tokens (the last one padded and masked), and the final hidden
/// states are averaged over all of the passage's tokens.
pub fn passage_features(
    method: &dyn TextMethod,
    passages: &[Vec<u32>],
    context: usize,
    device: Device,
) -> Tensor {
    let (mut ids, mut keep, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    for (p, passage) in passages.iter().enumerate() {
        for window in passage.chunks(context) {
            ids.extend(window.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(0, context - window.len()));
            keep.extend(std::iter::repeat_n(true, window.len()));
            keep.extend(std::iter::repeat_n(false, context - window.len()));
            owner.push(p as i64);
        }
    }
    let rows = owner.len() as i64;
    let ids = Tensor::from_slice(&ids).view([rows, context as i64]);
    let keep = Tensor::from_slice(&keep).view([rows, context as i64]);
    let dim = method.transformer().config.dim;
    let mut sums = Tensor::zeros([passages.len() as i64, dim], (Kind::Float, device));
    let mut counts = Tensor::zeros([passages.len() as i64], (Kind::Float, device));
    let owner = Tensor::from_slice(&owner).to_device(device);
    tch::no_grad(|| {
        for start in (0..rows).step_by(64) {
            let len = 64.min(rows - start);
            let (sum, count) = method.transformer().pooled_sum(
                &ids.narrow(0, start, len).to_device(device),
                &keep.narrow(0, start, len).to_device(device),
            );
            let who = owner.narrow(0, start, len);
            sums = sums.index_add(0, &who, &sum);
            counts = counts.index_add(0, &who, &count);
        }
    });
    sums / counts.clamp_min(1.0).unsqueeze(1)
}

/// The which-text probe's result.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Top-1 of the probe on the trained model's features (0–1).
    pub trained: f64,
    /// The same on the model at its random initialisation.
    pub random_init: f64,
    /// Passages the probe trained on and was scored on.
    pub train_passages: usize,
    /// Passages scored.
    pub test_passages: usize,
    /// Passages left out (text the tokenizer cannot encode).
    pub skipped: usize,
}

/// Which of `texts` a passage of `chars` characters comes from: a linear
/// probe (every 5th passage held out) on frozen mean-pooled features of the
/// trained model and of the same model at random init.
pub fn probe_texts(
    loaded: &LoadedText,
    texts: &[String],
    chars: usize,
    per_text: usize,
) -> Result<ProbeReport> {
    let found = passages(texts, &loaded.tokenizer, chars, per_text);
    if found.ids.is_empty() {
        return Err(check::invalid("--texts", "no passage could be tokenised"));
    }
    let context = loaded.method.context();
    let (train, test): (Vec<usize>, Vec<usize>) = (0..found.ids.len()).partition(|i| i % 5 != 0);
    let pick = |rows: &[usize]| -> (Vec<Vec<u32>>, Tensor) {
        let ids = rows.iter().map(|&i| found.ids[i].clone()).collect();
        let labels: Vec<i64> = rows.iter().map(|&i| found.labels[i]).collect();
        (ids, Tensor::from_slice(&labels))
    };
    let ((train_ids, train_y), (test_ids, test_y)) = (pick(&train), pick(&test));
    let score = |method: &dyn TextMethod| {
        let features = |ids: &[Vec<u32>]| passage_features(method, ids, context, loaded.device);
        let config = &loaded.config.eval.linear_probe;
        linear_probe(
            &features(&train_ids),
            &train_y,
            &features(&test_ids),
            &test_y,
            texts.len() as i64,
            config,
        )
    };
    let trained = score(loaded.method.as_ref());
    let (_vs, fresh) = loaded.random_init()?;
    Ok(ProbeReport {
        trained,
        random_init: score(fresh.as_ref()),
        train_passages: train.len(),
        test_passages: test.len(),
        skipped: found.skipped,
    })
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

    #[test]
    fn passage_features_average_over_every_token_of_ragged_passages() {
        use crate::methods::next_token::{NextToken, NextTokenConfig};
        let config: NextTokenConfig =
            toml::from_str("[model]\ncontext = 4\ndim = 8\ndepth = 1\nheads = 2\n").unwrap();
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = NextToken::new(vs.root(), &config, 10).unwrap();
        // One passage of 6 tokens: windows [1 2 3 4] and [5 6] (padded).
        let features = passage_features(&model, &[vec![1, 2, 3, 4, 5, 6]], 4, Device::Cpu);
        let h = |ids: &[i64]| {
            model
                .transformer()
                .hidden(&Tensor::from_slice(ids).view([1, -1]), false)
                .get(0)
        };
        let expected = (h(&[1, 2, 3, 4]).sum_dim_intlist(0, false, Kind::Float)
            + h(&[5, 6]).sum_dim_intlist(0, false, Kind::Float))
            / 6.0;
        assert!(features.get(0).allclose(&expected, 1e-5, 1e-5, false));
    }
}

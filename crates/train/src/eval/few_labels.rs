//! Fine-tuning with few labels on a labelled set of the user's (`selfsup
//! finetune`), for any modality: a stratified held-out split (fixed seed,
//! so every label share and every model scores on the same samples), a
//! class-balanced share of the rest to train on, and the pretrained model
//! against the same architecture from random init, both fine-tuned alike.

use super::{fine_tune, FineTuneConfig, LabelledData};
use crate::check;
use crate::error::Result;
use crate::method::FeatureExtractor;
use selfsup_data::sampler::balanced_subset;
use tch::nn::VarStore;
use tch::Tensor;

/// Seed of the held-out split: fixed, so runs and label shares compare.
pub const SPLIT_SEED: u64 = 0x5e1f;

/// Share of each class held out for scoring when no test set is given.
pub const HELD_OUT: f64 = 0.2;

/// What `selfsup finetune` is asked, whatever the modality.
#[derive(Debug, Clone)]
pub struct FewLabelRequest<'a> {
    /// The run folder.
    pub run: &'a std::path::Path,
    /// Labelled data, one folder per class.
    pub data: &'a std::path::Path,
    /// A separate labelled test set; without it [`HELD_OUT`] of `data` is held out.
    pub test: Option<&'a std::path::Path>,
    /// Share of the training labels to use, in (0, 1].
    pub share: f64,
    /// Epochs, batch size, learning rate, weight decay, seed.
    pub config: FineTuneConfig,
}

impl FewLabelRequest<'_> {
    /// Checks the share and the fine-tuning settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.share > 0.0 && self.share <= 1.0) {
            return Err(check::invalid(
                "--labels",
                format!("{} must be in (0, 1]", self.share),
            ));
        }
        self.config.validate("finetune")
    }
}

/// `"10%"` → 0.1, `"0.1"` → 0.1: a share of the labels in (0, 1].
pub fn parse_share(text: &str) -> Result<f64> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(percent) => (percent.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let share = number.parse::<f64>().map(|v| v / scale).map_err(|_| {
        check::invalid(
            "--labels",
            format!("{text:?} is not a share like 1%, 10% or 0.1"),
        )
    })?;
    if !(share > 0.0 && share <= 1.0) {
        return Err(check::invalid(
            "--labels",
            format!("{text:?} must be above 0 and at most 100 %"),
        ));
    }
    Ok(share)
}

pub use super::fine_tune::default_epochs;

/// `(pool, held_out)`: a stratified `held_out` share of each class (at
/// least one sample each) and everything else, both sorted.
pub fn held_out_split(labels: &[i64], held_out: f64) -> (Vec<usize>, Vec<usize>) {
    let test = balanced_subset(labels, held_out, SPLIT_SEED);
    let mut is_test = vec![false; labels.len()];
    for &i in &test {
        is_test[i] = true;
    }
    let pool = (0..labels.len()).filter(|&i| !is_test[i]).collect();
    (pool, test)
}

/// Some of the samples of a labelled set, renumbered `0..indices.len()`.
pub struct Indexed<'a> {
    /// The whole set.
    pub data: &'a dyn LabelledData,
    /// Which of its samples, in order.
    pub indices: Vec<usize>,
}

impl Indexed<'_> {
    fn map(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.indices[i]).collect()
    }
}

impl LabelledData for Indexed<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn num_classes(&self) -> usize {
        self.data.num_classes()
    }
    fn inputs(&self, indices: &[usize]) -> Result<Tensor> {
        self.data.inputs(&self.map(indices))
    }
    fn labels(&self, indices: &[usize]) -> Tensor {
        self.data.labels(&self.map(indices))
    }
}

/// A model to fine-tune: its feature extractor and variables.
pub struct Tunable<'a> {
    /// Features of inputs, `[batch, dim]`.
    pub backbone: &'a dyn FeatureExtractor,
    /// Its variables (they train).
    pub vs: &'a VarStore,
}

/// What fine-tuning on a share of the labels scored.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FewLabels {
    /// The share of the training pool's labels used, 0–1.
    pub share: f64,
    /// Labelled samples trained on.
    pub labelled: usize,
    /// Held-out samples scored.
    pub held_out: usize,
    /// Top-1 (0–1) of the pretrained model, fine-tuned.
    pub pretrained: f64,
    /// Top-1 of the same architecture from random init, fine-tuned alike.
    pub random_init: f64,
}

/// The sets of a few-label run: the training pool's labelled share and
/// the held-out samples.
pub struct FewLabelSplit<'a> {
    /// Samples trained on (a class-balanced share of the pool).
    pub labelled: Indexed<'a>,
    /// Samples scored.
    pub held_out: Indexed<'a>,
}

impl<'a> FewLabelSplit<'a> {
    /// `data` split: [`HELD_OUT`] of each class held out (or all of
    /// `test`, when given); `request.share` of each class of the rest,
    /// drawn with the fine-tuning seed, trains.
    pub fn new(
        data: &'a dyn LabelledData,
        test: Option<&'a dyn LabelledData>,
        request: &FewLabelRequest<'_>,
    ) -> Self {
        let (share, seed) = (request.share, request.config.seed);
        let labels = data.all_labels();
        let (pool, held) = match test {
            Some(_) => ((0..labels.len()).collect::<Vec<_>>(), Vec::new()),
            None => held_out_split(&labels, HELD_OUT),
        };
        let pool_labels: Vec<i64> = pool.iter().map(|&i| labels[i]).collect();
        let labelled = balanced_subset(&pool_labels, share, seed)
            .into_iter()
            .map(|p| pool[p])
            .collect();
        let held_out = match test {
            Some(test) => Indexed {
                indices: (0..test.len()).collect(),
                data: test,
            },
            None => Indexed {
                data,
                indices: held,
            },
        };
        Self {
            labelled: Indexed {
                data,
                indices: labelled,
            },
            held_out,
        }
    }
}

/// Fine-tunes `trained` and `random` alike on the split; top-1 of each.
pub fn fine_tune_both(
    trained: Tunable<'_>,
    random: Tunable<'_>,
    split: &FewLabelSplit<'_>,
    request: &FewLabelRequest<'_>,
) -> Result<FewLabels> {
    let (share, config) = (request.share, &request.config);
    let all: Vec<usize> = (0..split.labelled.len()).collect();
    let score = |model: Tunable<'_>| {
        fine_tune(
            model.backbone,
            model.vs,
            &split.labelled,
            &all,
            &split.held_out,
            config,
        )
    };
    tracing::info!(
        share,
        labelled = all.len(),
        "fine-tuning the pretrained model"
    );
    let pretrained = score(trained)?;
    tracing::info!(pretrained, "fine-tuning the same model from random init");
    let random_init = score(random)?;
    Ok(FewLabels {
        share,
        labelled: all.len(),
        held_out: split.held_out.len(),
        pretrained,
        random_init,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_and_bad_ones_are_named() {
        assert_eq!(parse_share("10%").unwrap(), 0.1);
        assert_eq!(parse_share(" 1 %").unwrap(), 0.01);
        assert_eq!(parse_share("0.5").unwrap(), 0.5);
        assert_eq!(parse_share("100%").unwrap(), 1.0);
        assert_eq!(
            (
                default_epochs(0.01),
                default_epochs(0.1),
                default_epochs(1.0)
            ),
            (60, 30, 10)
        );
        for bad in ["0%", "150%", "ten", "2"] {
            let error = parse_share(bad).unwrap_err().to_string();
            assert!(error.contains("--labels"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_split_is_stratified_fixed_and_disjoint() {
        let labels: Vec<i64> = (0..1000).map(|i| i64::from(i % 4 == 0)).collect();
        let (pool, test) = held_out_split(&labels, 0.2);
        assert_eq!(pool.len() + test.len(), 1000);
        assert_eq!(test.iter().filter(|&&i| labels[i] == 1).count(), 50);
        assert!(pool.iter().all(|i| test.binary_search(i).is_err()));
        assert_eq!(
            held_out_split(&labels, 0.2).1,
            test,
            "the same split every time"
        );
    }
}

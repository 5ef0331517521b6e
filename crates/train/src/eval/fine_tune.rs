//! Fine-tuning the whole network on a fraction of the labels (the semi-
//! supervised protocol of SimCLR and BYOL: 1 % and 10 % of ImageNet's labels,
//! class-balanced, fixed seed). A linear head goes on the backbone's features;
//! backbone and head train together with AdamW and a cosine schedule; top-1 is
//! measured on the held-out split.

use super::LabelledData;
use crate::error::Result;
use crate::method::FeatureExtractor;
use selfsup_core::optim::{decay_groups, AdamW, AdamWConfig, Optimizer};
use selfsup_core::schedule::warmup_cosine;
use selfsup_data::sampler::EpochSampler;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, VarStore};
use tch::Kind;

/// Fine-tuning settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FineTuneConfig {
    /// Fractions of the training labels to fine-tune on, e.g. `[0.01, 0.1]`.
    pub fractions: Vec<f64>,
    /// Passes over the labelled subset; absent: `selfsup finetune`'s
    /// schedule for the subset's share of the labels (60 epochs up to 1 %,
    /// 30 up to 10 %, else 10: SimCLR's semi-supervised schedule), so a
    /// small share still gets enough steps for a random init to learn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate (warmup over the first epoch, then cosine).
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seeds the subset, the head and the order.
    pub seed: u64,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        Self {
            fractions: vec![0.01, 0.1],
            epochs: None,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 0.05,
            seed: 0,
        }
    }
}

impl FineTuneConfig {
    /// The epochs for a subset of `subset` of `pool` samples: the configured
    /// number, else `selfsup finetune`'s schedule for that share.
    pub fn epochs_for(&self, subset: usize, pool: usize) -> usize {
        self.epochs
            .unwrap_or_else(|| default_epochs(subset as f64 / pool.max(1) as f64))
    }

    /// Checks every value; `at` is the section's key (`eval.fine_tune`).
    pub fn validate(&self, at: &str) -> Result<()> {
        for (i, &fraction) in self.fractions.iter().enumerate() {
            if !(fraction > 0.0 && fraction <= 1.0) {
                return Err(crate::check::invalid(
                    &format!("{at}.fractions[{i}]"),
                    format!("{fraction} must be in (0, 1]"),
                ));
            }
        }
        if let Some(epochs) = self.epochs {
            crate::check::at_least_one(&format!("{at}.epochs"), epochs)?;
        }
        crate::check::size(&format!("{at}.batch_size"), self.batch_size)?;
        crate::check::positive(&format!("{at}.lr"), self.lr)?;
        crate::check::non_negative(&format!("{at}.weight_decay"), self.weight_decay)
    }
}

/// Epochs of fine-tuning on `share` of the labels when none are asked for:
/// SimCLR's semi-supervised schedule (60 epochs on 1 % of the labels, 30 on
/// 10 %), so that small subsets still get enough steps; 10 above that.
pub fn default_epochs(share: f64) -> usize {
    match share {
        s if s <= 0.01 => 60,
        s if s <= 0.1 => 30,
        _ => 10,
    }
}

/// Trains `backbone` (its variables in `backbone_vs`) plus a new linear head
/// on the samples `subset` of `train`; returns top-1 accuracy (0–1) on `test`.
pub fn fine_tune(
    backbone: &dyn FeatureExtractor,
    backbone_vs: &VarStore,
    train: &dyn LabelledData,
    subset: &[usize],
    test: &dyn LabelledData,
    config: &FineTuneConfig,
) -> Result<f64> {
    let device = backbone_vs.device();
    let feature_dim = tch::no_grad(|| -> Result<i64> {
        Ok(backbone
            .features(&train.inputs(&subset[..1])?, false)
            .size()[1])
    })?;
    tch::manual_seed(config.seed as i64);
    let head_vs = VarStore::new(device);
    let head = nn::linear(
        head_vs.root() / "head",
        feature_dim,
        train.num_classes() as i64,
        Default::default(),
    );
    let mut groups = decay_groups(backbone_vs, config.weight_decay);
    groups.extend(decay_groups(&head_vs, config.weight_decay));
    let mut optimizer = AdamW::new(groups, AdamWConfig::default());
    let sampler = EpochSampler {
        len: subset.len(),
        batch_size: config.batch_size,
        drop_last: false,
        seed: config.seed,
    };
    let per_epoch = sampler.batches_per_epoch();
    let epochs = config.epochs_for(subset.len(), train.len());
    let total = per_epoch * epochs;
    let mut step = 0;
    for epoch in 0..epochs {
        for positions in sampler.epoch(epoch as u64) {
            let indices: Vec<usize> = positions.iter().map(|&p| subset[p]).collect();
            let labels = train.labels(&indices).to_device(device);
            let loss = head
                .forward(&backbone.features(&train.inputs(&indices)?, true))
                .cross_entropy_for_logits(&labels);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step(warmup_cosine(step, total, per_epoch, config.lr, 0.0));
            step += 1;
        }
    }
    accuracy(backbone, &head, test)
}

/// Top-1 of `head` on `backbone`'s features of every sample of `test`.
fn accuracy(
    backbone: &dyn FeatureExtractor,
    head: &nn::Linear,
    test: &dyn LabelledData,
) -> Result<f64> {
    let all: Vec<usize> = (0..test.len()).collect();
    let correct = tch::no_grad(|| -> Result<i64> {
        let mut correct = 0;
        for chunk in all.chunks(256) {
            let logits = head.forward(&backbone.features(&test.inputs(chunk)?, false));
            let labels = test.labels(chunk).to_device(logits.device());
            correct += logits
                .argmax(1, false)
                .eq_tensor(&labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
        Ok(correct)
    })?;
    Ok(correct as f64 / test.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `selfsup eval` fine-tunes a small share on `selfsup finetune`'s
    /// schedule unless told otherwise: 80 of 8,000 images (1 %) get 60
    /// epochs, not the 10 that left a random init at chance.
    #[test]
    fn epochs_follow_the_share_unless_configured() {
        let default = FineTuneConfig::default();
        assert_eq!(default.epochs_for(80, 8000), 60);
        assert_eq!(default.epochs_for(800, 8000), 30);
        assert_eq!(default.epochs_for(4000, 8000), 10);
        let fixed = FineTuneConfig {
            epochs: Some(7),
            ..Default::default()
        };
        assert_eq!(fixed.epochs_for(80, 8000), 7);
        assert!(FineTuneConfig {
            epochs: Some(0),
            ..Default::default()
        }
        .validate("eval.fine_tune")
        .is_err());
    }
    use tch::{Device, Tensor};

    /// A tiny conv backbone: enough to learn bright-left vs bright-right images.
    struct TinyConv {
        conv: nn::Conv2D,
    }

    impl FeatureExtractor for TinyConv {
        fn features(&self, images: &Tensor, _train: bool) -> Tensor {
            self.conv.forward(images).relu().flatten(1, -1)
        }
    }

    /// `n` 4×4 images, bright on the left (class 0) or on the right (class 1).
    struct Halves(usize);

    impl LabelledData for Halves {
        fn len(&self) -> usize {
            self.0
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn inputs(&self, indices: &[usize]) -> Result<Tensor> {
            let pixels: Vec<f32> = indices
                .iter()
                .flat_map(|&i| {
                    (0..16).map(move |p| {
                        if ((p % 4) < 2) == (i % 2 == 0) {
                            1.0
                        } else {
                            -1.0
                        }
                    })
                })
                .collect();
            Ok(Tensor::from_slice(&pixels).view([indices.len() as i64, 1, 4, 4]))
        }
        fn labels(&self, indices: &[usize]) -> Tensor {
            Tensor::from_slice(&indices.iter().map(|&i| (i % 2) as i64).collect::<Vec<_>>())
        }
    }

    #[test]
    fn fine_tuning_learns_a_learnable_task() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let backbone = TinyConv {
            conv: nn::conv2d(
                vs.root() / "conv",
                1,
                4,
                2,
                nn::ConvConfig {
                    stride: 2,
                    ..Default::default()
                },
            ),
        };
        let config = FineTuneConfig {
            epochs: Some(20),
            batch_size: 8,
            lr: 1e-2,
            ..Default::default()
        };
        let subset: Vec<usize> = (0..32).collect();
        let accuracy = fine_tune(&backbone, &vs, &Halves(32), &subset, &Halves(20), &config);
        assert_eq!(accuracy.unwrap(), 1.0);
        let bad = FineTuneConfig {
            fractions: vec![0.1, 1.5],
            ..Default::default()
        };
        let error = bad.validate("eval.fine_tune").unwrap_err().to_string();
        assert!(error.contains("eval.fine_tune.fractions[1]"), "{error}");
    }
}

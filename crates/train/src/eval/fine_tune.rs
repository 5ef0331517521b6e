//! Fine-tuning the whole network on a fraction of the labels (the semi-
//! supervised protocol of SimCLR and BYOL: 1 % and 10 % of ImageNet's labels,
//! class-balanced, fixed seed). A linear head goes on the backbone's features;
//! backbone and head train together with AdamW and a cosine schedule; top-1 is
//! measured on the held-out split.

use crate::image_data::Normalizer;
use crate::method::FeatureExtractor;
use selfsup_core::optim::{decay_groups, AdamW, AdamWConfig, Optimizer};
use selfsup_core::schedule::warmup_cosine;
use selfsup_data::sampler::EpochSampler;
use selfsup_data::ImageDataset;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, VarStore};
use tch::{Kind, Tensor};

/// Fine-tuning settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FineTuneConfig {
    /// Fractions of the training labels to fine-tune on, e.g. `[0.01, 0.1]`.
    pub fractions: Vec<f64>,
    /// Passes over the labelled subset.
    pub epochs: usize,
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
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 0.05,
            seed: 0,
        }
    }
}

/// Trains `backbone` (its variables in `backbone_vs`) plus a new linear head on
/// `train`, returns top-1 accuracy (0–1) on `test`.
pub fn fine_tune(
    backbone: &dyn FeatureExtractor,
    backbone_vs: &VarStore,
    train: &ImageDataset,
    test: &ImageDataset,
    normalizer: &Normalizer,
    config: &FineTuneConfig,
) -> f64 {
    let device = backbone_vs.device();
    let feature_dim =
        tch::no_grad(|| backbone.features(&normalizer.apply(&train.gather(&[0])), false)).size()[1];
    tch::manual_seed(config.seed as i64);
    let head_vs = VarStore::new(device);
    let head = nn::linear(
        head_vs.root() / "head",
        feature_dim,
        train.num_classes as i64,
        Default::default(),
    );
    let mut groups = decay_groups(backbone_vs, config.weight_decay);
    groups.extend(decay_groups(&head_vs, config.weight_decay));
    let mut optimizer = AdamW::new(groups, AdamWConfig::default());
    let sampler = EpochSampler {
        len: train.len(),
        batch_size: config.batch_size,
        drop_last: false,
        seed: config.seed,
    };
    let per_epoch = sampler.batches_per_epoch();
    let total = per_epoch * config.epochs;
    let mut step = 0;
    for epoch in 0..config.epochs {
        for indices in sampler.epoch(epoch as u64) {
            let images = normalizer.apply(&train.gather(&indices));
            let labels =
                Tensor::from_slice(&indices.iter().map(|&i| train.labels[i]).collect::<Vec<_>>())
                    .to_device(device);
            let loss = head
                .forward(&backbone.features(&images, true))
                .cross_entropy_for_logits(&labels);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step(warmup_cosine(step, total, per_epoch, config.lr, 0.0));
            step += 1;
        }
    }
    let all: Vec<usize> = (0..test.len()).collect();
    let correct: i64 = tch::no_grad(|| {
        all.chunks(256)
            .map(|chunk| {
                let logits =
                    head.forward(&backbone.features(&normalizer.apply(&test.gather(chunk)), false));
                let labels =
                    Tensor::from_slice(&chunk.iter().map(|&i| test.labels[i]).collect::<Vec<_>>())
                        .to_device(device);
                logits
                    .argmax(1, false)
                    .eq_tensor(&labels)
                    .sum(Kind::Int64)
                    .int64_value(&[])
            })
            .sum()
    });
    correct as f64 / test.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;
    use tch::Device;

    /// A tiny conv backbone: enough to learn bright-left vs bright-right images.
    struct TinyConv {
        conv: nn::Conv2D,
    }

    impl FeatureExtractor for TinyConv {
        fn features(&self, images: &Tensor, _train: bool) -> Tensor {
            self.conv.forward(images).relu().flatten(1, -1)
        }
    }

    fn halves(n: usize) -> ImageDataset {
        let images =
            Array4::from_shape_fn(
                (n, 4, 4, 1),
                |(i, _, w, _)| if (w < 2) == (i % 2 == 0) { 220 } else { 20 },
            );
        ImageDataset::new(images, (0..n as i64).map(|i| i % 2).collect(), 2).unwrap()
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
        let normalizer = Normalizer::new(&[0.5], &[0.25], Device::Cpu);
        let config = FineTuneConfig {
            epochs: 20,
            batch_size: 8,
            lr: 1e-2,
            ..Default::default()
        };
        let accuracy = fine_tune(
            &backbone,
            &vs,
            &halves(32),
            &halves(20),
            &normalizer,
            &config,
        );
        assert_eq!(accuracy, 1.0);
    }
}

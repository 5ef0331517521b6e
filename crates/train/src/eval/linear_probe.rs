//! Linear probe on frozen features, as papers report it: features are
//! extracted once, standardised with the training split's mean and standard
//! deviation (the affine-free batch norm MAE and MoCo v3 put before the
//! classifier, with its statistics frozen), and a linear classifier is trained
//! with SGD (momentum 0.9, no weight decay, cosine learning rate, batch 256)
//! on the cross-entropy. Top-1 accuracy is reported on the held-out features.

use selfsup_core::optim::{decay_groups, Optimizer, Sgd, SgdConfig};
use selfsup_core::schedule::warmup_cosine;
use selfsup_data::sampler::EpochSampler;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, VarStore};
use tch::{Kind, Tensor};

/// Linear-probe settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearProbeConfig {
    /// Passes over the training features.
    pub epochs: usize,
    /// Features per SGD step.
    pub batch_size: usize,
    /// Peak learning rate of the cosine schedule.
    pub lr: f64,
    /// Seeds the classifier's init and the order of the features.
    pub seed: u64,
}

impl LinearProbeConfig {
    /// Checks every value; `at` is the section's key (`eval.linear_probe`).
    pub fn validate(&self, at: &str) -> crate::Result<()> {
        crate::check::at_least_one(&format!("{at}.epochs"), self.epochs)?;
        crate::check::size(&format!("{at}.batch_size"), self.batch_size)?;
        crate::check::positive(&format!("{at}.lr"), self.lr)
    }
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 256,
            lr: 0.1,
            seed: 0,
        }
    }
}

/// Top-1 accuracy (0–1) of a linear classifier trained on `train_features`.
///
/// # Shapes
/// `train_features` `[N, D]`, `train_labels` `[N]` int64; the same for the test side.
pub fn linear_probe(
    train_features: &Tensor,
    train_labels: &Tensor,
    test_features: &Tensor,
    test_labels: &Tensor,
    num_classes: i64,
    config: &LinearProbeConfig,
) -> f64 {
    let device = train_features.device();
    let mean = train_features.mean_dim(0, true, Kind::Float);
    let std = train_features.std_dim(0, false, true) + 1e-6;
    let standardise = |x: &Tensor| ((x - &mean) / &std).detach();
    let (train_x, test_x) = (standardise(train_features), standardise(test_features));
    let train_y = train_labels.to_device(device);

    tch::manual_seed(config.seed as i64);
    let vs = VarStore::new(device);
    let classifier = nn::linear(
        vs.root() / "classifier",
        train_x.size()[1],
        num_classes,
        Default::default(),
    );
    let mut optimizer = Sgd::new(
        decay_groups(&vs, 0.0),
        SgdConfig {
            momentum: 0.9,
            nesterov: false,
        },
    );
    let sampler = EpochSampler {
        len: train_x.size()[0] as usize,
        batch_size: config.batch_size,
        drop_last: false,
        seed: config.seed,
    };
    let total = sampler.batches_per_epoch() * config.epochs;
    let mut step = 0;
    for epoch in 0..config.epochs {
        for indices in sampler.epoch(epoch as u64) {
            let index = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(device);
            let logits = classifier.forward(&train_x.index_select(0, &index));
            let loss = logits.cross_entropy_for_logits(&train_y.index_select(0, &index));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step(warmup_cosine(step, total, 0, config.lr, 0.0));
            step += 1;
        }
    }
    let predicted = tch::no_grad(|| classifier.forward(&test_x).argmax(1, false));
    let correct = predicted
        .eq_tensor(&test_labels.to_device(device))
        .sum(Kind::Int64)
        .int64_value(&[]);
    correct as f64 / test_labels.size()[0] as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn linearly_separable_features_reach_full_accuracy() {
        tch::manual_seed(0);
        // Class is the sign of a fixed direction, with a margin; other dimensions are noise.
        let make = |n: i64| {
            let x = Tensor::randn([n, 8], (Kind::Float, Device::Cpu));
            let direction = Tensor::from_slice(&[1f32, -1., 0.5, 0., 0., 0., 0., 2.]);
            let score = x.matmul(&direction);
            let y = score.gt(0.0).to_kind(Kind::Int64);
            let x = x + direction.unsqueeze(0)
                * (y.to_kind(Kind::Float) * 2.0 - 1.0).unsqueeze(1)
                * 0.5;
            (x, y)
        };
        let (train_x, train_y) = make(400);
        let (test_x, test_y) = make(200);
        let config = LinearProbeConfig {
            epochs: 30,
            ..Default::default()
        };
        let accuracy = linear_probe(&train_x, &train_y, &test_x, &test_y, 2, &config);
        assert!(accuracy >= 0.99, "{accuracy}");
    }

    #[test]
    fn random_labels_stay_near_chance() {
        tch::manual_seed(1);
        let train_x = Tensor::randn([400, 8], (Kind::Float, Device::Cpu));
        let test_x = Tensor::randn([400, 8], (Kind::Float, Device::Cpu));
        let labels = |n| Tensor::randint(4, [n], (Kind::Int64, Device::Cpu));
        let accuracy = linear_probe(
            &train_x,
            &labels(400),
            &test_x,
            &labels(400),
            4,
            &LinearProbeConfig {
                epochs: 20,
                ..Default::default()
            },
        );
        assert!((0.1..0.45).contains(&accuracy), "{accuracy}");
    }
}

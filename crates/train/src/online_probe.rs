//! The online linear probe of solo-learn: during pretraining, a linear
//! classifier trains on the detached features that a method's step already
//! computed, so label accuracy is followed epoch by epoch at almost no cost
//! and without touching the representation. It uses its own AdamW (lr 1e-3,
//! no weight decay); its accuracy is on the training batches.

use selfsup_core::optim::{decay_groups, AdamW, AdamWConfig, Optimizer};
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

/// A linear classifier with its optimizer and the epoch's running accuracy.
pub struct OnlineProbe {
    vs: VarStore,
    classifier: nn::Linear,
    optimizer: AdamW,
    correct: i64,
    seen: i64,
}

impl std::fmt::Debug for OnlineProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineProbe")
            .field("correct", &self.correct)
            .field("seen", &self.seen)
            .finish()
    }
}

impl OnlineProbe {
    /// A probe from `dim` features to `classes` classes.
    pub fn new(dim: i64, classes: i64, device: Device) -> Self {
        let vs = VarStore::new(device);
        let classifier = nn::linear(vs.root() / "classifier", dim, classes, Default::default());
        let optimizer = AdamW::new(decay_groups(&vs, 0.0), AdamWConfig::default());
        Self {
            vs,
            classifier,
            optimizer,
            correct: 0,
            seen: 0,
        }
    }

    /// One update on `features` `[batch, dim]` (detached here) and `labels` `[batch]`.
    pub fn step(&mut self, features: &Tensor, labels: &Tensor) {
        // Features from a bf16 forward are cast up: the probe trains in fp32.
        let logits = self
            .classifier
            .forward(&features.detach().to_kind(Kind::Float));
        let labels = labels.to_device(logits.device());
        let loss = logits.cross_entropy_for_logits(&labels);
        self.optimizer.zero_grad();
        loss.backward();
        self.optimizer.step(1e-3);
        self.correct += logits
            .argmax(1, false)
            .eq_tensor(&labels)
            .sum(Kind::Int64)
            .int64_value(&[]);
        self.seen += labels.size()[0];
    }

    /// Accuracy since the last call, then starts counting afresh (one call per epoch).
    pub fn take_accuracy(&mut self) -> f64 {
        let accuracy = self.correct as f64 / self.seen.max(1) as f64;
        (self.correct, self.seen) = (0, 0);
        accuracy
    }

    /// Weights and optimizer state, saved in checkpoints for inspection (a
    /// resumed run starts a fresh probe: it never influences the model).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        out.extend(
            self.optimizer
                .state()
                .into_iter()
                .map(|(n, t)| (format!("optim.{n}"), t)),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_separable_features_and_resets_per_epoch() {
        tch::manual_seed(0);
        let mut probe = OnlineProbe::new(2, 2, Device::Cpu);
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1, 0, 1, 0, 1]);
        let features = Tensor::stack(
            &[
                labels.to_kind(Kind::Float) * 2.0 - 1.0,
                Tensor::zeros([8], tch::kind::FLOAT_CPU),
            ],
            1,
        );
        for _ in 0..300 {
            probe.step(&features, &labels);
        }
        let _ = probe.take_accuracy();
        probe.step(&features, &labels);
        assert_eq!(probe.take_accuracy(), 1.0);
        assert_eq!(probe.take_accuracy(), 0.0, "counts reset");
    }
}

//! The online linear probe of solo-learn: during pretraining, a linear
//! classifier trains on the detached features that a method's step already
//! computed, so label accuracy is followed epoch by epoch at almost no cost
//! and without touching the representation. It uses its own AdamW (lr 1e-3,
//! no weight decay); its accuracy is on the training batches. Correct
//! predictions are counted on the device, so a step costs no host sync.

use crate::check::MAX_SIZE;
use crate::error::{Error, Result};
use selfsup_core::optim::{decay_groups, AdamW, AdamWConfig, Optimizer};
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

/// A linear classifier with its optimizer and the epoch's running accuracy.
pub struct OnlineProbe {
    vs: VarStore,
    classifier: nn::Linear,
    optimizer: AdamW,
    /// Correct predictions this epoch, a 0-dim int64 tensor on the device.
    correct: Tensor,
    seen: i64,
}

impl std::fmt::Debug for OnlineProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineProbe")
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
            correct: Tensor::zeros([], (Kind::Int64, device)),
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
        let correct = logits.argmax(1, false).eq_tensor(&labels).sum(Kind::Int64);
        self.correct = &self.correct + correct.detach();
        self.seen += labels.size()[0];
    }

    /// Accuracy since the last call (a host sync), then starts counting
    /// afresh (one call per epoch).
    pub fn take_accuracy(&mut self) -> f64 {
        let accuracy = self.correct.int64_value(&[]) as f64 / self.seen.max(1) as f64;
        self.correct = self.correct.zeros_like();
        self.seen = 0;
        accuracy
    }

    /// Weights, optimizer state and the epoch's counts, for checkpoints: a
    /// resumed run continues the probe exactly.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        out.extend(
            self.optimizer
                .state()
                .into_iter()
                .map(|(n, t)| (format!("optim.{n}"), t)),
        );
        out.push(("correct".into(), self.correct.shallow_clone()));
        out.push(("seen".into(), Tensor::from(self.seen)));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A probe restored from [`OnlineProbe::state`]'s tensors; `None` when
    /// they hold no probe (a method without features).
    pub fn restore(named: &[(String, Tensor)], device: Device) -> Result<Option<Self>> {
        let find = |key: &str| named.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        let Some(weight) = find("classifier.weight") else {
            return Ok(None);
        };
        let (classes, dim) = match weight.size()[..] {
            [classes, dim] if classes > 0 && dim > 0 && classes <= MAX_SIZE && dim <= MAX_SIZE => {
                (classes, dim)
            }
            _ => {
                return Err(state(format!(
                    "`probe.classifier.weight` has shape {:?}; a probe's is [classes, features]",
                    weight.size()
                )))
            }
        };
        let mut probe = Self::new(dim, classes, device);
        for (name, mut variable) in probe.vs.variables() {
            let saved = find(&name).ok_or_else(|| missing(&name))?;
            if saved.size() != variable.size() {
                let problem = format!(
                    "`probe.{name}` has shape {:?}, the probe {:?}",
                    saved.size(),
                    variable.size()
                );
                return Err(state(problem));
            }
            tch::no_grad(|| variable.f_copy_(saved)).map_err(Error::Torch)?;
        }
        let optimizer: Vec<(String, Tensor)> = named
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix("optim.")
                    .map(|n| (n.into(), t.shallow_clone()))
            })
            .collect();
        probe.optimizer.load_state(&optimizer)?;
        let correct = find("correct").ok_or_else(|| missing("correct"))?;
        if correct.numel() != 1 {
            return Err(state(format!(
                "`probe.correct` has shape {:?}; it must be one number",
                correct.size()
            )));
        }
        probe.correct = correct.reshape([]).to_device(device);
        probe.seen = selfsup_core::optim::find_count(named, "seen", i64::MAX / 2)?;
        Ok(Some(probe))
    }
}

/// A saved probe that does not fit, as an error naming the tensor.
fn state(problem: String) -> Error {
    Error::from(selfsup_core::Error::State(format!(
        "the checkpoint's online probe: {problem}"
    )))
}

fn missing(name: &str) -> Error {
    Error::from(selfsup_core::Error::State(format!(
        "the checkpoint's online probe has no `{name}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn separable() -> (Tensor, Tensor) {
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1, 0, 1, 0, 1]);
        let features = Tensor::stack(
            &[
                labels.to_kind(Kind::Float) * 2.0 - 1.0,
                Tensor::zeros([8], tch::kind::FLOAT_CPU),
            ],
            1,
        );
        (features, labels)
    }

    #[test]
    fn learns_separable_features_and_resets_per_epoch() {
        let _rng = crate::testing::lock_torch_rng();
        tch::manual_seed(0);
        let mut probe = OnlineProbe::new(2, 2, Device::Cpu);
        let (features, labels) = separable();
        for _ in 0..300 {
            probe.step(&features, &labels);
        }
        let _ = probe.take_accuracy();
        probe.step(&features, &labels);
        assert_eq!(probe.take_accuracy(), 1.0);
        assert_eq!(probe.take_accuracy(), 0.0, "counts reset");
    }

    #[test]
    fn a_restored_probe_continues_exactly() {
        let _rng = crate::testing::lock_torch_rng();
        tch::manual_seed(0);
        let (features, labels) = separable();
        let mut straight = OnlineProbe::new(2, 2, Device::Cpu);
        for _ in 0..3 {
            straight.step(&features, &labels);
        }
        let mut restored = OnlineProbe::restore(&straight.state(), Device::Cpu)
            .unwrap()
            .unwrap();
        straight.step(&features, &labels);
        restored.step(&features, &labels);
        for ((name, a), (_, b)) in straight.state().iter().zip(restored.state().iter()) {
            assert!(a.equal(b), "{name} differs");
        }
        assert!(OnlineProbe::restore(&[], Device::Cpu).unwrap().is_none());
    }

    /// A saved probe whose tensors do not fit (a damaged or crafted
    /// checkpoint) is an error naming the tensor, not libtorch's message
    /// or a panic on a vector where a count belongs.
    #[test]
    fn a_saved_probe_that_does_not_fit_is_named() {
        let _rng = crate::testing::lock_torch_rng();
        let probe = OnlineProbe::new(4, 3, Device::Cpu);
        let replaced = |key: &str, value: Tensor| -> Vec<(String, Tensor)> {
            probe
                .state()
                .into_iter()
                .map(|(n, t)| {
                    if n == key {
                        (n, value.shallow_clone())
                    } else {
                        (n, t)
                    }
                })
                .collect()
        };
        let cases = [
            (
                "classifier.bias",
                Tensor::zeros([5], (Kind::Float, Device::Cpu)),
                "`probe.classifier.bias` has shape [5], the probe [3]",
            ),
            (
                "classifier.weight",
                Tensor::zeros([3, 4, 2], (Kind::Float, Device::Cpu)),
                "`probe.classifier.weight` has shape [3, 4, 2]",
            ),
            (
                "seen",
                Tensor::from_slice(&[1i64, 2]),
                "`seen` has shape [2]",
            ),
            (
                "correct",
                Tensor::from_slice(&[1i64, 2]),
                "`probe.correct` has shape [2]",
            ),
        ];
        for (key, value, expected) in cases {
            let error = match OnlineProbe::restore(&replaced(key, value), Device::Cpu) {
                Ok(_) => panic!("{key}: restored"),
                Err(error) => error.to_string(),
            };
            assert!(error.contains(expected), "{key}: {error}");
        }
    }
}

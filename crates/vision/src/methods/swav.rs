//! SwAV (Caron et al., 2020, "Unsupervised Learning of Visual Features by
//! Contrasting Cluster Assignments").
//!
//! Every crop (multi-crop: 2 global + N local) goes through backbone and
//! projector; its L2-normalised embedding is scored against `prototypes`
//! learnable unit vectors (3,000). Each global crop's scores become balanced
//! soft codes by Sinkhorn-Knopp (ε 0.05, 3 iterations), and every other crop
//! predicts them with a softmax at temperature τ (0.1): the swapped
//! prediction. From `queue_start_epoch` on, the codes are computed together
//! with a queue of the global crops' recent embeddings (`queue_size`; the
//! paper's small-batch setting), once the queue is full. The prototypes stay
//! unit vectors (renormalised after each step) and get no update during the
//! first `freeze_prototypes_epochs`. Logs the codes' mean entropy.

use super::gather::ranks;
use super::{views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::{sinkhorn_across, swav_loss};
use selfsup_core::monitor::embedding_std;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Progress, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// SwAV hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwavConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Projector hidden width (2048).
    pub proj_hidden: i64,
    /// Embedding width (128).
    pub proj_dim: i64,
    /// Number of prototypes (3000).
    pub prototypes: i64,
    /// Softmax temperature of the predictions (0.1).
    pub temperature: f64,
    /// Sinkhorn's ε (0.05).
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Sinkhorn iterations (3).
    #[serde(default = "three")]
    pub sinkhorn_iterations: usize,
    /// Embeddings of past global crops kept for the codes (0: no queue).
    #[serde(default)]
    pub queue_size: i64,
    /// The epoch from which the queue fills and, once full, is used.
    #[serde(default)]
    pub queue_start_epoch: usize,
    /// Epochs during which the prototypes do not move (1).
    #[serde(default = "one")]
    pub freeze_prototypes_epochs: usize,
}

fn default_epsilon() -> f64 {
    0.05
}
fn three() -> usize {
    3
}
fn one() -> usize {
    1
}

/// The global crops' recent embeddings, `[2, size, dim]`, newest first.
#[derive(Debug)]
struct FeatureQueue {
    embeddings: Tensor,
    filled: i64,
}

/// The SwAV model.
#[derive(Debug)]
pub struct Swav {
    config: SwavConfig,
    encoder: Encoder,
    prototypes: nn::Linear,
    queue: Option<FeatureQueue>,
    /// The global crops' embeddings of this step, queued after it.
    pending: Option<Tensor>,
}

impl Swav {
    /// Builds encoder and prototypes under `path`.
    pub fn new(path: nn::Path, config: &SwavConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::size("method.prototypes", config.prototypes)?;
        check::positive("method.temperature", config.temperature)?;
        check::positive("method.epsilon", config.epsilon)?;
        if !(1..=100).contains(&config.sinkhorn_iterations) {
            return Err(check::invalid("method.sinkhorn_iterations", "must be 1 to 100"));
        }
        if config.queue_size != 0 {
            check::size("method.queue_size", config.queue_size)?;
        }
        let (hidden, out) = (config.proj_hidden, config.proj_dim);
        let encoder = Encoder::new(&path, &config.backbone, channels, |p, dim| {
            Mlp::new(p, &[dim, hidden, out], false)
        })?;
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let prototypes = nn::linear(&path / "prototypes", out, config.prototypes, no_bias);
        let queue = (config.queue_size > 0).then(|| FeatureQueue {
            embeddings: Tensor::zeros([2, config.queue_size, out], (Kind::Float, path.device())),
            filled: 0,
        });
        let swav = Self {
            config: config.clone(),
            encoder,
            prototypes,
            queue,
            pending: None,
        };
        swav.normalize_prototypes();
        Ok(swav)
    }

    /// The prototypes back to unit length, as SwAV does before each step.
    fn normalize_prototypes(&self) {
        tch::no_grad(|| {
            let mut weight = self.prototypes.ws.shallow_clone();
            let unit = &weight / weight.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
            weight.copy_(&unit);
        });
    }

    /// Codes of global crop `crop` (`[batch, prototypes]`), with the queue's
    /// embeddings in the equipartition once the queue is full; in a
    /// data-parallel run the equipartition spans every rank's batch (and
    /// queue), as the official `distributed_sinkhorn` does.
    fn codes(&self, scores: &Tensor, crop: i64, train: bool) -> Result<Tensor> {
        let batch = scores.size()[0];
        let scores = match &self.queue {
            Some(queue) if queue.filled >= self.config.queue_size => tch::no_grad(|| {
                let past = self.prototypes.forward(&queue.embeddings.get(crop));
                Tensor::cat(&[past, scores.detach()], 0)
            }),
            _ => scores.detach(),
        };
        let c = &self.config;
        let codes = sinkhorn_across(&scores, c.epsilon, c.sinkhorn_iterations, ranks(train))?;
        let rows = codes.size()[0];
        Ok(codes.narrow(0, rows - batch, batch))
    }
}

impl Register<Vision> for Swav {
    const NAME: &'static str = "swav";
    const SUMMARY: &'static str = "SwAV: crops predict each other's balanced prototype codes";
    const TEST_TABLE: &'static str = "name = \"swav\"\nproj_hidden = 16\nproj_dim = 8\nprototypes = 12\ntemperature = 0.1\nepsilon = 0.05\nsinkhorn_iterations = 3\nqueue_size = 16\nqueue_start_epoch = 0\nfreeze_prototypes_epochs = 1\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = SwavConfig;
    fn build(config: &SwavConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for Swav {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("swav", batch, 2)?;
        let (features, projections) = self.encoder.forward(&views, train);
        let z = &projections / projections.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
        let scores = self.prototypes.forward(&z); // [crops · batch, prototypes]
        let codes = (0..2)
            .map(|crop| self.codes(&scores.narrow(0, crop * n, n), crop, train))
            .collect::<Result<Vec<Tensor>>>()?;
        let codes = Tensor::cat(&codes, 0);
        let loss = swav_loss(&scores, &codes, views.len() as i64, self.config.temperature)?;
        let entropy = -(&codes * codes.clamp_min(1e-12).log()).sum_dim_intlist(1, false, Kind::Float).mean(Kind::Float);
        if train {
            self.pending = Some(z.narrow(0, 0, 2 * n).detach());
        }
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("assignment_entropy", entropy)
            .with_scalar("embedding_std", embedding_std(&z)))
    }

    fn before_optimizer_step(&mut self, progress: &Progress) -> Result<()> {
        if progress.epoch < self.config.freeze_prototypes_epochs {
            let mut grad = self.prototypes.ws.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
        Ok(())
    }

    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        self.normalize_prototypes();
        let pending = self.pending.take();
        let start = self.config.queue_start_epoch;
        if let (Some(queue), Some(z)) = (self.queue.as_mut(), pending) {
            if progress.epoch >= start {
                tch::no_grad(|| {
                    let n = z.size()[0] / 2;
                    let size = queue.embeddings.size()[1];
                    let fresh = z.view([2, n, -1]).narrow(1, 0, n.min(size));
                    let kept = queue.embeddings.narrow(1, 0, size - fresh.size()[1]);
                    queue.embeddings = Tensor::cat(&[fresh, kept], 1);
                });
                queue.filled = (queue.filled + z.size()[0] / 2).min(self.config.queue_size);
            }
        }
        Ok(())
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.encoder.backbone.as_ref()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        match &self.queue {
            Some(queue) => vec![
                ("queue.embeddings".into(), queue.embeddings.shallow_clone()),
                ("queue.filled".into(), Tensor::from(queue.filled)),
            ],
            None => Vec::new(),
        }
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        let Some(queue) = self.queue.as_mut() else {
            return Ok(());
        };
        let find = |key: &str| named.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        match (find("queue.embeddings"), find("queue.filled")) {
            (Some(embeddings), Some(_)) if embeddings.size() == queue.embeddings.size() => {
                // At most the queue's rows: more would read past its end.
                let rows = queue.embeddings.size().get(1).copied().unwrap_or(0);
                queue.filled = selfsup_core::optim::find_count(named, "queue.filled", rows)?;
                queue.embeddings = embeddings.to_device(queue.embeddings.device());
                Ok(())
            }
            _ => Err(selfsup_core::Error::State("the checkpoint has no SwAV queue of this size".into()).into()),
        }
    }
}

impl VisionMethod for Swav {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;

    /// Sinkhorn over the global batch (its sums all-reduced, as the
    /// official `distributed_sinkhorn`) and SyncBatchNorm: two ranks of 8
    /// images train as one process of 16. (No queue: each rank's queue
    /// holds its own past crops, in the official code too.)
    #[test]
    fn two_ranks_train_as_one_process() {
        let method = "name = \"swav\"\nproj_hidden = 32\nproj_dim = 16\nprototypes = 10\ntemperature = 0.1\n\
                      freeze_prototypes_epochs = 0\n";
        data_parallel_matches(
            module_path!(),
            Smoke {
                method: &format!("{method}{TINY_CNN}"),
                views: 2,
                optimizer: OptimizerKind::Sgd,
                lr: 0.05,
                skip: 0,
                falls: "loss",
            },
        );
    }

    #[test]
    fn trains_and_resumes_exactly() {
        // A queue of 32 that starts in epoch 2 and fills during it, and
        // prototypes frozen for the first epoch: both cross the interruption.
        let method = "name = \"swav\"\nproj_hidden = 32\nproj_dim = 16\nprototypes = 10\ntemperature = 0.1\n\
                      queue_size = 32\nqueue_start_epoch = 2\n";
        trains_and_resumes(
            module_path!(),
            Smoke {
                method: &format!("{method}{TINY_CNN}"),
                views: 2,
                optimizer: OptimizerKind::Sgd,
                lr: 0.05,
                skip: 0,
                falls: "loss",
            },
        );
    }
}

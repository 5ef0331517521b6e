//! MoCo v2 (He et al., 2020, "Momentum Contrast for Unsupervised Visual
//! Representation Learning"; Chen et al., 2020, "Improved Baselines with
//! Momentum Contrastive Learning"), in the symmetric form solo-learn calls
//! MoCo v2+.
//!
//! The query encoder (backbone + 2-layer MLP projector without batch norm) is
//! trained; the key encoder is its momentum copy (EMA, momentum on a cosine
//! from `base_momentum` to 1). Each query's positive is the key of the other
//! view; its negatives are a queue of past keys. Both views' keys join one
//! queue after each optimizer step (solo-learn keeps one queue per view; with
//! a single queue the negatives are the same keys, mixed).

use super::momentum::MomentumTeacher;
use super::{views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::moco_infonce;
use selfsup_core::monitor::embedding_std;
use selfsup_core::queue::NegativeQueue;
use selfsup_train::distributed::{self, shuffle_bn::shuffled_across_ranks};
use selfsup_train::{check, Batch, FeatureExtractor, Method, Progress, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

/// MoCo v2 hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MocoConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Projector hidden width (2048).
    pub proj_hidden: i64,
    /// Projector output width (128 in the paper, 256 in solo-learn).
    pub proj_dim: i64,
    /// Negatives kept (65,536 on ImageNet, 32,768 on CIFAR in solo-learn).
    pub queue_size: i64,
    /// InfoNCE temperature (0.2 for MoCo v2).
    pub temperature: f64,
    /// Momentum at the start of the cosine to 1 (0.99 on CIFAR; 0.999 fixed in the paper).
    pub base_momentum: f64,
    /// Shuffling batch norm in a data-parallel run (the paper's §3.3): the
    /// key encoder normalises a random sample of the global batch, not the
    /// rank's own. On by default, as in the paper; a no-op alone or under
    /// `trainer.sync_batch_norm`.
    #[serde(default = "shuffle_bn_by_default")]
    pub shuffle_bn: bool,
}

fn shuffle_bn_by_default() -> bool {
    true
}

/// MoCo v2's encoder: backbone and a 2-layer projector without batch norm.
fn encoder(path: &nn::Path, config: &MocoConfig, channels: Option<i64>) -> Result<Encoder> {
    let (hidden, out) = (config.proj_hidden, config.proj_dim);
    Encoder::new(path, &config.backbone, channels, |p, dim| {
        Mlp::without_norm(p, &[dim, hidden, out])
    })
}

/// The MoCo v2 model.
#[derive(Debug)]
pub struct Moco {
    config: MocoConfig,
    query: Encoder,
    key: MomentumTeacher<Encoder>,
    queue: NegativeQueue,
    /// Keys of this optimizer step, enqueued after it (the loss's graph still
    /// reads the queue until backward has run).
    pending: Vec<Tensor>,
}

impl Moco {
    /// Builds the query encoder under `path` and its momentum copy.
    pub fn new(path: nn::Path, config: &MocoConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::size("method.queue_size", config.queue_size)?;
        check::positive("method.temperature", config.temperature)?;
        check::fraction_below_one("method.base_momentum", config.base_momentum)?;
        let query = encoder(&path, config, channels)?;
        let key = MomentumTeacher::new(&path, config.base_momentum, |p| encoder(&p, config, channels))?;
        let queue = NegativeQueue::new(config.queue_size, config.proj_dim, path.device());
        Ok(Self {
            config: config.clone(),
            query,
            key,
            queue,
            pending: Vec::new(),
        })
    }

    /// The key encoder's projections of both views, through shuffling batch
    /// norm when several ranks train and their batch norms are not synced.
    fn keys(&self, views: &[&Tensor], train: bool) -> Result<Tensor> {
        let key = &self.key.net;
        let group = distributed::current().filter(|_| train && self.config.shuffle_bn);
        match group {
            Some(group) if !selfsup_core::sync_bn::is_synchronised() => {
                let both = Tensor::cat(views, 0);
                Ok(shuffled_across_ranks(group, &both, |x| key.forward(&[x], train).1)?)
            }
            _ => Ok(tch::no_grad(|| key.forward(views, train).1)),
        }
    }
}

impl Register<Vision> for Moco {
    const NAME: &'static str = "moco";
    const SUMMARY: &'static str = "MoCo v2+: InfoNCE against a momentum encoder's queue of keys";
    const TEST_TABLE: &'static str = "name = \"moco\"\nproj_hidden = 16\nproj_dim = 8\nqueue_size = 32\ntemperature = 0.2\nbase_momentum = 0.99\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = MocoConfig;
    fn build(config: &MocoConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for Moco {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("moco", batch, 2)?;
        let views = &views[..2];
        let (features, q) = self.query.forward(views, train);
        let k = self.keys(views, train)?;
        let (q1, q2) = (q.narrow(0, 0, n), q.narrow(0, n, n));
        let (k1, k2) = (k.narrow(0, 0, n), k.narrow(0, n, n));
        let negatives = self.queue.keys();
        let t = self.config.temperature;
        let loss = (moco_infonce(&q1, &k2, negatives, t)? + moco_infonce(&q2, &k1, negatives, t)?) / 2.0;
        let spread = embedding_std(&q);
        if train {
            // Data-parallel: the queue takes every rank's keys, as the paper's code.
            self.pending.push(super::gather::gather_keys(&k, 2, train)?.0);
        }
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("embedding_std", spread))
    }

    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        for keys in std::mem::take(&mut self.pending) {
            self.queue.enqueue(&keys)?;
        }
        self.key.update(progress);
        Ok(())
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.query.backbone.as_ref()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.key.state();
        state.extend(self.queue.state("queue."));
        state
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.key.load_state(named)?;
        self.queue.load_state("queue.", named)?;
        Ok(())
    }
}

impl VisionMethod for Moco {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{data_parallel_matches_with, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;

    /// With a ViT (no batch norm; MoCo v2's projector has none) two ranks
    /// equal one process: the queue takes every rank's keys in global order,
    /// and each key, computed through shuffling BN (SyncBatchNorm off) on
    /// the other rank or this one, pairs with its own query.
    #[test]
    fn two_ranks_train_as_one_process() {
        let method = "name = \"moco\"\nproj_hidden = 32\nproj_dim = 16\nqueue_size = 64\ntemperature = 0.2\nbase_momentum = 0.99\n\
                      [backbone]\nkind = \"vit\"\nimage_size = 16\npatch_size = 4\nin_channels = 3\ndim = 16\n\
                      depth = 1\nheads = 2\nmlp_ratio = 2.0\n";
        let smoke = Smoke {
            method,
            views: 2,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            skip: 0,
            falls: "loss",
        };
        data_parallel_matches_with(module_path!(), smoke, false);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        // On 64 near-duplicate images a fast-moving MoCo encoder fills its
        // queue with ever harder negatives and the loss climbs back; a
        // gentler rate shows the fall. The first steps compare against the
        // random initial queue (easy negatives): the curve is read once the
        // queue (64) holds real keys.
        let method = "name = \"moco\"\nproj_hidden = 32\nproj_dim = 16\nqueue_size = 64\ntemperature = 0.2\nbase_momentum = 0.9\n";
        trains_and_resumes(module_path!(), Smoke {
            method: &format!("{method}{TINY_CNN}"),
            views: 2,
            optimizer: OptimizerKind::Sgd,
            lr: 0.03,
            skip: 2,
            falls: "loss",
        });
    }
}

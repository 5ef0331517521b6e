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

use crate::backbones::{features_of_views, Backbone, BackboneConfig};
use crate::methods::check_views;
use crate::methods::momentum::MomentumTeacher;
use crate::VisionMethod;
use selfsup_core::heads::Mlp;
use selfsup_core::losses::moco_infonce;
use selfsup_core::queue::NegativeQueue;
use selfsup_train::{Batch, FeatureExtractor, Method, Progress, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
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
}

/// Backbone followed by projector.
#[derive(Debug)]
pub struct Encoder {
    /// Features for evaluation.
    pub backbone: Box<dyn Backbone>,
    /// Maps features to the contrastive space.
    pub projector: Mlp,
}

impl Encoder {
    fn moco_v2(path: &nn::Path, config: &MocoConfig) -> Self {
        let backbone = config.backbone.build(path / "backbone");
        let dims = [
            config.backbone.feature_dim(),
            config.proj_hidden,
            config.proj_dim,
        ];
        let projector = Mlp::without_norm(path / "projector", &dims);
        Self {
            backbone,
            projector,
        }
    }

    /// `(features, projections)` of all views at once, view-major.
    pub fn forward(&self, views: &[Tensor], train: bool) -> (Tensor, Tensor) {
        let features = features_of_views(self.backbone.as_ref(), views, train);
        let projections = self.projector.forward_t(&features, train);
        (features, projections)
    }
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
    pub fn new(path: nn::Path, config: &MocoConfig) -> Self {
        let query = Encoder::moco_v2(&path, config);
        let key = MomentumTeacher::new(&path, config.base_momentum, |p| {
            Encoder::moco_v2(&p, config)
        });
        let queue = NegativeQueue::new(config.queue_size, config.proj_dim, path.device());
        Self {
            config: config.clone(),
            query,
            key,
            queue,
            pending: Vec::new(),
        }
    }
}

impl Method for Moco {
    fn step(&mut self, batch: &Batch, train: bool) -> selfsup_train::Result<StepOutput> {
        let n = check_views("moco", &batch.views, 2)? as i64;
        let views = &batch.views[..2];
        let (features, q) = self.query.forward(views, train);
        let k = tch::no_grad(|| self.key.net.forward(views, train).1);
        let (q1, q2) = (q.narrow(0, 0, n), q.narrow(0, n, n));
        let (k1, k2) = (k.narrow(0, 0, n), k.narrow(0, n, n));
        let negatives = self.queue.keys();
        let t = self.config.temperature;
        let loss =
            (moco_infonce(&q1, &k2, negatives, t)? + moco_infonce(&q2, &k1, negatives, t)?) / 2.0;
        if train {
            self.pending.push(k);
        }
        Ok(StepOutput {
            loss,
            features: Some(features.narrow(0, 0, n)),
        })
    }

    fn after_step(&mut self, progress: &Progress) {
        for keys in std::mem::take(&mut self.pending) {
            self.queue
                .enqueue(&keys)
                .expect("keys have the queue's width");
        }
        self.key.update(progress);
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.query.backbone.as_ref()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.key.state();
        state.extend(self.queue.state("queue."));
        state
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> selfsup_train::Result<()> {
        self.key.load_state(named)?;
        self.queue.load_state("queue.", named)?;
        Ok(())
    }
}

impl VisionMethod for Moco {
    fn export_backbone(&self, vs: &nn::VarStore) -> Vec<(String, Tensor)> {
        crate::backbones::export::export_backbone(&self.config.backbone, vs, "backbone.")
    }
}

//! MoCo v3 (Chen, Xie & He, 2021, "An Empirical Study of Training
//! Self-Supervised Vision Transformers").
//!
//! No queue: the other keys of the batch are the negatives. The query branch
//! is backbone → projector → predictor; the key branch is the momentum copy
//! of backbone → projector. The projector ends in an affine-free batch norm
//! and has 3 layers for ViTs, 2 for ResNets, as in the paper's code; the
//! predictor has 2. The loss is symmetric, `ctr(q1, k2) + ctr(q2, k1)`, each
//! scaled by `2τ`.

use crate::backbones::{features_of_views, Backbone, BackboneConfig};
use crate::methods::check_views;
use crate::methods::momentum::MomentumTeacher;
use crate::VisionMethod;
use selfsup_core::heads::Mlp;
use selfsup_core::losses::moco_v3;
use selfsup_train::{Batch, FeatureExtractor, Method, Progress, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// MoCo v3 hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MocoV3Config {
    /// The encoder (ResNet or ViT).
    pub backbone: BackboneConfig,
    /// Projector hidden width (4096).
    pub proj_hidden: i64,
    /// Projector output width (256).
    pub proj_dim: i64,
    /// Predictor hidden width (4096).
    pub pred_hidden: i64,
    /// Temperature (0.2 for ViTs, 1.0 for ResNet-50 on ImageNet; 0.2 on CIFAR in solo-learn).
    pub temperature: f64,
    /// Momentum at the start of the cosine to 1 (0.99 in the paper and on CIFAR).
    pub base_momentum: f64,
}

/// Backbone followed by projector: the part the momentum copy mirrors.
#[derive(Debug)]
pub struct Encoder {
    backbone: Box<dyn Backbone>,
    projector: Mlp,
}

impl Encoder {
    fn new(path: &nn::Path, config: &MocoV3Config) -> Self {
        let backbone = config.backbone.build(path / "backbone");
        let dim = config.backbone.feature_dim();
        let projector = if config.backbone.vit().is_some() {
            Mlp::mocov3_projector(path / "projector", dim, config.proj_hidden, config.proj_dim)
        } else {
            Mlp::new(
                path / "projector",
                &[dim, config.proj_hidden, config.proj_dim],
                true,
            )
        };
        Self {
            backbone,
            projector,
        }
    }

    fn forward(&self, views: &[Tensor], train: bool) -> (Tensor, Tensor) {
        let features = features_of_views(self.backbone.as_ref(), views, train);
        let projections = self.projector.forward_t(&features, train);
        (features, projections)
    }
}

/// The MoCo v3 model.
#[derive(Debug)]
pub struct MocoV3 {
    config: MocoV3Config,
    query: Encoder,
    predictor: Mlp,
    key: MomentumTeacher<Encoder>,
}

impl MocoV3 {
    /// Builds the query branch under `path` and the momentum copy.
    pub fn new(path: nn::Path, config: &MocoV3Config) -> Self {
        let query = Encoder::new(&path, config);
        let predictor = Mlp::predictor(
            &path / "predictor",
            config.proj_dim,
            config.pred_hidden,
            false,
        );
        let key = MomentumTeacher::new(&path, config.base_momentum, |p| Encoder::new(&p, config));
        Self {
            config: config.clone(),
            query,
            predictor,
            key,
        }
    }
}

impl Method for MocoV3 {
    fn step(&mut self, batch: &Batch, train: bool) -> selfsup_train::Result<StepOutput> {
        let n = check_views("mocov3", &batch.views, 2)? as i64;
        let views = &batch.views[..2];
        let (features, z) = self.query.forward(views, train);
        let q = self.predictor.forward_t(&z, train);
        let k = tch::no_grad(|| self.key.net.forward(views, train).1);
        let t = self.config.temperature;
        let (q1, q2) = (q.narrow(0, 0, n), q.narrow(0, n, n));
        let (k1, k2) = (k.narrow(0, 0, n), k.narrow(0, n, n));
        let loss = moco_v3(&q1, &k2, t)? + moco_v3(&q2, &k1, t)?;
        Ok(StepOutput {
            loss,
            features: Some(features.narrow(0, 0, n)),
        })
    }

    fn after_step(&mut self, progress: &Progress) {
        self.key.update(progress);
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.query.backbone.as_ref()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.key.state()
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> selfsup_train::Result<()> {
        self.key.load_state(named)
    }
}

impl VisionMethod for MocoV3 {
    fn export_backbone(&self, vs: &nn::VarStore) -> Vec<(String, Tensor)> {
        crate::backbones::export::export_backbone(&self.config.backbone, vs, "backbone.")
    }
}

//! MoCo v3 (Chen, Xie & He, 2021, "An Empirical Study of Training
//! Self-Supervised Vision Transformers").
//!
//! No queue: the other keys of the batch are the negatives. The query branch
//! is backbone → projector → predictor; the key branch is the momentum copy
//! of backbone → projector. The projector ends in an affine-free batch norm
//! and has 3 layers for ViTs, 2 for ResNets, as in the paper's code; the
//! predictor has 2. The loss is symmetric, `ctr(q1, k2) + ctr(q2, k1)`, each
//! scaled by `2τ`.

use super::momentum::MomentumTeacher;
use super::{views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::moco_v3;
use selfsup_core::monitor::embedding_std;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Progress, Register, Result, StepOutput};
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

/// Backbone and projector: 3 layers ending in an affine-free batch norm
/// for ViTs, 2 for ResNets, as in the paper's code.
fn encoder(path: &nn::Path, config: &MocoV3Config, channels: Option<i64>) -> Result<Encoder> {
    let (hidden, out) = (config.proj_hidden, config.proj_dim);
    let vit = config.backbone.vit().is_some();
    Encoder::new(path, &config.backbone, channels, |p, dim| {
        if vit {
            Mlp::mocov3_projector(p, dim, hidden, out)
        } else {
            Mlp::new(p, &[dim, hidden, out], true)
        }
    })
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
    pub fn new(path: nn::Path, config: &MocoV3Config, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::size("method.pred_hidden", config.pred_hidden)?;
        check::positive("method.temperature", config.temperature)?;
        check::fraction_below_one("method.base_momentum", config.base_momentum)?;
        let query = encoder(&path, config, channels)?;
        let predictor = Mlp::predictor(&path / "predictor", config.proj_dim, config.pred_hidden, false);
        let key = MomentumTeacher::new(&path, config.base_momentum, |p| encoder(&p, config, channels))?;
        Ok(Self {
            config: config.clone(),
            query,
            predictor,
            key,
        })
    }
}

impl Register<Vision> for MocoV3 {
    const NAME: &'static str = "mocov3";
    const SUMMARY: &'static str = "MoCo v3: predictor + momentum encoder, in-batch negatives";
    const TEST_TABLE: &'static str = "name = \"mocov3\"\nproj_hidden = 16\nproj_dim = 8\npred_hidden = 16\ntemperature = 0.2\nbase_momentum = 0.99\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = MocoV3Config;
    fn build(config: &MocoV3Config, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for MocoV3 {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("mocov3", batch, 2)?;
        let views = &views[..2];
        let (features, z) = self.query.forward(views, train);
        let q = self.predictor.forward_t(&z, train);
        let k = tch::no_grad(|| self.key.net.forward(views, train).1);
        let t = self.config.temperature;
        let (q1, q2) = (q.narrow(0, 0, n), q.narrow(0, n, n));
        // Data-parallel: every rank's keys are negatives, as the paper's code.
        let (k, m, offset) = super::gather::gather_keys(&k, 2, train)?;
        let (k1, k2) = (k.narrow(0, 0, m), k.narrow(0, m, m));
        let loss = moco_v3(&q1, &k2, offset, t)? + moco_v3(&q2, &k1, offset, t)?;
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("embedding_std", embedding_std(&z)))
    }

    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        self.key.update(progress);
        Ok(())
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.query.backbone.as_ref()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.key.state()
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.key.load_state(named)
    }
}

impl VisionMethod for MocoV3 {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{registered_method_data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;

    /// With SyncBatchNorm, the gathered keys of every rank as negatives: two ranks of 8
    /// images train as one process of 16 (its test table, SGD).
    #[test]
    fn two_ranks_train_as_one_process() {
        registered_method_data_parallel_matches::<super::MocoV3>(module_path!(), 2, 1e-4);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        let method = "name = \"mocov3\"\nproj_hidden = 32\nproj_dim = 16\npred_hidden = 32\ntemperature = 0.2\nbase_momentum = 0.9\n";
        trains_and_resumes(module_path!(), Smoke {
            method: &format!("{method}{TINY_CNN}"),
            views: 2,
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            skip: 0,
            falls: "loss",
        });
    }
}

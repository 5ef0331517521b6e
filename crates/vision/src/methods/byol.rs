//! BYOL (Grill et al., 2020, "Bootstrap Your Own Latent: A New Approach to
//! Self-Supervised Learning").
//!
//! An online network (backbone → projector → predictor) predicts the
//! projection a target network (the online backbone and projector's EMA, no
//! predictor) gives the other view; no negatives. The loss is symmetric,
//! `2 − 2·cos(p₁, z₂′) + 2 − 2·cos(p₂, z₁′)`, the target detached. The EMA
//! momentum follows a cosine from `base_momentum` to 1 (0.996 on ImageNet,
//! 0.99 in solo-learn's CIFAR recipe). Projector and predictor are
//! `Linear → BN → ReLU → Linear` (4096 hidden, 256 out in the paper). The
//! paper's views are asymmetric (blur 1.0 / 0.1, solarize 0 / 0.2): two
//! `[[data.views]]` entries.

use super::momentum::MomentumTeacher;
use super::{each_view, views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::negative_cosine;
use selfsup_core::monitor::embedding_std;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Progress, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

/// BYOL hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ByolConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Projector hidden width (4096).
    pub proj_hidden: i64,
    /// Projector output width (256).
    pub proj_dim: i64,
    /// Predictor hidden width (4096).
    pub pred_hidden: i64,
    /// Target momentum at the start of the cosine to 1 (0.996; 0.99 on CIFAR).
    pub base_momentum: f64,
}

/// BYOL's projector: `Linear → BN → ReLU → Linear`.
fn encoder(path: &nn::Path, config: &ByolConfig, channels: Option<i64>) -> Result<Encoder> {
    let (hidden, out) = (config.proj_hidden, config.proj_dim);
    Encoder::new(path, &config.backbone, channels, |p, dim| {
        Mlp::new(p, &[dim, hidden, out], false)
    })
}

/// The BYOL model.
#[derive(Debug)]
pub struct Byol {
    config: ByolConfig,
    online: Encoder,
    predictor: Mlp,
    target: MomentumTeacher<Encoder>,
}

impl Byol {
    /// Builds the online network under `path` and its momentum target.
    pub fn new(path: nn::Path, config: &ByolConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::size("method.pred_hidden", config.pred_hidden)?;
        check::fraction_below_one("method.base_momentum", config.base_momentum)?;
        let online = encoder(&path, config, channels)?;
        let predictor = Mlp::predictor(&path / "predictor", config.proj_dim, config.pred_hidden, false);
        let target = MomentumTeacher::new(&path, config.base_momentum, |p| encoder(&p, config, channels))?;
        Ok(Self {
            config: config.clone(),
            online,
            predictor,
            target,
        })
    }
}

impl Register<Vision> for Byol {
    const NAME: &'static str = "byol";
    const SUMMARY: &'static str = "BYOL: an online network predicts its EMA target's view";
    const TEST_TABLE: &'static str = "name = \"byol\"\nproj_hidden = 16\nproj_dim = 8\npred_hidden = 16\nbase_momentum = 0.99\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = ByolConfig;
    fn build(config: &ByolConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for Byol {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("byol", batch, 2)?;
        let views = &views[..2];
        let (features, z) = self.online.forward_each(views, train);
        let p = each_view(&self.predictor, &z, n, train);
        let target = tch::no_grad(|| self.target.net.forward_each(views, train).1);
        let (p1, p2) = (p.narrow(0, 0, n), p.narrow(0, n, n));
        let (t1, t2) = (target.narrow(0, 0, n), target.narrow(0, n, n));
        let (d1, d2) = (negative_cosine(&p1, &t2)?, negative_cosine(&p2, &t1)?);
        let cosine = -(&d1 + &d2).detach() / 2.0;
        let loss = (d1 * 2.0 + 2.0) + (d2 * 2.0 + 2.0);
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("cosine", cosine)
            .with_scalar("embedding_std", embedding_std(&z)))
    }

    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        self.target.update(progress);
        Ok(())
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.online.backbone.as_ref()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.target.state()
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.target.load_state(named)
    }
}

impl VisionMethod for Byol {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{registered_method_data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;

    /// With SyncBatchNorm, per-sample loss, BYOL's EMA target and predictor: two ranks of 8
    /// images train as one process of 16 (its test table, SGD).
    #[test]
    fn two_ranks_train_as_one_process() {
        registered_method_data_parallel_matches::<super::Byol>(module_path!(), 2, 1e-4);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        let method = "name = \"byol\"\nproj_hidden = 32\nproj_dim = 16\npred_hidden = 32\nbase_momentum = 0.9\n";
        trains_and_resumes(
            module_path!(),
            Smoke {
                method: &format!("{method}{TINY_CNN}"),
                views: 2,
                optimizer: OptimizerKind::Sgd,
                lr: 0.1,
                skip: 0,
                falls: "loss",
            },
        );
    }
}

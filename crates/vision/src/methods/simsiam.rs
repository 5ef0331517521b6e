//! SimSiam (Chen & He, 2021, "Exploring Simple Siamese Representation
//! Learning").
//!
//! One encoder (backbone → projector) sees both views; a predictor maps one
//! view's projection to the other's, whose gradient is stopped:
//! `D(p₁, sg(z₂))/2 + D(p₂, sg(z₁))/2` with `D` the negative cosine. No
//! negatives, no momentum encoder: the stop-gradient alone prevents collapse,
//! which the paper checks with the std of the normalised projections
//! (logged as `embedding_std`; collapse gives 0, health about `1/√dim`).
//! The projector ends in an affine-free batch norm after a bias-free linear
//! (3 layers on ImageNet, 2 on CIFAR); the predictor is a bottleneck
//! (2048 → 512 → 2048) with batch norm in its hidden layer.

use super::{each_view, views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::negative_cosine;
use selfsup_core::monitor::embedding_std;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;

/// SimSiam hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimSiamConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Projector hidden width (2048).
    pub proj_hidden: i64,
    /// Projector output width (2048).
    pub proj_dim: i64,
    /// Projector layers: 3 on ImageNet, 2 on CIFAR.
    #[serde(default = "three")]
    pub proj_layers: usize,
    /// Predictor bottleneck width (512).
    pub pred_hidden: i64,
}

fn three() -> usize {
    3
}

/// The SimSiam model.
#[derive(Debug)]
pub struct SimSiam {
    config: SimSiamConfig,
    encoder: Encoder,
    predictor: Mlp,
}

impl SimSiam {
    /// Builds encoder and predictor under `path`.
    pub fn new(path: nn::Path, config: &SimSiamConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::size("method.pred_hidden", config.pred_hidden)?;
        if !(2..=4).contains(&config.proj_layers) {
            let message = format!("{} must be 2, 3 or 4", config.proj_layers);
            return Err(check::invalid("method.proj_layers", message));
        }
        let (hidden, out, layers) = (config.proj_hidden, config.proj_dim, config.proj_layers);
        let encoder = Encoder::new(&path, &config.backbone, channels, |p, dim| {
            let mut dims = vec![dim];
            dims.extend(std::iter::repeat_n(hidden, layers - 1));
            dims.push(out);
            Mlp::new(p, &dims, true)
        })?;
        let predictor = Mlp::predictor(&path / "predictor", config.proj_dim, config.pred_hidden, false);
        Ok(Self {
            config: config.clone(),
            encoder,
            predictor,
        })
    }
}

impl Register<Vision> for SimSiam {
    const NAME: &'static str = "simsiam";
    const SUMMARY: &'static str = "SimSiam: a predictor and a stop-gradient, no negatives, no EMA";
    const TEST_TABLE: &'static str = "name = \"simsiam\"\nproj_hidden = 16\nproj_dim = 16\nproj_layers = 2\npred_hidden = 8\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = SimSiamConfig;
    fn build(config: &SimSiamConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for SimSiam {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("simsiam", batch, 2)?;
        let (features, z) = self.encoder.forward_each(&views[..2], train);
        let p = each_view(&self.predictor, &z, n, train);
        let (p1, p2) = (p.narrow(0, 0, n), p.narrow(0, n, n));
        let (z1, z2) = (z.narrow(0, 0, n), z.narrow(0, n, n));
        // negative_cosine detaches its targets: the stop-gradient.
        let loss = (negative_cosine(&p1, &z2)? + negative_cosine(&p2, &z1)?) / 2.0;
        let cosine = -loss.detach();
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("cosine", cosine)
            .with_scalar("embedding_std", embedding_std(&z)))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.encoder.backbone.as_ref()
    }
}

impl VisionMethod for SimSiam {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{registered_method_data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;

    /// With SyncBatchNorm, per-sample loss and the stop-gradient branch: two ranks of 8
    /// images train as one process of 16 (its test table, SGD).
    #[test]
    fn two_ranks_train_as_one_process() {
        registered_method_data_parallel_matches::<super::SimSiam>(module_path!(), 2, 1e-4);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        let method = "name = \"simsiam\"\nproj_hidden = 32\nproj_dim = 32\nproj_layers = 2\npred_hidden = 8\n";
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

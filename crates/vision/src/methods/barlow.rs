//! Barlow Twins (Zbontar et al., 2021, "Barlow Twins: Self-Supervised
//! Learning via Redundancy Reduction").
//!
//! One encoder (backbone → 3-layer projector, 8192 wide on ImageNet, 2048
//! on CIFAR in solo-learn) sees both views; the cross-correlation of the two
//! views' standardised projections is pushed to the identity: the diagonal
//! to 1 (invariance), the rest to 0 (redundancy reduction, weighted by
//! `lambda` = 0.0051). `scale_loss` multiplies the whole (solo-learn's CIFAR
//! recipe: 0.1). The paper trains with LARS, biases and batch-norm
//! parameters excluded from its adaptation and decay (`optim.optimizer =
//! "lars"`; the optimizer's no-decay group is exactly those 1-D parameters).
//! Logs both terms, unweighted: `on_diagonal` and `off_diagonal`.

use super::{views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::barlow_twins_terms;
use selfsup_core::monitor::embedding_std;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;

/// Barlow Twins hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BarlowTwinsConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Projector hidden width (8192; 2048 on CIFAR).
    pub proj_hidden: i64,
    /// Projector output width (8192; 2048 on CIFAR).
    pub proj_dim: i64,
    /// Weight of the off-diagonal term (0.0051).
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Multiplies the loss (1; solo-learn's CIFAR recipe 0.1).
    #[serde(default = "one")]
    pub scale_loss: f64,
}

fn default_lambda() -> f64 {
    0.0051
}

fn one() -> f64 {
    1.0
}

/// The Barlow Twins model.
#[derive(Debug)]
pub struct BarlowTwins {
    config: BarlowTwinsConfig,
    encoder: Encoder,
}

impl BarlowTwins {
    /// Builds backbone and projector under `path`.
    pub fn new(path: nn::Path, config: &BarlowTwinsConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::non_negative("method.lambda", config.lambda)?;
        check::positive("method.scale_loss", config.scale_loss)?;
        let (hidden, out) = (config.proj_hidden, config.proj_dim);
        // The last linear's bias is removed by the loss's standardisation.
        let encoder = Encoder::new(&path, &config.backbone, channels, |p, dim| {
            Mlp::new(p, &[dim, hidden, hidden, out], false)
        })?;
        Ok(Self {
            config: config.clone(),
            encoder,
        })
    }
}

impl Register<Vision> for BarlowTwins {
    const NAME: &'static str = "barlowtwins";
    const SUMMARY: &'static str = "Barlow Twins: the views' cross-correlation pushed to the identity";
    const TEST_TABLE: &'static str = "name = \"barlowtwins\"\nproj_hidden = 16\nproj_dim = 16\nlambda = 0.0051\nscale_loss = 0.1\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = BarlowTwinsConfig;
    fn build(config: &BarlowTwinsConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for BarlowTwins {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("barlowtwins", batch, 2)?;
        let (features, z) = self.encoder.forward_each(&views[..2], train);
        // Data-parallel: the cross-correlation of the global batch, as the paper's code.
        let (all, m) = super::gather::gather_views(&z, 2, train)?;
        let terms = barlow_twins_terms(&all.narrow(0, 0, m), &all.narrow(0, m, m))?;
        let loss = (&terms.on_diagonal + &terms.off_diagonal * self.config.lambda) * self.config.scale_loss;
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("on_diagonal", terms.on_diagonal.detach())
            .with_scalar("off_diagonal", terms.off_diagonal.detach())
            .with_scalar("embedding_std", embedding_std(&z)))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.encoder.backbone.as_ref()
    }
}

impl VisionMethod for BarlowTwins {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{registered_method_data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;

    /// With SyncBatchNorm, the cross-correlation of the gathered global batch: two ranks of 8
    /// images train as one process of 16 (its test table, SGD).
    #[test]
    fn two_ranks_train_as_one_process() {
        registered_method_data_parallel_matches::<super::BarlowTwins>(module_path!(), 2, 1e-4);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        let method = "name = \"barlowtwins\"\nproj_hidden = 32\nproj_dim = 32\nscale_loss = 0.1\n";
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

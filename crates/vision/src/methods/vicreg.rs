//! VICReg (Bardes, Ponce & LeCun, 2022, "VICReg: Variance-Invariance-Covariance
//! Regularization for Self-Supervised Learning").
//!
//! One encoder (backbone → 3-layer expander, 8192 wide on ImageNet, 2048 on
//! CIFAR in solo-learn) sees both views; the loss weighs three terms,
//! 25 / 25 / 1 in the paper: invariance (the views' embeddings agree), variance
//! (each dimension keeps a standard deviation of at least 1 over the batch, so
//! nothing collapses) and covariance (dimensions decorrelate). Each term is
//! logged unweighted.

use super::{views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::vicreg_terms;
use selfsup_core::monitor::embedding_std;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;

/// VICReg hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VicRegConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Expander hidden width (8192; 2048 on CIFAR).
    pub proj_hidden: i64,
    /// Expander output width (8192; 2048 on CIFAR).
    pub proj_dim: i64,
    /// Weight of the invariance term (25).
    #[serde(default = "twenty_five")]
    pub invariance: f64,
    /// Weight of the variance term (25).
    #[serde(default = "twenty_five")]
    pub variance: f64,
    /// Weight of the covariance term (1).
    #[serde(default = "one")]
    pub covariance: f64,
}

fn twenty_five() -> f64 {
    25.0
}

fn one() -> f64 {
    1.0
}

/// The VICReg model.
#[derive(Debug)]
pub struct VicReg {
    config: VicRegConfig,
    encoder: Encoder,
}

impl VicReg {
    /// Builds backbone and expander under `path`.
    pub fn new(path: nn::Path, config: &VicRegConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::non_negative("method.invariance", config.invariance)?;
        check::non_negative("method.variance", config.variance)?;
        check::non_negative("method.covariance", config.covariance)?;
        let (hidden, out) = (config.proj_hidden, config.proj_dim);
        let encoder = Encoder::new(&path, &config.backbone, channels, |p, dim| {
            Mlp::new(p, &[dim, hidden, hidden, out], false)
        })?;
        Ok(Self {
            config: config.clone(),
            encoder,
        })
    }
}

impl Register<Vision> for VicReg {
    const NAME: &'static str = "vicreg";
    const SUMMARY: &'static str = "VICReg: invariance, variance and covariance terms on the embeddings";
    const TEST_TABLE: &'static str = "name = \"vicreg\"\nproj_hidden = 16\nproj_dim = 16\ninvariance = 25.0\nvariance = 25.0\ncovariance = 1.0\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = VicRegConfig;
    fn build(config: &VicRegConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for VicReg {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("vicreg", batch, 2)?;
        let (features, z) = self.encoder.forward_each(&views[..2], train);
        // Data-parallel: variance and covariance of the global batch, as the paper's code.
        let (all, m) = super::gather::gather_views(&z, 2, train)?;
        let terms = vicreg_terms(&all.narrow(0, 0, m), &all.narrow(0, m, m))?;
        let c = &self.config;
        let loss = &terms.invariance * c.invariance + &terms.variance * c.variance + &terms.covariance * c.covariance;
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("invariance", terms.invariance.detach())
            .with_scalar("variance", terms.variance.detach())
            .with_scalar("covariance", terms.covariance.detach())
            .with_scalar("embedding_std", embedding_std(&z)))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.encoder.backbone.as_ref()
    }
}

impl VisionMethod for VicReg {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{registered_method_data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;

    /// With SyncBatchNorm, variance and covariance of the gathered global batch: two ranks of 8
    /// images train as one process of 16 (its test table, SGD).
    #[test]
    fn two_ranks_train_as_one_process() {
        // Looser than the others' 1e-4: the variance term's hinge
        // relu(1 - std) has dimensions whose std sits at 1 in this tiny
        // model, so float32 sums over the gathered batch (in another order
        // on two ranks) flip a few of their gradients; six steps end up to
        // 7e-4 of a tensor's scale apart, while a missing gather or
        // reduction would differ from the first logged loss on.
        registered_method_data_parallel_matches::<super::VicReg>(module_path!(), 2, 3e-3);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        let method = "name = \"vicreg\"\nproj_hidden = 32\nproj_dim = 32\n";
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

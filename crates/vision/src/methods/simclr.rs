//! SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of
//! Visual Representations").
//!
//! Two (or more) random views of each image go through one backbone in a
//! single batch, a projector MLP maps the features to the contrastive space,
//! and NT-Xent treats the other views of the same image as positives and
//! every other embedding as a negative. The projector here has batch norm in
//! its hidden layer, as in SimCLR v2 and solo-learn.

use crate::backbones::{features_of_views, Backbone, BackboneConfig};
use crate::methods::check_views;
use crate::VisionMethod;
use selfsup_core::heads::Mlp;
use selfsup_core::losses::nt_xent;
use selfsup_train::{Batch, FeatureExtractor, Method, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// SimCLR hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimClrConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Projector hidden width (2048 in the paper).
    pub proj_hidden: i64,
    /// Projector output width (128 in the paper).
    pub proj_dim: i64,
    /// NT-Xent temperature (0.5 in the paper at batch 256–512; 0.2 in solo-learn's CIFAR recipe).
    pub temperature: f64,
}

/// The SimCLR model.
#[derive(Debug)]
pub struct SimClr {
    config: SimClrConfig,
    backbone: Box<dyn Backbone>,
    projector: Mlp,
}

impl SimClr {
    /// Builds `backbone` and `projector` under `path`.
    pub fn new(path: nn::Path, config: &SimClrConfig) -> Self {
        let backbone = config.backbone.build(&path / "backbone");
        let dim = config.backbone.feature_dim();
        let projector = Mlp::simclr_projector(
            &path / "projector",
            dim,
            config.proj_hidden,
            config.proj_dim,
        );
        Self {
            config: config.clone(),
            backbone,
            projector,
        }
    }
}

impl Method for SimClr {
    fn step(&mut self, batch: &Batch, train: bool) -> selfsup_train::Result<StepOutput> {
        let batch_size = check_views("simclr", &batch.views, 2)?;
        let features = features_of_views(self.backbone.as_ref(), &batch.views, train);
        let z = self.projector.forward_t(&features, train);
        let loss = nt_xent(&z, batch.views.len() as i64, self.config.temperature, None)?;
        Ok(StepOutput {
            loss,
            features: Some(features.narrow(0, 0, batch_size as i64)),
        })
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.backbone.as_ref()
    }
}

impl VisionMethod for SimClr {
    fn export_backbone(&self, vs: &nn::VarStore) -> Vec<(String, Tensor)> {
        crate::backbones::export::export_backbone(&self.config.backbone, vs, "backbone.")
    }
}

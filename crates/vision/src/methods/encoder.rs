//! Backbone followed by a projector: the student of SimCLR, the query and
//! key encoders of MoCo v2 / v3, and the part a momentum teacher mirrors.

use crate::backbones::{features_of_views, Backbone, BackboneConfig};
use selfsup_core::heads::Mlp;
use selfsup_train::Result;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// Backbone and projector, under `backbone` and `projector`.
#[derive(Debug)]
pub struct Encoder {
    /// Features for evaluation.
    pub backbone: Box<dyn Backbone>,
    /// Maps features to the embedding space the loss compares.
    pub projector: Mlp,
}

impl Encoder {
    /// Builds the backbone for images of `channels` channels, then the
    /// projector that `projector` makes from the backbone's feature width.
    pub fn new(
        path: &nn::Path,
        backbone: &BackboneConfig,
        channels: Option<i64>,
        projector: impl FnOnce(nn::Path, i64) -> Mlp,
    ) -> Result<Self> {
        let built = backbone.build(path / "backbone", "method.backbone", channels)?;
        let projector = projector(path / "projector", backbone.feature_dim());
        Ok(Self {
            backbone: built,
            projector,
        })
    }

    /// `(features, projections)` of all views at once, view-major.
    pub fn forward(&self, views: &[&Tensor], train: bool) -> (Tensor, Tensor) {
        let features = features_of_views(self.backbone.as_ref(), views, train);
        let projections = self.projector.forward_t(&features, train);
        (features, projections)
    }
}

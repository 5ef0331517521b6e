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

    /// `(features, projections)` of each view in a forward pass of its own,
    /// view-major: batch norm normalises every view by its own statistics, as
    /// the official BYOL, SimSiam, Barlow Twins and VICReg code does (one
    /// joint batch lets the two views share statistics, which these methods,
    /// having no negatives, were not published with).
    pub fn forward_each(&self, views: &[&Tensor], train: bool) -> (Tensor, Tensor) {
        let (features, projections): (Vec<Tensor>, Vec<Tensor>) = views
            .iter()
            .map(|view| self.forward(&[*view], train))
            .unzip();
        (Tensor::cat(&features, 0), Tensor::cat(&projections, 0))
    }
}

/// `module` applied to each block of `n` rows of `x` on its own (per-view
/// batch norm in a predictor), the results in the same order.
pub fn each_view(module: &impl ModuleT, x: &Tensor, n: i64, train: bool) -> Tensor {
    let parts: Vec<Tensor> = x
        .split(n, 0)
        .iter()
        .map(|part| module.forward_t(part, train))
        .collect();
    Tensor::cat(&parts, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn each_view_gets_its_own_batch_norm_statistics() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let config: BackboneConfig =
            toml::from_str("kind = \"small_cnn\"\nwidths = [8, 16]").unwrap();
        let encoder = Encoder::new(&vs.root(), &config, Some(3), |p, dim| {
            Mlp::new(p, &[dim, 16, 8], true)
        })
        .unwrap();
        let a = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let (_, each) = encoder.forward_each(&[&a, &b], true);
        let (_, alone) = encoder.forward(&[&a], true);
        let (_, joint) = encoder.forward(&[&a, &b], true);
        assert_eq!(each.size(), [8, 8]);
        assert!(each.narrow(0, 0, 4).allclose(&alone, 1e-5, 1e-6, false));
        let shared = (each.narrow(0, 0, 4) - joint.narrow(0, 0, 4))
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            shared > 1e-2,
            "a joint pass shares statistics, so it must differ ({shared})"
        );
        let head = Mlp::new(vs.root() / "head", &[8, 8], true);
        let split = each_view(&head, &each, 4, true);
        let first = head.forward_t(&each.narrow(0, 0, 4), true);
        assert!(split.narrow(0, 0, 4).allclose(&first, 1e-5, 1e-6, false));
    }
}

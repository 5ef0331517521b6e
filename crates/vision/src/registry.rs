//! The vision modality: what its methods build into ([`VisionMethod`]),
//! what building needs ([`VisionContext`]) and the config type of a vision
//! run. The methods themselves are listed once, in `methods/mod.rs`.

use crate::backbones::{export, BackboneConfig};
use crate::data::{ImageDataConfig, Normalizer};
use selfsup_train::experiment::AsMethod;
use selfsup_train::registry::{MethodChoice, Modality, Registry};
use selfsup_train::{Method, RunConfig};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::Tensor;

/// Images: methods read views of images; tasks are `vision-<method>`.
#[derive(Debug)]
pub struct Vision;

impl Modality for Vision {
    type Built = dyn VisionMethod;
    type Context = VisionContext;
    const NAME: &'static str = "vision";
    const DEFAULT_RECIPE: &'static str = "mnist";
}

/// What building a vision method needs besides its config.
#[derive(Debug, Clone, Copy)]
pub struct VisionContext {
    /// Channels of the images, when known: the backbone must read as many
    /// (`None` when building without data, e.g. to export weights).
    pub channels: Option<i64>,
}

/// The vision registry type.
pub type VisionRegistry = Registry<Vision>;

/// A vision run's config.
pub type VisionRunConfig = RunConfig<MethodChoice<Vision>, ImageDataConfig>;

/// A vision method: a [`Method`] whose backbone exports with PyTorch's
/// names, and which may draw pictures of what it learned.
pub trait VisionMethod: Method {
    /// The backbone's config and the prefix of its variables in the var
    /// store the method was built in (`backbone.`; MAE's `encoder.`).
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str);

    /// The backbone's weights with PyTorch's names (timm's for ViTs,
    /// torchvision's for ResNets), given the var store the method was built in.
    fn export_backbone(&self, vs: &VarStore) -> Vec<(String, Tensor)> {
        let (config, prefix) = self.backbone_spec();
        export::export_backbone(config, vs, prefix)
    }

    /// Writes the method's pictures (e.g. MAE reconstructions) for a few
    /// normalised `images` into `dir`; returns the files written.
    fn write_pictures(
        &self,
        _images: &Tensor,
        _normalizer: &Normalizer,
        _dir: &Path,
    ) -> crate::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

impl AsMethod for dyn VisionMethod {
    fn as_method(&mut self) -> &mut dyn Method {
        self
    }
}

//! Vision SSL for selfsup: backbones (ResNet, a small CNN, ViT) and methods, each
//! method one file in `methods/` registered in [`VisionMethodConfig`].

pub mod backbones;
pub mod error;
pub mod methods;
pub mod pictures;

pub use error::{Error, Result};

use methods::mae::{Mae, MaeConfig};
use methods::moco::{Moco, MocoConfig};
use methods::mocov3::{MocoV3, MocoV3Config};
use methods::rotnet::{RotNet, RotNetConfig};
use methods::simclr::{SimClr, SimClrConfig};
use selfsup_train::image_data::Normalizer;
use selfsup_train::Method;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Tensor};

/// Every vision method, selected by `name` in the `[method]` table of a config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum VisionMethodConfig {
    /// Masked autoencoder.
    Mae(MaeConfig),
    /// SimCLR.
    Simclr(SimClrConfig),
    /// MoCo v2 (symmetric, "v2+").
    Moco(MocoConfig),
    /// MoCo v3.
    Mocov3(MocoV3Config),
    /// Rotation prediction.
    Rotnet(RotNetConfig),
}

/// A vision method: a [`Method`] that may also draw pictures of what it learned.
pub trait VisionMethod: Method {
    /// The backbone's weights with PyTorch's names (timm for ViTs), given the
    /// var store the method was built in.
    fn export_backbone(&self, vs: &tch::nn::VarStore) -> Vec<(String, Tensor)>;

    /// Writes the method's pictures (e.g. MAE reconstructions) for a few
    /// normalised `images` into `dir`; returns the files written.
    fn write_pictures(
        &self,
        _images: &Tensor,
        _normalizer: &Normalizer,
        _dir: &Path,
    ) -> Result<Vec<std::path::PathBuf>> {
        Ok(Vec::new())
    }
}

impl VisionMethodConfig {
    /// Builds the method's model under `path`.
    pub fn build(&self, path: nn::Path) -> Box<dyn VisionMethod> {
        match self {
            VisionMethodConfig::Mae(config) => Box::new(Mae::new(path, config)),
            VisionMethodConfig::Simclr(config) => Box::new(SimClr::new(path, config)),
            VisionMethodConfig::Moco(config) => Box::new(Moco::new(path, config)),
            VisionMethodConfig::Mocov3(config) => Box::new(MocoV3::new(path, config)),
            VisionMethodConfig::Rotnet(config) => Box::new(RotNet::new(path, config)),
        }
    }
}

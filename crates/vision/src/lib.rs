//! Vision SSL for selfsup: backbones (ViT; ResNet to come) and methods, each
//! method one file in `methods/` registered in [`VisionMethodConfig`].

pub mod backbones;
pub mod error;
pub mod methods;
pub mod pictures;

pub use error::{Error, Result};

use methods::mae::{Mae, MaeConfig};
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
        }
    }
}

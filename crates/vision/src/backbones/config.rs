//! Choosing a backbone in a config: `[method.backbone]` with `kind = "resnet"`,
//! `"small_cnn"`, `"vit"` (every field) or `"vit_preset"` (ViT-Tiny / Small /
//! Base shapes).

use super::resnet::{ResNet, ResNetConfig};
use super::small_cnn::{SmallCnn, SmallCnnConfig};
use super::vit::{VisionTransformer, VitConfig};
use selfsup_train::FeatureExtractor;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

/// The ViT shapes of the literature (DeiT / timm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VitSize {
    /// 192 wide, 12 blocks, 3 heads (5.7 M parameters at 224 px).
    Tiny,
    /// 384 wide, 12 blocks, 6 heads (22 M).
    Small,
    /// 768 wide, 12 blocks, 12 heads (86 M).
    Base,
}

/// Any backbone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackboneConfig {
    /// ResNet-18/34/50.
    Resnet(ResNetConfig),
    /// The small CPU-budget CNN.
    SmallCnn(SmallCnnConfig),
    /// A ViT with every dimension given.
    Vit(VitConfig),
    /// A ViT of a standard size.
    VitPreset {
        /// Tiny, small or base.
        size: VitSize,
        /// Image side in pixels.
        image_size: i64,
        /// Patch side (4 for 32×32 images, 16 for 224×224).
        patch_size: i64,
        /// Input channels.
        #[serde(default = "three")]
        in_channels: i64,
    },
}

fn three() -> i64 {
    3
}

/// A built backbone: features for evaluation and for the method's heads.
pub trait Backbone: FeatureExtractor + std::fmt::Debug {}
impl<T: FeatureExtractor + std::fmt::Debug> Backbone for T {}

impl BackboneConfig {
    /// The ViT shape this config stands for, if it is a ViT.
    pub fn vit(&self) -> Option<VitConfig> {
        match self {
            BackboneConfig::Vit(config) => Some(config.clone()),
            BackboneConfig::VitPreset {
                size,
                image_size,
                patch_size,
                in_channels,
            } => {
                let (dim, heads) = match size {
                    VitSize::Tiny => (192, 3),
                    VitSize::Small => (384, 6),
                    VitSize::Base => (768, 12),
                };
                Some(VitConfig {
                    image_size: *image_size,
                    patch_size: *patch_size,
                    in_channels: *in_channels,
                    dim,
                    depth: 12,
                    heads,
                    mlp_ratio: 4.0,
                })
            }
            _ => None,
        }
    }

    /// Width of the features.
    pub fn feature_dim(&self) -> i64 {
        match self {
            BackboneConfig::Resnet(config) => config.feature_dim(),
            BackboneConfig::SmallCnn(config) => SmallCnn::feature_dim(config),
            _ => self.vit().expect("a ViT").dim,
        }
    }

    /// Builds the backbone under `path`.
    pub fn build(&self, path: nn::Path) -> Box<dyn Backbone> {
        match self {
            BackboneConfig::Resnet(config) => Box::new(ResNet::new(path, config)),
            BackboneConfig::SmallCnn(config) => Box::new(SmallCnn::new(path, config)),
            _ => Box::new(VisionTransformer::new(path, &self.vit().expect("a ViT"))),
        }
    }
}

/// Features of every view, computed as one batch (one forward pass keeps
/// batch-norm statistics over all views, as SimCLR's reference code does):
/// `[views · batch, dim]`, view-major.
pub fn features_of_views(backbone: &dyn Backbone, views: &[Tensor], train: bool) -> Tensor {
    backbone.features(&Tensor::cat(views, 0), train)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn every_kind_parses_builds_and_reports_its_width() {
        let cases = [
            ("kind = \"resnet\"\ndepth = 18\nstem = \"cifar\"", 512),
            ("kind = \"small_cnn\"\nwidths = [8, 16]", 16),
            (
                "kind = \"vit_preset\"\nsize = \"tiny\"\nimage_size = 32\npatch_size = 4",
                192,
            ),
        ];
        for (text, dim) in cases {
            let config: BackboneConfig = toml::from_str(text).unwrap();
            assert_eq!(config.feature_dim(), dim, "{text}");
            let vs = nn::VarStore::new(Device::Cpu);
            let backbone = config.build(vs.root());
            let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
            assert_eq!(backbone.features(&x, true).size(), vec![2, dim], "{text}");
        }
        let unknown = toml::from_str::<BackboneConfig>("kind = \"vgg\"").unwrap_err();
        assert!(unknown.to_string().contains("vgg"), "{unknown}");
    }
}

//! Choosing a backbone in a config: `[method.backbone]` with `kind = "resnet"`,
//! `"small_cnn"`, `"vit"` (every field) or `"vit_preset"` (ViT-Tiny / Small /
//! Base shapes).

use super::resnet::{ResNet, ResNetConfig};
use super::small_cnn::{SmallCnn, SmallCnnConfig};
use super::vit::{VisionTransformer, VitConfig};
use selfsup_train::{check, FeatureExtractor, Result};
use serde::de::{DeserializeOwned, Deserializer, Error as _};
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

/// A ViT of a standard size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VitPresetConfig {
    /// Tiny, small or base.
    pub size: VitSize,
    /// Image side in pixels.
    pub image_size: i64,
    /// Patch side (4 for 32×32 images, 16 for 224×224).
    pub patch_size: i64,
    /// Input channels.
    #[serde(default = "three")]
    pub in_channels: i64,
    /// The mean of the patch tokens or the cls token.
    #[serde(default)]
    pub pool: super::vit::Pooling,
}

fn three() -> i64 {
    3
}

/// Any backbone: the table's `kind` picks one, its other keys configure it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackboneConfig {
    /// ResNet-18/34/50.
    Resnet(ResNetConfig),
    /// The small CPU-budget CNN.
    SmallCnn(SmallCnnConfig),
    /// A ViT with every dimension given.
    Vit(VitConfig),
    /// A ViT of a standard size.
    VitPreset(VitPresetConfig),
}

/// Read by `kind` first, then the kind's own fields with their path kept:
/// serde's internally tagged enums lose it, and a bad value must be named
/// as `method.backbone.widths[0]`, not just `method.backbone`.
impl<'de> Deserialize<'de> for BackboneConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        let kind = match table.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            _ => {
                return Err(D::Error::custom(
                    "at `kind`: missing; use resnet, small_cnn, vit or vit_preset",
                ))
            }
        };
        let rest = toml::Value::Table(table);
        let parsed = match kind.as_str() {
            "resnet" => fields(rest).map(BackboneConfig::Resnet),
            "small_cnn" => fields(rest).map(BackboneConfig::SmallCnn),
            "vit" => fields(rest).map(BackboneConfig::Vit),
            "vit_preset" => fields(rest).map(BackboneConfig::VitPreset),
            other => Err(format!(
                "at `kind`: unknown backbone `{other}`; use resnet, small_cnn, vit or vit_preset"
            )),
        };
        parsed.map_err(D::Error::custom)
    }
}

/// A kind's fields; an error starts with their path, as `at `widths[0]`: …`,
/// which the config reader joins to the table's own key.
fn fields<T: DeserializeOwned>(value: toml::Value) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().message().to_string();
        if path == "." {
            message
        } else {
            format!("at `{path}`: {message}")
        }
    })
}

/// A built backbone: features for evaluation and for the method's heads.
pub trait Backbone: FeatureExtractor + std::fmt::Debug {}
impl<T: FeatureExtractor + std::fmt::Debug> Backbone for T {}

impl BackboneConfig {
    /// The ViT shape this config stands for, if it is a ViT.
    pub fn vit(&self) -> Option<VitConfig> {
        match self {
            BackboneConfig::Vit(config) => Some(config.clone()),
            BackboneConfig::VitPreset(VitPresetConfig {
                size,
                image_size,
                patch_size,
                in_channels,
                pool,
            }) => {
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
                    pool: *pool,
                })
            }
            _ => None,
        }
    }

    /// Input channels it reads.
    pub fn in_channels(&self) -> i64 {
        match self {
            BackboneConfig::Resnet(config) => config.in_channels,
            BackboneConfig::SmallCnn(config) => config.in_channels,
            BackboneConfig::Vit(config) => config.in_channels,
            BackboneConfig::VitPreset(preset) => preset.in_channels,
        }
    }

    /// Width of the features.
    pub fn feature_dim(&self) -> i64 {
        match self {
            BackboneConfig::Resnet(config) => config.feature_dim(),
            BackboneConfig::SmallCnn(config) => SmallCnn::feature_dim(config),
            _ => self.vit().map_or(0, |vit| vit.dim),
        }
    }

    /// The smallest image side it reads: each of the small CNN's max-pools
    /// halves the side, a ViT needs one patch; ResNets pad their way down to 1.
    pub fn min_input_size(&self) -> usize {
        match self {
            BackboneConfig::Resnet(_) => 1,
            BackboneConfig::SmallCnn(config) => 1 << config.widths.len().saturating_sub(1).min(16),
            _ => self.vit().map_or(1, |vit| vit.patch_size.max(1) as usize),
        }
    }

    /// Checks every value; `at` is the table's key (`method.backbone`).
    pub fn validate(&self, at: &str) -> Result<()> {
        match self {
            BackboneConfig::Resnet(config) => config.validate(at),
            BackboneConfig::SmallCnn(config) => config.validate(at),
            _ => match self.vit() {
                Some(vit) => vit.validate(at),
                None => Ok(()),
            },
        }
    }

    /// Builds the backbone under `path` for images of `channels` channels;
    /// a bad value or a channel mismatch is an error naming `at`'s key.
    pub fn build(
        &self,
        path: nn::Path,
        at: &str,
        channels: Option<i64>,
    ) -> Result<Box<dyn Backbone>> {
        self.validate(at)?;
        if let Some(channels) = channels.filter(|&c| c != self.in_channels()) {
            let message = format!(
                "{}, but the images have {channels} channel(s)",
                self.in_channels()
            );
            return Err(check::invalid(&format!("{at}.in_channels"), message));
        }
        Ok(match self {
            BackboneConfig::Resnet(config) => Box::new(ResNet::new(path, config)?),
            BackboneConfig::SmallCnn(config) => Box::new(SmallCnn::new(path, config)?),
            _ => match self.vit() {
                Some(vit) => Box::new(VisionTransformer::new(path, &vit, at)?),
                None => return Err(check::invalid(at, "not a backbone")),
            },
        })
    }
}

/// Features of every view: `[views · batch, dim]`, view-major. Consecutive
/// views of one size go through the backbone as one batch (one forward pass
/// keeps batch-norm statistics over all of them, as SimCLR's reference code
/// does); multi-crop's global and local views make one batch per size, as
/// DINO's code does.
pub fn features_of_views(backbone: &dyn Backbone, views: &[&Tensor], train: bool) -> Tensor {
    let mut groups: Vec<Tensor> = Vec::new();
    let mut start = 0;
    while start < views.len() {
        let shape = views[start].size();
        let end = (start..views.len())
            .find(|&i| views[i].size() != shape)
            .unwrap_or(views.len());
        groups.push(backbone.features(&Tensor::cat(&views[start..end], 0), train));
        start = end;
    }
    Tensor::cat(&groups, 0)
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
            let backbone = config.build(vs.root(), "method.backbone", Some(3)).unwrap();
            let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
            assert_eq!(backbone.features(&x, true).size(), vec![2, dim], "{text}");
            let error = config
                .build(vs.root() / "grey", "method.backbone", Some(1))
                .unwrap_err()
                .to_string();
            assert!(error.contains("method.backbone.in_channels"), "{error}");
        }
        let unknown = toml::from_str::<BackboneConfig>("kind = \"vgg\"").unwrap_err();
        assert!(unknown.to_string().contains("vgg"), "{unknown}");
    }

    #[test]
    fn bad_fields_are_named_with_their_whole_path() {
        #[derive(Debug, serde::Deserialize)]
        struct Method {
            #[allow(dead_code)]
            backbone: BackboneConfig,
        }
        let error = |text: &str| {
            selfsup_train::config::deserialize_table::<Method>(text, "t.toml", "method.")
                .unwrap_err()
                .to_string()
        };
        let nan = error("[backbone]\nkind = \"small_cnn\"\nwidths = [4, nan]");
        assert!(nan.contains("method.backbone.widths[1]"), "{nan}");
        let typo = error("[backbone]\nkind = \"vit_preset\"\nsize = \"tiny\"\nimage_size = 32\npatch_size = 4\npatchsize = 4");
        assert!(
            typo.contains("method.backbone") && typo.contains("patchsize"),
            "{typo}"
        );
        let kind = error("[backbone]\nkind = \"vgg\"");
        assert!(
            kind.contains("method.backbone.kind") && kind.contains("vgg"),
            "{kind}"
        );
    }

    #[test]
    fn views_of_two_sizes_go_through_in_two_batches() {
        let config: BackboneConfig = toml::from_str("kind = \"small_cnn\"\nwidths = [4]").unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let backbone = config.build(vs.root(), "method.backbone", Some(3)).unwrap();
        let big = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let small = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let features = features_of_views(backbone.as_ref(), &[&big, &big, &small], false);
        assert_eq!(features.size(), vec![6, 4]);
        let alone = backbone.features(&small, false);
        assert!(features.narrow(0, 4, 2).allclose(&alone, 1e-5, 1e-6, false));
    }
}

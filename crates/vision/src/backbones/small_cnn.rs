//! A small VGG-style CNN for CPU budgets: stages of two 3×3 convolutions with
//! batch norm and ReLU, 2×2 max-pool between stages, global average pooling.
//! With widths 32-64-128-256 it has 1.2 M parameters and runs a 32×32 image
//! about 10× cheaper than a CIFAR ResNet-18, which is what lets SSL methods
//! learn something in 20 minutes on two CPU cores.

use selfsup_core::blocks::batch_norm_config;
use selfsup_core::sync_bn::batch_norm;
use selfsup_train::{check, FeatureExtractor, Result};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

/// Shape of the small CNN.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmallCnnConfig {
    /// Input channels.
    #[serde(default = "three")]
    pub in_channels: i64,
    /// Channels of each stage; the features have the last width.
    #[serde(default = "default_widths")]
    pub widths: Vec<i64>,
}

fn three() -> i64 {
    3
}

fn default_widths() -> Vec<i64> {
    vec![32, 64, 128, 256]
}

/// The network.
#[derive(Debug)]
pub struct SmallCnn {
    stages: Vec<Vec<(nn::Conv2D, nn::BatchNorm)>>,
}

impl SmallCnn {
    /// Builds it under `path` (`stages.<i>.<j>.conv`, `stages.<i>.<j>.bn`),
    /// Kaiming-initialised like torchvision's ResNets.
    pub fn new(path: nn::Path, config: &SmallCnnConfig) -> Result<Self> {
        config.validate("method.backbone")?;
        let mut input = config.in_channels;
        let stages = config
            .widths
            .iter()
            .enumerate()
            .map(|(i, &width)| {
                (0..2)
                    .map(|j| {
                        let p = &path / "stages" / i / j;
                        let conv_config = nn::ConvConfig {
                            padding: 1,
                            bias: false,
                            ws_init: nn::Init::Randn {
                                mean: 0.0,
                                stdev: (2.0 / (width * 9) as f64).sqrt(),
                            },
                            ..Default::default()
                        };
                        let conv = nn::conv2d(&p / "conv", input, width, 3, conv_config);
                        let bn = nn::batch_norm2d(&p / "bn", width, batch_norm_config());
                        input = width;
                        (conv, bn)
                    })
                    .collect()
            })
            .collect();
        Ok(Self { stages })
    }

    /// Width of the features.
    pub fn feature_dim(config: &SmallCnnConfig) -> i64 {
        config.widths.last().copied().unwrap_or(0)
    }
}

impl SmallCnnConfig {
    /// Checks every value; `at` is the table's key (`method.backbone`).
    pub fn validate(&self, at: &str) -> Result<()> {
        check::size(&format!("{at}.in_channels"), self.in_channels)?;
        if self.widths.is_empty() || self.widths.len() > 8 {
            let message = format!(
                "{} stages: give 1 to 8 widths, e.g. [32, 64, 128, 256]",
                self.widths.len()
            );
            return Err(check::invalid(&format!("{at}.widths"), message));
        }
        for (i, &width) in self.widths.iter().enumerate() {
            check::size(&format!("{at}.widths[{i}]"), width)?;
        }
        Ok(())
    }
}

impl FeatureExtractor for SmallCnn {
    fn features(&self, images: &Tensor, train: bool) -> Tensor {
        let mut x = images.shallow_clone();
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
            for (conv, bn) in stage {
                x = batch_norm(bn, &x.apply(conv), train).relu();
            }
        }
        x.mean_dim(&[2i64, 3][..], false, Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn pools_to_the_last_width_and_counts_parameters() {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = SmallCnnConfig {
            in_channels: 3,
            widths: default_widths(),
        };
        let net = SmallCnn::new(vs.root(), &config).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(net.features(&x, true).size(), vec![2, 256]);
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        // convs 3·32·9 + 32·32·9 + 32·64·9 + 64·64·9 + 64·128·9 + 128·128·9
        // + 128·256·9 + 256·256·9, and 2 BN parameters per channel.
        let convs = 9
            * (3 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256);
        let norms = 2 * 2 * (32 + 64 + 128 + 256);
        assert_eq!(params, convs + norms);
        let empty = SmallCnnConfig {
            in_channels: 3,
            widths: Vec::new(),
        };
        let error = SmallCnn::new(vs.root(), &empty).unwrap_err().to_string();
        assert!(error.contains("method.backbone.widths"), "{error}");
    }
}

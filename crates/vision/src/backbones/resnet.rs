//! ResNet (He et al., 2016) with torchvision's layer names, so exported
//! weights load into `torchvision.models.resnet18/50`. Two stems: ImageNet's
//! 7×7 stride-2 convolution plus max-pool, and the CIFAR stem SSL papers use
//! on 32×32 images (3×3 stride 1, no max-pool), which keeps an 4×4 map at the
//! end instead of 1×1.

use selfsup_core::blocks::batch_norm_config;
use selfsup_core::sync_bn::batch_norm;
use selfsup_train::{check, FeatureExtractor, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// The first layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 3×3 convolution, stride 1, no max-pool (32×32 images).
    Cifar,
    /// 7×7 convolution, stride 2, then 3×3 max-pool, stride 2 (ImageNet).
    Imagenet,
}

/// Shape of a ResNet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// 18, 34 (basic blocks) or 50 (bottlenecks).
    pub depth: usize,
    /// Which stem.
    pub stem: Stem,
    /// Input channels.
    #[serde(default = "three")]
    pub in_channels: i64,
}

fn three() -> i64 {
    3
}

impl ResNetConfig {
    /// Blocks per stage and whether they are bottlenecks; `None` for a depth
    /// that is not 18, 34 or 50.
    fn layout(&self) -> Option<([i64; 4], bool)> {
        match self.depth {
            18 => Some(([2, 2, 2, 2], false)),
            34 => Some(([3, 4, 6, 3], false)),
            50 => Some(([3, 4, 6, 3], true)),
            _ => None,
        }
    }

    /// Checks every value; `at` is the table's key (`method.backbone`).
    pub fn validate(&self, at: &str) -> Result<()> {
        if self.layout().is_none() {
            let message = format!("{} is not a ResNet depth: use 18, 34 or 50", self.depth);
            return Err(check::invalid(&format!("{at}.depth"), message));
        }
        check::size(&format!("{at}.in_channels"), self.in_channels)
    }

    /// Width of the pooled features: 512, or 2048 with bottlenecks.
    pub fn feature_dim(&self) -> i64 {
        if self.depth == 50 {
            2048
        } else {
            512
        }
    }
}

/// torchvision's init: Kaiming normal, `fan_out` mode, for ReLU.
fn conv(path: nn::Path, input: i64, output: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    let fan_out = (output * kernel * kernel) as f64;
    let config = nn::ConvConfig {
        stride,
        padding: kernel / 2,
        bias: false,
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: (2.0 / fan_out).sqrt(),
        },
        ..Default::default()
    };
    nn::conv2d(path, input, output, kernel, config)
}

fn norm(path: nn::Path, channels: i64) -> nn::BatchNorm {
    nn::batch_norm2d(path, channels, batch_norm_config())
}

/// A residual block: basic (two 3×3) or bottleneck (1×1, 3×3, 1×1 with 4×
/// expansion; the stride on the 3×3, as torchvision's "ResNet v1.5").
#[derive(Debug)]
struct Block {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn new(path: nn::Path, input: i64, planes: i64, stride: i64, bottleneck: bool) -> Self {
        let output = if bottleneck { planes * 4 } else { planes };
        let layers: Vec<(i64, i64, i64, i64)> = if bottleneck {
            vec![
                (input, planes, 1, 1),
                (planes, planes, 3, stride),
                (planes, output, 1, 1),
            ]
        } else {
            vec![(input, planes, 3, stride), (planes, planes, 3, 1)]
        };
        let convs = layers
            .into_iter()
            .enumerate()
            .map(|(i, (cin, cout, k, s))| {
                (
                    conv(&path / format!("conv{}", i + 1), cin, cout, k, s),
                    norm(&path / format!("bn{}", i + 1), cout),
                )
            })
            .collect();
        let downsample = (stride != 1 || input != output).then(|| {
            (
                conv(&path / "downsample" / "0", input, output, 1, stride),
                norm(&path / "downsample" / "1", output),
            )
        });
        Self { convs, downsample }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            y = batch_norm(bn, &y.apply(conv), train);
            if i < last {
                y = y.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some((conv, bn)) => batch_norm(bn, &x.apply(conv), train),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }
}

/// ResNet without its classifier: images → globally pooled features.
#[derive(Debug)]
pub struct ResNet {
    /// The shape it was built with.
    pub config: ResNetConfig,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    layers: Vec<Block>,
}

impl ResNet {
    /// Builds the network under `path` with torchvision's names
    /// (`conv1`, `bn1`, `layer1.0.conv1`, …, `layer4.1.downsample.0`).
    pub fn new(path: nn::Path, config: &ResNetConfig) -> Result<Self> {
        config.validate("method.backbone")?;
        let Some((counts, bottleneck)) = config.layout() else {
            return Err(check::invalid("method.backbone.depth", "not 18, 34 or 50"));
        };
        let (kernel, stride) = match config.stem {
            Stem::Cifar => (3, 1),
            Stem::Imagenet => (7, 2),
        };
        let conv1 = conv(&path / "conv1", config.in_channels, 64, kernel, stride);
        let bn1 = norm(&path / "bn1", 64);
        let mut layers = Vec::new();
        let mut input = 64;
        for (stage, &count) in counts.iter().enumerate() {
            let planes = 64 << stage;
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let path = &path / format!("layer{}", stage + 1) / i;
                layers.push(Block::new(path, input, planes, stride, bottleneck));
                input = if bottleneck { planes * 4 } else { planes };
            }
        }
        Ok(Self {
            config: config.clone(),
            conv1,
            bn1,
            layers,
        })
    }
}

impl FeatureExtractor for ResNet {
    /// `[batch, C, H, W]` → `[batch, 512 | 2048]`, batch statistics when `train`.
    fn features(&self, images: &Tensor, train: bool) -> Tensor {
        let mut x = batch_norm(&self.bn1, &images.apply(&self.conv1), train).relu();
        if self.config.stem == Stem::Imagenet {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for block in &self.layers {
            x = block.forward_t(&x, train);
        }
        x.mean_dim(&[2i64, 3][..], false, Kind::Float)
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features(xs, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn parameter_count(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    #[test]
    fn resnet18_and_50_have_torchvisions_parameter_counts() {
        // torchvision's resnet18 / resnet50 without the fc layer (512·1000 + 1000,
        // 2048·1000 + 1000): 11,689,512 − 513,000 and 25,557,032 − 2,049,000.
        for (depth, expected) in [(18, 11_176_512), (50, 23_508_032)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let config = ResNetConfig {
                depth,
                stem: Stem::Imagenet,
                in_channels: 3,
            };
            let _ = ResNet::new(vs.root(), &config).unwrap();
            assert_eq!(parameter_count(&vs), expected, "resnet{depth}");
        }
    }

    #[test]
    fn stems_and_torchvision_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = ResNetConfig {
            depth: 18,
            stem: Stem::Cifar,
            in_channels: 3,
        };
        let net = ResNet::new(vs.root(), &config).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(net.features(&x, true).size(), vec![2, 512]);
        let names = vs.variables();
        for name in [
            "conv1.weight",
            "bn1.running_var",
            "layer1.0.conv2.weight",
            "layer2.0.downsample.0.weight",
            "layer4.1.bn2.bias",
        ] {
            assert!(names.contains_key(name), "missing {name}");
        }
        assert!(!names.contains_key("layer1.0.downsample.0.weight"));
        assert_eq!(names["conv1.weight"].size(), vec![64, 3, 3, 3]);
        // PyTorch's batch-norm init (tch's default weight is U(0, 1)).
        for name in ["bn1.weight", "layer3.1.bn2.weight"] {
            assert_eq!(names[name].eq(1.0).all().int64_value(&[]), 1, "{name}");
        }
        let vs = nn::VarStore::new(Device::Cpu);
        let config = ResNetConfig {
            depth: 50,
            stem: Stem::Imagenet,
            in_channels: 3,
        };
        let net = ResNet::new(vs.root(), &config).unwrap();
        let x = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        assert_eq!(net.features(&x, false).size(), vec![1, 2048]);
        assert_eq!(vs.variables()["conv1.weight"].size(), vec![64, 3, 7, 7]);
        let config = ResNetConfig {
            depth: 101,
            stem: Stem::Imagenet,
            in_channels: 3,
        };
        let error = ResNet::new(vs.root(), &config).unwrap_err().to_string();
        assert!(
            error.contains("method.backbone.depth") && error.contains("101"),
            "{error}"
        );
    }
}

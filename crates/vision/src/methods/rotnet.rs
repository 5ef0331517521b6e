//! Rotation prediction (Gidaris, Singh & Komodakis, 2018, "Unsupervised
//! Representation Learning by Predicting Image Rotations").
//!
//! Every image is shown at 0°, 90°, 180° and 270° in one batch (the paper's
//! finding: all four rotations of an image together train best) and a linear
//! head on the backbone's pooled features classifies the rotation.

use crate::backbones::{Backbone, BackboneConfig};
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::losses::rotation_prediction;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Rotation-prediction hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RotNetConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
}

/// The rotation-prediction model.
#[derive(Debug)]
pub struct RotNet {
    config: RotNetConfig,
    backbone: Box<dyn Backbone>,
    head: nn::Linear,
}

/// The four rotations of `[batch, C, H, W]` square images, rotation-major:
/// `([4·batch, C, H, W], [4·batch] labels 0..4)`.
pub fn rotate_four(images: &Tensor) -> (Tensor, Tensor) {
    let batch = images.size()[0];
    let rotated: Vec<Tensor> = (0..4).map(|k| images.rot90(k, [2, 3])).collect();
    let labels = Tensor::arange(4, (Kind::Int64, images.device()))
        .repeat_interleave_self_int(batch, 0, None);
    (Tensor::cat(&rotated, 0), labels)
}

impl RotNet {
    /// Builds `backbone` and the 4-way `head` under `path`.
    pub fn new(path: nn::Path, config: &RotNetConfig, channels: Option<i64>) -> Result<Self> {
        let backbone = config.backbone.build(&path / "backbone", "method.backbone", channels)?;
        let head = nn::linear(
            &path / "head",
            config.backbone.feature_dim(),
            4,
            Default::default(),
        );
        Ok(Self {
            config: config.clone(),
            backbone,
            head,
        })
    }
}

impl Register<Vision> for RotNet {
    const NAME: &'static str = "rotnet";
    const SUMMARY: &'static str = "rotation prediction: which of 4 quarter turns an image shows";
    const TEST_TABLE: &'static str = "name = \"rotnet\"\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = RotNetConfig;
    fn build(config: &RotNetConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for RotNet {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let images = batch.inputs.get("view0")?;
        let size = images.size();
        if size[2] != size[3] {
            let message = format!("rotnet needs square images, got {}x{}", size[2], size[3]);
            return Err(check::invalid("data", message));
        }
        let (rotated, labels) = rotate_four(images);
        let features = self.backbone.features(&rotated, train);
        let loss = rotation_prediction(&self.head.forward(&features), &labels)?;
        Ok(StepOutput::new(loss).with_features(features.narrow(0, 0, size[0])))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.backbone.as_ref()
    }
}

impl VisionMethod for RotNet {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{registered_method_data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use super::*;
    use selfsup_train::config::OptimizerKind;
    use tch::Device;

    /// The four rotations are fixed (no random draw) and batch norm is
    /// synchronised: two ranks of 8 images train as one process of 16.
    #[test]
    fn two_ranks_train_as_one_process() {
        registered_method_data_parallel_matches::<RotNet>(module_path!(), 0, 1e-4);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        trains_and_resumes(module_path!(), Smoke {
            method: &format!("name = \"rotnet\"\n{TINY_CNN}"),
            views: 0,
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            skip: 0,
            falls: "loss",
        });
    }

    #[test]
    fn rotations_are_counter_clockwise_quarter_turns() {
        // [[0, 1], [2, 3]] turned 90° counter-clockwise is [[1, 3], [0, 2]].
        let image = Tensor::from_slice(&[0f32, 1., 2., 3.]).view([1, 1, 2, 2]);
        let (rotated, labels) = rotate_four(&image);
        let got: Vec<f32> = Vec::try_from(rotated.narrow(0, 1, 1).flatten(0, -1)).unwrap();
        assert_eq!(got, [1., 3., 0., 2.]);
        let half: Vec<f32> = Vec::try_from(rotated.narrow(0, 2, 1).flatten(0, -1)).unwrap();
        assert_eq!(half, [3., 2., 1., 0.]);
        assert_eq!(Vec::<i64>::try_from(labels).unwrap(), [0, 1, 2, 3]);
        let batch = Tensor::zeros([3, 1, 4, 4], (Kind::Float, Device::Cpu));
        let (rotated, labels) = rotate_four(&batch);
        assert_eq!(rotated.size(), vec![12, 1, 4, 4]);
        assert_eq!(
            Vec::<i64>::try_from(labels).unwrap(),
            [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
        );
    }
}

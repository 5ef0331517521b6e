//! The denoising autoencoder (Vincent et al., 2008, "Extracting and
//! Composing Robust Features with Denoising Autoencoders"): the pretext task
//! of before contrastive learning, kept as the historical baseline.
//!
//! Each image is corrupted, then encoded (the backbone, globally pooled) and
//! decoded by an MLP back to every pixel; the loss is the mean squared error
//! against the clean image, in the normalised units the model reads.
//! Corruption is the paper's masking noise (a random `mask_ratio` of the
//! pixels set to the data's mean, 0 after normalisation; every channel of a
//! pixel together) or additive Gaussian noise of std `sigma`.

use crate::backbones::{Backbone, BackboneConfig};
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// How images are corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Noise {
    /// A random share of the pixels set to the mean (masking noise).
    Mask,
    /// Additive Gaussian noise.
    Gaussian,
}

/// Denoising-autoencoder hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaeConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Side of the (square) images it reconstructs.
    pub image_size: i64,
    /// Hidden width of the MLP decoder.
    pub decoder_hidden: i64,
    /// `mask` or `gaussian`.
    pub noise: Noise,
    /// Share of pixels masked (`mask` noise; 0.25 in the paper's MNIST runs).
    #[serde(default = "quarter")]
    pub mask_ratio: f64,
    /// Noise std in normalised units (`gaussian` noise).
    #[serde(default = "half")]
    pub sigma: f64,
}

fn quarter() -> f64 {
    0.25
}

fn half() -> f64 {
    0.5
}

/// The denoising autoencoder.
#[derive(Debug)]
pub struct Dae {
    config: DaeConfig,
    backbone: Box<dyn Backbone>,
    hidden: nn::Linear,
    output: nn::Linear,
    channels: i64,
}

impl Dae {
    /// Builds the encoder and the decoder under `path`.
    pub fn new(path: nn::Path, config: &DaeConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.image_size", config.image_size)?;
        check::size("method.decoder_hidden", config.decoder_hidden)?;
        check::fraction_below_one("method.mask_ratio", config.mask_ratio)?;
        check::non_negative("method.sigma", config.sigma)?;
        config.backbone.validate("method.backbone")?;
        let in_channels = config.backbone.in_channels();
        let pixels = in_channels.saturating_mul(config.image_size).saturating_mul(config.image_size);
        if pixels > check::MAX_SIZE {
            let message = format!("{} px a side in {in_channels} channel(s) is too large to decode", config.image_size);
            return Err(check::invalid("method.image_size", message));
        }
        let backbone = config.backbone.build(&path / "backbone", "method.backbone", channels)?;
        let dim = config.backbone.feature_dim();
        let hidden = nn::linear(&path / "decoder" / "hidden", dim, config.decoder_hidden, Default::default());
        let output = nn::linear(&path / "decoder" / "output", config.decoder_hidden, pixels, Default::default());
        Ok(Self {
            config: config.clone(),
            backbone,
            hidden,
            output,
            channels: in_channels,
        })
    }

    /// `images` corrupted as configured (draws from libtorch's generator,
    /// which the trainer seeds per step).
    fn corrupt(&self, images: &Tensor) -> Tensor {
        match self.config.noise {
            Noise::Mask => {
                let (b, _, h, w) = images.size4().unwrap_or((1, 1, 1, 1));
                let keep = Tensor::rand([b, 1, h, w], (Kind::Float, images.device())).ge(self.config.mask_ratio);
                images * keep.to_kind(images.kind())
            }
            Noise::Gaussian => images + Tensor::randn_like(images) * self.config.sigma,
        }
    }
}

impl Register<Vision> for Dae {
    const NAME: &'static str = "dae";
    const SUMMARY: &'static str = "denoising autoencoder: the pre-contrastive baseline";
    const TEST_TABLE: &'static str = "name = \"dae\"\nimage_size = 32\ndecoder_hidden = 16\nnoise = \"gaussian\"\nmask_ratio = 0.25\nsigma = 0.5\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = DaeConfig;
    fn build(config: &DaeConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for Dae {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let images = batch.inputs.get("view0")?;
        let side = self.config.image_size;
        if images.size()[1..] != [self.channels, side, side] {
            let message = format!("{side}, but the images are {:?}", &images.size()[2..]);
            return Err(check::invalid("method.image_size", message));
        }
        let code = self.backbone.features(&self.corrupt(images), train);
        let reconstruction = self.output.forward(&self.hidden.forward(&code).relu());
        let loss = reconstruction.mse_loss(&images.flatten(1, -1), tch::Reduction::Mean);
        // The online probe follows the features of the corrupted images (the
        // ones computed anyway); evaluation reads clean ones.
        Ok(StepOutput::new(loss).with_features(code))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.backbone.as_ref()
    }
}

impl VisionMethod for Dae {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{trains_and_resumes, Smoke, TINY_CNN};
    use super::*;
    use selfsup_train::config::OptimizerKind;
    use tch::Device;

    #[test]
    fn trains_and_resumes_exactly() {
        let method = "name = \"dae\"\nimage_size = 16\ndecoder_hidden = 32\nnoise = \"mask\"\n";
        trains_and_resumes(
            module_path!(),
            Smoke {
                method: &format!("{method}{TINY_CNN}"),
                views: 0,
                optimizer: OptimizerKind::Adamw,
                lr: 3e-3,
                skip: 0,
                falls: "loss",
            },
        );
    }

    #[test]
    fn masking_noise_zeroes_whole_pixels_at_the_ratio() {
        let _rng = selfsup_train::testing::lock_torch_rng();
        tch::manual_seed(0);
        let config: DaeConfig = toml::from_str(&format!(
            "image_size = 32\ndecoder_hidden = 8\nnoise = \"mask\"\nmask_ratio = 0.3\n{TINY_CNN}"
        ))
        .unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let dae = Dae::new(vs.root(), &config, Some(3)).unwrap();
        let corrupted = dae.corrupt(&Tensor::ones([4, 3, 32, 32], (Kind::Float, Device::Cpu)));
        let zero = corrupted.eq(0.0).to_kind(Kind::Float);
        let share = zero.mean(Kind::Float).double_value(&[]);
        assert!((share - 0.3).abs() < 0.03, "{share}");
        let channels_agree = zero.select(1, 0).eq_tensor(&zero.select(1, 2)).all().int64_value(&[]);
        assert_eq!(channels_agree, 1, "a masked pixel loses all its channels");
    }
}

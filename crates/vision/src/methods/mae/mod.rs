//! MAE: masked autoencoders (He et al., 2021, "Masked Autoencoders Are Scalable
//! Vision Learners").
//!
//! Reproduces the paper's pretext task: per-sample random masking by argsort of
//! uniform noise (75 % of patches hidden by default), the encoder sees only the
//! visible patches plus the cls token, a light decoder receives the encoded
//! tokens plus a shared learned mask token at every hidden position, and the loss
//! is the mean squared error on hidden patches against per-patch normalised
//! pixels. Defaults follow the paper; the bundled recipe shrinks the model to a
//! CPU budget (configs/vision/mae-mnist.toml).

use crate::backbones::{BackboneConfig, VisionTransformer, VitConfig};
use crate::data::Normalizer;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::blocks::{xavier_linear, Attention, TransformerBlock};
use selfsup_core::losses::mae_loss;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{self, Module};
use tch::Tensor;

mod masking;
mod picture;
pub use masking::{random_masking, Masking};

/// The decoder's shape; it only serves pre-training, so it is small.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaeDecoderConfig {
    /// Token width.
    pub dim: i64,
    /// Number of blocks (8 in the paper; 1–2 is enough for small images).
    pub depth: i64,
    /// Attention heads.
    pub heads: i64,
}

/// MAE hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaeConfig {
    /// The ViT encoder.
    pub encoder: VitConfig,
    /// The decoder.
    pub decoder: MaeDecoderConfig,
    /// Fraction of patches hidden from the encoder (0.75 in the paper).
    pub mask_ratio: f64,
    /// Regress per-patch normalised pixels (the paper's better setting).
    pub norm_pix_loss: bool,
}

/// Outputs of one MAE forward pass.
#[derive(Debug)]
pub struct MaeForward {
    /// The scalar loss.
    pub loss: Tensor,
    /// `[batch, patches, patch_size² · channels]` pixel predictions.
    pub pred: Tensor,
    /// `[batch, patches]`, 1 where hidden.
    pub mask: Tensor,
}

impl MaeConfig {
    /// Checks every value (the encoder's under `method.encoder`).
    pub fn validate(&self) -> Result<()> {
        self.encoder.validate("method.encoder")?;
        let decoder = &self.decoder;
        check::transformer_shape("method.decoder", decoder.dim, decoder.heads, decoder.depth, 4.0, 4)?;
        check::fraction_below_one("method.mask_ratio", self.mask_ratio)?;
        let patches = self.encoder.num_patches();
        if ((patches as f64) * (1.0 - self.mask_ratio)) < 1.0 {
            let message = format!(
                "{} hides all {patches} patches of {} px images in {} px patches \
                 (method.encoder.image_size, method.encoder.patch_size); the encoder must see at least one",
                self.mask_ratio, self.encoder.image_size, self.encoder.patch_size
            );
            return Err(check::invalid("method.mask_ratio", message));
        }
        Ok(())
    }
}

/// The MAE model: ViT encoder plus decoder.
#[derive(Debug)]
pub struct Mae {
    config: MaeConfig,
    /// The encoder as a backbone config, for export.
    encoder_spec: BackboneConfig,
    encoder: VisionTransformer,
    decoder_embed: nn::Linear,
    mask_token: Tensor,
    decoder_pos: Tensor,
    decoder_blocks: Vec<TransformerBlock>,
    decoder_norm: nn::LayerNorm,
    decoder_pred: nn::Linear,
}

impl Mae {
    /// Builds encoder (under `encoder`) and decoder under `path` for images
    /// of `channels` channels.
    pub fn new(path: nn::Path, config: &MaeConfig, channels: Option<i64>) -> Result<Self> {
        config.validate()?;
        let enc = &config.encoder;
        if let Some(channels) = channels.filter(|&c| c != enc.in_channels) {
            let message = format!("{}, but the images have {channels} channel(s)", enc.in_channels);
            return Err(check::invalid("method.encoder.in_channels", message));
        }
        let dec = &config.decoder;
        let encoder = VisionTransformer::new(&path / "encoder", enc, "method.encoder")?;
        let positions = crate::backbones::pos_embed::sincos_2d(dec.dim, enc.grid(), path.device());
        let decoder_pos =
            Tensor::cat(&[positions.zeros_like().narrow(0, 0, 1), positions], 0).unsqueeze(0);
        let patch_pixels = enc.patch_size * enc.patch_size * enc.in_channels;
        Ok(Self {
            encoder_spec: BackboneConfig::Vit(enc.clone()),
            encoder,
            decoder_embed: xavier_linear(&path / "decoder_embed", enc.dim, dec.dim),
            mask_token: path.var(
                "mask_token",
                &[1, 1, dec.dim],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            decoder_pos,
            decoder_blocks: (0..dec.depth)
                .map(|i| {
                    TransformerBlock::new(&path / "decoder_blocks" / i, dec.dim, dec.heads, 4.0)
                })
                .collect(),
            decoder_norm: nn::layer_norm(
                &path / "decoder_norm",
                vec![dec.dim],
                nn::LayerNormConfig {
                    eps: 1e-6,
                    ..Default::default()
                },
            ),
            decoder_pred: xavier_linear(&path / "decoder_pred", dec.dim, patch_pixels),
            config: config.clone(),
        })
    }

    /// The encoder, for evaluation and export.
    pub fn encoder(&self) -> &VisionTransformer {
        &self.encoder
    }

    /// `[batch, C, H, W]` → `[batch, patches, p·p·C]`, patches row-major and
    /// pixels within a patch in (row, column, channel) order, as the reference.
    pub fn patchify(&self, images: &Tensor) -> Tensor {
        let (b, c, _, _) = images.size4().expect("[batch, channels, height, width]");
        let (p, g) = (self.config.encoder.patch_size, self.config.encoder.grid());
        images
            .reshape([b, c, g, p, g, p])
            .permute([0, 2, 4, 3, 5, 1])
            .reshape([b, g * g, p * p * c])
    }

    /// Inverse of [`Mae::patchify`].
    pub fn unpatchify(&self, patches: &Tensor) -> Tensor {
        let b = patches.size()[0];
        let (p, g, c) = (
            self.config.encoder.patch_size,
            self.config.encoder.grid(),
            self.config.encoder.in_channels,
        );
        patches
            .reshape([b, g, g, p, p, c])
            .permute([0, 5, 1, 3, 2, 4])
            .reshape([b, c, g * p, g * p])
    }

    /// Forward pass and loss for normalised `images` `[batch, C, H, W]`.
    pub fn forward(&self, images: &Tensor) -> selfsup_core::Result<MaeForward> {
        let tokens = self.encoder.embed_patches(images); // [B, L, D]
        let masking = random_masking(&tokens, self.config.mask_ratio);
        let latent = self.encoder.encode(&masking.visible); // [B, 1 + keep, D]
        let pred = self.decode(&latent, &masking.ids_restore);
        let loss = mae_loss(
            &pred,
            &self.patchify(images),
            &masking.mask,
            self.config.norm_pix_loss,
        )?;
        Ok(MaeForward {
            loss,
            pred,
            mask: masking.mask,
        })
    }

    /// Decoder: embed, append mask tokens, unshuffle to image order, add
    /// positions, blocks, predict pixels; drops the cls token. `[B, L, p·p·C]`.
    fn decode(&self, latent: &Tensor, ids_restore: &Tensor) -> Tensor {
        let x = self.decoder_embed.forward(latent); // [B, 1 + keep, Dd]
        let (b, visible_plus_cls, dim) = x.size3().expect("[batch, tokens, dim]");
        let patches = ids_restore.size()[1];
        let masks = self
            .mask_token
            .expand([b, patches + 1 - visible_plus_cls, dim], false);
        let shuffled = Tensor::cat(&[x.narrow(1, 1, visible_plus_cls - 1), masks], 1); // [B, L, Dd]
        let index = ids_restore.unsqueeze(-1).expand([b, patches, dim], false);
        let unshuffled = shuffled.gather(1, &index, false);
        let mut x = Tensor::cat(&[x.narrow(1, 0, 1), unshuffled], 1) + &self.decoder_pos;
        for block in &self.decoder_blocks {
            x = block.forward(&x, Attention::Bidirectional);
        }
        self.decoder_pred
            .forward(&x.apply(&self.decoder_norm))
            .narrow(1, 1, patches)
    }
}

impl Register<Vision> for Mae {
    const NAME: &'static str = "mae";
    const SUMMARY: &'static str = "MAE: a ViT reconstructs the 75 % of patches it did not see";
    const TEST_TABLE: &'static str = "name = \"mae\"\nmask_ratio = 0.75\nnorm_pix_loss = true\n[encoder]\nimage_size = 32\npatch_size = 8\nin_channels = 3\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\n[decoder]\ndim = 8\ndepth = 1\nheads = 2\n";
    type Config = MaeConfig;
    fn build(config: &MaeConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for Mae {
    fn step(&mut self, batch: &Batch, _train: bool) -> Result<StepOutput> {
        let images = batch.inputs.get("view0")?;
        let side = self.config.encoder.image_size;
        if images.size()[2..] != [side, side] {
            let message = format!("{side}, but the images are {:?}", &images.size()[2..]);
            return Err(check::invalid("method.encoder.image_size", message));
        }
        // MAE has no dropout or batch norm: train and eval passes are the same.
        // The encoder sees a quarter of each image: no whole-image features to probe.
        Ok(StepOutput::new(self.forward(images)?.loss))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        &self.encoder
    }
}

impl VisionMethod for Mae {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.encoder_spec, "encoder.")
    }

    fn write_pictures(
        &self,
        images: &Tensor,
        normalizer: &Normalizer,
        dir: &Path,
    ) -> crate::Result<Vec<PathBuf>> {
        picture::write_reconstructions(self, images, normalizer, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{trains_and_resumes, Smoke};
    use super::*;
    use selfsup_train::config::OptimizerKind;
    use tch::{Device, Kind};

    #[test]
    fn trains_and_resumes_exactly() {
        let method = "name = \"mae\"\nmask_ratio = 0.75\nnorm_pix_loss = true\n\
                      [encoder]\nimage_size = 16\npatch_size = 4\nin_channels = 3\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\n\
                      [decoder]\ndim = 8\ndepth = 1\nheads = 2\n";
        trains_and_resumes(module_path!(), Smoke {
            method,
            views: 0,
            optimizer: OptimizerKind::Adamw,
            lr: 3e-3,
            skip: 0,
            falls: "loss",
        });
    }

    fn tiny_config() -> MaeConfig {
        MaeConfig {
            encoder: VitConfig {
                image_size: 8,
                patch_size: 2,
                in_channels: 1,
                dim: 16,
                depth: 1,
                heads: 2,
                mlp_ratio: 2.0,
                pool: Default::default(),
            },
            decoder: MaeDecoderConfig {
                dim: 8,
                depth: 1,
                heads: 2,
            },
            mask_ratio: 0.75,
            norm_pix_loss: true,
        }
    }

    #[test]
    fn patchify_round_trips_and_orders_pixels_like_the_reference() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mae = Mae::new(vs.root(), &tiny_config(), Some(1)).unwrap();
        let images = Tensor::arange(64, (Kind::Float, Device::Cpu)).view([1, 1, 8, 8]);
        let patches = mae.patchify(&images);
        assert_eq!(patches.size(), vec![1, 16, 4]);
        // Patch 1 is rows 0-1, columns 2-3.
        assert_eq!(
            Vec::<f32>::try_from(patches.get(0).get(1)).unwrap(),
            vec![2., 3., 10., 11.]
        );
        assert!(mae.unpatchify(&patches).equal(&images));
    }

    #[test]
    fn loss_falls_when_training_on_a_fixed_batch() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut mae = Mae::new(vs.root(), &tiny_config(), Some(1)).unwrap();
        let images = Tensor::randn([8, 1, 8, 8], (Kind::Float, Device::Cpu));
        let groups = selfsup_core::optim::decay_groups(&vs, 0.0);
        let mut opt = selfsup_core::optim::AdamW::new(groups, Default::default());
        use selfsup_core::optim::Optimizer;
        let batch = Batch {
            inputs: selfsup_train::Named::new().with("view0", images),
            indices: (0..8).collect(),
            ..Default::default()
        };
        let mut losses = Vec::new();
        for _ in 0..60 {
            let loss = mae.step(&batch, true).unwrap().loss;
            opt.zero_grad();
            loss.backward();
            opt.step(3e-3);
            losses.push(loss.double_value(&[]));
        }
        let (first, last) = (
            losses[..5].iter().sum::<f64>() / 5.0,
            losses[55..].iter().sum::<f64>() / 5.0,
        );
        assert!(last < 0.8 * first, "loss {first} -> {last}");
    }

    #[test]
    fn masking_everything_and_wrong_sizes_are_config_errors() {
        let mut config = tiny_config();
        config.mask_ratio = 1.0;
        let vs = nn::VarStore::new(Device::Cpu);
        let error = Mae::new(vs.root(), &config, Some(1)).unwrap_err().to_string();
        assert!(error.contains("method.mask_ratio"), "{error}");
        config.mask_ratio = 0.99;
        let error = Mae::new(vs.root(), &config, Some(1)).unwrap_err().to_string();
        assert!(error.contains("method.mask_ratio") && error.contains("16 patches"), "{error}");
        let error = Mae::new(vs.root(), &tiny_config(), Some(3)).unwrap_err().to_string();
        assert!(error.contains("method.encoder.in_channels"), "{error}");
        let mut mae = Mae::new(vs.root() / "ok", &tiny_config(), Some(1)).unwrap();
        let batch = Batch {
            inputs: selfsup_train::Named::new().with("view0", Tensor::zeros([2, 1, 12, 12], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        let error = mae.step(&batch, true).unwrap_err().to_string();
        assert!(error.contains("method.encoder.image_size"), "{error}");
    }

    #[test]
    fn reconstruction_picture_is_a_png_of_three_rows() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mae = Mae::new(vs.root(), &tiny_config(), Some(1)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let normalizer = Normalizer::new(&[0.5], &[0.25], Device::Cpu);
        let files = mae
            .write_pictures(
                &Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu)),
                &normalizer,
                dir.path(),
            )
            .unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&files[0]).unwrap());
        let info = decoder.read_info().unwrap().info().clone();
        // 3 rows x 3 columns of 8 px images scaled by 4, with 2 px gaps.
        assert_eq!((info.width, info.height), (3 * 34 + 2, 3 * 34 + 2));
    }
}

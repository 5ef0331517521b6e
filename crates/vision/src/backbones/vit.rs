//! Vision Transformer (Dosovitskiy et al., 2021) with a cls token and fixed 2-D
//! sin-cos positions, as MAE and MoCo v3 use it. The encoder can run on a subset
//! of patch tokens, which is what makes MAE cheap.

use super::pos_embed::{interpolate_grid, sincos_2d};
use selfsup_core::blocks::{xavier_uniform, Attention, TransformerBlock};
use selfsup_train::{check, FeatureExtractor, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Shape of a ViT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VitConfig {
    /// Side of the (square) input image in pixels.
    pub image_size: i64,
    /// Side of a patch; 4 for 28–32 px images, 16 for ImageNet.
    pub patch_size: i64,
    /// Input channels (1 for MNIST, 3 for RGB).
    pub in_channels: i64,
    /// Token width.
    pub dim: i64,
    /// Number of transformer blocks.
    pub depth: i64,
    /// Attention heads per block.
    pub heads: i64,
    /// MLP width as a multiple of `dim`.
    pub mlp_ratio: f64,
    /// The image's feature: the mean of the patch tokens (MAE's k-NN) or
    /// the cls token (DINO, MoCo v3).
    #[serde(default, skip_serializing_if = "Pooling::is_mean")]
    pub pool: Pooling,
}

/// How a ViT pools its tokens into one feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of the final patch tokens.
    #[default]
    Mean,
    /// The final cls token.
    Cls,
}

impl Pooling {
    fn is_mean(&self) -> bool {
        *self == Pooling::Mean
    }
}

impl VitConfig {
    /// Patches along one side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }

    /// Patches per image.
    pub fn num_patches(&self) -> i64 {
        self.grid() * self.grid()
    }

    /// Checks every value; `at` is the table's key (`method.backbone`, `method.encoder`).
    pub fn validate(&self, at: &str) -> Result<()> {
        let key = |field: &str| format!("{at}.{field}");
        check::size(&key("image_size"), self.image_size)?;
        check::size(&key("patch_size"), self.patch_size)?;
        if self.image_size % self.patch_size != 0 {
            let message = format!(
                "{} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            );
            return Err(check::invalid(&key("image_size"), message));
        }
        check::size(&key("in_channels"), self.in_channels)?;
        // Divisible by 4: the 2-D sin-cos positions split the width in four.
        check::transformer_shape(at, self.dim, self.heads, self.depth, self.mlp_ratio, 4)?;
        Ok(())
    }
}

/// ViT encoder: patch embedding, cls token, blocks, final LayerNorm.
#[derive(Debug)]
pub struct VisionTransformer {
    /// The shape it was built with.
    pub config: VitConfig,
    patch_embed: nn::Conv2D,
    cls_token: Tensor,
    /// `[1, 1 + patches, dim]`, fixed (not trained); row 0 (all zeros) is the cls token's.
    pos_embed: Tensor,
    blocks: Vec<TransformerBlock>,
    norm: nn::LayerNorm,
}

impl VisionTransformer {
    /// Builds the encoder under `path`, initialised as MAE / timm do; the
    /// config is checked first (`at` names its table in errors).
    pub fn new(path: nn::Path, config: &VitConfig, at: &str) -> Result<Self> {
        config.validate(at)?;
        let p = config.patch_size;
        let conv = nn::ConvConfig {
            stride: p,
            // Xavier on the weight viewed as [dim, in_channels * p * p], as MAE does.
            ws_init: xavier_uniform(config.in_channels * p * p, config.dim),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let patch_embed = nn::conv2d(
            &path / "patch_embed" / "proj",
            config.in_channels,
            config.dim,
            p,
            conv,
        );
        let cls_token = path.var(
            "cls_token",
            &[1, 1, config.dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        let positions = sincos_2d(config.dim, config.grid(), path.device());
        let pos_embed =
            Tensor::cat(&[positions.zeros_like().narrow(0, 0, 1), positions], 0).unsqueeze(0);
        let blocks = (0..config.depth)
            .map(|i| {
                TransformerBlock::new(
                    &path / "blocks" / i,
                    config.dim,
                    config.heads,
                    config.mlp_ratio,
                )
            })
            .collect();
        let norm = nn::layer_norm(
            &path / "norm",
            vec![config.dim],
            nn::LayerNormConfig {
                eps: 1e-6,
                ..Default::default()
            },
        );
        Ok(Self {
            config: config.clone(),
            patch_embed,
            cls_token,
            pos_embed,
            blocks,
            norm,
        })
    }

    /// The fixed position embeddings, `[1, 1 + patches, dim]`.
    pub fn pos_embed(&self) -> &Tensor {
        &self.pos_embed
    }

    /// Replaces the position embeddings (e.g. with a PyTorch model's learned ones).
    pub fn set_pos_embed(&mut self, pos_embed: Tensor) {
        self.pos_embed = pos_embed;
    }

    /// `[batch, channels, H, W]` → `[batch, patches, dim]` patch tokens with
    /// positions added. Images of another size than the config's (DINO's
    /// local crops) get the position grid interpolated bicubically to theirs.
    pub fn embed_patches(&self, images: &Tensor) -> Tensor {
        let patches = self.patch_embed.forward(images); // [batch, dim, rows, columns]
        let (rows, columns) = (patches.size()[2], patches.size()[3]);
        let tokens = patches.flatten(2, 3).transpose(1, 2);
        tokens + self.patch_positions(rows, columns)
    }

    /// `[1, rows · columns, dim]` position embeddings of a `rows × columns`
    /// grid of patches: the config's own, or interpolated from them.
    fn patch_positions(&self, rows: i64, columns: i64) -> Tensor {
        let grid = self.config.grid();
        let own = self.pos_embed.narrow(1, 1, self.config.num_patches());
        if (rows, columns) == (grid, grid) {
            own
        } else {
            interpolate_grid(&own, grid, rows, columns)
        }
    }

    /// Prepends the cls token and runs the blocks and final norm over any subset
    /// of (position-embedded) patch tokens: `[batch, n, dim]` → `[batch, 1 + n, dim]`.
    pub fn encode(&self, patch_tokens: &Tensor) -> Tensor {
        let batch = patch_tokens.size()[0];
        let cls = (&self.cls_token + self.pos_embed.narrow(1, 0, 1))
            .expand([batch, 1, self.config.dim], false);
        let mut x = Tensor::cat(&[cls, patch_tokens.shallow_clone()], 1);
        for block in &self.blocks {
            x = block.forward(&x, Attention::Bidirectional);
        }
        x.apply(&self.norm)
    }
}

impl FeatureExtractor for VisionTransformer {
    /// The global average of the final patch tokens (all patches, no
    /// masking), or the cls token (`pool = "cls"`). For k-NN on MAE encoders
    /// the mean works better than the cls token, which MAE's pretext task
    /// never trains directly.
    fn features(&self, images: &Tensor, _train: bool) -> Tensor {
        let tokens = self.encode(&self.embed_patches(images));
        match self.config.pool {
            Pooling::Cls => tokens.select(1, 0),
            Pooling::Mean => {
                let patches = tokens.size()[1] - 1;
                tokens.narrow(1, 1, patches).mean_dim(1, false, Kind::Float)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn tiny() -> VitConfig {
        VitConfig {
            image_size: 8,
            patch_size: 4,
            in_channels: 1,
            dim: 16,
            depth: 2,
            heads: 2,
            mlp_ratio: 2.0,
            pool: Default::default(),
        }
    }

    #[test]
    fn shapes_and_timm_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = VisionTransformer::new(vs.root(), &tiny(), "backbone").unwrap();
        let x = Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(vit.embed_patches(&x).size(), vec![3, 4, 16]);
        assert_eq!(vit.features(&x, false).size(), vec![3, 16]);
        let names = vs.variables();
        for name in [
            "cls_token",
            "patch_embed.proj.weight",
            "blocks.1.attn.qkv.weight",
            "blocks.0.mlp.fc2.bias",
            "norm.weight",
        ] {
            assert!(names.contains_key(name), "missing {name}");
        }
        assert!(
            !names.contains_key("pos_embed"),
            "positions are fixed, not trained"
        );
    }

    #[test]
    fn encoder_accepts_a_subset_of_tokens() {
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = VisionTransformer::new(vs.root(), &tiny(), "backbone").unwrap();
        let tokens = vit.embed_patches(&Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu)));
        assert_eq!(vit.encode(&tokens.narrow(1, 0, 1)).size(), vec![2, 2, 16]);
    }

    #[test]
    fn other_image_sizes_get_interpolated_positions() {
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = VisionTransformer::new(vs.root(), &tiny(), "backbone").unwrap();
        // 4x4-pixel local crops: a 1x1 grid instead of 2x2; 12x8: 3x2.
        for (h, w, patches) in [(4, 4, 1), (12, 8, 6)] {
            let x = Tensor::randn([2, 1, h, w], (Kind::Float, Device::Cpu));
            assert_eq!(vit.embed_patches(&x).size(), vec![2, patches, 16]);
            assert_eq!(vit.features(&x, false).size(), vec![2, 16]);
        }
        let mut bad = tiny();
        bad.image_size = 10;
        let error = VisionTransformer::new(vs.root() / "b", &bad, "method.encoder")
            .unwrap_err()
            .to_string();
        assert!(error.contains("method.encoder.image_size"), "{error}");
    }
}

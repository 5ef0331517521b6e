//! SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of
//! Visual Representations").
//!
//! Two (or more) random views of each image go through one backbone in a
//! single batch, a projector MLP maps the features to the contrastive space,
//! and NT-Xent treats the other views of the same image as positives and
//! every other embedding as a negative. The projector here has batch norm in
//! its hidden layer, as in SimCLR v2 and solo-learn.

use super::{views_of, Encoder};
use crate::backbones::BackboneConfig;
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::Mlp;
use selfsup_core::losses::{nt_xent, nt_xent_gathered};
use selfsup_core::monitor::embedding_std;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn;

/// SimCLR hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimClrConfig {
    /// The encoder.
    pub backbone: BackboneConfig,
    /// Projector hidden width (2048 in the paper).
    pub proj_hidden: i64,
    /// Projector output width (128 in the paper).
    pub proj_dim: i64,
    /// NT-Xent temperature (0.5 in the paper at batch 256–512; 0.2 in solo-learn's CIFAR recipe).
    pub temperature: f64,
}

/// The SimCLR model.
#[derive(Debug)]
pub struct SimClr {
    config: SimClrConfig,
    encoder: Encoder,
}

impl SimClr {
    /// Builds `backbone` and `projector` under `path` for images of `channels` channels.
    pub fn new(path: nn::Path, config: &SimClrConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.proj_hidden", config.proj_hidden)?;
        check::size("method.proj_dim", config.proj_dim)?;
        check::positive("method.temperature", config.temperature)?;
        let (hidden, out) = (config.proj_hidden, config.proj_dim);
        let encoder = Encoder::new(&path, &config.backbone, channels, |p, dim| {
            Mlp::simclr_projector(p, dim, hidden, out)
        })?;
        Ok(Self {
            config: config.clone(),
            encoder,
        })
    }
}

impl Register<Vision> for SimClr {
    const NAME: &'static str = "simclr";
    const SUMMARY: &'static str = "SimCLR: NT-Xent between views of each image";
    const TEST_TABLE: &'static str = "name = \"simclr\"\nproj_hidden = 16\nproj_dim = 8\ntemperature = 0.2\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
    type Config = SimClrConfig;
    fn build(config: &SimClrConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for SimClr {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, batch_size) = views_of("simclr", batch, 2)?;
        let (features, z) = self.encoder.forward(&views, train);
        let n_views = views.len() as i64;
        let loss = match selfsup_train::distributed::current().filter(|_| train) {
            // Data-parallel: every rank's embeddings are negatives (and
            // positives) for every anchor, as in one batch of world × batch.
            Some(group) => {
                let gathered = group.all_gather_with_grad(&z)?;
                let (world, rank) = (group.world_size() as i64, group.rank() as i64);
                nt_xent_gathered(&gathered, n_views, world, rank, self.config.temperature)?
            }
            None => nt_xent(&z, n_views, self.config.temperature, None)?,
        };
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, batch_size))
            .with_scalar("embedding_std", embedding_std(&z)))
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.encoder.backbone.as_ref()
    }
}

impl VisionMethod for SimClr {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{data_parallel_matches, trains_and_resumes, Smoke, TINY_CNN};
    use selfsup_train::config::OptimizerKind;
    use selfsup_train::testing::lock_torch_rng;
    use selfsup_train::{Batch, Named};
    use tch::{Device, Kind, Tensor};

    const METHOD: &str = "name = \"simclr\"\nproj_hidden = 32\nproj_dim = 16\ntemperature = 0.2\n";

    /// SimCLR on the small CNN, SGD at 0.1: what `check` trains.
    fn on_small_cnn(check: fn(&str, Smoke<'_>)) {
        let method = format!("{METHOD}{TINY_CNN}");
        check(module_path!(), Smoke {
            method: &method,
            views: 2,
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            skip: 0,
            falls: "loss",
        });
    }

    /// Gathered negatives and SyncBatchNorm (the backbone's and the
    /// projector's): two ranks of 8 images train the small CNN and its
    /// projector as one process of 16.
    #[test]
    fn two_ranks_train_as_one_process() {
        on_small_cnn(data_parallel_matches);
    }

    #[test]
    fn trains_and_resumes_exactly() {
        on_small_cnn(trains_and_resumes);
    }

    #[test]
    fn multi_crop_views_of_two_sizes_reach_a_vit() {
        use crate::data::{recipes, ImageSource, Normalizer, SplitImages, ViewConfig};
        use selfsup_train::BatchSource;
        let _rng = lock_torch_rng();
        let views: Vec<ViewConfig> = toml::from_str::<toml::Table>(
            "[[v]]\ncount = 2\nsize = 16\nscale = [0.4, 1.0]\n[[v]]\ncount = 2\nsize = 8\nscale = [0.05, 0.4]\n",
        )
        .unwrap()["v"]
            .clone()
            .try_into()
            .unwrap();
        let images = selfsup_data::ImageDataset::new(
            ndarray::Array4::from_shape_fn((4, 16, 16, 3), |(n, y, x, c)| (n * 50 + y * 5 + x * 3 + c) as u8),
            vec![0, 1, 0, 1],
            2,
        )
        .unwrap();
        let normalizer = Normalizer::new(&[0.5; 3], &[0.25; 3], Device::Cpu);
        let source = ImageSource {
            images: &SplitImages::Memory(images),
            normalizer: &normalizer,
            recipes: recipes(&views, 3).unwrap(),
            seed: 0,
        };
        let batch = source.batch(0, &[0, 1, 2, 3]).unwrap();
        let sizes: Vec<i64> = batch.views().iter().map(|v| v.size()[2]).collect();
        assert_eq!(sizes, [16, 16, 8, 8]);
        let vit = "[backbone]\nkind = \"vit\"\nimage_size = 16\npatch_size = 4\nin_channels = 3\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\n";
        let choice = crate::registry().parse(format!("{METHOD}{vit}").parse().unwrap(), "t").unwrap();
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let mut method = choice.build(vs.root(), &crate::VisionContext { channels: Some(3) }).unwrap();
        let output = method.step(&batch, true).unwrap();
        assert!(output.loss.double_value(&[]).is_finite());
        assert_eq!(output.features.unwrap().size(), vec![4, 16]);
        assert_eq!(output.scalars[0].0, "embedding_std");
    }

    #[test]
    fn one_view_is_a_config_error_and_bad_values_are_named() {
        let _rng = lock_torch_rng();
        let registry = crate::registry();
        let choice = registry.parse(format!("{METHOD}{TINY_CNN}").parse().unwrap(), "t").unwrap();
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let context = crate::VisionContext { channels: Some(3) };
        let mut method = choice.build(vs.root(), &context).unwrap();
        let batch = Batch {
            inputs: Named::new().with("view0", Tensor::zeros([2, 3, 16, 16], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        let error = method.step(&batch, true).unwrap_err().to_string();
        assert!(error.contains("data.views") && error.contains("2 views"), "{error}");
        let bad = METHOD.replace("temperature = 0.2", "temperature = 0.0");
        let choice = registry.parse(format!("{bad}{TINY_CNN}").parse().unwrap(), "t").unwrap();
        let error = choice.build(vs.root() / "bad", &context).err().unwrap().to_string();
        assert!(error.contains("method.temperature"), "{error}");
    }
}

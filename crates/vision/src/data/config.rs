//! `[data]` of a vision run: which image set, which splits, normalisation
//! and the views each training image gives.

use super::split_images::StreamMode;
use super::views::ViewConfig;
use selfsup_data::streaming::OnCorrupt;
use selfsup_train::check;
use selfsup_train::config::Validate;
use selfsup_train::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Supported image data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// MNIST IDX files: `<split>-images-idx3-ubyte[.gz]` and `<split>-labels-idx1-ubyte[.gz]`.
    Mnist,
    /// CIFAR-10 binary (`cifar-10-batches-bin`); split `train` or `test`.
    Cifar10,
    /// CIFAR-100 binary (`cifar-100-binary`), fine labels; split `train` or `test`.
    Cifar100,
    /// STL-10 binary (`stl10_binary`); split `train`, `test` or `unlabeled`.
    Stl10,
    /// `path/<split>/<class>/<image>` JPEG or PNG files (ImageNet layout).
    #[serde(rename = "imagefolder")]
    ImageFolder,
    /// `path/<split>/*.tar` WebDataset shards (`<key>.jpg|png` with
    /// `<key>.cls`, as `selfsup data shard` writes them); always streamed.
    #[serde(rename = "webdataset")]
    WebDataset,
}

impl DatasetKind {
    /// Its name in configs (`data.dataset`), which is also the name of the
    /// standard set `selfsup data fetch` installs for it.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Stl10 => "stl10",
            DatasetKind::ImageFolder => "imagefolder",
            DatasetKind::WebDataset => "webdataset",
        }
    }
}

/// Which images to train and evaluate on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDataConfig {
    /// The format.
    pub dataset: DatasetKind,
    /// The folder holding the files (relative paths are from the working directory).
    pub path: PathBuf,
    /// The split: `t10k` or `train` for MNIST; `train` or `test` for CIFAR;
    /// `train`, `test` or `unlabeled` for STL-10.
    pub split: String,
    /// Every `held_out_every`-th image is held out for evaluation; the rest
    /// trains. Ignored when `eval_split` is set.
    #[serde(default = "default_held_out_every")]
    pub held_out_every: usize,
    /// Evaluate on this split (e.g. `test`) and train on all of `split`, as
    /// papers report CIFAR and STL-10 numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_split: Option<String>,
    /// The labelled split evaluation learns from (the k-NN memory bank, the
    /// probe's and fine-tuning's training set); the training split when
    /// absent. STL-10's `unlabeled` split needs `train` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_split: Option<String>,
    /// Per-channel normalisation mean; the data set's usual one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f64>>,
    /// Per-channel normalisation standard deviation (with `mean`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<Vec<f64>>,
    /// ImageFolder only: resize every image to `[height, width]` on load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<[u32; 2]>,
    /// ImageFolder only: `"auto"` reads folders of more than 1 GiB from
    /// disk per batch (bounded memory, crops of the original photos) and
    /// decodes smaller ones into memory once; `"on"` and `"off"` choose.
    /// Streaming needs `resize` (the size evaluation reads).
    #[serde(default)]
    pub stream: StreamMode,
    /// Streamed evaluation: keep each image's aspect, resize its shorter
    /// side to `resize` over this fraction and cut out the centre (0.875:
    /// ImageNet's Resize(256) + CenterCrop(224)); absent: squash to `resize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center_crop: Option<f64>,
    /// Streamed training: `"fail"` (default) stops at a file that does not
    /// decode, naming it; `"skip"` leaves it out of its batch.
    #[serde(default)]
    pub on_corrupt: OnCorrupt,
    /// WebDataset: the shuffle buffer an epoch reads each shard through
    /// (shards themselves come in a new random order every epoch).
    #[serde(default = "default_shuffle_buffer")]
    pub shuffle_buffer: usize,
    /// The most pixels (width x height) an image file may declare: larger
    /// ones are refused from their header, before anything is allocated
    /// (PIL's limit by default); `data.on_corrupt = "skip"` skips them.
    #[serde(default = "default_max_image_pixels")]
    pub max_image_pixels: u64,
    /// Use only the first this many images (quick smoke runs); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_images: Option<usize>,
    /// The views each training image gives, as `[[data.views]]` recipes; none:
    /// one un-augmented view (MAE, rotation prediction).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<ViewConfig>,
}

fn default_held_out_every() -> usize {
    5
}

fn default_shuffle_buffer() -> usize {
    1000
}

fn default_max_image_pixels() -> u64 {
    selfsup_data::decode::DEFAULT_MAX_PIXELS
}

impl Validate for ImageDataConfig {
    fn validate(&self) -> Result<()> {
        if self.held_out_every < 2 {
            let message = format!(
                "{}: every image would be held out; use at least 2 (every 2nd image held out), or set data.eval_split",
                self.held_out_every
            );
            return Err(check::invalid("data.held_out_every", message));
        }
        if let Some(limit) = self.max_images {
            check::at_least_one("data.max_images", limit)?;
        }
        if let Some([height, width]) = self.resize {
            // Evaluation holds resized images in memory (all of an
            // in-memory set): 4096 a side is 48 MiB an image already.
            if height == 0 || width == 0 || height > 4096 || width > 4096 {
                return Err(check::invalid(
                    "data.resize",
                    format!("{height}x{width} must be 1 to 4096 pixels a side"),
                ));
            }
        }
        if self.max_image_pixels == 0 {
            return Err(check::invalid(
                "data.max_image_pixels",
                "0 must be at least 1",
            ));
        }
        if let Some(fraction) = self.center_crop {
            if !(fraction > 0.0 && fraction <= 1.0) {
                return Err(check::invalid(
                    "data.center_crop",
                    format!("{fraction} must be in (0, 1], e.g. 0.875 for 224 of 256"),
                ));
            }
        }
        self.validate_statistics()?;
        for (i, view) in self.views.iter().enumerate() {
            view.validate(&format!("data.views[{i}]"))?;
        }
        Ok(())
    }
}

impl ImageDataConfig {
    fn validate_statistics(&self) -> Result<()> {
        match (&self.mean, &self.std) {
            (None, None) => Ok(()),
            (Some(mean), Some(std)) if mean.len() == std.len() && !mean.is_empty() => {
                for (i, &m) in mean.iter().enumerate() {
                    if !m.is_finite() {
                        return Err(check::invalid(
                            &format!("data.mean[{i}]"),
                            format!("{m} is not finite"),
                        ));
                    }
                }
                for (i, &s) in std.iter().enumerate() {
                    check::positive(&format!("data.std[{i}]"), s)?;
                }
                Ok(())
            }
            _ => Err(check::invalid(
                "data.mean",
                "data.mean and data.std go together, with one value per channel each",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfsup_data::cifar;

    fn mnist(path: &str) -> ImageDataConfig {
        toml::from_str(&format!(
            "dataset = \"mnist\"\npath = {path:?}\nsplit = \"t10k\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn dataset_names_are_the_config_names() {
        use DatasetKind::*;
        for kind in [Mnist, Cifar10, Cifar100, Stl10, ImageFolder] {
            let parsed: DatasetKind = toml::Value::String(kind.name().into()).try_into().unwrap();
            assert_eq!(parsed, kind);
        }
    }

    #[test]
    fn cifar_configs_read_binary_batches_and_check_the_split() {
        let dir = tempfile::tempdir().unwrap();
        let record = (vec![4u8], vec![200u8; 32 * 32 * 3]);
        std::fs::write(
            dir.path().join("test_batch.bin"),
            cifar::encode_records(&[record]),
        )
        .unwrap();
        let mut config = mnist(dir.path().to_str().unwrap());
        config.dataset = DatasetKind::Cifar10;
        config.split = "test".into();
        let data = config.load().unwrap();
        assert_eq!(
            (data.len(), data.labels[0], data.image_shape()),
            (1, 4, (32, 32, 3))
        );
        config.split = "valid".into();
        let error = config.load().unwrap_err().to_string();
        assert!(
            error.contains("`valid`") && error.contains("data.split"),
            "{error}"
        );
    }

    #[test]
    fn eval_split_replaces_the_held_out_share_and_stats_can_be_set() {
        let dir = tempfile::tempdir().unwrap();
        let records = |n: u8| -> Vec<(Vec<u8>, Vec<u8>)> {
            (0..n)
                .map(|i| (vec![i % 10], vec![i; 32 * 32 * 3]))
                .collect()
        };
        std::fs::write(
            dir.path().join("test_batch.bin"),
            cifar::encode_records(&records(3)),
        )
        .unwrap();
        for i in 1..=5 {
            let name = format!("data_batch_{i}.bin");
            std::fs::write(dir.path().join(name), cifar::encode_records(&records(4))).unwrap();
        }
        let text = format!(
            "dataset = \"cifar10\"\npath = {:?}\nsplit = \"train\"\neval_split = \"test\"\n\
             mean = [0.5, 0.5, 0.5]\nstd = [0.2, 0.2, 0.2]\n",
            dir.path()
        );
        let config: ImageDataConfig = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        let splits = config.load_splits().unwrap();
        assert_eq!((splits.train.len(), splits.held_out.len()), (20, 3));
        assert_eq!(config.mean_std(), (vec![0.5; 3], vec![0.2; 3]));
        let split_share = ImageDataConfig {
            eval_split: None,
            ..config
        };
        let splits = split_share.load_splits().unwrap();
        assert_eq!(
            (splits.train.len(), splits.held_out.len()),
            (16, 4),
            "every 5th of 20 held out"
        );
    }

    #[test]
    fn unlabelled_training_data_needs_a_labelled_memory_split() {
        let dir = tempfile::tempdir().unwrap();
        let image = vec![7u8; 96 * 96 * 3];
        std::fs::write(dir.path().join("unlabeled_X.bin"), image.repeat(4)).unwrap();
        std::fs::write(dir.path().join("train_X.bin"), image.repeat(3)).unwrap();
        std::fs::write(dir.path().join("train_y.bin"), [1u8, 2, 3]).unwrap();
        std::fs::write(dir.path().join("test_X.bin"), image.repeat(2)).unwrap();
        std::fs::write(dir.path().join("test_y.bin"), [4u8, 5]).unwrap();
        let text = format!(
            "dataset = \"stl10\"\npath = {:?}\nsplit = \"unlabeled\"\neval_split = \"test\"\n",
            dir.path()
        );
        let mut config: ImageDataConfig = toml::from_str(&text).unwrap();
        let error = config.load_splits().unwrap_err().to_string();
        assert!(error.contains("data.memory_split"), "{error}");
        config.memory_split = Some("train".into());
        let splits = config.load_splits().unwrap();
        assert_eq!(
            (
                splits.train.len(),
                splits.memory().len(),
                splits.held_out.len()
            ),
            (4, 3, 2)
        );
    }

    #[test]
    fn bad_values_and_missing_files_are_named() {
        let mut config = mnist("/nonexistent");
        let error = config.load().unwrap_err().to_string();
        assert!(
            error.contains("/nonexistent/t10k-images-idx3-ubyte"),
            "{error}"
        );
        config.held_out_every = 1;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("data.held_out_every"));
        config.held_out_every = 5;
        config.mean = Some(vec![0.5]);
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("data.mean"));
        config.std = Some(vec![0.0]);
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("data.std[0]"));
        config.std = Some(vec![0.3]);
        config.resize = Some([0, 32]);
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("data.resize"));
    }
}

//! Image data as the trainer uses it: which data set a config names, and the
//! `u8` → normalised float tensor edge.

use crate::error::Result;
use crate::method::Batch;
use crate::source::BatchSource;
use crate::view_config::ViewConfig;
use ndarray::Array4;
use selfsup_data::views::{make_views, ViewRecipe};
use selfsup_data::{cifar, idx, image_folder, stl10, ImageDataset};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

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
        }
    }
}

/// Which data to train and evaluate on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
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
    /// Per-channel normalisation mean; the data set's usual one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f64>>,
    /// Per-channel normalisation standard deviation (with `mean`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<Vec<f64>>,
    /// ImageFolder only: resize every image to `[height, width]` on load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<[u32; 2]>,
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

impl DataConfig {
    /// Reads the configured split.
    pub fn load(&self) -> Result<ImageDataset> {
        self.load_split(&self.split)
    }

    /// The training split and the split evaluation scores on: `eval_split`
    /// when set, else every `held_out_every`-th image of `split`.
    pub fn load_train_and_held_out(&self) -> Result<(ImageDataset, ImageDataset)> {
        let data = self.load()?;
        match &self.eval_split {
            Some(split) => Ok((data, self.load_split(split)?)),
            None => Ok(data.split_every(self.held_out_every)),
        }
    }

    /// Reads split `split` of the data set the config names.
    pub fn load_split(&self, split: &str) -> Result<ImageDataset> {
        let data = match self.dataset {
            DatasetKind::Mnist => {
                let images = find_maybe_gz(&self.path, &format!("{}-images-idx3-ubyte", split));
                let labels = find_maybe_gz(&self.path, &format!("{}-labels-idx1-ubyte", split));
                idx::read_mnist(&images, &labels)?
            }
            DatasetKind::Cifar10 => cifar::read_cifar10(&self.path, cifar_split(split)?)?,
            DatasetKind::Cifar100 => {
                cifar::read_cifar100(&self.path, cifar_split(split)?, cifar::Cifar100Labels::Fine)?
            }
            DatasetKind::Stl10 => stl10::read_stl10(&self.path, split)?,
            DatasetKind::ImageFolder => image_folder::read_image_folder(
                &self.path.join(split),
                self.resize.map(|[h, w]| (h, w)),
            )?,
        };
        Ok(match self.max_images {
            Some(limit) if limit < data.len() => data.subset(&(0..limit).collect::<Vec<_>>()),
            _ => data,
        })
    }
}

fn cifar_split(split: &str) -> Result<cifar::Split> {
    match split {
        "train" => Ok(cifar::Split::Train),
        "test" => Ok(cifar::Split::Test),
        other => Err(crate::Error::Config {
            origin: "data.split".into(),
            message: format!("`{other}`: CIFAR has `train` and `test`"),
        }),
    }
}

impl DataConfig {
    /// Per-channel mean and standard deviation used to normalise inputs.
    pub fn mean_std(&self) -> (Vec<f64>, Vec<f64>) {
        if let (Some(mean), Some(std)) = (&self.mean, &self.std) {
            return (mean.clone(), std.clone());
        }
        match self.dataset {
            DatasetKind::Mnist => (vec![0.1307], vec![0.3081]),
            DatasetKind::Cifar10 => (vec![0.4914, 0.4822, 0.4465], vec![0.2470, 0.2435, 0.2616]),
            DatasetKind::Cifar100 => (vec![0.5071, 0.4865, 0.4409], vec![0.2673, 0.2564, 0.2762]),
            // Solo-learn normalises STL-10 with ImageNet's statistics.
            DatasetKind::Stl10 | DatasetKind::ImageFolder => {
                (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
            }
        }
    }
}

/// `<dir>/<stem>.gz` when it exists, else `<dir>/<stem>` (whose absence the reader reports).
fn find_maybe_gz(dir: &Path, stem: &str) -> PathBuf {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.exists() {
        gz
    } else {
        dir.join(stem)
    }
}

/// Moves `u8` images to `device` and normalises them there. Holds plain
/// numbers, not tensors, so the prefetching thread can share it; the tiny
/// `[1, C, 1, 1]` constants are made per batch.
#[derive(Debug, Clone)]
pub struct Normalizer {
    mean: Vec<f64>,
    std: Vec<f64>,
    device: Device,
}

impl Normalizer {
    /// Per-channel statistics on `device`.
    pub fn new(mean: &[f64], std: &[f64], device: Device) -> Self {
        Self {
            mean: mean.to_vec(),
            std: std.to_vec(),
            device,
        }
    }

    /// `values` as a `[1, C, 1, 1]` float tensor on the device.
    fn per_channel(&self, values: &[f64]) -> Tensor {
        Tensor::from_slice(values)
            .to_kind(Kind::Float)
            .view([1, values.len() as i64, 1, 1])
            .to_device(self.device)
    }

    /// `[N, H, W, C]` u8 → `[N, C, H, W]` float on the device, `(x/255 - mean) / std`.
    /// Only the u8 bytes cross to the device.
    pub fn apply(&self, images: &Array4<u8>) -> Tensor {
        let shape: Vec<i64> = images.shape().iter().map(|&d| d as i64).collect();
        let bytes = images.as_standard_layout();
        let host =
            Tensor::from_slice(bytes.as_slice().expect("standard layout")).view(shape.as_slice());
        let x = host
            .to_device(self.device)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float);
        // shift + x · scale = (x/255 − mean) / std, in one pass, with
        // scale = 1 / (255 · std) and shift = −mean / std.
        let scale: Vec<f64> = self.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
        let shift: Vec<f64> = self
            .mean
            .iter()
            .zip(&self.std)
            .map(|(m, s)| -m / s)
            .collect();
        self.per_channel(&shift)
            .addcmul(&x, &self.per_channel(&scale))
    }

    /// Inverse of [`Normalizer::apply`] up to the byte conversion: back to `[0, 1]`.
    pub fn unapply(&self, x: &Tensor) -> Tensor {
        (x * self.per_channel(&self.std) + self.per_channel(&self.mean)).clamp(0.0, 1.0)
    }
}

/// Training batches from decoded images: the configured random views (or the
/// image itself when there are no recipes), moved to the device as u8 and
/// normalised there.
#[derive(Debug)]
pub struct ImageSource<'a> {
    /// The training split.
    pub images: &'a ImageDataset,
    /// Device transfer and normalisation.
    pub normalizer: &'a Normalizer,
    /// One recipe per view; empty for the un-augmented image.
    pub recipes: Vec<ViewRecipe>,
    /// Seeds every view's randomness with the epoch and sample index.
    pub seed: u64,
}

impl BatchSource for ImageSource<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn num_classes(&self) -> usize {
        self.images.num_classes
    }

    fn batch(&self, epoch: usize, indices: &[usize]) -> Batch {
        let views = if self.recipes.is_empty() {
            vec![self.normalizer.apply(&self.images.gather(indices))]
        } else {
            make_views(self.images, indices, &self.recipes, self.seed, epoch as u64)
                .iter()
                .map(|v| self.normalizer.apply(v))
                .collect()
        };
        let labels: Vec<i64> = indices.iter().map(|&i| self.images.labels[i]).collect();
        Batch {
            views,
            labels: Tensor::from_slice(&labels),
            indices: indices.to_vec(),
        }
    }
}

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> std::result::Result<Device, String> {
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("unknown device `{other}`: use auto, cpu, cuda or cuda:N")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_are_the_config_names() {
        use DatasetKind::*;
        for kind in [Mnist, Cifar10, Cifar100, Stl10, ImageFolder] {
            let parsed: DatasetKind = toml::Value::String(kind.name().into()).try_into().unwrap();
            assert_eq!(parsed, kind);
        }
    }

    #[test]
    fn normalises_channels_last_bytes_into_nchw() {
        let images = Array4::from_shape_vec((1, 1, 2, 2), vec![0u8, 255, 51, 102]).unwrap();
        let norm = Normalizer::new(&[0.0, 0.5], &[1.0, 0.5], Device::Cpu);
        let x = norm.apply(&images);
        assert_eq!(x.size(), vec![1, 2, 1, 2]);
        let values: Vec<f32> = Vec::try_from(x.flatten(0, -1)).unwrap();
        // channel 0: pixels 0 and 51 → 0.0, 0.2; channel 1: 255, 102 → 1.0, -0.2
        let expected = [0.0, 0.2, 1.0, -0.2];
        assert!(
            values
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-6),
            "{values:?}"
        );
        let back = norm.unapply(&x);
        assert!((back.double_value(&[0, 0, 0, 1]) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cpu"), Ok(Device::Cpu));
        assert_eq!(parse_device("cuda:1"), Ok(Device::Cuda(1)));
        assert!(parse_device("tpu").unwrap_err().contains("tpu"));
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
        let mut config = DataConfig {
            dataset: DatasetKind::Cifar10,
            path: dir.path().into(),
            split: "test".into(),
            held_out_every: 5,
            resize: None,
            max_images: None,
            eval_split: None,
            mean: None,
            std: None,
            views: Vec::new(),
        };
        let data = config.load().unwrap();
        assert_eq!(
            (data.len(), data.labels[0], data.image_shape()),
            (1, 4, (32, 32, 3))
        );
        config.split = "valid".into();
        assert!(config.load().unwrap_err().to_string().contains("`valid`"));
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
        let config: DataConfig = toml::from_str(&text).unwrap();
        let (train, held_out) = config.load_train_and_held_out().unwrap();
        assert_eq!((train.len(), held_out.len()), (20, 3));
        assert_eq!(config.mean_std(), (vec![0.5; 3], vec![0.2; 3]));
        let split_share = DataConfig {
            eval_split: None,
            ..config
        };
        let (train, held_out) = split_share.load_train_and_held_out().unwrap();
        assert_eq!(
            (train.len(), held_out.len()),
            (16, 4),
            "every 5th of 20 held out"
        );
    }

    #[test]
    fn missing_files_are_named() {
        let config = DataConfig {
            dataset: DatasetKind::Mnist,
            path: "/nonexistent".into(),
            split: "t10k".into(),
            held_out_every: 5,
            resize: None,
            max_images: None,
            eval_split: None,
            mean: None,
            std: None,
            views: Vec::new(),
        };
        let err = config.load().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/t10k-images-idx3-ubyte"), "{err}");
    }
}

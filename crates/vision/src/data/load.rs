//! Reading a vision run's data set into memory: which reader each
//! `data.dataset` takes, and its usual normalisation.

use super::config::{DatasetKind, ImageDataConfig};
use selfsup_data::{cifar, idx, image_folder, stl10, ImageDataset};
use selfsup_train::check;
use selfsup_train::Result;
use std::path::{Path, PathBuf};

impl ImageDataConfig {
    /// Reads the configured split.
    pub fn load(&self) -> Result<ImageDataset> {
        self.load_split(&self.split)
    }

    /// Reads split `split` of the data set the config names.
    pub fn load_split(&self, split: &str) -> Result<ImageDataset> {
        let data = match self.dataset {
            DatasetKind::Mnist => {
                let images = find_maybe_gz(&self.path, &format!("{split}-images-idx3-ubyte"));
                let labels = find_maybe_gz(&self.path, &format!("{split}-labels-idx1-ubyte"));
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
                self.max_image_pixels,
            )?,
            DatasetKind::WebDataset => unreachable!("WebDataset shards are always streamed"),
        };
        Ok(match self.max_images {
            Some(limit) if limit < data.len() => data.subset(&(0..limit).collect::<Vec<_>>()),
            _ => data,
        })
    }

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
            DatasetKind::Stl10 | DatasetKind::ImageFolder | DatasetKind::WebDataset => {
                (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
            }
        }
    }
}

fn cifar_split(split: &str) -> Result<cifar::Split> {
    match split {
        "train" => Ok(cifar::Split::Train),
        "test" => Ok(cifar::Split::Test),
        other => Err(check::invalid(
            "data.split",
            format!("`{other}`: CIFAR has `train` and `test`"),
        )),
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

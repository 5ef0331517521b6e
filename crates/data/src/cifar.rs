//! CIFAR-10 and CIFAR-100 in their binary distribution
//! (`cifar-10-batches-bin/`, `cifar-100-binary/`). A record is the label byte(s)
//! followed by 3072 pixel bytes: the 1024 red values of the 32x32 image in row
//! order, then green, then blue. CIFAR-100 records carry a coarse (20-class)
//! and a fine (100-class) label, in that order.

use crate::error::{read_maybe_gz, Error, Result};
use crate::images::ImageDataset;
use ndarray::Array4;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const PIXELS: usize = SIDE * SIDE * 3;

/// Which split of a CIFAR folder to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 50,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

/// Which CIFAR-100 label to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar100Labels {
    /// The 100 fine classes (what papers report).
    Fine,
    /// The 20 superclasses.
    Coarse,
}

/// Reads CIFAR-10 from `dir` (holding `data_batch_1.bin` … `data_batch_5.bin`
/// and `test_batch.bin`).
pub fn read_cifar10(dir: &Path, split: Split) -> Result<ImageDataset> {
    let files: Vec<PathBuf> = match split {
        Split::Train => (1..=5)
            .map(|i| dir.join(format!("data_batch_{i}.bin")))
            .collect(),
        Split::Test => vec![dir.join("test_batch.bin")],
    };
    read_records(&files, 1, 0, 10)
}

/// Reads CIFAR-100 from `dir` (holding `train.bin` and `test.bin`).
pub fn read_cifar100(dir: &Path, split: Split, labels: Cifar100Labels) -> Result<ImageDataset> {
    let file = dir.join(match split {
        Split::Train => "train.bin",
        Split::Test => "test.bin",
    });
    match labels {
        Cifar100Labels::Fine => read_records(&[file], 2, 1, 100),
        Cifar100Labels::Coarse => read_records(&[file], 2, 0, 20),
    }
}

/// Parses files of `label_bytes + 3072`-byte records, taking the label at
/// `label_index`; checks sizes and label ranges, naming the file.
fn read_records(
    files: &[PathBuf],
    label_bytes: usize,
    label_index: usize,
    classes: usize,
) -> Result<ImageDataset> {
    let record = label_bytes + PIXELS;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for file in files {
        let bytes = read_maybe_gz(file)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            let problem = format!("{} bytes is not a whole number of {record}-byte records (truncated or not a CIFAR file?)", bytes.len());
            return Err(Error::format(file, problem));
        }
        let start = labels.len();
        for (i, chunk) in bytes.chunks_exact(record).enumerate() {
            let label = chunk[label_index] as usize;
            if label >= classes {
                return Err(Error::format(
                    file,
                    format!("record {i} has label {label}, expected below {classes}"),
                ));
            }
            labels.push(label as i64);
        }
        // Planar RGB → interleaved HWC, in parallel over records.
        let mut hwc = vec![0u8; (labels.len() - start) * PIXELS];
        hwc.par_chunks_mut(PIXELS)
            .zip(bytes.par_chunks_exact(record))
            .for_each(|(dst, src)| {
                let planes = &src[label_bytes..];
                for (p, pixel) in dst.chunks_exact_mut(3).enumerate() {
                    pixel.copy_from_slice(&[
                        planes[p],
                        planes[SIDE * SIDE + p],
                        planes[2 * SIDE * SIDE + p],
                    ]);
                }
            });
        images.extend_from_slice(&hwc);
    }
    let array =
        Array4::from_shape_vec((labels.len(), SIDE, SIDE, 3), images).expect("sizes were checked");
    ImageDataset::new(array, labels, classes)
}

/// Encodes records in the CIFAR binary layout (for test fixtures): each image
/// `[32, 32, 3]` HWC with its label bytes.
pub fn encode_records(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (label_bytes, hwc) in records {
        out.extend_from_slice(label_bytes);
        for channel in 0..3 {
            out.extend(hwc.chunks_exact(3).map(|pixel| pixel[channel]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(seed: u8) -> Vec<u8> {
        (0..PIXELS)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn cifar10_reads_every_training_batch_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for i in 1..=5u8 {
            let records = vec![(vec![i], image(i)), (vec![9], image(i + 100))];
            std::fs::write(
                dir.path().join(format!("data_batch_{i}.bin")),
                encode_records(&records),
            )
            .unwrap();
        }
        let set = read_cifar10(dir.path(), Split::Train).unwrap();
        assert_eq!(set.images.shape(), &[10, 32, 32, 3]);
        assert_eq!(set.labels, vec![1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        let expected = image(3);
        assert_eq!(
            set.images
                .slice(ndarray::s![4, .., .., ..])
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn cifar100_takes_fine_or_coarse_labels() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("test.bin"),
            encode_records(&[(vec![3, 87], image(0))]),
        )
        .unwrap();
        assert_eq!(
            read_cifar100(dir.path(), Split::Test, Cifar100Labels::Fine)
                .unwrap()
                .labels,
            vec![87]
        );
        let coarse = read_cifar100(dir.path(), Split::Test, Cifar100Labels::Coarse).unwrap();
        assert_eq!((coarse.labels[0], coarse.num_classes), (3, 20));
    }

    #[test]
    fn bad_files_are_named_with_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test_batch.bin");
        let mut bytes = encode_records(&[(vec![1], image(0))]);
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let err = read_cifar10(dir.path(), Split::Test)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test_batch.bin") && err.contains("not a whole number"),
            "{err}"
        );
        std::fs::write(&path, encode_records(&[(vec![10], image(0))])).unwrap();
        let err = read_cifar10(dir.path(), Split::Test)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 10"), "{err}");
        let err = read_cifar10(dir.path(), Split::Train)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_batch_1.bin"), "{err}");
    }
}

//! STL-10 in its binary distribution (`stl10_binary/`): `<split>_X.bin` holds
//! 96x96 RGB images as bytes, each channel stored column by column (the layout
//! of the original MATLAB export), and `<split>_y.bin` one label byte per
//! image, 1 to 10. The `unlabeled` split (100,000 images for SSL) has no labels.

use crate::error::{read_maybe_gz, Error, Result};
use crate::images::{ImageDataset, UNLABELED};
use ndarray::Array4;
use rayon::prelude::*;
use std::path::Path;

const SIDE: usize = 96;
const PIXELS: usize = SIDE * SIDE * 3;

/// Reads `split` (`train`, `test` or `unlabeled`) from `dir`.
pub fn read_stl10(dir: &Path, split: &str) -> Result<ImageDataset> {
    let images_path = dir.join(format!("{split}_X.bin"));
    let bytes = read_maybe_gz(&images_path)?;
    if bytes.is_empty() || bytes.len() % PIXELS != 0 {
        let problem = format!(
            "{} bytes is not a whole number of 96x96x3 images",
            bytes.len()
        );
        return Err(Error::format(&images_path, problem));
    }
    let count = bytes.len() / PIXELS;
    let labels = if split == "unlabeled" {
        vec![UNLABELED; count]
    } else {
        let labels_path = dir.join(format!("{split}_y.bin"));
        let raw = read_maybe_gz(&labels_path)?;
        if raw.len() != count {
            return Err(Error::Mismatch(format!(
                "{} holds {count} images but {} holds {} labels",
                images_path.display(),
                labels_path.display(),
                raw.len()
            )));
        }
        if let Some((i, bad)) = raw
            .iter()
            .enumerate()
            .find(|(_, &l)| !(1..=10).contains(&l))
        {
            return Err(Error::format(
                &labels_path,
                format!("label {bad} at {i} is outside 1..=10"),
            ));
        }
        raw.iter().map(|&l| l as i64 - 1).collect()
    };
    // Column-major planes → row-major HWC, in parallel over images.
    let mut hwc = vec![0u8; bytes.len()];
    hwc.par_chunks_mut(PIXELS)
        .zip(bytes.par_chunks_exact(PIXELS))
        .for_each(|(dst, src)| {
            for channel in 0..3 {
                let plane = &src[channel * SIDE * SIDE..(channel + 1) * SIDE * SIDE];
                for column in 0..SIDE {
                    for row in 0..SIDE {
                        dst[(row * SIDE + column) * 3 + channel] = plane[column * SIDE + row];
                    }
                }
            }
        });
    let array = Array4::from_shape_vec((count, SIDE, SIDE, 3), hwc).expect("sizes were checked");
    ImageDataset::new(array, labels, 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One image whose pixel (row, column, channel) holds a known value, in STL's layout.
    fn encoded(value: impl Fn(usize, usize, usize) -> u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(PIXELS);
        for channel in 0..3 {
            for column in 0..SIDE {
                for row in 0..SIDE {
                    out.push(value(row, column, channel));
                }
            }
        }
        out
    }

    #[test]
    fn column_major_planes_become_row_major_images() {
        let dir = tempfile::tempdir().unwrap();
        let value = |r: usize, c: usize, ch: usize| ((r * 3 + c * 5 + ch * 7) % 251) as u8;
        std::fs::write(
            dir.path().join("train_X.bin"),
            [encoded(value), encoded(|_, _, _| 0)].concat(),
        )
        .unwrap();
        std::fs::write(dir.path().join("train_y.bin"), [1u8, 10]).unwrap();
        let set = read_stl10(dir.path(), "train").unwrap();
        assert_eq!(set.labels, vec![0, 9]);
        assert_eq!(set.images[[0, 10, 20, 2]], value(10, 20, 2));
        assert_eq!(set.images[[0, 95, 0, 1]], value(95, 0, 1));
    }

    #[test]
    fn unlabeled_split_has_no_labels_and_bad_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("unlabeled_X.bin"), encoded(|_, _, _| 1)).unwrap();
        assert_eq!(
            read_stl10(dir.path(), "unlabeled").unwrap().labels,
            vec![UNLABELED]
        );
        std::fs::write(dir.path().join("test_X.bin"), encoded(|_, _, _| 1)).unwrap();
        std::fs::write(dir.path().join("test_y.bin"), [11u8]).unwrap();
        let err = read_stl10(dir.path(), "test").unwrap_err().to_string();
        assert!(
            err.contains("test_y.bin") && err.contains("label 11"),
            "{err}"
        );
        std::fs::write(dir.path().join("test_y.bin"), [1u8, 2]).unwrap();
        let err = read_stl10(dir.path(), "test").unwrap_err().to_string();
        assert!(
            err.contains("1 images") && err.contains("2 labels"),
            "{err}"
        );
        std::fs::write(dir.path().join("test_X.bin"), [0u8; 100]).unwrap();
        let err = read_stl10(dir.path(), "test").unwrap_err().to_string();
        assert!(
            err.contains("test_X.bin") && err.contains("96x96x3"),
            "{err}"
        );
    }
}

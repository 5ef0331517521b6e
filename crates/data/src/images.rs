//! An in-memory image data set: decoded `u8` pixels in `[N, H, W, C]` order
//! plus integer labels. Decoding happens once; batches are gathered from here.

use crate::error::{Error, Result};
use ndarray::Array4;
use rayon::prelude::*;

/// The label of an image from an unlabelled split (e.g. STL-10's `unlabeled`).
pub const UNLABELED: i64 = -1;

/// Decoded images and their labels.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    /// Pixels, `[N, H, W, C]`, channels last as decoders produce them.
    pub images: Array4<u8>,
    /// One label per image, in `0..num_classes`, or [`UNLABELED`].
    pub labels: Vec<i64>,
    /// Number of classes.
    pub num_classes: usize,
}

impl ImageDataset {
    /// Checks that there is one label per image and each is in range.
    pub fn new(images: Array4<u8>, labels: Vec<i64>, num_classes: usize) -> Result<Self> {
        // Gathering reads the pixels as one slice.
        let images = if images.is_standard_layout() {
            images
        } else {
            images.as_standard_layout().into_owned()
        };
        if images.shape()[0] != labels.len() {
            return Err(Error::Mismatch(format!(
                "{} images but {} labels",
                images.shape()[0],
                labels.len()
            )));
        }
        if let Some(bad) = labels
            .iter()
            .find(|&&l| l != UNLABELED && (l < 0 || l as usize >= num_classes))
        {
            return Err(Error::Mismatch(format!(
                "label {bad} is outside 0..{num_classes}"
            )));
        }
        Ok(Self {
            images,
            labels,
            num_classes,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `(height, width, channels)` of every image.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        let s = self.images.shape();
        (s[1], s[2], s[3])
    }

    /// Copies the images at `indices` into one `[len, H, W, C]` array, in parallel.
    pub fn gather(&self, indices: &[usize]) -> Array4<u8> {
        let (h, w, c) = self.image_shape();
        let size = h * w * c;
        let source = self
            .images
            .as_slice()
            .expect("images are stored in standard layout");
        let mut out = vec![0u8; indices.len() * size];
        out.par_chunks_mut(size)
            .zip(indices.par_iter())
            .for_each(|(dst, &i)| dst.copy_from_slice(&source[i * size..(i + 1) * size]));
        Array4::from_shape_vec((indices.len(), h, w, c), out).expect("sizes match")
    }

    /// The images and labels at `indices`, as a new data set.
    pub fn subset(&self, indices: &[usize]) -> ImageDataset {
        ImageDataset {
            images: self.gather(indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            num_classes: self.num_classes,
        }
    }

    /// A fixed split: every `k`-th image (index `k-1`, `2k-1`, …) is held out,
    /// the rest is for training. Deterministic, and balanced when the set is
    /// not sorted by class. Returns `(train, held_out)`.
    pub fn split_every(&self, k: usize) -> Result<(ImageDataset, ImageDataset)> {
        if k < 2 {
            return Err(Error::Mismatch(format!(
                "holding out every {k}th image leaves none to train on; use 2 or more"
            )));
        }
        let (held, train): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|i| i % k == k - 1);
        Ok((self.subset(&train), self.subset(&held)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    fn numbered(n: usize) -> ImageDataset {
        let images = Array4::from_shape_fn((n, 2, 2, 1), |(i, _, _, _)| i as u8);
        ImageDataset::new(images, (0..n as i64).map(|i| i % 3).collect(), 3).unwrap()
    }

    #[test]
    fn gather_copies_the_requested_images_in_order() {
        let set = numbered(6);
        let batch = set.gather(&[4, 1, 4]);
        let firsts: Vec<u8> = batch.axis_iter(Axis(0)).map(|im| im[[0, 0, 0]]).collect();
        assert_eq!(firsts, vec![4, 1, 4]);
    }

    #[test]
    fn split_every_is_disjoint_and_complete() {
        let (train, held) = numbered(10).split_every(5).unwrap();
        assert!(numbered(10).split_every(1).is_err());
        let ids = |s: &ImageDataset| {
            s.images
                .axis_iter(Axis(0))
                .map(|im| im[[0, 0, 0]])
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&held), vec![4, 9]);
        assert_eq!(ids(&train), vec![0, 1, 2, 3, 5, 6, 7, 8]);
        assert_eq!(held.labels, vec![1, 0]);
    }

    #[test]
    fn labels_are_validated() {
        let images = Array4::<u8>::zeros((2, 1, 1, 1));
        assert!(ImageDataset::new(images.clone(), vec![0], 2).is_err());
        let err = ImageDataset::new(images, vec![0, 5], 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 5"), "{err}");
    }
}

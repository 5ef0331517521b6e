//! Image batches for the trainer ([`ImageSource`]) and labelled images for
//! the evaluation protocols ([`LabelledImages`]).

use super::normalize::Normalizer;
use super::split_images::SplitImages;
use ndarray::Array4;
use selfsup_data::views::{make_views, ViewRecipe};
use selfsup_data::webdataset::shard_order;
use selfsup_train::eval::LabelledData;
use selfsup_train::{Batch, BatchSource, Named, Result};
use tch::Tensor;

/// Training batches: the configured random views (or the image itself when
/// there are no recipes), moved to the device as u8 and normalised there,
/// as inputs `view0`, `view1`, … (views of several sizes in one batch, as
/// multi-crop makes them). Streamed images are decoded per batch and their
/// views cropped from the original photos.
#[derive(Debug)]
pub struct ImageSource<'a> {
    /// The training split.
    pub images: &'a SplitImages,
    /// Device transfer and normalisation.
    pub normalizer: &'a Normalizer,
    /// One recipe per view; empty for the un-augmented image.
    pub recipes: Vec<ViewRecipe>,
    /// Seeds every view's randomness with the epoch and sample index.
    pub seed: u64,
}

impl ImageSource<'_> {
    /// Whether every image has a label (an unlabelled split feeds no probe).
    fn labelled(&self) -> bool {
        !self.images.has_unlabelled()
    }
}

impl BatchSource for ImageSource<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn num_classes(&self) -> usize {
        if self.labelled() {
            self.images.num_classes()
        } else {
            0
        }
    }

    fn epoch_order(&self, seed: u64, epoch: u64) -> Option<Vec<usize>> {
        match self.images {
            SplitImages::Streamed(s) => s
                .shuffle_buffer
                .map(|buffer| shard_order(&s.index, seed, epoch, buffer)),
            SplitImages::Memory(_) => None,
        }
    }

    fn batch(&self, epoch: usize, indices: &[usize]) -> Result<Batch> {
        let (seed, epoch_seed) = (self.seed, epoch as u64);
        let (views, indices): (Vec<Array4<u8>>, Vec<usize>) =
            match (self.images, self.recipes.is_empty()) {
                (images, true) => (vec![images.gather(indices)?], indices.to_vec()),
                (SplitImages::Memory(data), false) => (
                    make_views(data, indices, &self.recipes, seed, epoch_seed),
                    indices.to_vec(),
                ),
                (SplitImages::Streamed(s), false) => {
                    s.index
                        .views(indices, &self.recipes, (seed, epoch_seed), s.on_corrupt)?
                }
            };
        let mut inputs = Named::new();
        for (i, view) in views.iter().enumerate() {
            inputs.push(Batch::view_name(i), self.normalizer.apply(view));
        }
        let labels = self.images.labels(&indices);
        Ok(Batch {
            inputs,
            labels: self.labelled().then(|| Tensor::from_slice(&labels)),
            indices,
            ..Default::default()
        })
    }
}

/// Labelled images for k-NN, the linear probe and fine-tuning (streamed
/// ones decoded and resized per batch).
#[derive(Debug, Clone, Copy)]
pub struct LabelledImages<'a> {
    /// The images (every label in `0..num_classes`).
    pub images: &'a SplitImages,
    /// Device transfer and normalisation.
    pub normalizer: &'a Normalizer,
}

impl LabelledData for LabelledImages<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn num_classes(&self) -> usize {
        self.images.num_classes()
    }

    fn inputs(&self, indices: &[usize]) -> Result<Tensor> {
        Ok(self.normalizer.apply(&self.images.gather(indices)?))
    }

    fn labels(&self, indices: &[usize]) -> Tensor {
        Tensor::from_slice(&self.images.labels(indices))
    }
}

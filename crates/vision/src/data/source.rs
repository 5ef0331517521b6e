//! Image batches for the trainer ([`ImageSource`]) and labelled images for
//! the evaluation protocols ([`LabelledImages`]).

use super::normalize::Normalizer;
use ndarray::Array4;
use selfsup_data::images::UNLABELED;
use selfsup_data::views::{make_views, ViewRecipe};
use selfsup_data::ImageDataset;
use selfsup_train::eval::LabelledData;
use selfsup_train::{Batch, BatchSource, Named, Result};
use tch::Tensor;

/// Training batches from decoded images: the configured random views (or
/// the image itself when there are no recipes), moved to the device as u8
/// and normalised there, as inputs `view0`, `view1`, … (views of several
/// sizes in one batch, as multi-crop makes them).
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

impl ImageSource<'_> {
    /// Whether every image has a label (an unlabelled split feeds no probe).
    fn labelled(&self) -> bool {
        !self.images.labels.contains(&UNLABELED)
    }
}

impl BatchSource for ImageSource<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn num_classes(&self) -> usize {
        if self.labelled() {
            self.images.num_classes
        } else {
            0
        }
    }

    fn batch(&self, epoch: usize, indices: &[usize]) -> Result<Batch> {
        let views: Vec<Array4<u8>> = if self.recipes.is_empty() {
            vec![self.images.gather(indices)]
        } else {
            make_views(self.images, indices, &self.recipes, self.seed, epoch as u64)
        };
        let mut inputs = Named::new();
        for (i, view) in views.iter().enumerate() {
            inputs.push(Batch::view_name(i), self.normalizer.apply(view));
        }
        let labels: Vec<i64> = indices.iter().map(|&i| self.images.labels[i]).collect();
        Ok(Batch {
            inputs,
            labels: self.labelled().then(|| Tensor::from_slice(&labels)),
            indices: indices.to_vec(),
            ..Default::default()
        })
    }
}

/// Decoded, labelled images for k-NN, the linear probe and fine-tuning.
#[derive(Debug, Clone, Copy)]
pub struct LabelledImages<'a> {
    /// The images (every label in `0..num_classes`).
    pub images: &'a ImageDataset,
    /// Device transfer and normalisation.
    pub normalizer: &'a Normalizer,
}

impl LabelledData for LabelledImages<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn num_classes(&self) -> usize {
        self.images.num_classes
    }

    fn inputs(&self, indices: &[usize]) -> Result<Tensor> {
        Ok(self.normalizer.apply(&self.images.gather(indices)))
    }

    fn labels(&self, indices: &[usize]) -> Tensor {
        let labels: Vec<i64> = indices.iter().map(|&i| self.images.labels[i]).collect();
        Tensor::from_slice(&labels)
    }
}

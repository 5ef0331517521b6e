//! Evaluation protocols on frozen features.

mod fine_tune;
mod knn;
mod linear_probe;

pub use fine_tune::{fine_tune, FineTuneConfig};
pub use knn::knn_top1;
pub use linear_probe::{linear_probe, LinearProbeConfig};

use crate::image_data::Normalizer;
use crate::method::FeatureExtractor;
use selfsup_data::ImageDataset;
use tch::Tensor;

/// Features of every image of `data`, in order, as one `[N, D]` tensor on the
/// extractor's device (computed in batches, without gradients).
pub fn extract_features(
    extractor: &dyn FeatureExtractor,
    data: &ImageDataset,
    normalizer: &Normalizer,
    batch_size: usize,
) -> Tensor {
    let indices: Vec<usize> = (0..data.len()).collect();
    let chunks: Vec<Tensor> = tch::no_grad(|| {
        indices
            .chunks(batch_size.max(1))
            .map(|chunk| extractor.features(&normalizer.apply(&data.gather(chunk)), false))
            .collect()
    });
    Tensor::cat(&chunks, 0)
}

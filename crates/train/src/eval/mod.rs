//! Evaluation protocols on frozen or fine-tuned features, for any modality
//! whose data can say "these inputs, these labels" ([`LabelledData`]).

mod config;
pub mod few_labels;
mod fine_tune;
mod knn;
mod linear_probe;
mod protocols;

pub use config::EvalConfig;
pub use fine_tune::{fine_tune, FineTuneConfig};
pub use knn::knn_top1;
pub use linear_probe::{linear_probe, LinearProbeConfig};
pub use protocols::{knn_accuracy, run_protocols, EvalRow};

use crate::error::Result;
use crate::method::FeatureExtractor;
use tch::Tensor;

/// Labelled samples an evaluation protocol reads: images with their classes,
/// passages with theirs. Labels are in `0..num_classes`.
pub trait LabelledData {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of classes.
    fn num_classes(&self) -> usize;
    /// Inputs of samples `indices`, on the device, as the backbone takes them
    /// (normalised images, token ids).
    fn inputs(&self, indices: &[usize]) -> Result<Tensor>;
    /// `[indices.len()]` int64 labels of samples `indices`, on the CPU.
    fn labels(&self, indices: &[usize]) -> Tensor;
    /// Every sample's label, in order.
    fn all_labels(&self) -> Vec<i64> {
        let all: Vec<usize> = (0..self.len()).collect();
        Vec::try_from(self.labels(&all)).unwrap_or_default()
    }
}

/// Features of every sample of `data`, in order, as one `[N, D]` tensor on
/// the extractor's device (computed in batches, without gradients).
pub fn extract_features(
    extractor: &dyn FeatureExtractor,
    data: &dyn LabelledData,
    batch_size: usize,
) -> Result<Tensor> {
    let indices: Vec<usize> = (0..data.len()).collect();
    let chunks = tch::no_grad(|| {
        indices
            .chunks(batch_size.max(1))
            .map(|chunk| Ok(extractor.features(&data.inputs(chunk)?, false)))
            .collect::<Result<Vec<Tensor>>>()
    })?;
    Ok(Tensor::cat(&chunks, 0))
}

/// Every label of `data` as a `[N]` int64 tensor.
pub fn labels_of(data: &dyn LabelledData) -> Tensor {
    let all: Vec<usize> = (0..data.len()).collect();
    data.labels(&all)
}

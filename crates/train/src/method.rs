//! The contract between the trainer and a method (DESIGN.md section 2).

use crate::Result;
use tch::Tensor;

/// One batch as a method sees it: views already on the device and normalised.
#[derive(Debug)]
pub struct Batch {
    /// One `[batch, channels, height, width]` float tensor per view.
    pub views: Vec<Tensor>,
    /// `[batch]` int64 class labels (for online probes; pretext tasks ignore them).
    pub labels: Tensor,
    /// Index of each sample in the data set.
    pub indices: Vec<usize>,
}

/// What a method's step returns.
#[derive(Debug)]
pub struct StepOutput {
    /// The scalar loss to minimise.
    pub loss: Tensor,
    /// `[batch, dim]` backbone features of the first view, when the step
    /// computed them anyway; the trainer's online linear probe trains on them
    /// (detached). `None` for methods whose encoder never sees whole images (MAE).
    pub features: Option<Tensor>,
}

/// Where training stands, for schedules inside a method (EMA momentum, ...).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Optimizer steps done so far.
    pub step: usize,
    /// Total optimizer steps of the run.
    pub total_steps: usize,
    /// Current epoch (0-based).
    pub epoch: usize,
}

/// A network whose frozen features downstream evaluation uses.
pub trait FeatureExtractor {
    /// `[batch, channels, height, width]` → `[batch, features]`; `train`
    /// selects batch statistics and dropout (fine-tuning) or eval behaviour.
    fn features(&self, images: &Tensor, train: bool) -> Tensor;
}

/// A self-supervised method: a model plus its pretext loss.
pub trait Method {
    /// One forward pass over a batch of views; returns the loss.
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput>;
    /// Called after each optimizer step (EMA teachers, queues, schedules).
    fn after_step(&mut self, _progress: &Progress) {}
    /// The backbone whose features downstream evaluation uses.
    fn backbone(&self) -> &dyn FeatureExtractor;
    /// State outside the var store that a checkpoint must keep (queues, centres).
    fn state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    /// Restores what [`Method::state`] returned.
    fn load_state(&mut self, _named: &[(String, Tensor)]) -> Result<()> {
        Ok(())
    }
}

//! The contract between the trainer and a method (DESIGN.md section 2).

use crate::batch::Batch;
use crate::Result;
use tch::Tensor;

/// What a method's step returns.
#[derive(Debug)]
pub struct StepOutput {
    /// The scalar loss to minimise.
    pub loss: Tensor,
    /// `[batch, dim]` backbone features of the first view, when the step
    /// computed them anyway; the trainer's online linear probe trains on them
    /// (detached). `None` for methods whose encoder never sees whole images (MAE).
    pub features: Option<Tensor>,
    /// Scalars the method wants to follow (a cosine similarity, an entropy,
    /// the embedding std that shows collapse), as 0-dim tensors. The trainer
    /// detaches them, averages them over the steps between two log rows and
    /// writes them to `metrics.csv` as `train,<name>` (and plots them), with
    /// no host-device sync in between.
    pub scalars: Vec<(&'static str, Tensor)>,
}

impl StepOutput {
    /// A step that gives only its loss.
    pub fn new(loss: Tensor) -> Self {
        Self {
            loss,
            features: None,
            scalars: Vec::new(),
        }
    }

    /// Adds the features the online probe trains on.
    pub fn with_features(mut self, features: Tensor) -> Self {
        self.features = Some(features);
        self
    }

    /// Adds a named scalar to log.
    pub fn with_scalar(mut self, name: &'static str, value: Tensor) -> Self {
        self.scalars.push((name, value));
        self
    }
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
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
}

/// A network whose frozen features downstream evaluation uses.
pub trait FeatureExtractor {
    /// `[batch, channels, height, width]` images (or `[batch, tokens]` ids) →
    /// `[batch, features]`; `train` selects batch statistics and dropout
    /// (fine-tuning) or eval behaviour.
    fn features(&self, inputs: &Tensor, train: bool) -> Tensor;
}

/// A self-supervised method: a model plus its pretext loss.
pub trait Method {
    /// One forward pass over a batch; returns the loss (plus features and
    /// scalars to log).
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput>;
    /// Called between backward and the optimizer step, with the gradients in
    /// place (DINO freezes its last layer here; gradient surgery goes here).
    /// `progress.step` is the number of steps done before this one.
    fn before_optimizer_step(&mut self, _progress: &Progress) -> Result<()> {
        Ok(())
    }
    /// Called after each optimizer step (EMA teachers, queues, schedules);
    /// `progress.step` counts this step.
    fn after_step(&mut self, _progress: &Progress) -> Result<()> {
        Ok(())
    }
    /// The backbone whose features downstream evaluation uses.
    fn backbone(&self) -> &dyn FeatureExtractor;
    /// State outside the var store that a checkpoint must keep (queues,
    /// teachers, centres).
    fn state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    /// Restores what [`Method::state`] returned.
    fn load_state(&mut self, _named: &[(String, Tensor)]) -> Result<()> {
        Ok(())
    }
}

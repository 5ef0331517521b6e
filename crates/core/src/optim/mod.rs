//! Optimizers whose state is explicit tensors, so a checkpoint can save and
//! restore it exactly (tch's wrappers of libtorch's optimizers cannot).
//! Updates match `torch.optim` (SGD, AdamW) and the official LARS; see
//! `crates/core/tests/optimizers_match_pytorch.rs`.

mod adamw;
mod groups;
mod lars;
mod multi_tensor;
mod sgd;
pub(crate) mod state;
pub use state::find_count;

pub use adamw::{AdamW, AdamWConfig};
pub use groups::{decay_groups, scale_groups, ParamGroup};
pub use lars::{Lars, LarsConfig};
pub use multi_tensor::clip_grad_norm;
pub use sgd::{Sgd, SgdConfig};

use crate::error::Result;
use tch::Tensor;

/// What the trainer needs of an optimizer.
pub trait Optimizer {
    /// The parameter groups (e.g. for gradient clipping).
    fn groups(&self) -> &[ParamGroup];

    /// The parameter groups, to change a group's weight decay or lr scale on a schedule.
    fn groups_mut(&mut self) -> &mut [ParamGroup];

    /// One update with the scheduled learning rate (times each group's `lr_scale`);
    /// parameters without a gradient are skipped.
    fn step(&mut self, lr: f64);

    /// Clears every parameter's gradient.
    fn zero_grad(&mut self) {
        for group in self.groups() {
            for param in &group.params {
                let mut param = param.shallow_clone();
                param.zero_grad();
            }
        }
    }

    /// The state as named tensors (`step` plus per-parameter buffers).
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Restores a state written by [`Optimizer::state`].
    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()>;
}

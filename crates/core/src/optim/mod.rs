//! Optimizers whose state is explicit tensors, so a checkpoint can save and
//! restore it exactly (tch's wrappers of libtorch's optimizers cannot).

mod adamw;
mod groups;

pub use adamw::{AdamW, AdamWConfig};
pub use groups::{decay_groups, ParamGroup};

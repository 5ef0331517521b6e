//! The mathematics every selfsup method shares: SSL losses as pure functions,
//! learning-rate schedules, and optimizers whose state is plain tensors that a
//! checkpoint can save and restore exactly.
//!
//! This crate does no I/O and knows nothing about data sets or configs files;
//! it depends on `tch` only.

pub mod across_ranks;
pub mod attention_mask;
pub mod blocks;
pub mod ema;
pub mod error;
pub mod heads;
pub mod losses;
pub mod monitor;
pub mod optim;
pub mod queue;
pub mod schedule;
pub mod sync_bn;

pub use error::{Error, Result};

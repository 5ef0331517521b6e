//! The shared trainer: one loop for every method, with typed TOML configs, run
//! folders, atomic checkpoints, metrics, the evaluation protocols papers
//! report, a method registry and the modality-free parts of an experiment.
//!
//! A method plugs in through [`Method`]; the trainer never knows its name.
//! This crate knows no modality: images and text live in `selfsup-vision`
//! and `selfsup-text`, which build on it.

pub mod allocator;
pub mod autocast;
pub mod batch;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod device;
/// Data-parallel training: the `selfsup-dist` crate, re-exported.
pub use selfsup_dist as distributed;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod gpu_check;
pub mod method;
pub mod metrics;
pub mod online_probe;
pub mod optimizer;
pub mod plots;
pub mod recipes;
pub mod registry;
pub mod run_dir;
pub mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trainer;

pub use batch::{Batch, Named};
pub use config::RunConfig;
pub use error::{Error, Result};
pub use method::{FeatureExtractor, Method, Progress, StepOutput};
pub use registry::{MethodChoice, Modality, Register, Registry};
pub use source::BatchSource;
pub use trainer::Trainer;

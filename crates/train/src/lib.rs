//! The shared trainer: one loop for every method, with typed TOML configs, run
//! folders, atomic checkpoints, metrics and the evaluation protocols papers report.
//!
//! A method plugs in through [`Method`]; the trainer never knows its name.

pub mod autocast;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod eval;
pub mod image_data;
pub mod method;
pub mod metrics;
pub mod online_probe;
pub mod optimizer;
pub mod plots;
pub mod run_dir;
pub mod source;
pub mod trainer;
pub mod view_config;

pub use config::RunConfig;
pub use error::{Error, Result};
pub use method::{Batch, FeatureExtractor, Method, Progress, StepOutput};
pub use source::BatchSource;
pub use trainer::Trainer;

//! Vision SSL for selfsup: image data as runs use it, backbones (ResNet, a
//! small CNN, ViT), methods (each one file in `methods/`, listed once in
//! `methods/mod.rs`), and the vision experiment (train, then k-NN against
//! random init; `selfsup eval`'s protocols; export with PyTorch's names).

pub mod backbones;
pub mod data;
pub mod error;
pub mod experiment;
pub mod methods;
pub mod pictures;
pub mod registry;

pub use error::{Error, Result};
pub use methods::registry;
pub use registry::{Vision, VisionContext, VisionMethod, VisionRegistry, VisionRunConfig};

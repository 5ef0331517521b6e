//! Backbones: networks that map images to features.

pub mod export;
pub mod pos_embed;
pub mod vit;

pub use vit::{VisionTransformer, VitConfig};

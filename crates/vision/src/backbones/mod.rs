//! Backbones: networks that map images to features.

pub mod config;
pub mod export;
pub mod pos_embed;
pub mod resnet;
pub mod small_cnn;
pub mod vit;

pub use config::{features_of_views, Backbone, BackboneConfig};
pub use resnet::{ResNet, ResNetConfig, Stem};
pub use small_cnn::{SmallCnn, SmallCnnConfig};
pub use vit::{VisionTransformer, VitConfig};

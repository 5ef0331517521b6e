//! Image data as a vision run uses it: the `[data]` config and its splits,
//! the `[[data.views]]` augmentation recipes, the u8 → tensor edge, the
//! trainer's batch source and the evaluation protocols' labelled images.
//! (Decoding and augmentation themselves are `selfsup-data`'s, tch-free.)

mod config;
mod load;
mod normalize;
mod source;
mod split_images;
mod splits;
mod views;

pub use config::{DatasetKind, ImageDataConfig};
pub use normalize::Normalizer;
pub use source::{ImageSource, LabelledImages};
pub use split_images::{SplitImages, StreamMode, StreamedImages, STREAM_ABOVE_BYTES};
pub use splits::Splits;
pub use views::{recipes, BlurConfig, JitterConfig, ViewConfig};

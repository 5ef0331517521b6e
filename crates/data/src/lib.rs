//! Data for selfsup: dataset readers, batching and tokenizers, on the CPU with
//! `ndarray` and `rayon`. Images stay decoded as `u8` in memory; conversion to
//! tensors happens at the edge, in the trainer, so this crate does not link tch.

pub mod augment;
pub mod blur;
pub mod bpe;
pub mod bpe_train;
pub mod checksum;
pub mod cifar;
pub mod decode;
pub mod documents;
pub mod download;
pub mod error;
pub mod hf_tokenizer;
mod hue;
pub mod idx;
pub mod image_folder;
pub mod images;
pub mod jpeg;
pub mod labelled_texts;
pub mod mail;
pub mod memory;
pub mod output_dir;
pub mod sampler;
pub mod sentence_pairs;
pub mod stl10;
pub mod streaming;
pub mod text;
pub mod token_batches;
pub mod token_file;
pub mod token_writer;
pub mod tokenizer;
pub mod views;
pub mod webdataset;

pub use error::{Error, Result};
pub use images::ImageDataset;

//! A split's images, decoded in memory or streamed from disk per batch
//! (`data.stream`): the one type the batch source and the evaluation
//! protocols read, so neither cares which.

use selfsup_data::images::{ImageDataset, UNLABELED};
use selfsup_data::streaming::{ImageIndex, OnCorrupt};
use selfsup_train::{check, Result};

/// Folders above this many bytes on disk stream under `data.stream = "auto"`:
/// decoded, a gibibyte of JPEGs is about ten.
pub const STREAM_ABOVE_BYTES: u64 = 1 << 30;

/// Whether a split's images are decoded once or read per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamMode {
    /// Stream ImageFolder sets larger than [`STREAM_ABOVE_BYTES`].
    #[default]
    Auto,
    /// Always stream (ImageFolder only).
    On,
    /// Always decode into memory.
    Off,
}

/// Images read from disk per batch.
#[derive(Debug, Clone)]
pub struct StreamedImages {
    /// The files.
    pub index: ImageIndex,
    /// `(height, width)` that evaluation (and training without views) resizes to.
    pub size: (u32, u32),
    /// Evaluation keeps the aspect and cuts the centre (`data.center_crop`).
    pub center_crop: Option<f64>,
    /// What a training batch does with a file that does not decode.
    pub on_corrupt: OnCorrupt,
    /// WebDataset shards: each epoch reads shard after shard through a
    /// shuffle buffer of this many images instead of a global shuffle.
    pub shuffle_buffer: Option<usize>,
}

/// A split's images.
#[derive(Debug, Clone)]
pub enum SplitImages {
    /// Decoded once.
    Memory(ImageDataset),
    /// Indexed, decoded per batch.
    Streamed(StreamedImages),
}

impl SplitImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            SplitImages::Memory(data) => data.len(),
            SplitImages::Streamed(s) => s.index.len(),
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        match self {
            SplitImages::Memory(data) => data.num_classes,
            SplitImages::Streamed(s) => s.index.classes.len(),
        }
    }

    /// Colour channels (streamed images decode to RGB).
    pub fn channels(&self) -> usize {
        match self {
            SplitImages::Memory(data) => data.image_shape().2,
            SplitImages::Streamed(_) => 3,
        }
    }

    /// `(height, width)` of what [`SplitImages::gather`] returns.
    pub fn size(&self) -> (usize, usize) {
        match self {
            SplitImages::Memory(data) => {
                let (h, w, _) = data.image_shape();
                (h, w)
            }
            SplitImages::Streamed(s) => (s.size.0 as usize, s.size.1 as usize),
        }
    }

    /// The labels of `indices`.
    pub fn labels(&self, indices: &[usize]) -> Vec<i64> {
        match self {
            SplitImages::Memory(data) => indices.iter().map(|&i| data.labels[i]).collect(),
            SplitImages::Streamed(s) => indices.iter().map(|&i| s.index.files[i].label).collect(),
        }
    }

    /// Whether some image has no label (STL-10's `unlabeled`).
    pub fn has_unlabelled(&self) -> bool {
        match self {
            SplitImages::Memory(data) => data.labels.contains(&UNLABELED),
            SplitImages::Streamed(_) => false,
        }
    }

    /// The images at `indices`, `[len, H, W, C]`, un-augmented (streamed
    /// ones decoded and resized to their evaluation size).
    pub fn gather(&self, indices: &[usize]) -> Result<ndarray::Array4<u8>> {
        match self {
            SplitImages::Memory(data) => Ok(data.gather(indices)),
            SplitImages::Streamed(s) => Ok(s.index.resized(indices, s.size, s.center_crop)?),
        }
    }
}

/// The size a streamed set resizes to for evaluation: `data.resize`, which
/// streaming needs.
pub fn streamed_size(resize: Option<[u32; 2]>) -> Result<(u32, u32)> {
    match resize {
        Some([height, width]) => Ok((height, width)),
        None => Err(check::invalid(
            "data.resize",
            "a streamed set needs data.resize: the [height, width] that evaluation \
             (and training without views) resizes its images to",
        )),
    }
}

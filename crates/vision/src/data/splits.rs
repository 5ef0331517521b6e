//! A run's splits: training, the labelled set evaluation learns from and
//! the held-out set, decoded in memory or streamed from disk (`data.stream`,
//! ImageFolder and WebDataset), with the checks evaluation needs.

use super::config::{DatasetKind, ImageDataConfig};
use super::split_images::{
    streamed_size, SplitImages, StreamMode, StreamedImages, STREAM_ABOVE_BYTES,
};
use selfsup_data::streaming::{ImageIndex, OnCorrupt};
use selfsup_data::webdataset::index_shards;
use selfsup_train::{check, Result};

/// The splits of a run, decoded in memory or streamed.
#[derive(Debug)]
pub struct Splits {
    /// What pretraining reads.
    pub train: SplitImages,
    /// What evaluation learns from (the training split, or `memory_split`).
    pub memory: Option<SplitImages>,
    /// What evaluation scores.
    pub held_out: SplitImages,
}

impl Splits {
    /// The labelled set evaluation learns from.
    pub fn memory(&self) -> &SplitImages {
        self.memory.as_ref().unwrap_or(&self.train)
    }
}

impl ImageDataConfig {
    /// The training, memory and held-out splits: `eval_split` when set, else
    /// every `held_out_every`-th image of `split`. Evaluation needs labels:
    /// an unlabelled memory bank or held-out split is an error naming the key.
    pub fn load_splits(&self) -> Result<Splits> {
        let (train, memory, held_out) = match self.streamed_index()? {
            Some(index) => self.stream_splits(index)?,
            None => {
                let data = self.load()?;
                let (train, held_out) = match &self.eval_split {
                    Some(split) => (data, self.load_split(split)?),
                    None => data.split_every(self.held_out_every)?,
                };
                let memory = match &self.memory_split {
                    Some(split) => Some(SplitImages::Memory(self.load_split(split)?)),
                    None => None,
                };
                (
                    SplitImages::Memory(train),
                    memory,
                    SplitImages::Memory(held_out),
                )
            }
        };
        if train.is_empty() || held_out.is_empty() {
            let key = match &self.eval_split {
                Some(_) if held_out.is_empty() => "data.eval_split",
                _ => "data.held_out_every",
            };
            let message = format!(
                "leaves {} training and {} held-out images; both need at least one",
                train.len(),
                held_out.len()
            );
            return Err(check::invalid(key, message));
        }
        let splits = Splits {
            train,
            memory,
            held_out,
        };
        if splits.memory().has_unlabelled() {
            let key = if self.memory_split.is_some() {
                "data.memory_split"
            } else {
                "data.split"
            };
            let message = "the split evaluation learns from has unlabelled images; set data.memory_split to a labelled split (e.g. \"train\") for k-NN, the probe and fine-tuning";
            return Err(check::invalid(key, message));
        }
        if splits.held_out.has_unlabelled() {
            return Err(check::invalid("data.eval_split", "the held-out split has unlabelled images; evaluate on a labelled split (e.g. \"test\")"));
        }
        Ok(splits)
    }

    /// The training split's index when it streams (`data.stream`), else `None`.
    fn streamed_index(&self) -> Result<Option<ImageIndex>> {
        let kind = self.dataset;
        match (self.stream, kind) {
            (StreamMode::Off, DatasetKind::WebDataset) => {
                let message = "WebDataset shards are always streamed; use \"auto\" or \"on\"";
                return Err(check::invalid("data.stream", message));
            }
            (_, DatasetKind::WebDataset) => return Ok(Some(self.index(&self.split)?)),
            (StreamMode::Off, _) => return Ok(None),
            (StreamMode::Auto, k) if k != DatasetKind::ImageFolder => return Ok(None),
            (StreamMode::On, k) if k != DatasetKind::ImageFolder => {
                let message = format!(
                    "streams ImageFolder and WebDataset sets; {} is read into memory (data.stream = \"off\")",
                    kind.name()
                );
                return Err(check::invalid("data.stream", message));
            }
            _ => {}
        }
        let index = self.index(&self.split)?;
        let large = index.total_bytes() > STREAM_ABOVE_BYTES;
        Ok((self.stream == StreamMode::On || large).then_some(index))
    }

    /// Split `split` of an ImageFolder or WebDataset, indexed (first
    /// `max_images` only).
    fn index(&self, split: &str) -> Result<ImageIndex> {
        let folder = self.path.join(split);
        let index = match self.dataset {
            DatasetKind::WebDataset => index_shards(&folder, self.on_corrupt)?,
            _ => ImageIndex::image_folder(&folder)?,
        }
        .with_max_pixels(self.max_image_pixels);
        Ok(match self.max_images {
            Some(limit) if limit < index.len() => index.subset(&(0..limit).collect::<Vec<_>>()),
            _ => index,
        })
    }

    /// Streamed (train, memory, held-out) splits from the training split's index.
    fn stream_splits(
        &self,
        index: ImageIndex,
    ) -> Result<(SplitImages, Option<SplitImages>, SplitImages)> {
        let size = streamed_size(self.resize)?;
        let streamed = |index| {
            SplitImages::Streamed(StreamedImages {
                index,
                size,
                center_crop: self.center_crop,
                on_corrupt: self.on_corrupt,
                shuffle_buffer: (self.dataset == DatasetKind::WebDataset)
                    .then_some(self.shuffle_buffer),
            })
        };
        let (train, held_out) = match &self.eval_split {
            Some(split) => (index, self.index(split)?),
            None => index.split_every(self.held_out_every),
        };
        let memory = match &self.memory_split {
            Some(split) => Some(self.readable(self.index(split)?)),
            None => None,
        };
        let (train, held_out) = (self.readable(train), self.readable(held_out));
        Ok((streamed(train), memory.map(streamed), streamed(held_out)))
    }

    /// With `data.on_corrupt = "skip"`, `index` without the files that do
    /// not decode (one decode pass, with a warning naming the first), so
    /// that evaluation, which reads whole splits, skips them too; else
    /// `index` as it is (a bad file stops the run where it is read).
    fn readable(&self, index: ImageIndex) -> ImageIndex {
        if self.on_corrupt != OnCorrupt::Skip {
            return index;
        }
        let (kept, errors) = index.without_undecodable();
        if let Some(first) = errors.first() {
            tracing::warn!(skipped = errors.len(), first = %first, "data.on_corrupt = \"skip\": leaving out files that do not decode");
        }
        kept
    }
}

//! Image sets read from disk per batch instead of decoded into memory once:
//! an index of the files (path, label, byte size; nothing decoded), and
//! batches whose images are read, decoded and augmented in the rayon pool.
//! Memory is bounded by the batches in flight, whatever the set's size,
//! and each image keeps its own size, so RandomResizedCrop samples its box
//! in the original photo's coordinates, as torchvision does.
//!
//! A batch is still a function of (seed, epoch, indices) and each view of
//! (seed, epoch, sample, view) ([`crate::views::views_of`]), so streaming
//! and in-memory batches of the same decoded pixels are equal, and resume
//! is exact.

use crate::error::{Error, Result};
use crate::image_folder::list_image_folder;
use crate::views::{views_of, ViewRecipe};
use ndarray::{Array3, Array4, CowArray};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One indexed image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedImage {
    /// Where it is: the image file, or the shard that holds it.
    pub path: PathBuf,
    /// Its class, in `0..num_classes`.
    pub label: i64,
    /// Its size on disk (for the streaming decision and progress).
    pub bytes: u64,
    /// Inside a shard (`.tar` of a WebDataset): the byte offset of its
    /// content, read with one seek (its length is `bytes`).
    pub offset: Option<u64>,
}

impl IndexedImage {
    /// Decodes it (any format the `image` crate reads); errors name the file.
    pub fn open(&self) -> Result<image::DynamicImage> {
        let cannot = |e: &dyn std::fmt::Display| {
            let at = match self.offset {
                Some(offset) => format!(" (member at byte {offset})"),
                None => String::new(),
            };
            Error::format(&self.path, format!("cannot decode image{at}: {e}"))
        };
        match self.offset {
            None => image::open(&self.path).map_err(|e| cannot(&e)),
            Some(offset) => {
                use std::io::{Read, Seek, SeekFrom};
                let mut file =
                    std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
                let mut bytes = vec![0u8; self.bytes as usize];
                file.seek(SeekFrom::Start(offset))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(|e| Error::io(&self.path, e))?;
                image::load_from_memory(&bytes).map_err(|e| cannot(&e))
            }
        }
    }
}

/// The files of an image set, without their pixels.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    /// Every image, in label then name order.
    pub files: Vec<IndexedImage>,
    /// The class names, in label order.
    pub classes: Vec<String>,
}

/// What a batch does with a file that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnCorrupt {
    /// Stop with an error naming the file (the default: a damaged data set
    /// should not train silently).
    #[default]
    Fail,
    /// Leave the image out of its batch (the batch is one smaller) and go on.
    Skip,
}

impl ImageIndex {
    /// Indexes an ImageFolder (`root/<class>/<image>`): lists and sizes the
    /// files, decodes none.
    pub fn image_folder(root: &Path) -> Result<Self> {
        let (classes, listed) = list_image_folder(root)?;
        let files = listed
            .into_iter()
            .map(|(path, label)| {
                let bytes = std::fs::metadata(&path)
                    .map_err(|e| Error::io(&path, e))?
                    .len();
                Ok(IndexedImage {
                    path,
                    label,
                    bytes,
                    offset: None,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { files, classes })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The images at `positions`, in that order.
    pub fn subset(&self, positions: &[usize]) -> Self {
        Self {
            files: positions.iter().map(|&i| self.files[i].clone()).collect(),
            classes: self.classes.clone(),
        }
    }

    /// (training, held out): every `k`-th image held out, as
    /// [`crate::images::ImageDataset::split_every`] splits a decoded set.
    pub fn split_every(&self, k: usize) -> (Self, Self) {
        let (held, train): (Vec<usize>, Vec<usize>) =
            (0..self.len()).partition(|i| i % k.max(1) == k.max(1) - 1);
        (self.subset(&train), self.subset(&held))
    }

    /// Images `indices` decoded and resized (bilinear) to `height` x
    /// `width`, stacked `[len, height, width, 3]`, for evaluation; a file
    /// that does not decode is an error naming it.
    pub fn resized(&self, indices: &[usize], (height, width): (u32, u32)) -> Result<Array4<u8>> {
        let images: Vec<image::RgbImage> = indices
            .par_iter()
            .map(|&i| {
                let image = self.files[i].open()?.to_rgb8();
                Ok(image::imageops::resize(
                    &image,
                    width,
                    height,
                    image::imageops::FilterType::Triangle,
                ))
            })
            .collect::<Result<_>>()?;
        let pixels: Vec<u8> = images
            .iter()
            .flat_map(|im| im.as_raw().iter().copied())
            .collect();
        Ok(
            Array4::from_shape_vec((indices.len(), height as usize, width as usize, 3), pixels)
                .expect("every image was resized to the same size"),
        )
    }

    /// Bytes on disk of all the files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Image `index` decoded to RGB, `[height, width, 3]`.
    pub fn decode(&self, index: usize) -> Result<Array3<u8>> {
        Ok(rgb_array(self.files[index].open()?.to_rgb8()))
    }

    /// One `[batch, size, size, 3]` array per recipe for the images at
    /// `indices`, and the indices that made it into the batch (all of them
    /// unless `on_corrupt` skips some).
    pub fn views(
        &self,
        indices: &[usize],
        recipes: &[ViewRecipe],
        (seed, epoch): (u64, u64),
        on_corrupt: OnCorrupt,
    ) -> Result<(Vec<Array4<u8>>, Vec<usize>)> {
        let decoded: Vec<(usize, Result<Array3<u8>>)> =
            indices.par_iter().map(|&i| (i, self.decode(i))).collect();
        let mut kept = Vec::with_capacity(decoded.len());
        let mut images = Vec::with_capacity(decoded.len());
        for (index, image) in decoded {
            match (image, on_corrupt) {
                (Ok(image), _) => {
                    kept.push(index);
                    images.push(image);
                }
                (Err(error), OnCorrupt::Fail) => return Err(error),
                (Err(error), OnCorrupt::Skip) => tracing::warn!(%error, "skipping an image"),
            }
        }
        if kept.is_empty() {
            return Err(Error::Mismatch(
                "no image of the batch could be decoded".to_string(),
            ));
        }
        let views = views_of(&kept, recipes, seed, epoch, |position, _| {
            Ok::<_, Error>(CowArray::from(images[position].view()))
        })?;
        Ok((views, kept))
    }
}

/// An RGB image as `[height, width, 3]`.
fn rgb_array(image: image::RgbImage) -> Array3<u8> {
    let (width, height) = image.dimensions();
    Array3::from_shape_vec((height as usize, width as usize, 3), image.into_raw())
        .expect("RGB buffers hold height * width * 3 bytes")
}

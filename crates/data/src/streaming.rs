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

use crate::augment::{resized_crop, resized_crop_fractional};
use crate::decode::{decode_rgb, rgb_image, DEFAULT_MAX_PIXELS};
use crate::error::{Error, Result};
use crate::image_folder::list_image_folder;
use crate::jpeg;
use crate::views::{stack_views, view_rng, CropBox, ViewRecipe};
use ndarray::{Array3, Array4};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The largest image file (or shard member) read: far above any photo, far
/// below what a crafted size could make a reader allocate.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

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
    /// Its bytes, from its file or its shard; more than
    /// [`MAX_IMAGE_FILE_BYTES`] is refused before they are read.
    pub fn read(&self) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let too_large = |bytes: u64| {
            let problem =
                format!("{bytes} bytes, over the limit of {MAX_IMAGE_FILE_BYTES} for an image");
            Err(Error::format(&self.path, problem))
        };
        if self.bytes > MAX_IMAGE_FILE_BYTES {
            return too_large(self.bytes);
        }
        let mut file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        match self.offset {
            None => {
                let mut bytes = Vec::with_capacity(self.bytes as usize);
                file.take(MAX_IMAGE_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io(&self.path, e))?;
                match bytes.len() as u64 > MAX_IMAGE_FILE_BYTES {
                    true => too_large(bytes.len() as u64),
                    false => Ok(bytes),
                }
            }
            Some(offset) => {
                let mut bytes = vec![0u8; self.bytes as usize];
                file.seek(SeekFrom::Start(offset))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(|e| Error::io(&self.path, e))?;
                Ok(bytes)
            }
        }
    }

    /// Decodes `bytes` (its content) with [`decode_rgb`], refusing more
    /// than `max_pixels`; errors name it.
    pub fn decode_scaled(
        &self,
        bytes: &[u8],
        denominator: usize,
        max_pixels: u64,
    ) -> Result<(Array3<u8>, usize)> {
        decode_rgb(bytes, denominator, max_pixels).map_err(|problem| self.cannot(&problem))
    }

    /// A decoding error naming the file (and the member, in a shard).
    fn cannot(&self, problem: &str) -> Error {
        let at = match self.offset {
            Some(offset) => format!(" (member at byte {offset})"),
            None => String::new(),
        };
        Error::format(&self.path, format!("cannot decode image{at}: {problem}"))
    }

    /// Decoded whole to RGB `[height, width, 3]` (at most `max_pixels`).
    pub fn decode(&self, max_pixels: u64) -> Result<Array3<u8>> {
        Ok(self.decode_scaled(&self.read()?, 1, max_pixels)?.0)
    }

    /// One view per recipe, view `v` drawn with [`view_rng`]`(seed, epoch,
    /// index, v)`. A JPEG's crop boxes are drawn from its header first, and
    /// the file decoded at the smallest DCT scale that keeps every box at
    /// least its view's size ([`jpeg::denominator_for`]); at full scale the
    /// views equal those of [`crate::views::views_of`] on the decoded image.
    /// A file declaring more than `max_pixels` is refused unread.
    pub fn views(
        &self,
        index: usize,
        recipes: &[ViewRecipe],
        (seed, epoch): (u64, u64),
        max_pixels: u64,
    ) -> Result<Vec<Array3<u8>>> {
        let bytes = self.read()?;
        let mut rngs: Vec<_> = (0..recipes.len())
            .map(|v| view_rng(seed, epoch, index, v))
            .collect();
        let full = match jpeg::is_jpeg(&bytes) {
            true => jpeg::jpeg_size(&bytes, 1).ok(),
            false => None,
        };
        match full {
            Some(full) => {
                let crops: Vec<(CropBox, usize)> = recipes
                    .iter()
                    .zip(&mut rngs)
                    .map(|(recipe, rng)| (recipe.crop_box(full, rng), recipe.size))
                    .collect();
                let (image, denominator) =
                    self.decode_scaled(&bytes, jpeg::denominator_for(&crops), max_pixels)?;
                Ok(recipes
                    .iter()
                    .zip(crops)
                    .zip(&mut rngs)
                    .map(|((recipe, (crop, size)), rng)| {
                        let view = match denominator {
                            1 => resized_crop(
                                image.view(),
                                crop.0,
                                crop.1,
                                crop.2,
                                crop.3,
                                size,
                                size,
                            ),
                            d => resized_crop_fractional(
                                image.view(),
                                jpeg::scale_box(crop, d),
                                size,
                                size,
                            ),
                        };
                        recipe.finish_crop(view, rng)
                    })
                    .collect())
            }
            None => {
                let image = self.decode_scaled(&bytes, 1, max_pixels)?.0;
                let dims = (image.dim().0, image.dim().1);
                Ok(recipes
                    .iter()
                    .zip(&mut rngs)
                    .map(|(recipe, rng)| {
                        let crop = recipe.crop_box(dims, rng);
                        recipe.finish(image.view(), crop, rng)
                    })
                    .collect())
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
    /// The most pixels an image may declare ([`DEFAULT_MAX_PIXELS`] unless
    /// set with [`ImageIndex::with_max_pixels`]).
    pub max_pixels: u64,
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
        Ok(Self::new(files, classes))
    }

    /// An index of `files` with the default pixel limit.
    pub fn new(files: Vec<IndexedImage>, classes: Vec<String>) -> Self {
        Self {
            files,
            classes,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }

    /// The same index refusing images that declare more than `max_pixels`.
    pub fn with_max_pixels(self, max_pixels: u64) -> Self {
        Self { max_pixels, ..self }
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
            max_pixels: self.max_pixels,
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
    /// that does not decode is an error naming it. With `center_crop` =
    /// `Some(f)` each image keeps its aspect: its shorter side is resized to
    /// the output's over `f`, then the centre is cut out (ImageNet's
    /// Resize(256) + CenterCrop(224) is `f` = 0.875); without, it is squashed.
    pub fn resized(
        &self,
        indices: &[usize],
        (height, width): (u32, u32),
        center_crop: Option<f64>,
    ) -> Result<Array4<u8>> {
        let images: Vec<image::RgbImage> = indices
            .par_iter()
            .map(|&i| {
                let image = rgb_image(self.files[i].decode(self.max_pixels)?);
                Ok(match center_crop {
                    None => resize(&image, width, height),
                    Some(fraction) => {
                        let (w, h) = image.dimensions();
                        let scale = (height.max(width) as f64 / fraction) / h.min(w) as f64;
                        let along = |side: u32, least: u32| {
                            ((side as f64 * scale).round() as u32).max(least)
                        };
                        let resized = resize(&image, along(w, width), along(h, height));
                        let (rw, rh) = resized.dimensions();
                        let left = ((rw - width) as f64 / 2.0).round() as u32;
                        let top = ((rh - height) as f64 / 2.0).round() as u32;
                        image::imageops::crop_imm(&resized, left, top, width, height).to_image()
                    }
                })
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

    /// The same index without the files that do not read or decode (each
    /// decoded once, in the rayon pool), and the errors of those left out:
    /// with `on_corrupt = "skip"`, evaluation (the k-NN bank, the probe)
    /// reads only images it can, where a training batch just drops one.
    pub fn without_undecodable(&self) -> (Self, Vec<Error>) {
        let outcomes: Vec<Result<()>> = self
            .files
            .par_iter()
            .map(|file| file.decode(self.max_pixels).map(|_| ()))
            .collect();
        let mut kept = Vec::with_capacity(self.len());
        let mut errors = Vec::new();
        for (position, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(()) => kept.push(position),
                Err(error) => errors.push(error),
            }
        }
        (self.subset(&kept), errors)
    }

    /// Bytes on disk of all the files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Image `index` decoded to RGB, `[height, width, 3]`.
    pub fn decode(&self, index: usize) -> Result<Array3<u8>> {
        self.files[index].decode(self.max_pixels)
    }

    /// One `[batch, size, size, 3]` array per recipe for the images at
    /// `indices` (each read, decoded and augmented in the rayon pool, see
    /// [`IndexedImage::views`]), and the indices that made it into the
    /// batch (all of them unless `on_corrupt` skips some).
    pub fn views(
        &self,
        indices: &[usize],
        recipes: &[ViewRecipe],
        seed_epoch: (u64, u64),
        on_corrupt: OnCorrupt,
    ) -> Result<(Vec<Array4<u8>>, Vec<usize>)> {
        let decoded: Vec<(usize, Result<Vec<Array3<u8>>>)> = indices
            .par_iter()
            .map(|&i| {
                (
                    i,
                    self.files[i].views(i, recipes, seed_epoch, self.max_pixels),
                )
            })
            .collect();
        let mut kept = Vec::with_capacity(decoded.len());
        let mut views = Vec::with_capacity(decoded.len());
        for (index, sample) in decoded {
            match (sample, on_corrupt) {
                (Ok(sample), _) => {
                    kept.push(index);
                    views.push(sample);
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
        Ok((stack_views(&views, recipes.len()), kept))
    }
}

/// Bilinear resize, as the in-memory ImageFolder reader does.
fn resize(image: &image::RgbImage, width: u32, height: u32) -> image::RgbImage {
    image::imageops::resize(image, width, height, image::imageops::FilterType::Triangle)
}

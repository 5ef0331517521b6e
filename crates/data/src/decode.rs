//! Image bytes to RGB pixels, the one decoder every image reader shares (so
//! in-memory and streamed sets see the same pixels): JPEGs through
//! libjpeg-turbo ([`crate::jpeg`], optionally DCT-scaled), anything else, or
//! a JPEG libjpeg refuses (CMYK), through the `image` crate.

use crate::error::{Error, Result};
use crate::jpeg;
use ndarray::Array3;
use std::path::Path;

/// Decodes `bytes` to RGB `[height, width, 3]`, a JPEG at 1/`denominator`
/// of its size, and says at which denominator it did (1 when the `image`
/// crate decoded it). The error is the decoder's message.
pub fn decode_rgb(
    bytes: &[u8],
    denominator: usize,
) -> std::result::Result<(Array3<u8>, usize), String> {
    let refused = if jpeg::is_jpeg(bytes) {
        match jpeg::decode_jpeg(bytes, denominator) {
            Ok(pixels) => return Ok((pixels, denominator)),
            Err(problem) => Some(problem),
        }
    } else {
        None
    };
    match image::load_from_memory(bytes) {
        Ok(image) => Ok((rgb_array(image.to_rgb8()), 1)),
        Err(e) => Err(refused.unwrap_or_else(|| e.to_string())),
    }
}

/// Reads and decodes the image file at `path`; errors name it.
pub fn decode_file(path: &Path) -> Result<Array3<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_rgb(&bytes, 1)
        .map(|(pixels, _)| pixels)
        .map_err(|problem| Error::format(path, format!("cannot decode image: {problem}")))
}

/// An RGB image as `[height, width, 3]`.
pub fn rgb_array(image: image::RgbImage) -> Array3<u8> {
    let (width, height) = image.dimensions();
    Array3::from_shape_vec((height as usize, width as usize, 3), image.into_raw())
        .expect("RGB buffers hold height * width * 3 bytes")
}

/// `[height, width, 3]` pixels as an `image` crate buffer (for its resize).
pub fn rgb_image(pixels: Array3<u8>) -> image::RgbImage {
    let (height, width, _) = pixels.dim();
    let raw = pixels
        .as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0;
    image::RgbImage::from_raw(width as u32, height as u32, raw)
        .expect("an RGB array holds height * width * 3 bytes")
}

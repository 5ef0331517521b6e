//! Image bytes to RGB pixels, the one decoder every image reader shares (so
//! in-memory and streamed sets see the same pixels): JPEGs through
//! libjpeg-turbo ([`crate::jpeg`], optionally DCT-scaled), anything else, or
//! a JPEG libjpeg cannot convert to RGB (CMYK), through the `image` crate.
//!
//! Every file is hostile until bounded: a 1.5 KB JPEG may declare 65500 x
//! 65500 pixels (12.9 GB as RGB, more in libjpeg's coefficient buffers), so
//! the size a header declares is checked against a pixel limit before any
//! pixel buffer is allocated.

use crate::error::{Error, Result};
use crate::jpeg;
use ndarray::Array3;
use std::io::Cursor;
use std::path::Path;

/// The default limit on an image's declared width x height: PIL's
/// `Image.MAX_IMAGE_PIXELS` (a 1/4 GiB RGB buffer), which no photo of
/// ImageNet or a phone camera comes near; `data.max_image_pixels` moves it.
pub const DEFAULT_MAX_PIXELS: u64 = 89_478_485;

/// libjpeg-turbo's message for a colour conversion it lacks (CMYK or YCCK
/// to RGB): the only refusal the `image` crate is asked to retry. Any other
/// (a truncated or corrupt file) stays an error instead of being decoded
/// again by a more lenient decoder that pads the missing rows with grey.
const UNSUPPORTED_CONVERSION: &str = "Unsupported color conversion request";

/// Refuses a declared `width` x `height` over `max_pixels`.
pub fn check_pixels(width: u64, height: u64, max_pixels: u64) -> std::result::Result<(), String> {
    let pixels = width.saturating_mul(height);
    if pixels > max_pixels {
        return Err(format!(
            "declares {width}x{height} = {pixels} pixels, over the limit of {max_pixels} \
             (data.max_image_pixels)"
        ));
    }
    Ok(())
}

/// Decodes `bytes` to RGB `[height, width, 3]`, a JPEG at 1/`denominator`
/// of its size, and says at which denominator it did (1 when the `image`
/// crate decoded it). A file whose header declares more than `max_pixels`
/// (at full size) is refused before anything is allocated. The error is
/// the decoder's message.
pub fn decode_rgb(
    bytes: &[u8],
    denominator: usize,
    max_pixels: u64,
) -> std::result::Result<(Array3<u8>, usize), String> {
    if jpeg::is_jpeg(bytes) {
        // At full size: a progressive JPEG's coefficient buffers are
        // allocated at full resolution whatever the output scale.
        let (height, width) = jpeg::jpeg_size(bytes, 1)?;
        check_pixels(width as u64, height as u64, max_pixels)?;
        match jpeg::decode_jpeg(bytes, denominator) {
            Ok(pixels) => return Ok((pixels, denominator)),
            Err(problem) if !problem.contains(UNSUPPORTED_CONVERSION) => return Err(problem),
            Err(_) => {}
        }
    }
    decode_with_image_crate(bytes, max_pixels).map(|pixels| (pixels, 1))
}

/// The `image` crate's decode, its header's size checked first and its
/// allocations capped at what an image of `max_pixels` RGBA pixels needs.
fn decode_with_image_crate(
    bytes: &[u8],
    max_pixels: u64,
) -> std::result::Result<Array3<u8>, String> {
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| e.to_string())
    };
    let (width, height) = reader()?.into_dimensions().map_err(|e| e.to_string())?;
    check_pixels(width as u64, height as u64, max_pixels)?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    let mut decoder = reader()?;
    decoder.limits(limits);
    let image = decoder.decode().map_err(|e| e.to_string())?;
    Ok(rgb_array(image.to_rgb8()))
}

/// Reads and decodes the image file at `path` (at most `max_pixels`);
/// errors name it.
pub fn decode_file(path: &Path, max_pixels: u64) -> Result<Array3<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_rgb(&bytes, 1, max_pixels)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_of(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, 99])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&image)
            .unwrap();
        bytes
    }

    /// Rewrites the size in a baseline JPEG's SOF0 header, as a crafted
    /// file declares a size its data never fills.
    pub(crate) fn with_declared_size(mut bytes: Vec<u8>, width: u16, height: u16) -> Vec<u8> {
        let sof = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline JPEG has an SOF0 marker");
        bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        bytes
    }

    fn png_of(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::RgbImage::from_pixel(width, height, image::Rgb([1, 2, 3]))
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn a_jpeg_declaring_a_huge_size_is_refused_before_allocating() {
        let bomb = with_declared_size(jpeg_of(16, 16), 65500, 65500);
        assert!(bomb.len() < 2000);
        let error = decode_rgb(&bomb, 1, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(error.contains("65500x65500"), "{error}");
        assert!(error.contains("data.max_image_pixels"), "{error}");
        // Also when a DCT-scaled decode would be small.
        assert!(decode_rgb(&bomb, 8, DEFAULT_MAX_PIXELS).is_err());
    }

    #[test]
    fn the_pixel_limit_applies_to_every_decoder_and_is_configurable() {
        let jpeg = jpeg_of(40, 30);
        assert!(decode_rgb(&jpeg, 1, 1200).is_ok());
        let error = decode_rgb(&jpeg, 1, 1199).unwrap_err();
        assert!(error.contains("40x30 = 1200 pixels"), "{error}");
        let png = png_of(40, 30);
        assert_eq!(decode_rgb(&png, 1, 1200).unwrap().0.dim(), (30, 40, 3));
        let error = decode_rgb(&png, 1, 1199).unwrap_err();
        assert!(error.contains("over the limit of 1199"), "{error}");
    }

    #[test]
    fn a_truncated_jpeg_is_an_error_not_grey_padding() {
        let jpeg = jpeg_of(64, 64);
        let error = decode_rgb(&jpeg[..jpeg.len() * 2 / 3], 1, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(error.contains("Premature end"), "{error}");
    }

    #[test]
    fn a_cmyk_jpeg_still_decodes_through_the_image_crate_fallback() {
        // Made with Pillow: Image.new("CMYK", (8, 6), (10, 200, 30, 0))
        // .save("cmyk.jpg", quality=95). libjpeg refuses CMYK -> RGB.
        let cmyk = include_bytes!("../tests/fixtures/cmyk.jpg");
        let problem = jpeg::decode_jpeg(cmyk, 1).unwrap_err();
        assert!(problem.contains(UNSUPPORTED_CONVERSION), "{problem}");
        let (pixels, denominator) = decode_rgb(cmyk, 1, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((pixels.dim(), denominator), ((6, 8, 3), 1));
        assert!(decode_rgb(b"neither jpeg nor png", 1, DEFAULT_MAX_PIXELS).is_err());
    }
}

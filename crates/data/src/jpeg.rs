//! JPEG decoding with libjpeg-turbo (the system's libjpeg, through the small
//! C shim in `csrc/jpeg.c`), chosen over the `image` crate's zune-jpeg by
//! measurement (`cargo bench -p selfsup-data --bench jpeg`), and for the DCT
//! scaling it offers: a large photo whose crops are much smaller than it is
//! decoded at 1/2, 1/4 or 1/8 of its size, as PIL's draft mode and DALI do,
//! instead of paying for every pixel and then throwing most away.

use crate::views::CropBox;
use ndarray::Array3;
use std::os::raw::{c_char, c_int};

#[allow(unsafe_code)]
extern "C" {
    fn selfsup_jpeg_decode(
        data: *const u8,
        len: usize,
        denominator: c_int,
        out: *mut u8,
        capacity: usize,
        width: *mut c_int,
        height: *mut c_int,
        message: *mut c_char,
        message_len: usize,
    ) -> c_int;
}

/// The DCT scale denominators libjpeg decodes at cheaply.
pub const DENOMINATORS: [usize; 4] = [1, 2, 4, 8];

/// Whether `bytes` start like a JPEG file (SOI marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Calls the shim; `out` empty reads the header only.
fn call(bytes: &[u8], denominator: usize, out: &mut [u8]) -> Result<(usize, usize), String> {
    let (mut width, mut height) = (0, 0);
    let mut message = [0 as c_char; 200];
    let out_ptr = if out.is_empty() {
        std::ptr::null_mut()
    } else {
        out.as_mut_ptr()
    };
    // SAFETY: every pointer is valid for the length passed with it; the shim
    // writes at most `out.len()` bytes and a NUL-terminated message that fits.
    #[allow(unsafe_code)]
    let status = unsafe {
        selfsup_jpeg_decode(
            bytes.as_ptr(),
            bytes.len(),
            denominator as c_int,
            out_ptr,
            out.len(),
            &mut width,
            &mut height,
            message.as_mut_ptr(),
            message.len(),
        )
    };
    if status != 0 {
        // SAFETY: the shim NUL-terminates the message (snprintf).
        #[allow(unsafe_code)]
        let text = unsafe { std::ffi::CStr::from_ptr(message.as_ptr()) };
        return Err(text.to_string_lossy().into_owned());
    }
    Ok((height as usize, width as usize))
}

/// The `(height, width)` of a JPEG decoded at 1/`denominator` (libjpeg
/// rounds up), read from its header.
pub fn jpeg_size(bytes: &[u8], denominator: usize) -> Result<(usize, usize), String> {
    call(bytes, denominator, &mut [])
}

/// Decodes a JPEG to RGB `[height, width, 3]` at 1/`denominator` of its size
/// (1, 2, 4 or 8). Grayscale files come out as RGB; CMYK ones are refused
/// (the caller falls back to the `image` crate).
pub fn decode_jpeg(bytes: &[u8], denominator: usize) -> Result<Array3<u8>, String> {
    if !DENOMINATORS.contains(&denominator) {
        return Err(format!("unsupported DCT scale 1/{denominator}"));
    }
    let (height, width) = jpeg_size(bytes, denominator)?;
    let mut pixels = vec![0u8; height * width * 3];
    call(bytes, denominator, &mut pixels)?;
    Ok(Array3::from_shape_vec((height, width, 3), pixels).expect("shim fills height * width * 3"))
}

/// The largest denominator at which every crop `(box, output side)` still
/// covers at least its output side in decoded pixels, so decoding smaller
/// never makes a view upsample what the full decode would have downsampled.
pub fn denominator_for(crops: &[(CropBox, usize)]) -> usize {
    DENOMINATORS
        .iter()
        .rev()
        .copied()
        .find(|&d| {
            crops
                .iter()
                .all(|&((_, _, height, width), size)| height.min(width) >= size * d)
        })
        .unwrap_or(1)
}

/// A crop box of the full image in the coordinates of the image decoded
/// at 1/`denominator`: pixel `i` of a DCT-scaled decode covers full pixels
/// `[d i, d (i + 1))`, so the box keeps its place exactly, in fractions of
/// a pixel (for [`crate::augment::resized_crop_fractional`]).
pub fn scale_box((top, left, height, width): CropBox, denominator: usize) -> (f64, f64, f64, f64) {
    let d = denominator as f64;
    (
        top as f64 / d,
        left as f64 / d,
        height as f64 / d,
        width as f64 / d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95)
            .encode_image(&image)
            .unwrap();
        bytes
    }

    #[test]
    fn decodes_at_full_and_reduced_scale() {
        let bytes = encoded(161, 97);
        assert!(is_jpeg(&bytes));
        let full = decode_jpeg(&bytes, 1).unwrap();
        assert_eq!(full.dim(), (97, 161, 3));
        let reference = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let worst = full
            .iter()
            .zip(reference.as_raw())
            .map(|(&a, &b)| a.abs_diff(b))
            .max()
            .unwrap();
        assert!(worst <= 3, "libjpeg and zune-jpeg differ by {worst} levels");
        for (d, dim) in [(2, (49, 81)), (4, (25, 41)), (8, (13, 21))] {
            assert_eq!(decode_jpeg(&bytes, d).unwrap().dim(), (dim.0, dim.1, 3));
            assert_eq!(jpeg_size(&bytes, d).unwrap(), dim);
        }
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors() {
        let bytes = encoded(64, 64);
        let truncated = decode_jpeg(&bytes[..bytes.len() / 3], 1).unwrap_err();
        assert!(truncated.contains("Premature end"), "{truncated}");
        let error = decode_jpeg(&[0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3], 1).unwrap_err();
        assert!(!error.is_empty());
        assert!(decode_jpeg(b"not a jpeg at all", 1).is_err());
        assert!(decode_jpeg(&bytes, 3).is_err());
    }

    #[test]
    fn the_denominator_keeps_every_box_at_least_the_output_size() {
        let b = |side: usize| (0, 0, side, side + 100);
        assert_eq!(denominator_for(&[(b(900), 224)]), 4);
        assert_eq!(denominator_for(&[(b(900), 224), (b(447), 224)]), 1);
        assert_eq!(denominator_for(&[(b(900), 224), (b(447), 96)]), 4);
        assert_eq!(denominator_for(&[(b(448), 224)]), 2);
        assert_eq!(denominator_for(&[(b(1900), 224)]), 8);
        assert_eq!(scale_box((10, 20, 400, 600), 4), (2.5, 5.0, 100.0, 150.0));
    }
}

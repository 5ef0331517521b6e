//! Image operations of SSL augmentation recipes on `u8` HWC images, with
//! torchvision's semantics: we match its tensor path on `uint8` images
//! (blends computed in f32 and truncated back to `u8`, grayscale weights
//! 0.2989 / 0.587 / 0.114, bilinear resizing with half-pixel centres, no
//! antialiasing, rounded). torchvision's PIL path rounds differently and can
//! differ by a grey level. Checked against torchvision in
//! `crates/data/tests/augment_matches_torchvision.rs`.

use ndarray::{Array3, ArrayView3};

pub use crate::blur::{gaussian_blur, gaussian_kernel};
pub use crate::hue::adjust_hue;

/// Mirror left-right.
pub fn hflip(image: ArrayView3<u8>) -> Array3<u8> {
    let (height, width, channels) = image.dim();
    let image = image.as_standard_layout();
    let source = image.as_slice().expect("standard layout");
    let mut out = vec![0u8; source.len()];
    let row = width * channels;
    for (dst, src) in out.chunks_exact_mut(row).zip(source.chunks_exact(row)) {
        for (d, s) in dst
            .chunks_exact_mut(channels)
            .zip(src.chunks_exact(channels).rev())
        {
            for (d, s) in d.iter_mut().zip(s) {
                *d = *s;
            }
        }
    }
    Array3::from_shape_vec((height, width, channels), out).expect("same shape")
}

/// `ratio · a + (1 − ratio) · b`, clamped to `[0, 255]` and truncated, as
/// torchvision's `_blend` on `uint8`.
fn blend(a: u8, b: f32, ratio: f64) -> u8 {
    let value = ratio as f32 * a as f32 + (1.0 - ratio) as f32 * b;
    value.clamp(0.0, 255.0) as u8
}

/// `weight · v` for every u8 `v`, in f32: the products of the luma sum,
/// looked up instead of converted and multiplied per pixel (same values).
const fn weighted(weight: f32) -> [f32; 256] {
    let mut table = [0.0; 256];
    let mut v = 0;
    while v < 256 {
        table[v] = weight * v as f32;
        v += 1;
    }
    table
}

const RED: [f32; 256] = weighted(0.2989);
const GREEN: [f32; 256] = weighted(0.587);
const BLUE: [f32; 256] = weighted(0.114);

/// The luma of one RGB pixel, truncated to `u8`:
/// `0.2989 r + 0.587 g + 0.114 b`, summed left to right in f32.
fn luma(pixel: &[u8]) -> u8 {
    (RED[pixel[0] as usize] + GREEN[pixel[1] as usize] + BLUE[pixel[2] as usize]) as u8
}

/// `image` with every value `v` replaced by `table[v]`: a per-value map
/// computed once for the 256 possible inputs instead of once per value.
fn lookup(image: ArrayView3<u8>, table: &[u8; 256]) -> Array3<u8> {
    let image = image.as_standard_layout();
    let values = image.as_slice().expect("standard layout");
    let out = values.iter().map(|&v| table[v as usize]).collect();
    Array3::from_shape_vec(image.dim(), out).expect("same shape")
}

/// The table of `blend(v, other, ratio)` for every `v`.
fn blend_table(other: f32, ratio: f64) -> [u8; 256] {
    std::array::from_fn(|v| blend(v as u8, other, ratio))
}

/// Scales brightness by `factor` (1 keeps the image).
pub fn adjust_brightness(image: ArrayView3<u8>, factor: f64) -> Array3<u8> {
    lookup(image, &blend_table(0.0, factor))
}

/// Blends towards the image's mean grey level by `1 − factor`.
pub fn adjust_contrast(image: ArrayView3<u8>, factor: f64) -> Array3<u8> {
    let image = image.as_standard_layout();
    let pixels = image.as_slice().expect("standard layout");
    let sum: f64 = pixels.chunks_exact(3).map(|p| luma(p) as f64).sum();
    let mean = (sum / (pixels.len() / 3) as f64) as f32;
    lookup(image.view(), &blend_table(mean, factor))
}

/// Blends each pixel towards its own grey level by `1 − factor` (0: grayscale).
pub fn adjust_saturation(image: ArrayView3<u8>, factor: f64) -> Array3<u8> {
    // `blend`'s two products for every u8 value and every grey level, so a
    // pixel costs three additions (the same f32 values as computing them).
    let (own, other) = (factor as f32, (1.0 - factor) as f32);
    let own: [f32; 256] = std::array::from_fn(|v| own * v as f32);
    let grey: [f32; 256] = std::array::from_fn(|v| other * v as f32);
    map_pixels(image, |pixel| {
        let grey = grey[luma(&pixel) as usize];
        pixel.map(|v| (own[v as usize] + grey).clamp(0.0, 255.0) as u8)
    })
}

/// Grayscale replicated over three channels.
pub fn grayscale(image: ArrayView3<u8>) -> Array3<u8> {
    map_pixels(image, |pixel| [luma(&pixel); 3])
}

/// A new RGB image with `f` applied to every pixel; walks flat slices (much
/// faster than ndarray lanes for 3-byte pixels).
fn map_pixels(image: ArrayView3<u8>, f: impl Fn([u8; 3]) -> [u8; 3]) -> Array3<u8> {
    let image = image.as_standard_layout();
    let source = image.as_slice().expect("standard layout");
    let mut out = vec![0u8; source.len()];
    for (dst, src) in out.chunks_exact_mut(3).zip(source.chunks_exact(3)) {
        dst.copy_from_slice(&f([src[0], src[1], src[2]]));
    }
    Array3::from_shape_vec(image.dim(), out).expect("same shape")
}

/// Inverts every value at or above `threshold`.
pub fn solarize(image: ArrayView3<u8>, threshold: u8) -> Array3<u8> {
    image.mapv(|v| if v >= threshold { 255 - v } else { v })
}

/// Source coordinate and weights for bilinear resizing with half-pixel
/// centres (align_corners = false), as PyTorch computes them in f32.
fn source_index(destination: usize, input: usize, output: usize) -> (usize, usize, f32) {
    let scale = input as f32 / output as f32;
    let real = (scale * (destination as f32 + 0.5) - 0.5).max(0.0);
    let low = (real as usize).min(input - 1);
    let high = (low + 1).min(input - 1);
    (low, high, real - low as f32)
}

/// Crops `[top, top + height) × [left, left + width)` and resizes it to
/// `out_height × out_width` bilinearly (torchvision `resized_crop` with
/// `antialias=False`). The box must lie inside the image.
pub fn resized_crop(
    image: ArrayView3<u8>,
    top: usize,
    left: usize,
    height: usize,
    width: usize,
    out_height: usize,
    out_width: usize,
) -> Array3<u8> {
    let (h, w, _) = image.dim();
    assert!(
        top + height <= h && left + width <= w && height > 0 && width > 0,
        "crop box outside the {h}x{w} image"
    );
    let along = |start: usize, extent: usize, output: usize| -> Vec<(usize, usize, f32)> {
        (0..output)
            .map(|i| {
                let (low, high, fraction) = source_index(i, extent, output);
                (start + low, start + high, fraction)
            })
            .collect()
    };
    resample(
        image,
        &along(top, height, out_height),
        &along(left, width, out_width),
    )
}

/// As [`resized_crop`] for a box with fractional corners `(top, left,
/// height, width)` in pixels (half-pixel centres; source positions clamped
/// into the image): a crop box drawn on a full-size photo, mapped onto the
/// photo decoded at a reduced DCT scale, keeps its exact position.
pub fn resized_crop_fractional(
    image: ArrayView3<u8>,
    (top, left, height, width): (f64, f64, f64, f64),
    out_height: usize,
    out_width: usize,
) -> Array3<u8> {
    let along =
        |start: f64, extent: f64, output: usize, limit: usize| -> Vec<(usize, usize, f32)> {
            let last = limit.saturating_sub(1);
            (0..output)
                .map(|i| {
                    let real = start + extent / output as f64 * (i as f64 + 0.5) - 0.5;
                    let real = real.clamp(0.0, last as f64);
                    let low = real as usize;
                    (low, (low + 1).min(last), (real - low as f64) as f32)
                })
                .collect()
        };
    let (h, w, _) = image.dim();
    resample(
        image,
        &along(top, height, out_height, h),
        &along(left, width, out_width, w),
    )
}

/// Bilinear resampling at the given source `(low, high, fraction)` rows
/// and columns.
fn resample(
    image: ArrayView3<u8>,
    rows: &[(usize, usize, f32)],
    columns: &[(usize, usize, f32)],
) -> Array3<u8> {
    let (h, w, channels) = image.dim();
    let image = image.as_standard_layout();
    let source = image.as_slice().expect("standard layout");
    // Each needed source row is mixed horizontally once (neighbouring output
    // rows share source rows when upscaling), then rows are mixed vertically;
    // the arithmetic is the same expression, in the same order, per value.
    let stride = w * channels;
    let row_len = columns.len() * channels;
    let mut mixed_rows: Vec<Vec<f32>> = vec![Vec::new(); h];
    let horizontal = |row: usize| -> Vec<f32> {
        let source_row = &source[row * stride..(row + 1) * stride];
        let mut mixed = Vec::with_capacity(row_len);
        for &(x0, x1, dx) in columns {
            let (c0, c1) = (x0 * channels, x1 * channels);
            for c in 0..channels {
                mixed.push((1.0 - dx) * source_row[c0 + c] as f32 + dx * source_row[c1 + c] as f32);
            }
        }
        mixed
    };
    for &(y0, y1, _) in rows {
        for row in [y0, y1] {
            if mixed_rows[row].is_empty() {
                mixed_rows[row] = horizontal(row);
            }
        }
    }
    let mut out = vec![0u8; rows.len() * row_len];
    for (row_out, &(y0, y1, dy)) in out.chunks_exact_mut(row_len.max(1)).zip(rows) {
        let (upper, lower) = (&mixed_rows[y0], &mixed_rows[y1]);
        for ((value, &a), &b) in row_out.iter_mut().zip(upper).zip(lower) {
            let mixed = (1.0 - dy) * a + dy * b;
            // Round half away from zero, as `round` but without the libm
            // call: the value is a convex mix of u8s, so non-negative.
            *value = (mixed.clamp(0.0, 255.0) + 0.5) as u8;
        }
    }
    Array3::from_shape_vec((rows.len(), columns.len(), channels), out).expect("sizes match")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_parameters_keep_the_image() {
        let image = Array3::from_shape_fn((5, 6, 3), |(y, x, c)| (y * 40 + x * 7 + c * 3) as u8);
        assert_eq!(adjust_brightness(image.view(), 1.0), image);
        assert_eq!(adjust_saturation(image.view(), 1.0), image);
        assert_eq!(resized_crop(image.view(), 0, 0, 5, 6, 5, 6), image);
        assert_eq!(hflip(hflip(image.view()).view()), image);
        assert_eq!(
            solarize(image.view(), 255),
            image.mapv(|v| if v == 255 { 0 } else { v })
        );
    }
}

//! Image operations of SSL augmentation recipes on `u8` HWC images, with
//! torchvision's semantics: we match its tensor path on `uint8` images
//! (blends computed in f32 and truncated back to `u8`, grayscale weights
//! 0.2989 / 0.587 / 0.114, bilinear resizing with half-pixel centres, no
//! antialiasing, rounded). torchvision's PIL path rounds differently and can
//! differ by a grey level. Checked against torchvision in
//! `crates/data/tests/augment_matches_torchvision.rs`.

use ndarray::{Array3, ArrayView3, Axis, Zip};

/// Mirror left-right.
pub fn hflip(image: ArrayView3<u8>) -> Array3<u8> {
    let mut flipped = image.to_owned();
    flipped.invert_axis(Axis(1));
    flipped.as_standard_layout().into_owned()
}

/// `ratio · a + (1 − ratio) · b`, clamped to `[0, 255]` and truncated, as
/// torchvision's `_blend` on `uint8`.
fn blend(a: u8, b: f32, ratio: f64) -> u8 {
    let value = ratio as f32 * a as f32 + (1.0 - ratio) as f32 * b;
    value.clamp(0.0, 255.0) as u8
}

/// The luma of one RGB pixel, truncated to `u8`.
fn luma(pixel: &[u8]) -> u8 {
    (0.2989f32 * pixel[0] as f32 + 0.587f32 * pixel[1] as f32 + 0.114f32 * pixel[2] as f32) as u8
}

/// Scales brightness by `factor` (1 keeps the image).
pub fn adjust_brightness(image: ArrayView3<u8>, factor: f64) -> Array3<u8> {
    image.mapv(|v| blend(v, 0.0, factor))
}

/// Blends towards the image's mean grey level by `1 − factor`.
pub fn adjust_contrast(image: ArrayView3<u8>, factor: f64) -> Array3<u8> {
    let image = image.as_standard_layout();
    let pixels = image.as_slice().expect("standard layout");
    let sum: f64 = pixels.chunks_exact(3).map(|p| luma(p) as f64).sum();
    let mean = (sum / (pixels.len() / 3) as f64) as f32;
    image.mapv(|v| blend(v, mean, factor))
}

/// Blends each pixel towards its own grey level by `1 − factor` (0: grayscale).
pub fn adjust_saturation(image: ArrayView3<u8>, factor: f64) -> Array3<u8> {
    let mut out = image.to_owned();
    for mut pixel in out.lanes_mut(Axis(2)) {
        let grey = luma(pixel.as_slice().expect("a pixel's channels are contiguous")) as f32;
        pixel.mapv_inplace(|v| blend(v, grey, factor));
    }
    out
}

/// Grayscale replicated over three channels.
pub fn grayscale(image: ArrayView3<u8>) -> Array3<u8> {
    let mut out = image.to_owned();
    for mut pixel in out.lanes_mut(Axis(2)) {
        let grey = luma(pixel.as_slice().expect("a pixel's channels are contiguous"));
        pixel.fill(grey);
    }
    out
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
    let (h, w, channels) = image.dim();
    assert!(
        top + height <= h && left + width <= w && height > 0 && width > 0,
        "crop box outside the {h}x{w} image"
    );
    let rows: Vec<_> = (0..out_height)
        .map(|y| source_index(y, height, out_height))
        .collect();
    let columns: Vec<_> = (0..out_width)
        .map(|x| source_index(x, width, out_width))
        .collect();
    let mut out = Array3::<u8>::zeros((out_height, out_width, channels));
    Zip::indexed(&mut out).for_each(|(y, x, c), value| {
        let ((y0, y1, dy), (x0, x1, dx)) = (rows[y], columns[x]);
        let at = |yy: usize, xx: usize| image[[top + yy, left + xx, c]] as f32;
        let (h0, h1, w0, w1) = (1.0 - dy, dy, 1.0 - dx, dx);
        let interpolated =
            h0 * (w0 * at(y0, x0) + w1 * at(y0, x1)) + h1 * (w0 * at(y1, x0) + w1 * at(y1, x1));
        *value = interpolated.round().clamp(0.0, 255.0) as u8;
    });
    out
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

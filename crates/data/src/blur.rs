//! Gaussian blur (BYOL's, SimCLR's and DINO's views), as torchvision's
//! tensor path: reflect padding, two 1-D passes in f32, rounded. Re-exported
//! from [`crate::augment`] with the other image operations.

use ndarray::{Array3, ArrayView3};

/// The normalised 1-D Gaussian of `size` taps (odd) and standard deviation `sigma`.
pub fn gaussian_kernel(size: usize, sigma: f64) -> Vec<f32> {
    let half = (size - 1) as f32 * 0.5;
    let step = if size > 1 {
        2.0 * half / (size - 1) as f32
    } else {
        0.0
    };
    let pdf: Vec<f32> = (0..size)
        .map(|i| (-half + step * i as f32) / sigma as f32)
        .map(|x| (-0.5 * x * x).exp())
        .collect();
    let sum: f32 = pdf.iter().sum();
    pdf.into_iter().map(|p| p / sum).collect()
}

/// Mirrors an index into `0..len` without repeating the edge (reflect padding).
fn reflect(index: isize, len: usize) -> usize {
    let last = len as isize - 1;
    let folded = if index < 0 {
        -index
    } else if index > last {
        2 * last - index
    } else {
        index
    };
    folded.clamp(0, last) as usize
}

/// Gaussian blur with a `size`×`size` kernel (odd, smaller than twice the
/// image) and `sigma`, reflect padding, rounded, as torchvision's tensor path;
/// computed as two 1-D passes.
///
/// Each pass adds whole rows scaled by one tap at a time, so the inner loops
/// run over contiguous memory and vectorise (SimCLR's 23-tap blur of a
/// 224-px view was the slowest step of the ImageNet pipeline); every output
/// still sums its taps in kernel order, so the result is unchanged.
pub fn gaussian_blur(image: ArrayView3<u8>, size: usize, sigma: f64) -> Array3<u8> {
    assert!(size % 2 == 1, "blur kernel size must be odd, got {size}");
    let kernel = gaussian_kernel(size, sigma);
    let half = (size / 2) as isize;
    let (h, w, c) = image.dim();
    let pixels = image.as_standard_layout();
    let source = pixels.as_slice().expect("standard layout is contiguous");
    let line = w * c;
    let mut rows = vec![0f32; h * line];
    let mut padded = vec![0f32; (w + size - 1) * c];
    for (y, row) in rows.chunks_exact_mut(line).enumerate() {
        let pixels = &source[y * line..(y + 1) * line];
        for (p, slot) in padded.chunks_exact_mut(c).enumerate() {
            let x = reflect(p as isize - half, w);
            for (value, &pixel) in slot.iter_mut().zip(&pixels[x * c..(x + 1) * c]) {
                *value = pixel as f32;
            }
        }
        for (k, &weight) in kernel.iter().enumerate() {
            for (sum, &value) in row.iter_mut().zip(&padded[k * c..k * c + line]) {
                *sum += weight * value;
            }
        }
    }
    let mut out = vec![0u8; h * line];
    let mut sums = vec![0f32; line];
    for (y, pixels) in out.chunks_exact_mut(line).enumerate() {
        sums.fill(0.0);
        for (k, &weight) in kernel.iter().enumerate() {
            let from = reflect(y as isize + k as isize - half, h);
            for (sum, &value) in sums.iter_mut().zip(&rows[from * line..(from + 1) * line]) {
                *sum += weight * value;
            }
        }
        for (pixel, &sum) in pixels.iter_mut().zip(&sums) {
            *pixel = sum.round().clamp(0.0, 255.0) as u8;
        }
    }
    Array3::from_shape_vec((h, w, c), out).expect("blurred buffer holds h * w * c bytes")
}

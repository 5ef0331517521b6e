//! The `u8` → normalised float tensor edge. For an accelerator only bytes
//! cross to the device, where they are scaled and normalised; on the CPU the
//! floats are written directly in the rayon pool, because libtorch's OpenMP
//! threads would spin on the cores the view workers need (a third of the data
//! pipeline's time in a profile of `bench_data`).

use ndarray::Array4;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tch::{Device, Kind, Tensor};

/// Images per rayon task when normalising on the host: enough work to
/// outweigh the task's overhead, small enough to spread a batch over cores.
const IMAGES_PER_TASK: usize = 16;

/// Moves `u8` images to `device` and normalises them there. Holds plain
/// numbers, not tensors, so the prefetching thread can share it; the tiny
/// `[1, C, 1, 1]` constants are made per batch.
#[derive(Debug, Clone)]
pub struct Normalizer {
    mean: Vec<f64>,
    std: Vec<f64>,
    device: Device,
}

impl Normalizer {
    /// Per-channel statistics on `device`.
    pub fn new(mean: &[f64], std: &[f64], device: Device) -> Self {
        Self {
            mean: mean.to_vec(),
            std: std.to_vec(),
            device,
        }
    }

    /// `values` as a `[1, C, 1, 1]` float tensor on the device.
    fn per_channel(&self, values: &[f64]) -> Tensor {
        Tensor::from_slice(values)
            .to_kind(Kind::Float)
            .view([1, values.len() as i64, 1, 1])
            .to_device(self.device)
    }

    /// `scale` and `shift` per channel, so that `shift + x · scale =
    /// (x/255 − mean) / std` in one multiply-add: `scale = 1 / (255 · std)`,
    /// `shift = −mean / std`.
    fn affine(&self) -> (Vec<f64>, Vec<f64>) {
        let scale = self.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
        let shift = self
            .mean
            .iter()
            .zip(&self.std)
            .map(|(m, s)| -m / s)
            .collect();
        (scale, shift)
    }

    /// `[N, H, W, C]` u8 → `[N, C, H, W]` float on the device, `(x/255 - mean) / std`.
    /// Only the u8 bytes cross to an accelerator; on the CPU see
    /// [`Normalizer::apply_on_host`].
    pub fn apply(&self, images: &Array4<u8>) -> Tensor {
        if self.device == Device::Cpu {
            self.apply_on_host(images)
        } else {
            self.apply_with_libtorch(images)
        }
    }

    /// Bytes to the device, then permuted, converted and normalised there.
    fn apply_with_libtorch(&self, images: &Array4<u8>) -> Tensor {
        let shape: Vec<i64> = images.shape().iter().map(|&d| d as i64).collect();
        let bytes = images.as_standard_layout();
        let host = Tensor::from_slice(bytes.as_slice().expect("a standard-layout copy"))
            .view(shape.as_slice());
        let x = host
            .to_device(self.device)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float);
        let (scale, shift) = self.affine();
        self.per_channel(&shift)
            .addcmul(&x, &self.per_channel(&scale))
    }

    /// [`Normalizer::apply`] computed in the rayon pool: each byte maps
    /// through its channel's table of `x · scale + shift`, fused in `f32` as
    /// libtorch's vectorised `addcmul` computes it, so both paths give the
    /// same floats. Like that path's result, the tensor is `[N, C, H, W]`
    /// with channels-last strides (the bytes' own order), a layout libtorch's
    /// convolutions keep through the network: with plain `NCHW` strides the
    /// same training took other kernels and its losses drifted in the last
    /// digits, with this layout they are bitwise those of the libtorch path.
    pub fn apply_on_host(&self, images: &Array4<u8>) -> Tensor {
        let (n, h, w, c) = images.dim();
        let (scale, shift) = self.affine();
        let tables: Vec<[f32; 256]> = scale
            .iter()
            .zip(&shift)
            .map(|(&scale, &shift)| {
                std::array::from_fn(|x| (x as f32).mul_add(scale as f32, shift as f32))
            })
            .collect();
        let bytes = images.as_standard_layout();
        let bytes = bytes.as_slice().expect("a standard-layout copy");
        let mut floats = Tensor::empty(
            [n as i64, h as i64, w as i64, c as i64],
            (Kind::Float, Device::Cpu),
        );
        let per_task = h * w * c * IMAGES_PER_TASK;
        if per_task > 0 {
            floats_of(&mut floats)
                .par_chunks_mut(per_task)
                .zip(bytes.par_chunks(per_task))
                .for_each(|(floats, bytes)| normalise_pixels(floats, bytes, &tables));
        }
        floats.permute([0, 3, 1, 2])
    }

    /// Inverse of [`Normalizer::apply`] up to the byte conversion: back to `[0, 1]`.
    pub fn unapply(&self, x: &Tensor) -> Tensor {
        (x * self.per_channel(&self.std) + self.per_channel(&self.mean)).clamp(0.0, 1.0)
    }
}

/// The storage of a new contiguous CPU float tensor as a mutable slice, to
/// fill in the rayon pool without libtorch's zero fill and copy (either one
/// wakes its OpenMP threads, which then spin on the view workers' cores).
fn floats_of(tensor: &mut Tensor) -> &mut [MaybeUninit<f32>] {
    assert!(
        tensor.kind() == Kind::Float && tensor.device() == Device::Cpu && tensor.is_contiguous(),
        "a contiguous CPU float tensor"
    );
    let len = tensor.numel();
    if len == 0 {
        return &mut [];
    }
    // SAFETY: the tensor is contiguous, on the CPU and of kind Float, so its
    // data pointer addresses `len` f32 slots that it owns (maybe
    // uninitialised, hence `MaybeUninit`); the `&mut` borrow keeps other
    // handles in this thread from reaching them while the slice lives.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts_mut(tensor.data_ptr() as *mut MaybeUninit<f32>, len)
    }
}

/// Interleaved pixels' bytes to floats through per-channel tables.
fn normalise_pixels(floats: &mut [MaybeUninit<f32>], bytes: &[u8], tables: &[[f32; 256]]) {
    let c = tables.len();
    for (float_pixel, byte_pixel) in floats.chunks_exact_mut(c).zip(bytes.chunks_exact(c)) {
        for ((float, &byte), table) in float_pixel.iter_mut().zip(byte_pixel).zip(tables) {
            float.write(table[usize::from(byte)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_channels_last_bytes_into_nchw() {
        let images = Array4::from_shape_vec((1, 1, 2, 2), vec![0u8, 255, 51, 102]).unwrap();
        let norm = Normalizer::new(&[0.0, 0.5], &[1.0, 0.5], Device::Cpu);
        let x = norm.apply(&images);
        assert_eq!(x.size(), vec![1, 2, 1, 2]);
        let values: Vec<f32> = Vec::try_from(x.flatten(0, -1)).unwrap();
        // channel 0: pixels 0 and 51 → 0.0, 0.2; channel 1: 255, 102 → 1.0, -0.2
        let expected = [0.0, 0.2, 1.0, -0.2];
        assert!(
            values
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-6),
            "{values:?}"
        );
        let back = norm.unapply(&x);
        assert!((back.double_value(&[0, 0, 0, 1]) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn host_path_matches_libtorch_path() {
        // Every byte value in every channel, in images of an odd size and a
        // count that is not a multiple of the images per rayon task.
        let (n, h, w, c) = (IMAGES_PER_TASK + 3, 5, 7, 3);
        let bytes: Vec<u8> = (0..n * h * w * c).map(|i| (i * 37 % 256) as u8).collect();
        let images = Array4::from_shape_vec((n, h, w, c), bytes).unwrap();
        let norm = Normalizer::new(
            &[0.4914, 0.4822, 0.4465],
            &[0.2470, 0.2435, 0.2616],
            Device::Cpu,
        );
        let host = norm.apply_on_host(&images);
        let libtorch = norm.apply_with_libtorch(&images);
        assert_eq!(host.size(), vec![n as i64, c as i64, h as i64, w as i64]);
        // Same layout too: channels last, which the convolutions keep.
        assert_eq!(host.stride(), libtorch.stride());
        assert_eq!(
            host.stride(),
            vec![(h * w * c) as i64, 1, (w * c) as i64, c as i64]
        );
        let gap = (&host - &libtorch).abs().max().double_value(&[]);
        let largest = libtorch.abs().max().double_value(&[]);
        // Bitwise equal where libtorch's kernel fuses the multiply-add (AVX2 and
        // up); one rounding apart at most elsewhere.
        assert!(gap <= largest * f64::from(f32::EPSILON), "gap {gap}");
    }

    #[test]
    fn host_path_handles_an_empty_batch() {
        let images = Array4::<u8>::zeros((0, 4, 4, 3));
        let norm = Normalizer::new(&[0.5; 3], &[0.25; 3], Device::Cpu);
        assert_eq!(norm.apply_on_host(&images).size(), vec![0, 3, 4, 4]);
    }
}

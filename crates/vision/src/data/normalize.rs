//! The `u8` → normalised float tensor edge: only bytes cross to the device,
//! where they are scaled and normalised.

use ndarray::Array4;
use tch::{Device, Kind, Tensor};

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

    /// `[N, H, W, C]` u8 → `[N, C, H, W]` float on the device, `(x/255 - mean) / std`.
    /// Only the u8 bytes cross to the device.
    pub fn apply(&self, images: &Array4<u8>) -> Tensor {
        let shape: Vec<i64> = images.shape().iter().map(|&d| d as i64).collect();
        let bytes = images.as_standard_layout();
        let host = Tensor::from_slice(bytes.as_slice().expect("a standard-layout copy"))
            .view(shape.as_slice());
        let x = host
            .to_device(self.device)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float);
        // shift + x · scale = (x/255 − mean) / std, in one pass, with
        // scale = 1 / (255 · std) and shift = −mean / std.
        let scale: Vec<f64> = self.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
        let shift: Vec<f64> = self
            .mean
            .iter()
            .zip(&self.std)
            .map(|(m, s)| -m / s)
            .collect();
        self.per_channel(&shift)
            .addcmul(&x, &self.per_channel(&scale))
    }

    /// Inverse of [`Normalizer::apply`] up to the byte conversion: back to `[0, 1]`.
    pub fn unapply(&self, x: &Tensor) -> Tensor {
        (x * self.per_channel(&self.std) + self.per_channel(&self.mean)).clamp(0.0, 1.0)
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
}

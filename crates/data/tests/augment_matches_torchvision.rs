//! The augmentation ops against torchvision's tensor path on uint8 images,
//! with fixed parameters: at most one grey level off anywhere, and a mean
//! absolute error under 0.05. Fixtures: `benches/reference/augment_fixtures.py`.

use ndarray::{Array3, ArrayView3};
use selfsup_data::augment;
use std::collections::HashMap;

/// CHW uint8 tensors from the fixture, as HWC arrays.
fn fixtures() -> HashMap<String, Array3<u8>> {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/augment.safetensors"
    ))
    .unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = HashMap::new();
    for (name, view) in tensors.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data().to_vec();
        if name == "input" {
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
            for i in 0..n {
                let chw = ndarray::ArrayView3::from_shape(
                    (c, h, w),
                    &data[i * c * h * w..(i + 1) * c * h * w],
                )
                .unwrap();
                out.insert(
                    format!("{i}.input"),
                    chw.permuted_axes([1, 2, 0])
                        .as_standard_layout()
                        .into_owned(),
                );
            }
        } else {
            let chw =
                ndarray::Array3::from_shape_vec((shape[0], shape[1], shape[2]), data).unwrap();
            out.insert(
                name,
                chw.permuted_axes([1, 2, 0])
                    .as_standard_layout()
                    .into_owned(),
            );
        }
    }
    out
}

fn check(op: &str, apply: impl Fn(ArrayView3<u8>) -> Array3<u8>) {
    let f = fixtures();
    for i in 0..2 {
        let got = apply(f[&format!("{i}.input")].view());
        let expected = &f[&format!("{i}.{op}")];
        assert_eq!(got.dim(), expected.dim(), "{op}: shape");
        let diffs: Vec<i32> = got
            .iter()
            .zip(expected.iter())
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .collect();
        let max = *diffs.iter().max().unwrap();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        assert!(
            max <= 1 && mean < 0.05,
            "{op} on image {i}: max diff {max}, mean {mean}"
        );
    }
}

#[test]
fn hflip() {
    check("hflip", augment::hflip);
}

#[test]
fn brightness() {
    check("brightness_1.4", |im| augment::adjust_brightness(im, 1.4));
    check("brightness_0.6", |im| augment::adjust_brightness(im, 0.6));
}

#[test]
fn contrast() {
    check("contrast_1.3", |im| augment::adjust_contrast(im, 1.3));
    check("contrast_0.5", |im| augment::adjust_contrast(im, 0.5));
}

#[test]
fn saturation() {
    check("saturation_1.5", |im| augment::adjust_saturation(im, 1.5));
    check("saturation_0.3", |im| augment::adjust_saturation(im, 0.3));
}

#[test]
fn grayscale() {
    check("grayscale", augment::grayscale);
}

#[test]
fn solarize() {
    check("solarize_128", |im| augment::solarize(im, 128));
}

#[test]
fn hue() {
    check("hue_0.1", |im| augment::adjust_hue(im, 0.1));
    check("hue_-0.3", |im| augment::adjust_hue(im, -0.3));
}

#[test]
fn gaussian_blur() {
    check("blur_5_1.2", |im| augment::gaussian_blur(im, 5, 1.2));
    check("blur_9_0.7", |im| augment::gaussian_blur(im, 9, 0.7));
}

#[test]
fn resized_crop_up_and_down() {
    check("resized_crop_up", |im| {
        augment::resized_crop(im, 3, 5, 9, 11, 16, 16)
    });
    check("resized_crop_down", |im| {
        augment::resized_crop(im, 1, 2, 18, 20, 8, 8)
    });
}

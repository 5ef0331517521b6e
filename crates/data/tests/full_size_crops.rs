//! Full-size photographs: the decoder and RandomResizedCrop's boxes in the
//! photo's own coordinates against torchvision on a non-square photo, and
//! reduced-scale (DCT) decoding against the full decode. Fixtures:
//! `benches/reference/full_size_fixtures.py` (photo.jpg is a Getty Open
//! Content photograph, CC0, re-encoded at 500 x 333).

use ndarray::{s, Array3, ArrayView3};
use selfsup_data::augment::resized_crop;
use selfsup_data::decode::{decode_file, rgb_array, rgb_image, DEFAULT_MAX_PIXELS};
use selfsup_data::jpeg::decode_jpeg;
use selfsup_data::streaming::{ImageIndex, OnCorrupt};
use selfsup_data::views::{view_rng, CropBox, ViewRecipe};
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn photo_path() -> std::path::PathBuf {
    Path::new(FIXTURES).join("photo.jpg")
}

/// The CHW uint8 tensor `name` of the fixture file, as HWC.
fn fixture(name: &str) -> Array3<u8> {
    let bytes = std::fs::read(Path::new(FIXTURES).join("full_size.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap();
    let shape = view.shape();
    Array3::from_shape_vec((shape[0], shape[1], shape[2]), view.data().to_vec())
        .unwrap()
        .permuted_axes([1, 2, 0])
        .as_standard_layout()
        .into_owned()
}

/// (largest, mean) absolute difference in grey levels.
fn difference(a: ArrayView3<u8>, b: ArrayView3<u8>) -> (u8, f64) {
    assert_eq!(a.dim(), b.dim());
    let diffs: Vec<u8> = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| x.abs_diff(*y))
        .collect();
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
    (*diffs.iter().max().unwrap(), mean)
}

#[test]
fn decoding_matches_pil_at_full_and_half_scale() {
    let photo = decode_file(&photo_path(), DEFAULT_MAX_PIXELS).unwrap();
    assert_eq!(photo.dim(), (333, 500, 3));
    let (max, _) = difference(
        photo.slice(s![100..164, 200..264, ..]),
        fixture("full_patch").view(),
    );
    assert!(max <= 1, "full decode differs from PIL's by {max} levels");
    let bytes = std::fs::read(photo_path()).unwrap();
    let half = decode_jpeg(&bytes, 2).unwrap();
    assert_eq!(half.dim(), (167, 250, 3));
    let (max, _) = difference(
        half.slice(s![50..114, 100..164, ..]),
        fixture("half_patch").view(),
    );
    assert!(
        max <= 1,
        "DCT 1/2 decode differs from PIL's draft mode by {max} levels"
    );
}

#[test]
fn crops_in_source_coordinates_match_torchvision() {
    let photo = decode_file(&photo_path(), DEFAULT_MAX_PIXELS).unwrap();
    for (name, (top, left, height, width, side)) in [
        ("wide", (13, 110, 300, 380, 96)),
        ("tall", (40, 7, 280, 150, 64)),
        ("small", (200, 400, 40, 52, 64)),
    ] {
        let ours = resized_crop(photo.view(), top, left, height, width, side, side);
        let (max, mean) = difference(ours.view(), fixture(&format!("crop_{name}")).view());
        assert!(max <= 1 && mean < 0.05, "{name}: max {max}, mean {mean}");
    }
}

/// A recipe of crops only, large enough (scale 0.6-1 of a 500 x 333 photo)
/// for every box to cover at least twice the 64-px output.
fn crops_only() -> ViewRecipe {
    ViewRecipe {
        size: 64,
        scale: (0.6, 1.0),
        ratio: (0.75, 1.333),
        jitter: None,
        grayscale_p: 0.0,
        blur: None,
        solarize_p: 0.0,
        flip_p: 0.0,
    }
}

/// The box of `full` resized with an antialiasing (triangle) filter, as
/// PIL's bilinear resize in torchvision's default pipeline does.
fn antialiased(full: &Array3<u8>, (top, left, height, width): CropBox, side: u32) -> Array3<u8> {
    let image = rgb_image(full.clone());
    let cropped =
        image::imageops::crop_imm(&image, left as u32, top as u32, width as u32, height as u32)
            .to_image();
    rgb_array(image::imageops::resize(
        &cropped,
        side,
        side,
        image::imageops::FilterType::Triangle,
    ))
}

#[test]
fn reduced_scale_decoding_gives_the_same_crops_within_a_small_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::copy(photo_path(), dir.path().join("a/photo.jpg")).unwrap();
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    let full = decode_file(&photo_path(), DEFAULT_MAX_PIXELS).unwrap();
    let recipe = crops_only();
    for epoch in 0..4 {
        let (streamed, _) = index
            .views(
                &[0],
                std::slice::from_ref(&recipe),
                (3, epoch),
                OnCorrupt::Fail,
            )
            .unwrap();
        let crop = recipe.crop_box((333, 500), &mut view_rng(3, epoch, 0, 0));
        let point_sampled = resized_crop(full.view(), crop.0, crop.1, crop.2, crop.3, 64, 64);
        let scaled = streamed[0].index_axis(ndarray::Axis(0), 0);
        assert_ne!(
            scaled,
            point_sampled.view(),
            "expected a reduced-scale decode"
        );
        let reference = antialiased(&full, crop, 64);
        let (_, mean) = difference(scaled, reference.view());
        let (_, aliased) = difference(point_sampled.view(), reference.view());
        eprintln!("epoch {epoch}: box {crop:?}, DCT-scaled {mean:.2}, point-sampled {aliased:.2}");
        assert!(
            mean < 3.0 && mean < aliased / 2.0,
            "epoch {epoch}: {mean} levels off the antialiased crop, full decode {aliased}"
        );
    }
}

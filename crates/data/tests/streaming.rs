//! Streaming image sets: the index, batches equal to the in-memory path's,
//! crops of images of any size, and corrupt files failing or skipped.

use selfsup_data::augment::resized_crop;
use selfsup_data::decode::DEFAULT_MAX_PIXELS;
use selfsup_data::image_folder::read_image_folder;
use selfsup_data::streaming::{ImageIndex, OnCorrupt};
use selfsup_data::views::{make_views, ViewRecipe};
use std::path::Path;

/// A PNG of `width` x `height` with a pattern that depends on `seed`.
fn write_png(path: &Path, width: u32, height: u32, seed: u32) {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            ((x * 7 + seed * 31) % 256) as u8,
            ((y * 13 + seed) % 256) as u8,
            ((x + y + seed * 3) % 256) as u8,
        ])
    })
    .save(path)
    .unwrap();
}

/// `root/<class>/<n>.png`, two classes of three images of `size(i)`.
fn folder(root: &Path, size: impl Fn(u32) -> (u32, u32)) {
    for (c, class) in ["cat", "dog"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..3 {
            let n = c as u32 * 3 + i;
            let (w, h) = size(n);
            write_png(&root.join(class).join(format!("{i}.png")), w, h, n);
        }
    }
}

#[test]
fn the_index_lists_labels_and_sizes_without_decoding() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), |_| (8, 8));
    std::fs::write(dir.path().join("cat/readme.txt"), "not an image").unwrap();
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    assert_eq!(index.classes, vec!["cat", "dog"]);
    let labels: Vec<i64> = index.files.iter().map(|f| f.label).collect();
    assert_eq!(labels, vec![0, 0, 0, 1, 1, 1]);
    let on_disk: u64 = index
        .files
        .iter()
        .map(|f| std::fs::metadata(&f.path).unwrap().len())
        .sum();
    assert_eq!(index.total_bytes(), on_disk);
    assert_eq!(index.decode(4).unwrap().dim(), (8, 8, 3));
}

#[test]
fn streamed_batches_equal_in_memory_batches() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), |_| (24, 24));
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    let memory = read_image_folder(dir.path(), None, DEFAULT_MAX_PIXELS).unwrap();
    let mut recipe = ViewRecipe::simclr_cifar();
    recipe.size = 16;
    let recipes = vec![recipe.clone(), recipe];
    let indices = [5, 0, 3, 2];
    for epoch in [0, 7] {
        let (streamed, kept) = index
            .views(&indices, &recipes, (11, epoch), OnCorrupt::Fail)
            .unwrap();
        assert_eq!(kept, indices);
        let in_memory = make_views(&memory, &indices, &recipes, 11, epoch);
        assert_eq!(streamed, in_memory, "epoch {epoch}");
    }
}

#[test]
fn images_of_any_size_are_cropped_in_their_own_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), |n| (40 + 30 * n, 30 + 17 * n));
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    let mut recipe = ViewRecipe::simclr_cifar();
    recipe.size = 20;
    let (views, kept) = index
        .views(
            &[0, 1, 2, 3, 4, 5],
            &[recipe.clone()],
            (0, 0),
            OnCorrupt::Fail,
        )
        .unwrap();
    assert_eq!(kept.len(), 6);
    assert_eq!(views[0].shape(), &[6, 20, 20, 3]);
    // Scale 1 and every ratio: the box is the whole original photo (190x115
    // for the widest), resized once to 20x20, not a thumbnail of it.
    let plain = ViewRecipe {
        size: 20,
        scale: (1.0, 1.0),
        ratio: (0.1, 10.0),
        jitter: None,
        grayscale_p: 0.0,
        blur: None,
        solarize_p: 0.0,
        flip_p: 0.0,
    };
    let (whole, _) = index
        .views(&[5], &[plain], (0, 0), OnCorrupt::Fail)
        .unwrap();
    let original = index.decode(5).unwrap();
    assert_eq!(original.dim(), (30 + 17 * 5, 40 + 30 * 5, 3));
    let (h, w, _) = original.dim();
    let expected = resized_crop(original.view(), 0, 0, h, w, 20, 20);
    assert_eq!(whole[0].index_axis(ndarray::Axis(0), 0), expected);
}

#[test]
fn corrupt_files_fail_by_name_or_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), |_| (16, 16));
    let broken = dir.path().join("dog/1.png");
    std::fs::write(&broken, b"\x89PNG truncated").unwrap();
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    let mut recipe = ViewRecipe::simclr_cifar();
    recipe.size = 8;
    let recipes = [recipe];
    let error = index
        .views(&[0, 4, 5], &recipes, (0, 0), OnCorrupt::Fail)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("1.png") && error.contains("cannot decode"),
        "{error}"
    );
    let (views, kept) = index
        .views(&[0, 4, 5], &recipes, (0, 0), OnCorrupt::Skip)
        .unwrap();
    assert_eq!(kept, vec![0, 5]);
    assert_eq!(views[0].shape()[0], 2);
    let error = index
        .views(&[4], &recipes, (0, 0), OnCorrupt::Skip)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no image"), "{error}");
}

#[test]
fn held_out_split_and_resized_evaluation_images_match_the_decoded_set() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), |n| (10 + n, 12));
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    let memory = read_image_folder(dir.path(), Some((8, 8)), DEFAULT_MAX_PIXELS).unwrap();
    let (train, held) = index.split_every(3);
    let (memory_train, memory_held) = memory.split_every(3).unwrap();
    assert_eq!((train.len(), held.len()), (4, 2));
    let labels = |i: &ImageIndex| i.files.iter().map(|f| f.label).collect::<Vec<_>>();
    assert_eq!(labels(&train), memory_train.labels);
    assert_eq!(labels(&held), memory_held.labels);
    // The same bilinear resize as the in-memory ImageFolder reader.
    assert_eq!(
        held.resized(&[0, 1], (8, 8), None).unwrap(),
        memory_held.images
    );
}

#[test]
fn evaluation_can_keep_the_aspect_and_cut_the_centre() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("wide")).unwrap();
    // 60 x 20: red, green and blue thirds.
    let image = image::RgbImage::from_fn(60, 20, |x, _| {
        let mut pixel = [0u8; 3];
        pixel[(x / 20) as usize] = 255;
        image::Rgb(pixel)
    });
    image.save(dir.path().join("wide/0.png")).unwrap();
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    let squashed = index.resized(&[0], (10, 10), None).unwrap();
    let centred = index.resized(&[0], (10, 10), Some(1.0)).unwrap();
    let mean = |batch: &ndarray::Array4<u8>, channel: usize| {
        batch
            .index_axis(ndarray::Axis(3), channel)
            .mapv(f64::from)
            .mean()
            .unwrap()
    };
    // Squashed, the three thirds stay; centred, only the green one is left
    // (but for the filter's blending at its edges).
    assert!(mean(&squashed, 0) > 60.0 && mean(&squashed, 2) > 60.0);
    assert!(mean(&centred, 0) < 5.0 && mean(&centred, 2) < 5.0 && mean(&centred, 1) > 245.0);
    // 0.5: the shorter side goes to 20 and the centre 10 x 10 of the
    // resulting 60 x 20 lies inside the green third.
    let half = index.resized(&[0], (10, 10), Some(0.5)).unwrap();
    assert_eq!((mean(&half, 0), mean(&half, 1)), (0.0, 255.0));
}

/// A 1.5 KB JPEG whose header declares 65500 x 65500 pixels: refused from
/// its header in training batches (or skipped), in evaluation's resize and
/// in the in-memory reader, and a smaller configured limit applies too.
#[test]
fn a_jpeg_declaring_a_huge_size_is_refused_everywhere_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), |_| (16, 16));
    let small = image::RgbImage::from_pixel(16, 16, image::Rgb([40, 90, 200]));
    let mut bomb = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bomb, 90)
        .encode_image(&small)
        .unwrap();
    let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xDC, 0xFF, 0xDC]);
    std::fs::write(dir.path().join("dog/1.png"), &bomb).unwrap();
    let index = ImageIndex::image_folder(dir.path()).unwrap();
    let mut recipe = ViewRecipe::simclr_cifar();
    recipe.size = 8;
    let recipes = [recipe];
    let error = index
        .views(&[0, 4, 5], &recipes, (0, 0), OnCorrupt::Fail)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("1.png") && error.contains("65500x65500"),
        "{error}"
    );
    let (_, kept) = index
        .views(&[0, 4, 5], &recipes, (0, 0), OnCorrupt::Skip)
        .unwrap();
    assert_eq!(kept, vec![0, 5]);
    let error = index.resized(&[4], (8, 8), None).unwrap_err().to_string();
    assert!(error.contains("data.max_image_pixels"), "{error}");
    let error = read_image_folder(dir.path(), Some((8, 8)), DEFAULT_MAX_PIXELS)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("1.png") && error.contains("over the limit"),
        "{error}"
    );
    let strict = index.with_max_pixels(100);
    let error = strict.resized(&[0], (8, 8), None).unwrap_err().to_string();
    assert!(
        error.contains("16x16 = 256 pixels, over the limit of 100"),
        "{error}"
    );
}

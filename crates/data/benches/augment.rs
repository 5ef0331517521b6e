//! Criterion benchmarks of each augmentation op on one 32×32 RGB image (the
//! CIFAR size the SimCLR pipeline works at) and of a whole two-view batch of
//! 256. Run with `cargo bench -p selfsup-data`; `cargo xtask bench data`
//! compares the whole pipeline with torchvision's.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ndarray::Array4;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use selfsup_data::augment;
use selfsup_data::views::{color_jitter, make_views, ColorJitter, ViewRecipe};
use selfsup_data::ImageDataset;

fn images(n: usize) -> ImageDataset {
    let pixels = Array4::from_shape_fn((n, 32, 32, 3), |(i, y, x, c)| {
        ((i * 131 + y * 17 + x * 29 + c * 71) % 256) as u8
    });
    ImageDataset::new(pixels, vec![0; n], 1).expect("valid")
}

fn ops(c: &mut Criterion) {
    let data = images(1);
    let image = data.images.index_axis(ndarray::Axis(0), 0);
    c.bench_function("resized_crop 20x24 -> 32x32", |b| {
        b.iter(|| augment::resized_crop(black_box(image), 3, 5, 20, 24, 32, 32))
    });
    c.bench_function("hflip", |b| b.iter(|| augment::hflip(black_box(image))));
    c.bench_function("adjust_brightness", |b| {
        b.iter(|| augment::adjust_brightness(black_box(image), 1.3))
    });
    c.bench_function("adjust_contrast", |b| {
        b.iter(|| augment::adjust_contrast(black_box(image), 0.7))
    });
    c.bench_function("adjust_saturation", |b| {
        b.iter(|| augment::adjust_saturation(black_box(image), 1.2))
    });
    c.bench_function("adjust_hue", |b| {
        b.iter(|| augment::adjust_hue(black_box(image), 0.08))
    });
    c.bench_function("grayscale", |b| {
        b.iter(|| augment::grayscale(black_box(image)))
    });
    c.bench_function("solarize", |b| {
        b.iter(|| augment::solarize(black_box(image), 128))
    });
    c.bench_function("gaussian_blur k3", |b| {
        b.iter(|| augment::gaussian_blur(black_box(image), 3, 1.0))
    });
    let jitter = ColorJitter {
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.2,
        hue: 0.1,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    c.bench_function("color_jitter (0.4, 0.4, 0.2, 0.1)", |b| {
        b.iter(|| color_jitter(black_box(image), &jitter, &mut rng))
    });
    let recipe = ViewRecipe::simclr_cifar();
    c.bench_function("simclr view", |b| {
        b.iter(|| recipe.apply(black_box(image), &mut rng))
    });
}

fn batches(c: &mut Criterion) {
    let data = images(256);
    let indices: Vec<usize> = (0..256).collect();
    let recipes = [ViewRecipe::simclr_cifar(), ViewRecipe::simclr_cifar()];
    let mut epoch = 0;
    c.bench_function("two-view simclr batch of 256", |b| {
        b.iter(|| {
            epoch += 1;
            make_views(&data, &indices, &recipes, 0, epoch)
        })
    });
}

criterion_group!(benches, ops, batches);
criterion_main!(benches);

//! JPEG decoders side by side: the `image` crate (zune-jpeg) against
//! libjpeg-turbo through `selfsup_data::jpeg`, at full size and with DCT
//! scaling, on the real photographs of `../shared/datasets/photos` (about
//! 1024 px) and on the same photos re-encoded at ImageNet's typical size
//! (about 400 x 350, quality 90). Run with `cargo bench -p selfsup-data
//! --bench jpeg`; skipped where the shared photos are not present.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use selfsup_data::jpeg::decode_jpeg;
use std::path::Path;

fn photos() -> Vec<Vec<u8>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/photos");
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("readable photo"))
        .collect()
}

fn imagenet_sized(photo: &[u8]) -> Vec<u8> {
    let image = image::load_from_memory(photo)
        .expect("photo decodes")
        .to_rgb8();
    let small = image::imageops::resize(&image, 400, 350, image::imageops::FilterType::Triangle);
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&small)
        .expect("encodes");
    bytes
}

fn decoders(c: &mut Criterion) {
    let full = photos();
    if full.is_empty() {
        eprintln!("../shared/datasets/photos not found: nothing to measure");
        return;
    }
    let small: Vec<Vec<u8>> = full.iter().map(|p| imagenet_sized(p)).collect();
    for (name, set) in [("1024px photos", &full), ("400x350 q90", &small)] {
        c.bench_function(&format!("{name}: image crate (zune-jpeg)"), |b| {
            b.iter(|| {
                for bytes in set {
                    black_box(image::load_from_memory(bytes).unwrap().to_rgb8());
                }
            })
        });
        for denominator in [1, 2, 4] {
            c.bench_function(&format!("{name}: libjpeg-turbo 1/{denominator}"), |b| {
                b.iter(|| {
                    for bytes in set {
                        black_box(decode_jpeg(bytes, denominator).unwrap());
                    }
                })
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = decoders
}
criterion_main!(benches);

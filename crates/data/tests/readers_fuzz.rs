//! Every reader of user files, fed random bytes and truncated or corrupted
//! copies of valid files: it returns an error (naming the file) or a value,
//! and never panics. Shrinking gives the smallest input that panics.

use proptest::prelude::*;
use selfsup_data::bpe::Gpt2Tokenizer;
use selfsup_data::decode::DEFAULT_MAX_PIXELS;
use selfsup_data::token_file::{write_token_file, TokenFile, Tokens};
use selfsup_data::tokenizer::SavedTokenizer;
use selfsup_data::{cifar, idx, image_folder, stl10};
use std::path::Path;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// `valid`, cut at `cut` (a fraction of its length) and with `flips` bytes
/// overwritten at spread positions: the damaged files a user actually has.
fn damage(valid: &[u8], cut: f64, flips: &[(f64, u8)]) -> Vec<u8> {
    let mut bytes = valid[..((valid.len() as f64 * cut) as usize).min(valid.len())].to_vec();
    for &(at, value) in flips {
        if !bytes.is_empty() {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] = value;
        }
    }
    bytes
}

fn damaged() -> impl Strategy<Value = (f64, Vec<(f64, u8)>)> {
    (
        0.0..=1.0f64,
        prop::collection::vec((0.0..=1.0f64, any::<u8>()), 0..6),
    )
}

/// Fails the case on an error that does not name `file`.
fn names(
    result: Result<impl Sized, selfsup_data::Error>,
    file: &Path,
) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        let text = error.to_string();
        let name = file.file_name().unwrap().to_string_lossy();
        prop_assert!(
            text.contains(name.as_ref()) || text.contains("images but"),
            "{text}"
        );
    }
    Ok(())
}

fn valid_mnist(n: usize) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..n * 4 * 4).map(|i| (i * 7) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (
        idx::encode_idx(&[n, 4, 4], &pixels),
        idx::encode_idx(&[n], &labels),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_files(random in prop::collection::vec(any::<u8>(), 0..64), (cut, flips) in damaged()) {
        let dir = tempfile::tempdir().unwrap();
        let (images, labels) = valid_mnist(6);
        let (images_path, labels_path) = (dir.path().join("x-images"), dir.path().join("x-labels"));
        for bytes in [random, damage(&images, cut, &flips)] {
            std::fs::write(&images_path, &bytes).unwrap();
            std::fs::write(&labels_path, damage(&labels, 1.0 - cut / 2.0, &flips)).unwrap();
            let result = idx::read_mnist(&images_path, &labels_path);
            if let Err(error) = &result {
                let text = error.to_string();
                prop_assert!(text.contains("x-images") || text.contains("x-labels") || text.contains("label"), "{text}");
            }
        }
    }

    #[test]
    fn idx_headers(dims in prop::collection::vec(any::<u32>(), 3), data in prop::collection::vec(any::<u8>(), 0..64)) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0, 0, 8, 3];
        for d in &dims {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend(&data);
        let (images, labels) = (dir.path().join("x-images"), dir.path().join("x-labels"));
        std::fs::write(&images, &bytes).unwrap();
        std::fs::write(&labels, idx::encode_idx(&[dims[0] as usize % 4], &[1, 2, 3][..dims[0] as usize % 4])).unwrap();
        names(idx::read_mnist(&images, &labels), &images).or_else(|_| names(idx::read_mnist(&images, &labels), &labels))?;
    }

    #[test]
    fn cifar_batches(random in prop::collection::vec(any::<u8>(), 0..4000), (cut, flips) in damaged()) {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<(Vec<u8>, Vec<u8>)> = (0..3u8).map(|i| (vec![i], vec![i; 32 * 32 * 3])).collect();
        let valid = cifar::encode_records(&records);
        let path = dir.path().join("test_batch.bin");
        for bytes in [random, damage(&valid, cut, &flips)] {
            std::fs::write(&path, &bytes).unwrap();
            names(cifar::read_cifar10(dir.path(), cifar::Split::Test), &path)?;
        }
    }

    #[test]
    fn stl10_files(random in prop::collection::vec(any::<u8>(), 0..100), (cut, flips) in damaged()) {
        let dir = tempfile::tempdir().unwrap();
        let image = vec![9u8; 96 * 96 * 3];
        let path = dir.path().join("train_X.bin");
        std::fs::write(dir.path().join("train_y.bin"), damage(&[1, 2], 1.0, &flips)).unwrap();
        for bytes in [random, damage(&image.repeat(2), cut, &flips)] {
            std::fs::write(&path, &bytes).unwrap();
            let result = stl10::read_stl10(dir.path(), "train");
            if let Err(error) = &result {
                let text = error.to_string();
                prop_assert!(text.contains("train_X.bin") || text.contains("train_y.bin"), "{text}");
            }
        }
    }

    #[test]
    fn token_files(random in prop::collection::vec(any::<u8>(), 0..64), (cut, flips) in damaged(), wide in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.tokens");
        let vocab = if wide { 70_000 } else { 300 };
        write_token_file(&path, &[1, 2, 3, 250, 7, 0, 299], vocab).unwrap();
        let valid = std::fs::read(&path).unwrap();
        for bytes in [random, damage(&valid, cut, &flips)] {
            std::fs::write(&path, &bytes).unwrap();
            match TokenFile::open(&path) {
                Ok(file) => {
                    // Reading every token of what opened must not panic either.
                    let file = std::sync::Arc::new(file);
                    let span = file.span(0..file.len());
                    let _ = span.to_vec(0..span.len());
                }
                Err(error) => prop_assert!(error.to_string().contains("corpus.tokens"), "{error}"),
            }
        }
    }

    #[test]
    fn bpe_files(encoder in "[\\PC]{0,40}", merges in "[\\PC]{0,40}", (cut, flips) in damaged()) {
        let dir = tempfile::tempdir().unwrap();
        let (encoder_path, merges_path) = (dir.path().join("encoder.json"), dir.path().join("vocab.bpe"));
        let valid_encoder = br#"{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}"#;
        for (json, bpe) in [
            (encoder.clone().into_bytes(), merges.clone().into_bytes()),
            (damage(valid_encoder, cut, &flips), b"#version: 0.2\na b\n".to_vec()),
            (valid_encoder.to_vec(), damage(b"#version: 0.2\na b\n", cut, &flips)),
        ] {
            std::fs::write(&encoder_path, json).unwrap();
            std::fs::write(&merges_path, bpe).unwrap();
            if let Ok(tokenizer) = Gpt2Tokenizer::load(&encoder_path, &merges_path) {
                let ids = tokenizer.encode("ab ba a\u{e9}");
                let _ = tokenizer.decode(&ids);
            }
        }
    }

    #[test]
    fn saved_tokenizers(text in "[\\PC]{0,80}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.toml");
        std::fs::write(&path, &text).unwrap();
        if let Ok(saved) = SavedTokenizer::read(&path) {
            let _ = saved.load();
        }
    }

    #[test]
    fn image_files(random in prop::collection::vec(any::<u8>(), 0..200), (cut, flips) in damaged()) {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("cats");
        std::fs::create_dir(&class).unwrap();
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(2, 2, image::Rgb([200, 100, 50]))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let png = png.into_inner();
        for (name, bytes) in [("a.jpg", random), ("b.png", damage(&png, cut, &flips))] {
            let path = class.join(name);
            std::fs::write(&path, &bytes).unwrap();
            names(image_folder::read_image_folder(dir.path(), Some((4, 4)), DEFAULT_MAX_PIXELS), &path)?;
            std::fs::remove_file(&path).unwrap();
        }
    }
}

//! `cargo run --release -p selfsup-vision --example bench_data_full --
//! --data-dir <ImageFolder> [--threads 2] [--batches 8]`: SimCLR's ImageNet
//! two-view pipeline streamed from full-size JPEGs (decode, RandomResizedCrop
//! 224 on the original photo, flip, jitter, grayscale, blur; then `u8` →
//! normalised float tensors) in batches of 256, images per second, and the
//! process's peak RSS. `benches/reference/bench_data_full.py` is torchvision's
//! equivalent; `cargo xtask bench data --full-size` runs both.

use selfsup_data::sampler::EpochSampler;
use selfsup_data::streaming::{ImageIndex, OnCorrupt};
use selfsup_data::views::{ColorJitter, ViewRecipe};
use selfsup_vision::data::Normalizer;
use std::time::Instant;
use tch::Device;

/// The value after `--name` on the command line.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

/// SimCLR's ImageNet view: crop 0.08-1 to 224, jitter (0.8, 0.8, 0.8, 0.2)
/// p 0.8, grayscale p 0.2, blur p 0.5 (kernel 23), flip.
fn simclr_imagenet() -> ViewRecipe {
    let jitter = ColorJitter {
        brightness: 0.8,
        contrast: 0.8,
        saturation: 0.8,
        hue: 0.2,
    };
    ViewRecipe {
        size: 224,
        scale: (0.08, 1.0),
        ratio: (3.0 / 4.0, 4.0 / 3.0),
        jitter: Some((jitter, 0.8)),
        grayscale_p: 0.2,
        blur: Some((0.5, 23, (0.1, 2.0))),
        solarize_p: 0.0,
        flip_p: 0.5,
    }
}

/// Peak resident memory of this process in MB (Linux), else 0.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs the benchmark with `--threads` rayon and libtorch threads.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    selfsup_train::allocator::keep_tensor_memory();
    let root =
        std::path::PathBuf::from(arg("--data-dir").ok_or("--data-dir <ImageFolder> is required")?);
    let threads: usize = arg("--threads").map_or(Ok(2), |t| t.parse())?;
    let batches: usize = arg("--batches").map_or(Ok(8), |t| t.parse())?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    tch::set_num_threads(threads as i32);
    let index = ImageIndex::image_folder(&root)?;
    let recipes = [simclr_imagenet(), simclr_imagenet()];
    let normalizer = Normalizer::new(&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225], Device::Cpu);
    let sampler = EpochSampler {
        len: index.len(),
        batch_size: 256,
        drop_last: true,
        seed: 0,
    };
    let order = sampler.epoch(0);
    let batch = |i: usize| -> Result<(), Box<dyn std::error::Error>> {
        let (views, _) = index.views(&order[i % order.len()], &recipes, (0, 0), OnCorrupt::Fail)?;
        for view in &views {
            let _ = normalizer.apply(view);
        }
        Ok(())
    };
    batch(0)?;
    let start = Instant::now();
    for i in 0..batches {
        batch(i + 1)?;
    }
    println!(
        "full-size two-view simclr images/s\t{:.1}",
        (batches * 256) as f64 / start.elapsed().as_secs_f64()
    );
    println!("full-size peak RSS MB\t{:.0}", peak_rss_mb());
    Ok(())
}

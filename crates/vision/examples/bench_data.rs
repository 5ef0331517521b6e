//! `cargo run --release -p selfsup-vision --example bench_data -- --data-dir
//! <ImageFolder> [--threads 2] [--batches 40]`: JPEG decode throughput of the
//! ImageFolder reader, and two-view SimCLR CIFAR batches (views, then `u8` →
//! normalised float tensors) per second, with images held decoded in memory.
//! `benches/reference/bench_data.py` measures torchvision's equivalent;
//! `cargo xtask bench data` runs both and prints the ratios.

use selfsup_data::decode::DEFAULT_MAX_PIXELS;
use selfsup_data::image_folder::read_image_folder;
use selfsup_data::sampler::EpochSampler;
use selfsup_data::views::{make_views, ViewRecipe};
use selfsup_vision::data::Normalizer;
use std::path::Path;
use std::time::Instant;
use tch::Device;

/// The value after `--name` on the command line.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

/// Runs the data benchmark with `--threads` rayon and libtorch threads.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    selfsup_train::allocator::keep_tensor_memory();
    let root =
        std::path::PathBuf::from(arg("--data-dir").ok_or("--data-dir <ImageFolder> is required")?);
    let threads: usize = arg("--threads").map_or(Ok(2), |t| t.parse())?;
    let batches: usize = arg("--batches").map_or(Ok(40), |t| t.parse())?;
    let root: &Path = &root;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    tch::set_num_threads(threads as i32);
    let start = Instant::now();
    let data = read_image_folder(root, None, DEFAULT_MAX_PIXELS)?;
    println!(
        "jpeg decode images/s\t{:.1}",
        data.len() as f64 / start.elapsed().as_secs_f64()
    );
    let recipes = [ViewRecipe::simclr_cifar(), ViewRecipe::simclr_cifar()];
    let normalizer = Normalizer::new(
        &[0.4914, 0.4822, 0.4465],
        &[0.2470, 0.2435, 0.2616],
        Device::Cpu,
    );
    let sampler = EpochSampler {
        len: data.len(),
        batch_size: 256,
        drop_last: true,
        seed: 0,
    };
    let order = sampler.epoch(0);
    let batch = |i: usize| {
        let views = make_views(&data, &order[i % order.len()], &recipes, 0, 0);
        views
            .iter()
            .map(|v| normalizer.apply(v))
            .collect::<Vec<_>>()
    };
    for i in 0..3 {
        let _ = batch(i);
    }
    let start = Instant::now();
    for i in 0..batches {
        let _ = batch(i + 3);
    }
    println!(
        "two-view simclr images/s\t{:.1}",
        (batches * 256) as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

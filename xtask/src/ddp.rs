//! `cargo xtask bench ddp`: what data parallelism costs on one machine.
//! The CIFAR-10 SimCLR small-CNN recipe trains the same global batch as
//! 2 processes × 1 thread (`--nproc-per-node 2`, Gloo on loopback) and as
//! 1 process × 2 threads, alternating for `rounds` rounds; each side keeps
//! its best training rate (images/s from `summary.toml`, the loop alone).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Global batch of both sides (the recipe's 256).
const GLOBAL_BATCH: usize = 256;
/// Optimizer steps per run: enough to pass the first steps' warm-up.
const STEPS: usize = 40;

/// Runs both sides `rounds` times and prints their best rates and the ratio.
pub fn run(root: &Path, archive: &Path, rounds: usize) -> Result<()> {
    if !archive.is_file() {
        bail!(
            "{} not found: pass --archive <cifar10-jpeg.tar.gz>",
            archive.display()
        );
    }
    let scratch = std::env::temp_dir().join(format!("selfsup-bench-ddp-{}", std::process::id()));
    let images = scratch.join("cifar10");
    std::fs::create_dir_all(&images)?;
    crate::run(
        Command::new("tar")
            .arg("xzf")
            .arg(archive)
            .arg("-C")
            .arg(&images),
    )
    .context("unpacking the archive with tar")?;
    let (mut ranks, mut alone) = (0.0f64, 0.0f64);
    for round in 1..=rounds.max(1) {
        eprintln!("xtask: bench ddp, round {round} of {rounds}: 2 processes x 1 thread");
        let runs = scratch.join(format!("round{round}-ddp"));
        ranks = ranks.max(rate(root, &images, &runs, 2)?);
        eprintln!("xtask: bench ddp, round {round} of {rounds}: 1 process x 2 threads");
        let runs = scratch.join(format!("round{round}-alone"));
        alone = alone.max(rate(root, &images, &runs, 1)?);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("vision-simclr cifar10-cpu (small CNN), global batch {GLOBAL_BATCH}, {STEPS} steps, best of {rounds}:");
    println!("  2 processes x 1 thread (Gloo)  {ranks:>8.1} images/s");
    println!("  1 process x 2 threads          {alone:>8.1} images/s");
    println!("  ratio                          {:>8.2}", ranks / alone);
    Ok(())
}

/// One training run on `nproc` processes sharing two cores; its images/s.
fn rate(root: &Path, images: &Path, runs: &Path, nproc: usize) -> Result<f64> {
    let threads = (2 / nproc).max(1).to_string();
    let mut command = Command::new(root.join("target/release/selfsup"));
    command
        .current_dir(root)
        .env("RAYON_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .args([
            "train",
            "vision-simclr",
            "--recipe",
            "cifar10-cpu",
            "--data",
            "imagefolder",
            "--data-dir",
        ])
        .arg(images)
        .arg("--runs")
        .arg(runs)
        .args([
            "--set",
            &format!("trainer.batch_size={}", GLOBAL_BATCH / nproc),
        ])
        .args(["--set", &format!("trainer.max_steps={STEPS}")])
        // A smaller k-NN memory bank: the evaluations are not what is measured.
        .args(["--set", "data.max_images=10240"]);
    if nproc > 1 {
        command.args(["--nproc-per-node", &nproc.to_string()]);
    }
    crate::run(&mut command)?;
    let run = crate::quality::run_folder(runs)?;
    let summary: toml::Table = std::fs::read_to_string(run.join("summary.toml"))?.parse()?;
    match summary.get("images_per_second") {
        Some(toml::Value::Float(x)) => Ok(*x),
        _ => bail!(
            "{}: no images_per_second",
            run.join("summary.toml").display()
        ),
    }
}

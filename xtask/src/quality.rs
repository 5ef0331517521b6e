//! `cargo xtask bench quality <task>`: trains a vision task's CPU-budget
//! CIFAR-10 recipe with selfsup and with its plain-PyTorch twin
//! (`benches/reference/quality_vision.py`, which reads the same resolved
//! config) for the same number of steps on the real CIFAR-10 images, then
//! prints k-NN top-1 on the test split for both, trained and at random
//! initialisation, and each side's training time.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the comparison needs to know.
pub struct Quality<'a> {
    /// The task, e.g. `vision-simclr`.
    pub task: &'a str,
    /// The CIFAR-10 JPEG archive.
    pub archive: &'a Path,
    /// Threads for both sides (libtorch threads and data workers).
    pub threads: usize,
    /// `--set` overrides for both sides (e.g. `trainer.max_steps=400`).
    pub overrides: &'a [String],
}

/// One side's numbers.
#[derive(Debug, Default)]
struct Side {
    steps: f64,
    train_seconds: f64,
    images_per_second: f64,
    final_loss: f64,
    knn: f64,
    knn_random: f64,
}

fn number(table: &toml::Table, key: &str) -> Result<f64> {
    match table.get(key) {
        Some(toml::Value::Float(x)) => Ok(*x),
        Some(toml::Value::Integer(x)) => Ok(*x as f64),
        _ => bail!("summary has no number `{key}`"),
    }
}

fn side(table: &toml::Table) -> Result<Side> {
    Ok(Side {
        steps: number(table, "steps")?,
        train_seconds: number(table, "train_seconds")?,
        images_per_second: number(table, "images_per_second")?,
        final_loss: number(table, "final_loss")?,
        knn: number(table, "knn_top1")?,
        knn_random: number(table, "knn_top1_random_init")?,
    })
}

/// The only run folder under `runs`.
fn run_folder(runs: &Path) -> Result<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(runs)
        .with_context(|| format!("reading {}", runs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries.pop().context("selfsup wrote no run folder")
}

/// Runs both sides and prints the comparison.
pub fn run(root: &Path, quality: &Quality<'_>) -> Result<()> {
    if quality.task.starts_with("text-") {
        return run_text(root, quality);
    }
    if !quality.archive.is_file() {
        bail!(
            "{} not found: pass --archive <cifar10-jpeg.tar.gz>",
            quality.archive.display()
        );
    }
    let scratch =
        std::env::temp_dir().join(format!("selfsup-bench-quality-{}", std::process::id()));
    let images = scratch.join("cifar10");
    let runs = scratch.join("runs");
    std::fs::create_dir_all(&images)?;
    crate::run(
        Command::new("tar")
            .arg("xzf")
            .arg(quality.archive)
            .arg("-C")
            .arg(&images),
    )
    .context("unpacking the archive with tar")?;
    let threads = quality.threads.to_string();

    eprintln!("xtask: bench quality {}: selfsup", quality.task);
    let started = std::time::Instant::now();
    let mut ours = Command::new(root.join("target/release/selfsup"));
    ours.current_dir(root)
        .env("RAYON_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .args([
            "train",
            quality.task,
            "--recipe",
            "cifar10-cpu",
            "--data",
            "imagefolder",
        ])
        .arg("--data-dir")
        .arg(&images)
        .arg("--runs")
        .arg(&runs);
    for spec in quality.overrides {
        ours.args(["--set", spec]);
    }
    crate::run(&mut ours)?;
    let ours_wall = started.elapsed().as_secs_f64();
    let run = run_folder(&runs)?;
    let summary: toml::Table = std::fs::read_to_string(run.join("summary.toml"))?.parse()?;
    let ours = side(&summary)?;

    eprintln!("xtask: bench quality {}: PyTorch reference", quality.task);
    let python = crate::bench::reference_python(root)?;
    let started = std::time::Instant::now();
    let output = Command::new(&python)
        .current_dir(root.join("benches/reference"))
        .env("OMP_NUM_THREADS", &threads)
        .arg("quality_vision.py")
        .arg("--config")
        .arg(run.join("config.toml"))
        .arg("--data")
        .arg(&images)
        .args(["--threads", &threads])
        .args(["--max-steps", &format!("{}", ours.steps as usize)])
        .output()
        .context("starting the PyTorch reference")?;
    let reference_wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the PyTorch reference failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let last = stdout.lines().last().unwrap_or_default();
    let reference = side(&json_to_toml(last)?)?;
    let _ = std::fs::remove_dir_all(&scratch);

    println!(
        "{} on CIFAR-10 ({} train / test JPEGs), recipe cifar10-cpu{}, {} threads per side",
        quality.task,
        quality.archive.display(),
        if quality.overrides.is_empty() {
            String::new()
        } else {
            format!(" with {}", quality.overrides.join(" "))
        },
        quality.threads
    );
    println!("{:<34} {:>10} {:>10}", "", "selfsup", "PyTorch");
    println!(
        "{:<34} {:>10.0} {:>10.0}",
        "steps", ours.steps, reference.steps
    );
    println!(
        "{:<34} {:>10.4} {:>10.4}",
        "final loss", ours.final_loss, reference.final_loss
    );
    println!(
        "{:<34} {:>9.2}% {:>9.2}%",
        "k-NN top-1, trained",
        ours.knn * 100.0,
        reference.knn * 100.0
    );
    println!(
        "{:<34} {:>9.2}% {:>9.2}%",
        "k-NN top-1, random init",
        ours.knn_random * 100.0,
        reference.knn_random * 100.0
    );
    println!(
        "{:<34} {:>10.0} {:>10.0}",
        "training seconds", ours.train_seconds, reference.train_seconds
    );
    println!(
        "{:<34} {:>10.0} {:>10.0}",
        "images/s (training)", ours.images_per_second, reference.images_per_second
    );
    println!(
        "{:<34} {:>10.0} {:>10.0}",
        "wall seconds (whole command)", ours_wall, reference_wall
    );
    println!(
        "k-NN difference {:+.2} points; training time ratio PyTorch / selfsup {:.2}",
        (ours.knn - reference.knn) * 100.0,
        reference.train_seconds / ours.train_seconds
    );
    Ok(())
}

/// `text-gpt`: nanoGPT-style reference on Shakespeare, character level.
fn run_text(root: &Path, quality: &Quality<'_>) -> Result<()> {
    let text = quality.archive;
    if !text.is_file() {
        bail!(
            "{} not found: pass --archive <shakespeare.txt>",
            text.display()
        );
    }
    let scratch =
        std::env::temp_dir().join(format!("selfsup-bench-quality-{}", std::process::id()));
    let runs = scratch.join("runs");
    let threads = quality.threads.to_string();
    eprintln!("xtask: bench quality {}: selfsup", quality.task);
    let mut ours = Command::new(root.join("target/release/selfsup"));
    ours.current_dir(root)
        .env("RAYON_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .args([
            "train",
            quality.task,
            "--recipe",
            "shakespeare-cpu",
            "--data",
        ])
        .arg(text)
        .arg("--runs")
        .arg(&runs);
    for spec in quality.overrides {
        ours.args(["--set", spec]);
    }
    crate::run(&mut ours)?;
    let run = run_folder(&runs)?;
    let summary: toml::Table = std::fs::read_to_string(run.join("summary.toml"))?.parse()?;

    eprintln!("xtask: bench quality {}: PyTorch reference", quality.task);
    let python = crate::bench::reference_python(root)?;
    let output = Command::new(&python)
        .current_dir(root.join("benches/reference"))
        .env("OMP_NUM_THREADS", &threads)
        .arg("quality_text.py")
        .arg("--config")
        .arg(run.join("config.toml"))
        .arg("--data")
        .arg(text)
        .args(["--threads", &threads])
        .output()
        .context("starting the PyTorch reference")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the PyTorch reference failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let reference = json_to_toml(stdout.lines().last().unwrap_or_default())?;
    let _ = std::fs::remove_dir_all(&scratch);
    let row = |label: &str, key: &str, digits: usize| -> Result<()> {
        let (a, b) = (number(&summary, key)?, number(&reference, key)?);
        println!("{label:<34} {a:>10.digits$} {b:>10.digits$}");
        Ok(())
    };
    println!(
        "{} on {}, recipe shakespeare-cpu{}, {} threads per side",
        quality.task,
        text.display(),
        if quality.overrides.is_empty() {
            String::new()
        } else {
            format!(" with {}", quality.overrides.join(" "))
        },
        quality.threads
    );
    println!("{:<34} {:>10} {:>10}", "", "selfsup", "PyTorch");
    row("steps", "steps", 0)?;
    row("final training loss", "final_loss", 4)?;
    row("validation loss", "validation_loss", 4)?;
    row(
        "validation loss, random init",
        "validation_loss_random_init",
        4,
    )?;
    row("training seconds", "train_seconds", 1)?;
    row("tokens/s (training)", "tokens_per_second", 0)?;
    println!(
        "validation loss difference {:+.4}; tokens/s ratio selfsup / PyTorch {:.2}",
        number(&summary, "validation_loss")? - number(&reference, "validation_loss")?,
        number(&summary, "tokens_per_second")? / number(&reference, "tokens_per_second")?
    );
    Ok(())
}

/// The reference prints one flat JSON object of numbers; read it as TOML
/// (`"key": value` → `key = value`), which keeps xtask free of a JSON crate.
fn json_to_toml(line: &str) -> Result<toml::Table> {
    let body = line.trim().trim_start_matches('{').trim_end_matches('}');
    let mut text = String::new();
    for pair in body.split(',') {
        let (key, value) = pair
            .split_once(':')
            .with_context(|| format!("not JSON: {line}"))?;
        text.push_str(&format!(
            "{} = {}\n",
            key.trim().trim_matches('"'),
            value.trim()
        ));
    }
    text.parse()
        .with_context(|| format!("reading the reference's result `{line}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reference_result_line() {
        let table =
            json_to_toml(r#"{"steps": 400, "train_seconds": 12.5, "knn_top1": 0.41}"#).unwrap();
        assert_eq!(number(&table, "steps").unwrap(), 400.0);
        assert_eq!(number(&table, "knn_top1").unwrap(), 0.41);
        assert!(number(&table, "missing").is_err());
        assert!(json_to_toml("garbage").is_err());
    }
}

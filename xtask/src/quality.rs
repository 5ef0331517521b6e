//! `cargo xtask bench quality <task>`: trains a task's CPU-budget recipe
//! with selfsup and with its plain-PyTorch twin (`benches/reference/`, which
//! reads the same resolved config) for the same number of steps, then prints
//! both sides' numbers: k-NN top-1 on CIFAR-10's test split for vision tasks,
//! validation loss on Shakespeare for `text-gpt`, and each side's time.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What the comparison needs to know.
pub struct Quality<'a> {
    /// The task, e.g. `vision-simclr`.
    pub task: &'a str,
    /// The CIFAR-10 JPEG archive (vision) or the text (text tasks).
    pub archive: &'a Path,
    /// Threads for both sides (libtorch threads and data workers).
    pub threads: usize,
    /// `--set` overrides for both sides (e.g. `trainer.max_steps=400`).
    pub overrides: &'a [String],
}

/// How one kind of task is compared.
struct Plan {
    /// selfsup's recipe.
    recipe: &'static str,
    /// The reference script in `benches/reference/`.
    script: &'static str,
    /// selfsup's data arguments.
    data_args: Vec<OsString>,
    /// The reference's `--data`.
    reference_data: PathBuf,
    /// Rows: label, summary key, digits, scale (100 for percentages).
    rows: &'static [(&'static str, &'static str, usize, f64)],
}

/// Both sides' summaries and whole-command wall times.
struct Outcome {
    ours: toml::Table,
    reference: toml::Table,
    ours_wall: f64,
    reference_wall: f64,
    /// The reference packages' versions, printed next to the ratio.
    versions: String,
}

fn number(table: &toml::Table, key: &str) -> Result<f64> {
    match table.get(key) {
        Some(toml::Value::Float(x)) => Ok(*x),
        Some(toml::Value::Integer(x)) => Ok(*x as f64),
        _ => bail!("summary has no number `{key}`"),
    }
}

/// The only run folder under `runs`.
pub(crate) fn run_folder(runs: &Path) -> Result<PathBuf> {
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
    if !quality.archive.is_file() {
        bail!(
            "{} not found: pass --archive <file>",
            quality.archive.display()
        );
    }
    let scratch =
        std::env::temp_dir().join(format!("selfsup-bench-quality-{}", std::process::id()));
    let outcome = plan(quality, &scratch).and_then(|plan| {
        Ok((
            run_sides(root, quality, &plan, &scratch.join("runs"))?,
            plan,
        ))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let (outcome, plan) = outcome?;
    print(quality, &plan, &outcome)
}

/// The comparison plan of the task's kind (unpacking CIFAR-10 into `scratch` for vision).
fn plan(quality: &Quality<'_>, scratch: &Path) -> Result<Plan> {
    if quality.task.starts_with("text-") {
        return Ok(Plan {
            recipe: "shakespeare-cpu",
            script: "quality_text.py",
            data_args: vec!["--data".into(), quality.archive.into()],
            reference_data: quality.archive.to_path_buf(),
            rows: &[
                ("steps", "steps", 0, 1.0),
                ("final training loss", "final_loss", 4, 1.0),
                ("validation loss", "validation_loss", 4, 1.0),
                (
                    "validation loss, random init",
                    "validation_loss_random_init",
                    4,
                    1.0,
                ),
                ("training seconds", "train_seconds", 1, 1.0),
                ("tokens/s (training)", "tokens_per_second", 0, 1.0),
            ],
        });
    }
    let images = scratch.join("cifar10");
    std::fs::create_dir_all(&images)?;
    crate::run(
        Command::new("tar")
            .arg("xzf")
            .arg(quality.archive)
            .arg("-C")
            .arg(&images),
    )
    .context("unpacking the archive with tar")?;
    Ok(Plan {
        recipe: "cifar10-cpu",
        script: "quality_vision.py",
        data_args: vec![
            "--data".into(),
            "imagefolder".into(),
            "--data-dir".into(),
            images.clone().into(),
        ],
        reference_data: images,
        rows: &[
            ("steps", "steps", 0, 1.0),
            ("final loss", "final_loss", 4, 1.0),
            ("k-NN top-1 %, trained", "knn_top1", 2, 100.0),
            (
                "k-NN top-1 %, random init",
                "knn_top1_random_init",
                2,
                100.0,
            ),
            ("training seconds", "train_seconds", 0, 1.0),
            ("images/s (training)", "images_per_second", 0, 1.0),
        ],
    })
}

/// The table of both sides' numbers and the headline difference.
fn print(quality: &Quality<'_>, plan: &Plan, outcome: &Outcome) -> Result<()> {
    let Outcome {
        ours,
        reference,
        ours_wall,
        reference_wall,
        versions,
    } = outcome;
    let overrides = match quality.overrides {
        [] => String::new(),
        specs => format!(" with {}", specs.join(" ")),
    };
    println!(
        "{} on {}, recipe {}{overrides}, {} threads per side",
        quality.task,
        quality.archive.display(),
        plan.recipe,
        quality.threads
    );
    println!("{:<34} {:>10} {:>10}", "", "selfsup", "PyTorch");
    for &(label, key, digits, scale) in plan.rows {
        let (a, b) = (number(ours, key)? * scale, number(reference, key)? * scale);
        println!("{label:<34} {a:>10.digits$} {b:>10.digits$}");
    }
    println!(
        "{:<34} {ours_wall:>10.0} {reference_wall:>10.0}",
        "wall seconds (whole command)"
    );
    let ratio = |key: &str| -> Result<f64> { Ok(number(reference, key)? / number(ours, key)?) };
    let difference =
        |key: &str| -> Result<f64> { Ok(number(ours, key)? - number(reference, key)?) };
    if quality.task.starts_with("text-") {
        println!(
            "validation loss difference {:+.4}; tokens/s ratio selfsup / PyTorch {:.2}",
            difference("validation_loss")?,
            1.0 / ratio("tokens_per_second")?
        );
    } else {
        println!(
            "k-NN difference {:+.2} points; training time ratio PyTorch / selfsup {:.2}",
            difference("knn_top1")? * 100.0,
            ratio("train_seconds")?
        );
    }
    println!("reference: {versions}");
    Ok(())
}

/// Trains selfsup's side, then the reference on the resolved config selfsup
/// wrote, for the same number of steps.
fn run_sides(root: &Path, quality: &Quality<'_>, plan: &Plan, runs: &Path) -> Result<Outcome> {
    let threads = quality.threads.to_string();
    eprintln!("xtask: bench quality {}: selfsup", quality.task);
    let started = Instant::now();
    let mut ours = Command::new(root.join("target/release/selfsup"));
    ours.current_dir(root)
        .env("RAYON_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .args(["train", quality.task, "--recipe", plan.recipe])
        .args(&plan.data_args)
        .arg("--runs")
        .arg(runs);
    for spec in quality.overrides {
        ours.args(["--set", spec]);
    }
    crate::run(&mut ours)?;
    let ours_wall = started.elapsed().as_secs_f64();
    let run = run_folder(runs)?;
    let summary: toml::Table = std::fs::read_to_string(run.join("summary.toml"))?.parse()?;

    eprintln!("xtask: bench quality {}: PyTorch reference", quality.task);
    let python = crate::bench::reference_python(root)?;
    let started = Instant::now();
    let output = Command::new(&python)
        .current_dir(root.join("benches/reference"))
        .env("OMP_NUM_THREADS", &threads)
        .arg(plan.script)
        .arg("--config")
        .arg(run.join("config.toml"))
        .arg("--data")
        .arg(&plan.reference_data)
        .args(["--threads", &threads])
        .args([
            "--max-steps",
            &format!("{}", number(&summary, "steps")? as usize),
        ])
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
    Ok(Outcome {
        ours: summary,
        reference: json_to_toml(stdout.lines().last().unwrap_or_default())?,
        ours_wall,
        reference_wall,
        versions: crate::bench::reference_versions(&python)?,
    })
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

//! `cargo xtask bench <suite>`: runs our benchmark and its PyTorch twin on the
//! same machine, in the same run, with the same thread count, and prints the
//! ratio of their times (above 1: we are faster).

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned packages of the PyTorch reference environment: every ratio moves
/// when the peer moves (the data bench fell from 8.8x to 5.2-6.4x with Pillow
/// 13), so all of them are pinned and printed next to each ratio.
const REFERENCE_PACKAGES: [(&str, &str); 5] = [
    ("torch", "2.11.0"),
    ("torchvision", "0.26.0"),
    ("numpy", "2.4.6"),
    ("pillow", "13.0.0"),
    ("safetensors", "0.8.0"),
];

/// Prints `name version` per reference package, as Python sees them.
const VERSIONS_SCRIPT: &str = concat!(
    "import importlib.metadata as m\n",
    "for name in ['torch', 'torchvision', 'numpy', 'pillow', 'safetensors']:\n",
    "    try: print(name, m.version(name))\n",
    "    except m.PackageNotFoundError: print(name, 'missing')\n",
);

/// Creates `.venv-reference` with the pinned packages when missing or
/// different; returns its python.
pub fn reference_python(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".venv-reference");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!(
            "xtask: creating the PyTorch reference environment in {}",
            venv.display()
        );
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .context("python3 -m venv (apt-get install -y python3-venv)")?;
    }
    if !pins_hold(&reference_versions(&python).unwrap_or_default()) {
        let specs: Vec<String> = REFERENCE_PACKAGES
            .iter()
            .map(|(name, version)| format!("{name}=={version}"))
            .collect();
        crate::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(&specs),
        )
        .context("installing the PyTorch reference packages with pip")?;
    }
    Ok(python)
}

/// The reference packages' versions, one line (`torch 2.11.0+cu130, ...`),
/// to print next to every ratio.
pub fn reference_versions(python: &Path) -> Result<String> {
    let text = capture(Command::new(python).args(["-c", VERSIONS_SCRIPT]))?;
    Ok(text.lines().collect::<Vec<_>>().join(", "))
}

/// Whether every pinned package is installed at its version (a local
/// suffix such as `+cu130` allowed).
fn pins_hold(versions: &str) -> bool {
    REFERENCE_PACKAGES.iter().all(|(name, version)| {
        versions.split(", ").any(|entry| {
            entry == format!("{name} {version}") || entry.starts_with(&format!("{name} {version}+"))
        })
    })
}

/// Parses `name<TAB>milliseconds` lines.
fn parse_times(text: &str) -> Result<BTreeMap<String, f64>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, ms) = line
                .split_once('\t')
                .with_context(|| format!("unexpected benchmark line `{line}`"))?;
            Ok((
                name.to_string(),
                ms.trim()
                    .parse()
                    .with_context(|| format!("not a time in `{line}`"))?,
            ))
        })
        .collect()
}

fn capture(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed:\n{}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Keeps, per case, the lowest of the medians seen so far: on a shared
/// machine interference only ever adds time, so the minimum is the cleanest.
fn keep_best(best: &mut BTreeMap<String, f64>, round: BTreeMap<String, f64>) {
    for (name, ms) in round {
        let entry = best.entry(name).or_insert(f64::INFINITY);
        *entry = entry.min(ms);
    }
}

/// Keeps, per case, the highest rate seen so far (images/s: interference
/// only ever lowers it).
fn keep_fastest(best: &mut BTreeMap<String, f64>, round: BTreeMap<String, f64>) {
    for (name, rate) in round {
        let entry = best.entry(name).or_insert(0.0);
        *entry = entry.max(rate);
    }
}

/// Builds example `name` of `package` in release; returns the binary.
fn example(root: &Path, package: &str, name: &str) -> Result<std::path::PathBuf> {
    crate::cargo(
        root,
        &[
            "build",
            "--release",
            "--package",
            package,
            "--example",
            name,
        ],
    )?;
    Ok(root.join("target/release/examples").join(name))
}

/// Runs both sides of `suite` `rounds` times, alternating, and prints the comparison.
pub fn run(root: &Path, suite: &str, threads: usize, rounds: usize) -> Result<()> {
    let script = match suite {
        "core" => root.join("benches/reference/bench_core.py"),
        other => bail!("unknown bench suite `{other}`; known: core, data"),
    };
    let binary = example(root, "selfsup-train", "bench_core")?;
    let python = reference_python(root)?;
    let threads_arg = threads.to_string();
    let (mut ours, mut reference) = (BTreeMap::new(), BTreeMap::new());
    for round in 1..=rounds.max(1) {
        eprintln!("xtask: bench {suite}, round {round} of {rounds}");
        keep_best(
            &mut ours,
            parse_times(&capture(
                Command::new(&binary).args(["--threads", &threads_arg]),
            )?)?,
        );
        keep_best(
            &mut reference,
            parse_times(&capture(
                Command::new(&python)
                    .arg(&script)
                    .args(["--threads", &threads_arg]),
            )?)?,
        );
    }
    println!(
        "{suite} benchmarks, {threads} threads, best of {rounds} alternating rounds of medians, ms"
    );
    println!("(ratio = PyTorch / selfsup; above 1: selfsup is faster)");
    println!(
        "{:<34} {:>10} {:>10} {:>7}",
        "case", "selfsup", "PyTorch", "ratio"
    );
    for (name, ms) in &ours {
        match reference.get(name) {
            Some(theirs) => println!("{name:<34} {ms:>10.3} {theirs:>10.3} {:>7.2}", theirs / ms),
            None => println!("{name:<34} {ms:>10.3} {:>10} {:>7}", "-", "-"),
        }
    }
    println!("reference: {}", reference_versions(&python)?);
    Ok(())
}

/// `cargo xtask bench data`: unpacks the CIFAR-10 JPEG archive into a
/// temporary folder, then alternates our pipeline and torchvision's for
/// `rounds` rounds, keeping each side's best rate (images/s, higher is better).
pub fn run_data(root: &Path, archive: &Path, threads: usize, rounds: usize) -> Result<()> {
    if !archive.is_file() {
        bail!(
            "{} not found: pass --archive <cifar10-jpeg.tar.gz>",
            archive.display()
        );
    }
    let unpacked = std::env::temp_dir().join(format!("selfsup-bench-data-{}", std::process::id()));
    std::fs::create_dir_all(&unpacked)?;
    crate::run(
        Command::new("tar")
            .arg("xzf")
            .arg(archive)
            .arg("-C")
            .arg(&unpacked),
    )
    .context("unpacking the archive with tar")?;
    let images = unpacked.join("train");
    let python = reference_python(root)?;
    let script = root.join("benches/reference/bench_data.py");
    let threads_arg = threads.to_string();
    let (mut ours, mut reference): (BTreeMap<String, f64>, BTreeMap<String, f64>) =
        (BTreeMap::new(), BTreeMap::new());
    let binary = example(root, "selfsup-vision", "bench_data")?;
    for round in 1..=rounds.max(1) {
        eprintln!("xtask: bench data, round {round} of {rounds}");
        keep_fastest(
            &mut ours,
            parse_times(&capture(
                Command::new(&binary)
                    .args(["--threads", &threads_arg, "--data-dir"])
                    .arg(&images),
            )?)?,
        );
        keep_fastest(
            &mut reference,
            parse_times(&capture(
                Command::new(&python)
                    .arg(&script)
                    .arg(&images)
                    .args(["--workers", &threads_arg]),
            )?)?,
        );
    }
    let _ = std::fs::remove_dir_all(&unpacked);
    println!("data benchmarks on {} ({threads} threads vs {threads} DataLoader workers), best of {rounds} rounds", archive.display());
    println!("(ratio = selfsup / torchvision; above 1: selfsup is faster)");
    println!(
        "{:<28} {:>12} {:>12} {:>7}",
        "images/s", "selfsup", "torchvision", "ratio"
    );
    for (name, rate) in &ours {
        let theirs = reference.get(name).copied().unwrap_or(f64::NAN);
        println!(
            "{:<28} {rate:>12.0} {theirs:>12.0} {:>7.2}",
            name.trim_end_matches(" images/s"),
            rate / theirs
        );
    }
    println!("reference: {}", reference_versions(&python)?);
    Ok(())
}

/// `cargo xtask bench data --full-size`: builds the full-size JPEG set under
/// `target/bench-full-size` when missing, then alternates our streamed
/// pipeline and torchvision's ImageFolder + DataLoader for `rounds` rounds,
/// keeping each side's best rate; prints both, the ratio and our peak RSS.
pub fn run_data_full(root: &Path, threads: usize, rounds: usize) -> Result<()> {
    let set = root.join("target/bench-full-size");
    let python = reference_python(root)?;
    if !set.join("train").is_dir() {
        eprintln!(
            "xtask: building the full-size JPEG set in {}",
            set.display()
        );
        crate::run(
            Command::new(&python)
                .arg(root.join("benches/reference/make_full_size_set.py"))
                .arg(&set),
        )?;
    }
    let images = set.join("train");
    let binary = example(root, "selfsup-vision", "bench_data_full")?;
    let threads_arg = threads.to_string();
    let (mut ours, mut reference): (BTreeMap<String, f64>, BTreeMap<String, f64>) =
        (BTreeMap::new(), BTreeMap::new());
    for round in 1..=rounds.max(1) {
        eprintln!("xtask: bench data --full-size, round {round} of {rounds}");
        let args = ["--threads", &threads_arg, "--data-dir"];
        keep_fastest(
            &mut ours,
            parse_times(&capture(Command::new(&binary).args(args).arg(&images))?)?,
        );
        let script = root.join("benches/reference/bench_data_full.py");
        let theirs = capture(
            Command::new(&python)
                .arg(&script)
                .arg(&images)
                .args(["--workers", &threads_arg]),
        )?;
        keep_fastest(&mut reference, parse_times(&theirs)?);
    }
    let key = "full-size two-view simclr images/s";
    let (a, b) = (
        ours.get(key).copied().unwrap_or(f64::NAN),
        reference.get(key).copied().unwrap_or(f64::NAN),
    );
    println!("full-size data benchmark on {} ({threads} threads vs {threads} DataLoader workers), best of {rounds} rounds", images.display());
    println!(
        "{:<40} {:>10} {:>12} {:>7}",
        "images/s", "selfsup", "torchvision", "ratio"
    );
    println!(
        "{:<40} {a:>10.1} {b:>12.1} {:>7.2}",
        "two-view SimCLR 224 px, streamed",
        a / b
    );
    println!(
        "selfsup peak RSS: {:.0} MB",
        ours.get("full-size peak RSS MB").copied().unwrap_or(0.0)
    );
    println!("reference: {}", reference_versions(&python)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_versions_script_runs_under_any_python() {
        // Missing packages print `missing`, so any python3 runs it.
        let text = super::reference_versions(std::path::Path::new("python3")).unwrap();
        assert_eq!(text.split(", ").count(), 5, "{text}");
        assert!(text.starts_with("torch "), "{text}");
    }

    #[test]
    fn pins_hold_only_at_the_pinned_versions() {
        let exact = "torch 2.11.0+cu130, torchvision 0.26.0+cu130, numpy 2.4.6, pillow 13.0.0, safetensors 0.8.0";
        assert!(super::pins_hold(exact));
        assert!(!super::pins_hold(
            &exact.replace("pillow 13.0.0", "pillow 12.1.0")
        ));
        assert!(!super::pins_hold(
            &exact.replace("numpy 2.4.6", "numpy 2.4.60")
        ));
        assert!(!super::pins_hold(
            &exact.replace("safetensors 0.8.0", "safetensors missing")
        ));
        assert!(!super::pins_hold(""));
    }

    use super::*;

    #[test]
    fn parses_benchmark_lines_and_rejects_garbage() {
        let times = parse_times("a b\t1.5\nc\t2\n\n").unwrap();
        assert_eq!(times["a b"], 1.5);
        assert_eq!(times["c"], 2.0);
        assert!(parse_times("no tab here").is_err());
        assert!(parse_times("x\tfast").is_err());
    }

    #[test]
    fn keeps_the_fastest_median_per_case() {
        let mut best = BTreeMap::new();
        keep_best(&mut best, parse_times("a\t3\nb\t1").unwrap());
        keep_best(&mut best, parse_times("a\t2\nb\t4").unwrap());
        assert_eq!((best["a"], best["b"]), (2.0, 1.0));
    }
}

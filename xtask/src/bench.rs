//! `cargo xtask bench <suite>`: runs our benchmark and its PyTorch twin on the
//! same machine, in the same run, with the same thread count, and prints the
//! ratio of their times (above 1: we are faster).

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned packages of the PyTorch reference environment.
const REFERENCE_PACKAGES: [&str; 5] = [
    "torch==2.11.0",
    "torchvision==0.26.0",
    "numpy",
    "pillow",
    "safetensors",
];

/// Creates `.venv-reference` with the pinned PyTorch when missing; returns its python.
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
    let ready = Command::new(&python)
        .args(["-c", "import torch, torchvision, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        crate::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(REFERENCE_PACKAGES),
        )
        .context("installing the PyTorch reference packages with pip")?;
    }
    Ok(python)
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

/// Runs both sides of `suite` `rounds` times, alternating, and prints the comparison.
pub fn run(root: &Path, suite: &str, threads: usize, rounds: usize) -> Result<()> {
    let script = match suite {
        "core" => root.join("benches/reference/bench_core.py"),
        other => bail!("unknown bench suite `{other}`; known: core"),
    };
    let binary = root.join("target/release/selfsup");
    let python = reference_python(root)?;
    let threads_arg = threads.to_string();
    let (mut ours, mut reference) = (BTreeMap::new(), BTreeMap::new());
    for round in 1..=rounds.max(1) {
        eprintln!("xtask: bench {suite}, round {round} of {rounds}");
        keep_best(
            &mut ours,
            parse_times(&capture(Command::new(&binary).args([
                "bench",
                suite,
                "--threads",
                &threads_arg,
            ]))?)?,
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
    Ok(())
}

#[cfg(test)]
mod tests {
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

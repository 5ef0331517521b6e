//! `cargo xtask fuzz`: every cargo-fuzz target in `fuzz/` for a fixed
//! number of inputs each, with libFuzzer's memory limit at 1 GB, so a
//! reader that allocates what a crafted header declares fails the run.
//! Seeds come from `fuzz/seeds/<target>/` (small valid files, committed);
//! what a run learns goes to `fuzz/corpus/<target>/` (not committed), a
//! crash to `fuzz/artifacts/<target>/`, to be turned into a regression test.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 9] = [
    "image_decode",
    "webdataset",
    "idx",
    "cifar_stl10",
    "token_file",
    "tokenizers",
    "mail_archive",
    "config",
    "checkpoint",
];

/// The targets that link libtorch: built without a sanitizer (libtorch is
/// not built with one), with this checkout's libtorch.
const TORCH_TARGETS: [&str; 2] = ["config", "checkpoint"];

/// What to run.
pub struct Fuzz<'a> {
    /// The targets (all when empty).
    pub targets: &'a [String],
    /// Inputs per target.
    pub runs: u64,
}

/// Runs the targets one after the other; the first that finds a crash stops.
pub fn run(root: &Path, fuzz: &Fuzz) -> Result<()> {
    let fuzz_dir = root.join("fuzz");
    ensure_cargo_fuzz()?;
    let targets: Vec<&str> = match fuzz.targets.is_empty() {
        true => TARGETS.to_vec(),
        false => fuzz.targets.iter().map(String::as_str).collect(),
    };
    if let Some(unknown) = targets.iter().find(|t| !TARGETS.contains(t)) {
        bail!(
            "no fuzz target {unknown:?}; the targets are {}",
            TARGETS.join(", ")
        );
    }
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).with_context(|| corpus.display().to_string())?;
        let mut command = Command::new("cargo");
        command
            .current_dir(root)
            .args(["+nightly", "fuzz", "run", "--fuzz-dir"])
            .arg(&fuzz_dir);
        if TORCH_TARGETS.contains(&target) {
            crate::setup::ensure(root, crate::wheels::Variant::Cpu)?;
            command
                .args(["--sanitizer", "none"])
                .env("LIBTORCH", root.join("libtorch"))
                .env("LD_LIBRARY_PATH", root.join("libtorch/lib"));
        }
        command.arg(target).arg(&corpus);
        let seeds = fuzz_dir.join("seeds").join(target);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        command.args(["--", &format!("-runs={}", fuzz.runs), "-rss_limit_mb=1024"]);
        command.args(["-malloc_limit_mb=1024", "-max_len=65536", "-timeout=20"]);
        println!("xtask: fuzzing {target} for {} inputs", fuzz.runs);
        let status = command.status().context("starting cargo +nightly fuzz")?;
        if !status.success() {
            bail!(
                "fuzz target {target} failed ({status}); the input is in fuzz/artifacts/{target}/"
            );
        }
    }
    Ok(())
}

/// Nightly Rust and cargo-fuzz, installed with `cargo install` when missing.
fn ensure_cargo_fuzz() -> Result<()> {
    let has = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has(&["+nightly", "--version"]) {
        bail!("fuzzing needs a nightly toolchain: `rustup toolchain install nightly`");
    }
    if !has(&["fuzz", "--version"]) {
        println!("xtask: installing cargo-fuzz (once)");
        let status = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()
            .context("starting cargo install")?;
        if !status.success() {
            bail!("cargo install cargo-fuzz failed ({status})");
        }
    }
    Ok(())
}

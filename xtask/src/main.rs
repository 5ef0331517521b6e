//! Project automation for selfsup, run as `cargo xtask <command>`.
//!
//! `setup` provisions libtorch; `train` and `test` make sure it is there, then
//! drive `cargo`. This crate never links tch, so it builds in seconds on a
//! machine that has no libtorch yet.

mod bench;
mod ddp;
mod fuzz;
mod layout;
mod quality;
mod setup;
mod wheels;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;
use wheels::Variant;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "selfsup project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Provision libtorch 2.11.0 into ./libtorch (from the PyPI wheels; cached per user).
    Setup {
        /// The CUDA build: libtorch_cuda, NCCL, cuDNN, cuBLAS and their
        /// runtime (~3.5 GB); it also runs on CPU. Remove ./libtorch to go back.
        #[arg(long)]
        cuda: bool,
    },
    /// Build `selfsup` in release and run `selfsup train <task> [args]`, e.g. `vision-mae`.
    Train {
        /// The task, e.g. `vision-mae`; `selfsup train --help` lists them.
        task: String,
        /// Passed on to `selfsup train`, e.g. `--set trainer.epochs=2`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build `selfsup` in release and run `selfsup eval <run folder> [args]`.
    Eval {
        /// Passed on to `selfsup eval`, e.g. `runs/<run> --random-init`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build `selfsup` in release and run `selfsup data ...`: `fetch cifar10
    /// [--from FILE]`, `list`, `train-bpe`, `tokenize`.
    Data {
        /// Passed on to `selfsup data`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compare a benchmark suite (`core`) with its PyTorch twin, same threads, same run.
    Bench {
        /// The suite: `core`, `data`, `ddp` (2 processes x 1 thread against 1 x 2),
        /// or `quality` (then the task, e.g. `vision-simclr`).
        suite: String,
        /// `quality` suite: the task to compare.
        task: Option<String>,
        /// `quality` suite: config overrides for both sides, e.g. `trainer.max_steps=400`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Threads for both sides.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Alternating rounds; each case keeps its best result per side.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// `data` and vision `quality`: the CIFAR-10 JPEG archive (default:
        /// ../shared/datasets/cifar10/cifar10-jpeg.tar.gz); text `quality`: the
        /// text (default: ../shared/datasets/text/shakespeare.txt).
        #[arg(long)]
        archive: Option<PathBuf>,
        /// `data` suite: ImageNet-sized JPEGs streamed from disk (SimCLR's
        /// 224-px two-view pipeline) instead of CIFAR-10 held in memory; the
        /// set is built once by benches/reference/make_full_size_set.py.
        #[arg(long)]
        full_size: bool,
    },
    /// The CUDA build (`setup --cuda`), then benches/gpu/gpu_check.py: CUDA,
    /// bf16 autocast and NCCL tried for real, and SimCLR ResNet-18 steps/s
    /// and GPT tokens/s against PyTorch on this GPU (a few minutes; needs
    /// python3 with torch built for CUDA).
    GpuCheck {
        /// Optimizer steps per throughput measurement, on each side.
        #[arg(long, default_value_t = 100)]
        steps: usize,
    },
    /// Runs the cargo-fuzz targets in `fuzz/` (every reader of outside
    /// bytes) for a fixed number of inputs each, at most 1 GB of memory;
    /// needs nightly Rust, installs cargo-fuzz when missing.
    Fuzz {
        /// The targets (all when none): image_decode, webdataset, idx,
        /// cifar_stl10, token_file, tokenizers, mail_archive.
        targets: Vec<String>,
        /// Inputs per target.
        #[arg(long, default_value_t = 20_000)]
        runs: u64,
    },
    /// Provision libtorch when needed, then run `cargo test --workspace [args]`.
    Test {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = project_root();
    match cli.command {
        Task::Setup { cuda } => {
            let variant = if cuda { Variant::Cuda } else { Variant::Cpu };
            setup::ensure(&root, variant)
        }
        Task::Train { task, args } => selfsup(&root, "train", std::iter::once(task).chain(args)),
        Task::Eval { args } => selfsup(&root, "eval", args),
        Task::Data { args } => selfsup(&root, "data", args),
        Task::Bench {
            suite,
            task,
            set,
            threads,
            rounds,
            archive,
            full_size,
        } => {
            setup::ensure(&root, Variant::Cpu)?;
            cargo(&root, &["build", "--release", "--package", "selfsup-cli"])?;
            let shared = root.join("../shared/datasets");
            let default = match task.as_deref() {
                Some(t) if t.starts_with("text-") => shared.join("text/shakespeare.txt"),
                _ => shared.join("cifar10/cifar10-jpeg.tar.gz"),
            };
            let archive = archive.unwrap_or(default);
            if suite == "data" && full_size {
                bench::run_data_full(&root, threads, rounds)
            } else if suite == "data" {
                bench::run_data(&root, &archive, threads, rounds)
            } else if suite == "ddp" {
                ddp::run(&root, &archive, rounds)
            } else if suite == "quality" {
                let task = task.context("bench quality needs a task, e.g. vision-simclr")?;
                let quality = quality::Quality {
                    task: &task,
                    archive: &archive,
                    threads,
                    overrides: &set,
                };
                quality::run(&root, &quality)
            } else {
                bench::run(&root, &suite, threads, rounds)
            }
        }
        Task::GpuCheck { steps } => gpu_check(&root, steps),
        Task::Fuzz { targets, runs } => fuzz::run(
            &root,
            &fuzz::Fuzz {
                targets: &targets,
                runs,
            },
        ),
        Task::Test { args } => {
            setup::ensure(&root, Variant::Cpu)?;
            let mut all = vec!["test", "--workspace"];
            all.extend(args.iter().map(String::as_str));
            cargo(&root, &all)
        }
    }
}

/// Builds the release `selfsup` (libtorch first) and runs `selfsup <command> <args>`.
fn selfsup(root: &Path, command: &str, args: impl IntoIterator<Item = String>) -> Result<()> {
    setup::ensure(root, Variant::Cpu)?;
    cargo(root, &["build", "--release", "--package", "selfsup-cli"])?;
    let binary = root.join("target/release/selfsup");
    run(Command::new(&binary)
        .current_dir(root)
        .arg(command)
        .args(args))
}

/// Builds the CUDA `selfsup` and runs the prepared GPU check with it.
fn gpu_check(root: &Path, steps: usize) -> Result<()> {
    let torch_cuda = Command::new("python3")
        .args([
            "-c",
            "import torch, torchvision; assert torch.cuda.is_available()",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !torch_cuda {
        bail!("gpu-check compares against PyTorch: it needs python3 with torch and torchvision that see a GPU");
    }
    setup::ensure(root, Variant::Cuda)?;
    cargo(root, &["build", "--release", "--package", "selfsup-cli"])?;
    run(Command::new("python3")
        .current_dir(root)
        .arg("benches/gpu/gpu_check.py")
        .arg("--selfsup")
        .arg(root.join("target/release/selfsup"))
        .arg("--lib")
        .arg(root.join("libtorch/lib"))
        .args(["--steps", &steps.to_string()]))
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one folder below the workspace root")
        .to_path_buf()
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).current_dir(root).args(args))
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", command.get_program());
    }
    Ok(())
}

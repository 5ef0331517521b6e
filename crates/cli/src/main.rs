//! `selfsup`: train and evaluate self-supervised models from the command line.

mod allocator;
mod bench_core;
mod bench_data;
mod data;
mod eval;
mod export;
mod language;
mod logging;
mod tasks;
mod text_train;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "selfsup", version, about = "Self-supervised learning in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain a method, then evaluate it (k-NN on held-out data, against random init).
    Train(train::TrainArgs),
    /// Evaluate a run: k-NN, linear probe and fine-tuning on label fractions.
    Eval(eval::EvalArgs),
    /// Write the trained backbone with PyTorch's (timm's) names as backbone.safetensors.
    Export(export::ExportArgs),
    /// Continue a prompt with a trained text-gpt run.
    Generate(language::GenerateArgs),
    /// Fill in hidden characters with a trained text-mlm run.
    FillMask(language::FillMaskArgs),
    /// Downstream probe for a text run: which text a passage comes from.
    Probe(language::ProbeArgs),
    /// List the known tasks and their default configs.
    Tasks,
    /// Data sets and corpora: fetch, list, train-bpe, tokenize.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Micro-benchmarks printed as `name<TAB>median ms` (`cargo xtask bench` compares them with PyTorch).
    Bench {
        /// Which suite: `core` (losses and optimizer steps) or `data` (needs `--data-dir`).
        suite: String,
        /// ImageFolder of JPEGs for the `data` suite.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Batches of 256 to time in the `data` suite.
        #[arg(long, default_value_t = 40)]
        batches: usize,
        /// Intra-op threads (match the PyTorch side).
        #[arg(long, default_value_t = 2)]
        threads: i32,
    },
}

fn main() -> Result<()> {
    allocator::keep_tensor_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Generate(args) => language::run_generate(args),
        Command::FillMask(args) => language::run_fill_mask(args),
        Command::Probe(args) => language::run_probe(args),
        Command::Data { command } => data::run(command),
        Command::Bench {
            suite,
            threads,
            data_dir,
            batches,
        } => match suite.as_str() {
            "core" => bench_core::run(threads),
            "data" => {
                let dir = data_dir
                    .ok_or_else(|| anyhow::anyhow!("bench data needs --data-dir <ImageFolder>"))?;
                bench_data::run(&dir, threads as usize, batches)
            }
            other => anyhow::bail!("unknown bench suite `{other}`; known: core, data"),
        },
        Command::Tasks => {
            for task in tasks::TASKS {
                let recipes: Vec<&str> = task.recipes.iter().map(|r| r.name).collect();
                println!(
                    "{:<14} {}  (recipes: {})",
                    task.name,
                    task.summary,
                    recipes.join(", ")
                );
            }
            Ok(())
        }
    }
}

/// Where runs go unless `--runs` says otherwise.
fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

//! `selfsup`: train and evaluate self-supervised models from the command
//! line. Argument parsing and printing only: every command is a call into
//! the libraries (`selfsup-vision`, `selfsup-text`, `selfsup-data`).

mod data;
mod eval;
mod finetune;
mod logging;
mod tasks;
mod text;
mod train;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "selfsup", version, about = "Self-supervised learning in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain a method, then evaluate it (k-NN or validation loss, against random init).
    Train(train::TrainArgs),
    /// Evaluate a vision run: k-NN, linear probe and fine-tuning on label fractions.
    Eval(eval::EvalArgs),
    /// Fine-tune a run on a labelled set with few labels, against random init.
    Finetune(finetune::FinetuneArgs),
    /// Write the trained backbone with PyTorch's (timm's) names as backbone.safetensors.
    Export(eval::ExportArgs),
    /// Continue a prompt with a trained text-gpt run.
    Generate(text::GenerateArgs),
    /// Fill in hidden tokens with a trained text-mlm or text-bert run.
    FillMask(text::FillMaskArgs),
    /// Downstream probe for a text run: which text a passage comes from.
    Probe(text::ProbeArgs),
    /// List the known tasks and their recipes.
    Tasks,
    /// Try this build's GPU capabilities: CUDA, cuDNN, bf16 autocast, NCCL.
    GpuCheck,
    /// Data sets and corpora: fetch, list, train-bpe, tokenize.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
}

/// Runs the command; an error is printed as one line (its causes joined
/// with `: `) and the exit status is 1.
fn main() -> ExitCode {
    selfsup_train::allocator::keep_tensor_memory();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Finetune(args) => finetune::run(args),
        Command::Export(args) => eval::run_export(args),
        Command::Generate(args) => text::run_generate(args),
        Command::FillMask(args) => text::run_fill_mask(args),
        Command::Probe(args) => text::run_probe(args),
        Command::Data { command } => data::run(command),
        Command::Tasks => {
            tasks::print();
            Ok(())
        }
        Command::GpuCheck => gpu_check(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: most of our errors already
/// quote their source (`file: No such file or directory`), which `{:#}`
/// would print a second time.
fn message(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// Prints one `check | outcome` row per capability; fails when any did.
fn gpu_check() -> anyhow::Result<()> {
    let rows = selfsup_train::gpu_check::run();
    let mut failed = 0;
    for row in &rows {
        match &row.outcome {
            Ok(what) => println!("| {} | yes: {what} |", row.check),
            Err(why) => {
                failed += 1;
                println!("| {} | no: {why} |", row.check)
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} GPU checks failed", rows.len());
    Ok(())
}

/// Where runs go unless `--runs` says otherwise.
fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

/// `args` without `flag` and its value (`--flag N` or `--flag=N`): what a
/// launcher passes on to the processes it starts.
fn worker_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    flag: &str,
) -> Vec<std::ffi::OsString> {
    let mut kept = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match arg.to_str() {
            Some(text) if text == flag => skip_value = true,
            Some(text) if text.starts_with(&format!("{flag}=")) => {}
            _ => kept.push(arg),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::worker_args;

    #[test]
    fn workers_get_every_argument_but_the_launcher_s() {
        let args = [
            "train",
            "vision-simclr",
            "--nproc-per-node",
            "2",
            "--set",
            "a=1",
            "--nproc-per-node=3",
        ];
        let kept = worker_args(args.map(Into::into), "--nproc-per-node");
        assert_eq!(
            kept,
            ["train", "vision-simclr", "--set", "a=1"].map(std::ffi::OsString::from)
        );
    }
}

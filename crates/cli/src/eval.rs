//! `selfsup eval` and `selfsup export`: parse, call the vision library, print.

use anyhow::Result;
use selfsup_vision::experiment::{evaluate, export, EvalRequest};
use std::path::PathBuf;

/// Arguments of `selfsup eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// The run folder (holds config.toml and checkpoints/last.safetensors).
    run: PathBuf,
    /// Evaluate the encoder at its random initialisation instead of the checkpoint.
    #[arg(long)]
    random_init: bool,
    /// Override a config value, e.g. `--set eval.fine_tune.fractions=[0.1]`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Arguments of `selfsup export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The run folder.
    run: PathBuf,
}

/// Runs `selfsup eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    crate::logging::init_stderr();
    let request = EvalRequest {
        run: &args.run,
        random_init: args.random_init,
        overrides: &args.set,
    };
    let report = evaluate(&selfsup_vision::registry(), request)?;
    println!(
        "\n{} ({}), top-1 on {} held-out images",
        report.run.display(),
        report.which,
        report.held_out
    );
    for row in &report.rows {
        println!("  {:<52} {:>6.2} %", row.label, row.value * 100.0);
    }
    Ok(())
}

/// Runs `selfsup export`.
pub fn run_export(args: ExportArgs) -> Result<()> {
    let written = export(&selfsup_vision::registry(), &args.run)?;
    println!("{}", written.display());
    Ok(())
}

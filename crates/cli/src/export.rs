//! `selfsup export <run folder>`: the trained backbone's weights with PyTorch's
//! names (timm for ViTs) as `backbone.safetensors` in the run folder, for
//! `model.load_state_dict(safetensors.torch.load_file(...))` in PyTorch.

use crate::train::parse_config;
use anyhow::{Context, Result};
use selfsup_train::checkpoint;
use selfsup_train::run_dir::RunDir;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::Device;

/// Arguments of `selfsup export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The run folder.
    run: PathBuf,
}

/// Runs `selfsup export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let run = RunDir::open(&args.run)?;
    let config_path = run.file("config.toml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config = parse_config(&text, &config_path.display().to_string(), &[])?;
    let vs = VarStore::new(Device::Cpu);
    let method = config.method.build(vs.root());
    let checkpoint_path = run.checkpoints().join("last.safetensors");
    checkpoint::restore_variables(
        &vs,
        "model.",
        &checkpoint::load(&checkpoint_path)?,
        &checkpoint_path,
    )?;
    let written = checkpoint::save_atomic(run.path(), "backbone", &method.export_backbone(&vs))?;
    println!("{}", written.display());
    Ok(())
}

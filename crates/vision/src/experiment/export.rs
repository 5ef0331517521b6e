//! `selfsup export`: a run's trained backbone with PyTorch's names (timm's
//! for ViTs, torchvision's for ResNets) as `backbone.safetensors` in the run
//! folder, for `model.load_state_dict(safetensors.torch.load_file(...))`.

use super::loaded::LoadedRun;
use crate::registry::VisionRegistry;
use crate::Result;
use selfsup_train::checkpoint;
use std::path::{Path, PathBuf};
use tch::Device;

/// Writes the backbone of the run at `run` and returns the file's path.
pub fn export(registry: &VisionRegistry, run: &Path) -> Result<PathBuf> {
    let loaded = LoadedRun::open(registry, run, &[])?;
    let (vs, method) = loaded.build(Device::Cpu, None, false)?;
    let written = checkpoint::save_atomic(
        loaded.run.dir.path(),
        "backbone",
        &method.export_backbone(&vs),
    )?;
    Ok(written)
}

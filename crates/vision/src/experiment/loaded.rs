//! A finished vision run, opened from its folder: its config, and its method
//! built fresh (random init) or with the last checkpoint's weights.

use crate::registry::{VisionContext, VisionMethod, VisionRegistry, VisionRunConfig};
use crate::Result;
use selfsup_train::device::parse_device;
use selfsup_train::experiment::TrainedRun;
use std::path::Path;
use tch::nn::VarStore;
use tch::Device;

/// A run folder with its typed config.
pub(super) struct LoadedRun {
    pub run: TrainedRun,
    pub config: VisionRunConfig,
}

impl LoadedRun {
    /// Opens the run folder at `path`, applying `overrides` to its config.
    pub fn open(registry: &VisionRegistry, path: &Path, overrides: &[String]) -> Result<Self> {
        let run = TrainedRun::open(path)?;
        let config = registry.parse_run(&run.config_text, &run.config_origin, overrides)?;
        Ok(Self { run, config })
    }

    /// The configured device.
    pub fn device(&self) -> Result<Device> {
        Ok(parse_device(&self.config.trainer.device)?)
    }

    /// The method as the run built it (same seed, so the same random init),
    /// with the last checkpoint's weights unless `random_init`.
    pub fn build(
        &self,
        device: Device,
        channels: Option<i64>,
        random_init: bool,
    ) -> selfsup_train::Result<(VarStore, Box<dyn VisionMethod>)> {
        tch::manual_seed(self.config.trainer.seed as i64);
        let vs = VarStore::new(device);
        let method = self
            .config
            .method
            .build(vs.root(), &VisionContext { channels })?;
        if !random_init {
            self.run.restore_model(&vs)?;
        }
        Ok((vs, method))
    }
}

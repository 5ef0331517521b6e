//! Builds the optimizer a config names, with decay / no-decay parameter groups.

use crate::config::{OptimConfig, OptimizerKind};
use selfsup_core::optim::{
    decay_groups, AdamW, AdamWConfig, Lars, LarsConfig, Optimizer, Sgd, SgdConfig,
};
use tch::nn::VarStore;

/// The configured optimizer over the trainable variables of `vs` (biases and
/// norm parameters in a group without weight decay).
pub fn build(vs: &VarStore, config: &OptimConfig) -> Box<dyn Optimizer> {
    let groups = decay_groups(vs, config.weight_decay);
    match config.optimizer {
        OptimizerKind::Adamw => Box::new(AdamW::new(
            groups,
            AdamWConfig {
                beta1: config.beta1,
                beta2: config.beta2,
                eps: 1e-8,
            },
        )),
        OptimizerKind::Sgd => Box::new(Sgd::new(
            groups,
            SgdConfig {
                momentum: config.momentum,
                nesterov: config.nesterov,
            },
        )),
        OptimizerKind::Lars => Box::new(Lars::new(
            groups,
            LarsConfig {
                momentum: config.momentum,
                trust_coefficient: config.trust_coefficient,
            },
        )),
    }
}

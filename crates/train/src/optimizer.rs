//! Builds the optimizer a config names, with decay / no-decay parameter groups.

use crate::config::{OptimConfig, OptimizerKind};
use crate::{check, Result};
use selfsup_core::optim::{
    decay_groups, scale_groups, AdamW, AdamWConfig, Lars, LarsConfig, Optimizer, ParamGroup, Sgd,
    SgdConfig,
};
use std::collections::BTreeSet;
use tch::nn::VarStore;

/// The configured optimizer over the trainable variables of `vs`, in the
/// groups of [`param_groups`].
pub fn build(vs: &VarStore, config: &OptimConfig) -> Result<Box<dyn Optimizer>> {
    let groups = param_groups(vs, config)?;
    Ok(match config.optimizer {
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
    })
}

/// The trainable variables of `vs` in groups: biases and norm parameters
/// without weight decay, `optim.lr_scales`' paths in groups of their own. A
/// path that names no variable is an error, which experiments check before
/// they create a run folder (without allocating optimizer state).
pub fn param_groups(vs: &VarStore, config: &OptimConfig) -> Result<Vec<ParamGroup>> {
    let scales: Vec<(String, f64)> = config
        .lr_scales
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let (groups, unmatched) = scale_groups(decay_groups(vs, config.weight_decay), &scales);
    if let Some(path) = unmatched.first() {
        let modules: BTreeSet<&str> = groups
            .iter()
            .flat_map(|g| g.names.iter())
            .filter_map(|name| name.split('.').next())
            .collect();
        let modules: Vec<&str> = modules.into_iter().collect();
        let message = format!(
            "`{path}` names no trainable variable; this model's modules are {}",
            modules.join(", ")
        );
        return Err(check::invalid(&format!("optim.lr_scales.{path}"), message));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    fn model() -> VarStore {
        let vs = VarStore::new(tch::Device::Cpu);
        let _encoder = nn::linear(vs.root() / "encoder", 3, 2, Default::default());
        let _predictor = nn::linear(vs.root() / "predictor", 2, 2, Default::default());
        vs
    }

    #[test]
    fn lr_scales_split_the_groups() {
        let vs = model();
        let mut config = OptimConfig::default();
        config.lr_scales.insert("predictor".into(), 10.0);
        let optimizer = build(&vs, &config).unwrap();
        let scales: Vec<(usize, f64)> = optimizer
            .groups()
            .iter()
            .map(|g| (g.names.len(), g.lr_scale))
            .collect();
        assert_eq!(scales, vec![(1, 1.0), (1, 10.0), (1, 1.0), (1, 10.0)]);
    }

    #[test]
    fn a_misspelt_path_is_an_error_naming_it() {
        let vs = model();
        let mut config = OptimConfig::default();
        config.lr_scales.insert("predicter".into(), 10.0);
        let message = build(&vs, &config)
            .err()
            .expect("a misspelt path must fail")
            .to_string();
        assert!(message.contains("optim.lr_scales.predicter"), "{message}");
        assert!(message.contains("encoder, predictor"), "{message}");
    }
}

//! LARS (You, Gitman & Ginsburg, 2017), as in the official SimCLR and MoCo v3
//! code: for weight matrices the update `g + wd·p` is rescaled by the trust
//! ratio `η‖p‖ / ‖g + wd·p‖`; biases and norm parameters (one dimension or
//! fewer) are excluded from both the decay and the adaptation; then heavy-ball
//! momentum `μ ← m·μ + update`, `p ← p − lr·μ`.

use super::state::{find_count, scalar_like, Buffers};
use super::{Optimizer, ParamGroup};
use crate::error::Result;
use tch::Tensor;

/// LARS hyper-parameters other than the learning rate.
#[derive(Debug, Clone, Copy)]
pub struct LarsConfig {
    /// Momentum factor (0.9 in SimCLR and MoCo v3).
    pub momentum: f64,
    /// Trust coefficient η (0.001).
    pub trust_coefficient: f64,
}

impl Default for LarsConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            trust_coefficient: 0.001,
        }
    }
}

/// LARS over parameter groups.
#[derive(Debug)]
pub struct Lars {
    groups: Vec<ParamGroup>,
    momentum: Buffers,
    steps_taken: i64,
    config: LarsConfig,
}

impl Lars {
    /// Zero momentum buffers.
    pub fn new(groups: Vec<ParamGroup>, config: LarsConfig) -> Self {
        let momentum = Buffers::zeros_like("mu", &groups);
        Self {
            groups,
            momentum,
            steps_taken: 0,
            config,
        }
    }
}

impl Optimizer for Lars {
    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn groups_mut(&mut self) -> &mut [ParamGroup] {
        &mut self.groups
    }

    fn step(&mut self, lr: f64) {
        let LarsConfig {
            momentum,
            trust_coefficient,
        } = self.config;
        self.steps_taken += 1;
        tch::no_grad(|| {
            for (g, group) in self.groups.iter_mut().enumerate() {
                let Some(like) = group.params.first() else {
                    continue;
                };
                // Scalars as 0-d tensors, made once per group.
                let neg_lr = scalar_like(-lr * group.lr_scale, like);
                let weight_decay = scalar_like(group.weight_decay, like);
                for (i, param) in group.params.iter_mut().enumerate() {
                    let grad = param.grad();
                    if !grad.defined() {
                        continue;
                    }
                    let update = if param.dim() > 1 {
                        let mut update = grad.addcmul(param, &weight_decay);
                        let param_norm = param.norm();
                        let update_norm = update.norm();
                        // η‖p‖/‖u‖ where both norms are positive, else 1 (no adaptation).
                        let trust = (param_norm.g_mul_scalar(trust_coefficient) / &update_norm)
                            .where_scalarother(&update_norm.gt(0.0), 1.0)
                            .where_scalarother(&param_norm.gt(0.0), 1.0);
                        let _ = update.g_mul_(&trust);
                        update
                    } else {
                        grad
                    };
                    let buffer = &mut self.momentum.values[g][i];
                    let _ = buffer.g_mul_scalar_(momentum).g_add_(&update);
                    let _ = param.addcmul_(buffer, &neg_lr);
                }
            }
        });
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::from(self.steps_taken))];
        out.extend(self.momentum.state(&self.groups));
        out
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.steps_taken = find_count(named, "step", i64::MAX / 2)?;
        self.momentum.load(&self.groups, named)
    }
}

//! LARS (You, Gitman & Ginsburg, 2017), as in the official SimCLR and MoCo v3
//! code: for weight matrices the update `g + wd·p` is rescaled by the trust
//! ratio `η‖p‖ / ‖g + wd·p‖`; biases and norm parameters (one dimension or
//! fewer) are excluded from both the decay and the adaptation; then heavy-ball
//! momentum `μ ← m·μ + update`, `p ← p − lr·μ`.

use super::state::{find, Buffers};
use super::{Optimizer, ParamGroup};
use crate::error::Result;
use tch::{Kind, Tensor};

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
                let lr = lr * group.lr_scale;
                for (i, param) in group.params.iter_mut().enumerate() {
                    let grad = param.grad();
                    if !grad.defined() {
                        continue;
                    }
                    let update = if param.dim() > 1 {
                        let update = &grad + &*param * group.weight_decay;
                        let param_norm = param.norm().to_kind(Kind::Float);
                        let update_norm = update.norm().to_kind(Kind::Float);
                        let one = param_norm.ones_like();
                        let ratio = (&param_norm * trust_coefficient) / &update_norm;
                        // Ratio where both norms are positive, else 1 (no adaptation).
                        let trust = ratio
                            .where_self(&update_norm.gt(0.0), &one)
                            .where_self(&param_norm.gt(0.0), &one);
                        update * trust
                    } else {
                        grad
                    };
                    let buffer = &mut self.momentum.values[g][i];
                    let _ = buffer.g_mul_scalar_(momentum).g_add_(&update);
                    let _ = param.g_add_(&(&*buffer * -lr));
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
        self.steps_taken = find(named, "step")?.int64_value(&[]);
        self.momentum.load(&self.groups, named)
    }
}

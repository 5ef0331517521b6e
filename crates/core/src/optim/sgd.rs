//! SGD with momentum, Nesterov and weight decay, with the update of `torch.optim.SGD`.

use super::state::{find_count, scalar_like, Buffers};
use super::{Optimizer, ParamGroup};
use crate::error::Result;
use tch::Tensor;

/// SGD hyper-parameters other than the learning rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct SgdConfig {
    /// Momentum factor (0 disables the buffer).
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// SGD over parameter groups (weight decay per group, L2 added to the gradient).
#[derive(Debug)]
pub struct Sgd {
    groups: Vec<ParamGroup>,
    momentum: Buffers,
    steps_taken: i64,
    config: SgdConfig,
}

impl Sgd {
    /// Zero momentum buffers.
    pub fn new(groups: Vec<ParamGroup>, config: SgdConfig) -> Self {
        let momentum = Buffers::zeros_like("momentum_buffer", &groups);
        Self {
            groups,
            momentum,
            steps_taken: 0,
            config,
        }
    }
}

impl Optimizer for Sgd {
    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn groups_mut(&mut self) -> &mut [ParamGroup] {
        &mut self.groups
    }

    fn step(&mut self, lr: f64) {
        let SgdConfig { momentum, nesterov } = self.config;
        let first = self.steps_taken == 0;
        self.steps_taken += 1;
        tch::no_grad(|| {
            for (g, group) in self.groups.iter_mut().enumerate() {
                let Some(like) = group.params.first() else {
                    continue;
                };
                // Scalars as 0-d tensors, made once per group.
                let (neg_lr, weight_decay) = (
                    scalar_like(-lr * group.lr_scale, like),
                    scalar_like(group.weight_decay, like),
                );
                let momentum_scalar = scalar_like(momentum, like);
                for (i, param) in group.params.iter_mut().enumerate() {
                    let grad = param.grad();
                    if !grad.defined() {
                        continue;
                    }
                    // d = g + wd·p, as torch: one kernel.
                    let mut update = if group.weight_decay != 0.0 {
                        grad.addcmul(param, &weight_decay)
                    } else {
                        grad
                    };
                    if momentum != 0.0 {
                        let buffer = &mut self.momentum.values[g][i];
                        // torch starts the buffer at the first gradient, not at zero.
                        if first {
                            buffer.copy_(&update);
                        } else {
                            let _ = buffer.g_mul_scalar_(momentum).g_add_(&update);
                        }
                        update = if nesterov {
                            update.addcmul(buffer, &momentum_scalar)
                        } else {
                            buffer.shallow_clone()
                        };
                    }
                    let _ = param.addcmul_(&update, &neg_lr);
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

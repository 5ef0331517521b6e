//! AdamW (Loshchilov & Hutter, 2019) with the exact update of `torch.optim.AdamW`.

use super::multi_tensor::{fused_adamw, AdamWStep};
use super::state::{find_count, Buffers};
use super::{Optimizer, ParamGroup};
use crate::error::Result;
use tch::Tensor;

/// Hyper-parameters other than the learning rate (which the schedule supplies per step).
#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    /// Decay of the first moment (0.9 in most recipes).
    pub beta1: f64,
    /// Decay of the second moment (0.999 default; MAE and MoCo v3 ViT use 0.95).
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// AdamW over parameter groups; its state is two tensors per parameter and a step count.
#[derive(Debug)]
pub struct AdamW {
    groups: Vec<ParamGroup>,
    exp_avg: Buffers,
    exp_avg_sq: Buffers,
    steps_taken: i64,
    config: AdamWConfig,
}

impl AdamW {
    /// Zero moments for every parameter of every group.
    pub fn new(groups: Vec<ParamGroup>, config: AdamWConfig) -> Self {
        let exp_avg = Buffers::zeros_like("exp_avg", &groups);
        let exp_avg_sq = Buffers::zeros_like("exp_avg_sq", &groups);
        Self {
            groups,
            exp_avg,
            exp_avg_sq,
            steps_taken: 0,
            config,
        }
    }
}

impl Optimizer for AdamW {
    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn groups_mut(&mut self) -> &mut [ParamGroup] {
        &mut self.groups
    }

    /// One fused call per group (libtorch's `_fused_adamw_`, what
    /// `torch.optim.AdamW(fused=True)` runs): the same update as the
    /// textbook loop, p ← p·(1 − lr·wd) − lr·m̂ / (√v̂ + ε), in one kernel.
    fn step(&mut self, lr: f64) {
        let AdamWConfig { beta1, beta2, eps } = self.config;
        self.steps_taken += 1;
        for (g, group) in self.groups.iter().enumerate() {
            let h = AdamWStep {
                step: self.steps_taken as f64,
                lr: lr * group.lr_scale,
                beta1,
                beta2,
                weight_decay: group.weight_decay,
                eps,
            };
            fused_adamw(
                &group.params,
                &self.exp_avg.values[g],
                &self.exp_avg_sq.values[g],
                h,
            );
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::from(self.steps_taken))];
        out.extend(self.exp_avg.state(&self.groups));
        out.extend(self.exp_avg_sq.state(&self.groups));
        out
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.steps_taken = find_count(named, "step", i64::MAX / 2)?;
        self.exp_avg.load(&self.groups, named)?;
        self.exp_avg_sq.load(&self.groups, named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;
    use tch::{Device, Kind};

    fn quadratic_problem() -> (Tensor, AdamW) {
        let x = Tensor::from_slice(&[3.0f32, -2.0]).set_requires_grad(true);
        let group = ParamGroup {
            names: vec!["x".into()],
            params: vec![x.shallow_clone()],
            weight_decay: 0.0,
            lr_scale: 1.0,
        };
        (x, AdamW::new(vec![group], AdamWConfig::default()))
    }

    #[test]
    fn first_step_moves_each_coordinate_by_lr() {
        // With bias correction, Adam's first update is lr * sign(grad).
        let (x, mut opt) = quadratic_problem();
        x.square().sum(Kind::Float).backward();
        opt.step(0.1);
        let got: Vec<f32> = Vec::try_from(&x.detach()).unwrap();
        assert!(
            (got[0] - 2.9).abs() < 1e-6 && (got[1] + 1.9).abs() < 1e-6,
            "{got:?}"
        );
    }

    #[test]
    fn minimises_a_quadratic() {
        let (x, mut opt) = quadratic_problem();
        for _ in 0..300 {
            opt.zero_grad();
            x.square().sum(Kind::Float).backward();
            opt.step(0.05);
        }
        assert!(x.abs().max().double_value(&[]) < 0.05);
    }

    #[test]
    fn decoupled_decay_shrinks_without_gradient_signal() {
        let x = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let group = ParamGroup {
            names: vec!["x".into()],
            params: vec![x.shallow_clone()],
            weight_decay: 0.5,
            lr_scale: 1.0,
        };
        let mut opt = AdamW::new(vec![group], AdamWConfig::default());
        (&x * 0.0).sum(Kind::Float).backward();
        opt.step(0.1);
        assert!((x.double_value(&[0]) - 0.95).abs() < 1e-6);
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let (x, mut opt) = quadratic_problem();
        let step = |x: &Tensor, opt: &mut AdamW| {
            opt.zero_grad();
            x.square().sum(Kind::Float).backward();
            opt.step(0.05);
        };
        for _ in 0..3 {
            step(&x, &mut opt);
        }
        let saved: Vec<(String, Tensor)> = opt
            .state()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        let x_saved = x.detach().copy();
        step(&x, &mut opt);
        let expected = x.detach().copy();

        let (mut y, mut restored) = quadratic_problem();
        tch::no_grad(|| y.copy_(&x_saved));
        restored.load_state(&saved).unwrap();
        step(&y, &mut restored);
        assert!(y.detach().equal(&expected));
    }

    #[test]
    fn missing_state_is_named() {
        let (_x, mut opt) = quadratic_problem();
        let err = opt
            .load_state(&[("step".into(), Tensor::from(1i64))])
            .unwrap_err();
        assert!(err.to_string().contains("exp_avg.x"), "{err}");
    }
}

//! The momentum encoder of MoCo v2 / v3 (and BYOL's target): a copy of part
//! of the student, built by the same code in its own var store (so the
//! optimizer never sees it), updated as an EMA after every optimizer step
//! with the momentum following a cosine from `base` to 1, and saved in
//! checkpoints as `teacher.<name>`.

use selfsup_core::ema::Ema;
use selfsup_core::schedule::momentum_cosine;
use selfsup_train::Progress;
use tch::nn::{self, VarStore};
use tch::Tensor;

/// The teacher network `T` and its EMA link to the student.
#[derive(Debug)]
pub struct MomentumTeacher<T> {
    vs: VarStore,
    /// The teacher network; run it under `no_grad`.
    pub net: T,
    ema: Ema,
    base_momentum: f64,
}

const PREFIX: &str = "teacher.";

impl<T> MomentumTeacher<T> {
    /// Builds the teacher with `build` (the same function that built the
    /// student's copy under `student`) and starts it as the student's copy.
    pub fn new(
        student: &nn::Path,
        base_momentum: f64,
        build: impl FnOnce(nn::Path) -> selfsup_train::Result<T>,
    ) -> selfsup_train::Result<Self> {
        let vs = VarStore::new(student.device());
        let net = build(vs.root())?;
        // The teacher is built by the same code as the student, at the same names.
        let ema = Ema::under(&vs, student)?;
        Ok(Self {
            vs,
            net,
            ema,
            base_momentum,
        })
    }

    /// The momentum at `progress` (cosine from the base to 1).
    pub fn momentum(&self, progress: &Progress) -> f64 {
        momentum_cosine(progress.step, progress.total_steps, self.base_momentum)
    }

    /// One EMA update after an optimizer step.
    pub fn update(&mut self, progress: &Progress) {
        let momentum = self.momentum(progress);
        self.ema.update(momentum);
    }

    /// The teacher's variables for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("{PREFIX}{n}"), t))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    /// Restores what [`MomentumTeacher::state`] saved; every variable must be there.
    pub fn load_state(&mut self, named: &[(String, Tensor)]) -> selfsup_train::Result<()> {
        for (name, mut variable) in self.vs.variables() {
            let key = format!("{PREFIX}{name}");
            let saved = named.iter().find(|(n, _)| *n == key).map(|(_, t)| t);
            match saved {
                Some(t) if t.size() == variable.size() => {
                    tch::no_grad(|| variable.copy_(t));
                }
                _ => {
                    let message =
                        format!("checkpoint has no `{key}` of shape {:?}", variable.size());
                    return Err(selfsup_core::Error::State(message).into());
                }
            }
        }
        Ok(())
    }
}

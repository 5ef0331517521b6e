//! The training loop every method shares: batches from the sampler, the
//! configured optimizer with warmup + cosine per step, gradient accumulation and
//! clipping, NaN/Inf checks, metrics rows, a progress bar and atomic checkpoints.
//!
//! The loop is in small parts: [`Schedule`] (how many steps, which lr),
//! `fit.rs` (one step, the end of an epoch, a checkpoint), `tracker.rs`
//! (losses and scalars kept on the device until a log row needs them) and
//! `state.rs` (what a checkpoint holds).
//!
//! Exact resume: the data order derives from `(seed, epoch)` and libtorch's
//! generator is reseeded from `(seed, step)` before every step, so a run that
//! stops and resumes from a checkpoint computes the same steps as one that
//! never stopped, with no RNG state to save. The generator is global to the
//! process, so one process trains one run at a time.

mod bar;
mod fit;
mod state;
mod tracker;

pub use state::{check_resumable, restore_model, MODEL_PREFIX};

use crate::check;
use crate::config::{OptimConfig, TrainerConfig};
use crate::error::Result;
use crate::method::Method;
use crate::metrics::MetricsCsv;
use crate::optimizer;
use crate::run_dir::RunDir;
use crate::source::{prefetch, BatchSource, Plan};
use selfsup_core::schedule::warmup_cosine;
use selfsup_data::sampler::EpochSampler;
use std::path::Path;
use std::sync::Arc;
use tch::nn::VarStore;

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Optimizer steps done in total (including any before a resume).
    pub steps: usize,
    /// Loss of the first step this process ran.
    pub first_loss: f64,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Wall time of this process's loop.
    pub seconds: f64,
    /// Throughput units (see [`FitReport::unit`]) per second in this process.
    pub units_per_second: f64,
    /// What a throughput unit is: `images` or `tokens`.
    pub unit: &'static str,
    /// Share of the loop's time spent waiting for batches: the accelerator
    /// waits for data this much.
    pub data_wait_share: f64,
    /// Processes that trained together (1 alone); throughput counts all.
    pub world_size: usize,
}

/// Runs the loop; owns no model, only the settings.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// Loop settings.
    pub config: TrainerConfig,
    /// Optimizer and schedule.
    pub optim: OptimConfig,
}

/// The step plan of a run over a data set of a given size.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Optimizer steps of the whole run.
    pub total_steps: usize,
    /// Steps of linear learning-rate warmup.
    pub warmup_steps: usize,
    /// Micro-batches per optimizer step.
    pub accumulate: usize,
}

impl Trainer {
    /// Batches the producer thread keeps ready.
    const PREFETCH: usize = 2;

    /// The trainer a run config describes (its `[trainer]` and `[optim]`).
    pub fn of<M, D>(config: &crate::RunConfig<M, D>) -> Self {
        Self {
            config: config.trainer.clone(),
            optim: config.optim.clone(),
        }
    }

    /// The plan for `len` training samples; an error (naming
    /// `trainer.batch_size`) when they do not fill one optimizer step. Call
    /// it before creating a run folder, so a run that cannot start leaves none.
    pub fn schedule(&self, len: usize) -> Result<Schedule> {
        let accumulate = self.config.accumulate.max(1);
        let world = crate::distributed::world_size();
        let per_step = self
            .config
            .batch_size
            .max(1)
            .saturating_mul(accumulate)
            .saturating_mul(world);
        let steps_per_epoch = len / per_step;
        if steps_per_epoch == 0 {
            let ranks = if world > 1 {
                format!(" x {world} ranks")
            } else {
                String::new()
            };
            let message = format!(
                "{} x {accumulate} accumulated (trainer.accumulate){ranks} is more than the {len} training samples",
                self.config.batch_size
            );
            return Err(check::invalid("trainer.batch_size", message));
        }
        let total_steps = steps_per_epoch
            .saturating_mul(self.config.epochs)
            .min(self.config.max_steps.unwrap_or(usize::MAX));
        let warmup_steps = self.optim.warmup_steps.unwrap_or_else(|| {
            (self.optim.warmup_epochs * steps_per_epoch as f64).round() as usize
        });
        Ok(Schedule {
            steps_per_epoch,
            total_steps,
            warmup_steps,
            accumulate,
        })
    }

    /// The learning rate of `step` under `schedule`.
    pub fn lr(&self, schedule: &Schedule, step: usize) -> f64 {
        let optim = &self.optim;
        warmup_cosine(
            step,
            schedule.total_steps,
            schedule.warmup_steps,
            optim.lr,
            optim.min_lr,
        )
    }

    /// Trains `method` (whose variables live in `vs`) on batches from `data`,
    /// writing metrics rows and the `last` checkpoint in `run`. With `resume`,
    /// continues from that checkpoint's step. A producer thread builds the
    /// next batches while the current step runs.
    pub fn fit(
        &self,
        method: &mut dyn Method,
        vs: &VarStore,
        data: &dyn BatchSource,
        run: &RunDir,
        metrics: &mut MetricsCsv,
        resume: Option<&Path>,
    ) -> Result<FitReport> {
        let schedule = self.schedule(data.len())?;
        let optimizer = optimizer::build(vs, &self.optim)?;
        let parts = fit::Parts {
            trainer: self,
            schedule,
            method,
            vs,
            data,
            run,
            metrics,
        };
        let mut fit = fit::Fit::start(parts, optimizer, resume)?;
        let mut _sync_bn = None;
        if let Some(group) = crate::distributed::current() {
            // Fresh or resumed, every rank starts from rank 0's weights.
            crate::distributed::data_parallel::broadcast_variables(group, vs)?;
            if self.config.sync_batch_norm {
                _sync_bn = Some(crate::distributed::data_parallel::sync_batch_norm(group));
            }
        }
        let plans = self.plans(data, &schedule, fit.start_step());
        std::thread::scope(|scope| {
            let batches = prefetch(scope, data, plans, Self::PREFETCH);
            fit.run(&batches)
        })
    }

    /// Every micro-batch from `start_step` on, in training order: the
    /// sampler's shuffle, or the source's own order when it has one. In a
    /// data-parallel run the sampler deals global batches of
    /// `world × batch_size` (the same order for any world size, the last
    /// partial one dropped) and this rank takes its slice of each.
    fn plans<'a, S: BatchSource + ?Sized>(
        &self,
        data: &'a S,
        schedule: &Schedule,
        start_step: usize,
    ) -> impl Iterator<Item = Plan> + Send + 'a {
        let (rank, world) = (crate::distributed::rank(), crate::distributed::world_size());
        let per_rank = self.config.batch_size;
        let sampler = EpochSampler {
            len: data.len(),
            batch_size: per_rank * world,
            drop_last: true,
            seed: self.config.seed,
        };
        let Schedule {
            steps_per_epoch,
            total_steps,
            accumulate,
            ..
        } = *schedule;
        let mut shuffled: (usize, Arc<Vec<Vec<usize>>>) = (usize::MAX, Arc::default());
        (start_step..total_steps).flat_map(move |step| {
            let epoch = step / steps_per_epoch;
            if shuffled.0 != epoch {
                let batches = match data.epoch_order(sampler.seed, epoch as u64) {
                    Some(order) => sampler.batches(&order),
                    None => sampler.epoch(epoch as u64),
                };
                shuffled = (epoch, Arc::new(batches));
            }
            let batches = Arc::clone(&shuffled.1);
            let first = (step % steps_per_epoch) * accumulate;
            (0..accumulate).map(move |micro| {
                let global = &batches[first + micro];
                (
                    epoch,
                    global[rank * per_rank..(rank + 1) * per_rank].to_vec(),
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trainer(batch_size: usize, accumulate: usize, epochs: usize) -> Trainer {
        Trainer {
            config: TrainerConfig {
                batch_size,
                accumulate,
                epochs,
                ..Default::default()
            },
            optim: OptimConfig {
                warmup_epochs: 0.5,
                ..Default::default()
            },
        }
    }

    #[test]
    fn schedules_count_steps_and_refuse_too_little_data() {
        let schedule = trainer(8, 2, 3).schedule(40).unwrap();
        assert_eq!(
            (
                schedule.steps_per_epoch,
                schedule.total_steps,
                schedule.warmup_steps
            ),
            (2, 6, 1)
        );
        let error = trainer(64, 1, 1).schedule(40).unwrap_err().to_string();
        assert!(
            error.contains("trainer.batch_size") && error.contains("40"),
            "{error}"
        );
        let huge = trainer(1, 1, usize::MAX).schedule(10).unwrap();
        assert_eq!(huge.total_steps, usize::MAX, "no overflow");
    }

    /// Sixteen samples, in the sampler's order or (`reversed`) its own.
    struct Sixteen {
        reversed: bool,
    }

    impl BatchSource for Sixteen {
        fn len(&self) -> usize {
            16
        }
        fn batch(&self, _: usize, _: &[usize]) -> crate::Result<crate::Batch> {
            unreachable!("plans only")
        }
        fn epoch_order(&self, _seed: u64, epoch: u64) -> Option<Vec<usize>> {
            let order = (0..16).map(|i| (15 - i + epoch as usize) % 16).collect();
            self.reversed.then_some(order)
        }
    }

    #[test]
    fn plans_follow_a_source_s_own_order() {
        let trainer = trainer(4, 1, 2);
        let schedule = trainer.schedule(16).unwrap();
        let plans: Vec<Plan> = trainer
            .plans(&Sixteen { reversed: true }, &schedule, 0)
            .collect();
        assert_eq!(plans[0], (0, vec![15, 14, 13, 12]));
        assert_eq!(plans[4], (1, vec![0, 15, 14, 13]));
        let resumed: Vec<Plan> = trainer
            .plans(&Sixteen { reversed: true }, &schedule, 6)
            .collect();
        assert_eq!(resumed, plans[6..].to_vec());
    }

    #[test]
    fn plans_cover_each_epoch_once_from_any_start() {
        let trainer = trainer(4, 1, 2);
        let schedule = trainer.schedule(16).unwrap();
        let data = Sixteen { reversed: false };
        let all: Vec<Plan> = trainer.plans(&data, &schedule, 0).collect();
        assert_eq!(all.len(), 8);
        let mut first_epoch: Vec<usize> = all[..4].iter().flat_map(|p| p.1.clone()).collect();
        first_epoch.sort();
        assert_eq!(first_epoch, (0..16).collect::<Vec<_>>());
        let resumed: Vec<Plan> = trainer.plans(&data, &schedule, 5).collect();
        assert_eq!(resumed, all[5..].to_vec());
    }
}

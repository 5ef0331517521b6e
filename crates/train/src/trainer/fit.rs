//! One run of the loop, in parts: a step (forward and backward over the
//! micro-batches, the method's hooks, the optimizer), the bookkeeping after
//! it (log rows, the end of an epoch, checkpoints) and the final report.

use super::bar::progress_bar;
use super::state::{self, Counters, Snapshot};
use super::tracker::Tracker;
use super::{FitReport, Schedule, Trainer};
use crate::autocast::with_precision;
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::method::{Method, Progress};
use crate::metrics::MetricsCsv;
use crate::online_probe::OnlineProbe;
use crate::run_dir::RunDir;
use crate::source::BatchSource;
use indicatif::ProgressBar;
use selfsup_core::optim::Optimizer;
use selfsup_core::schedule::cosine;
use selfsup_data::sampler::mix;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use tch::nn::VarStore;
use tch::Tensor;

/// What a run is made of.
pub(super) struct Parts<'a> {
    pub trainer: &'a Trainer,
    pub schedule: Schedule,
    pub method: &'a mut dyn Method,
    pub vs: &'a VarStore,
    pub data: &'a dyn BatchSource,
    pub run: &'a RunDir,
    pub metrics: &'a mut MetricsCsv,
}

/// A run in progress.
pub(super) struct Fit<'a> {
    parts: Parts<'a>,
    optimizer: Box<dyn Optimizer>,
    /// Which optimizer groups decay (their decay follows `weight_decay_end`).
    decayed: Vec<bool>,
    counters: Counters,
    probe: Option<OnlineProbe>,
    tracker: Tracker,
    clock: Clock,
    bar: ProgressBar,
}

/// Timing and the losses the report quotes.
struct Clock {
    started: Instant,
    start_step: usize,
    data_seconds: f64,
    first_loss: f64,
    last_loss: f64,
}

impl<'a> Fit<'a> {
    /// A fresh run, or one continued from the checkpoint at `resume`.
    pub fn start(
        parts: Parts<'a>,
        mut optimizer: Box<dyn Optimizer>,
        resume: Option<&Path>,
    ) -> Result<Self> {
        let (counters, probe) = match resume {
            Some(path) => state::restore(path, parts.vs, optimizer.as_mut(), parts.method)?,
            None => (Counters::default(), None),
        };
        let decayed = optimizer
            .groups()
            .iter()
            .map(|g| g.weight_decay != 0.0)
            .collect();
        let total = parts.schedule.total_steps as u64;
        Ok(Self {
            parts,
            optimizer,
            decayed,
            counters,
            probe,
            tracker: Tracker::default(),
            clock: Clock {
                started: Instant::now(),
                start_step: counters.step,
                data_seconds: 0.0,
                first_loss: f64::NAN,
                last_loss: f64::NAN,
            },
            bar: progress_bar(total, counters.step as u64),
        })
    }

    /// The step this process starts from.
    pub fn start_step(&self) -> usize {
        self.counters.step
    }

    /// Every remaining step, fed from `batches`, then the report.
    pub fn run(&mut self, batches: &Receiver<Result<Batch>>) -> Result<FitReport> {
        for step in self.counters.step..self.parts.schedule.total_steps {
            if let Err(error) = self.step(step, batches) {
                self.bar.abandon();
                return Err(error);
            }
        }
        self.bar.finish();
        Ok(self.report())
    }

    /// Where the loop stands during optimizer step `step` (0-based), with
    /// `done` steps counted: `step` before the update, `step + 1` after.
    fn progress(&self, step: usize, done: usize) -> Progress {
        let schedule = &self.parts.schedule;
        Progress {
            step: done,
            total_steps: schedule.total_steps,
            epoch: step / schedule.steps_per_epoch,
            steps_per_epoch: schedule.steps_per_epoch,
        }
    }

    /// Optimizer step `step` (0-based): its micro-batches, hooks and update.
    fn step(&mut self, step: usize, batches: &Receiver<Result<Batch>>) -> Result<()> {
        // Every random op of this step (masking, noise) draws from here;
        // ranks other than 0 draw their own stream.
        let seed = mix(self.parts.trainer.config.seed, step as u64);
        let rank = crate::distributed::rank() as u64;
        tch::manual_seed(if rank == 0 { seed } else { mix(seed, rank) } as i64);
        let lr = self.apply_schedules(step);
        self.optimizer.zero_grad();
        for _ in 0..self.parts.schedule.accumulate {
            let started = Instant::now();
            let batch = batches.recv().map_err(|_| Error::Config {
                origin: "data".into(),
                message: "the batch producer stopped early".into(),
            })??;
            self.clock.data_seconds += started.elapsed().as_secs_f64();
            self.forward_backward(step, &batch)?;
        }
        if let Some(group) = crate::distributed::current() {
            let params = self.optimizer_params();
            crate::distributed::data_parallel::average_gradients(
                group,
                &params,
                crate::distributed::data_parallel::DEFAULT_BUCKET_BYTES,
            )?;
        }
        self.parts
            .method
            .before_optimizer_step(&self.progress(step, step))?;
        if let Some(max_norm) = self.parts.trainer.config.grad_clip {
            // libtorch's multi-tensor kernels; the scale stays on the device.
            selfsup_core::optim::clip_grad_norm(&self.optimizer_params(), max_norm);
        }
        self.optimizer.step(lr);
        let done = step + 1;
        self.parts.method.after_step(&self.progress(step, done))?;
        self.tracker.end_step(done);
        self.counters.step = done;
        self.after_step(done, lr)
    }

    /// The learning rate of `step`, after moving weight decay along its cosine.
    fn apply_schedules(&mut self, step: usize) -> f64 {
        let (trainer, schedule) = (self.parts.trainer, &self.parts.schedule);
        if let Some(end) = trainer.optim.weight_decay_end {
            let decay = cosine(step, schedule.total_steps, trainer.optim.weight_decay, end);
            let groups = self.optimizer.groups_mut().iter_mut().zip(&self.decayed);
            for (group, _) in groups.filter(|(_, decays)| **decays) {
                group.weight_decay = decay;
            }
        }
        trainer.lr(schedule, step)
    }

    /// One micro-batch: forward (under the configured precision), the
    /// online probe, backward. The loss stays on the device.
    fn forward_backward(&mut self, step: usize, batch: &Batch) -> Result<()> {
        let config = &self.parts.trainer.config;
        let device = self.parts.vs.device();
        let method = &mut *self.parts.method;
        let output = guarded(step, config.batch_size, || {
            with_precision(config.precision, device, || method.step(batch, true))
        })???;
        if let (Some(features), Some(labels)) = (&output.features, &batch.labels) {
            let classes = self.parts.data.num_classes() as i64;
            if classes > 0 {
                let dim = features.size()[1];
                let probe = self
                    .probe
                    .get_or_insert_with(|| OnlineProbe::new(dim, classes, features.device()));
                probe.step(features, labels);
            }
        }
        let accumulate = self.parts.schedule.accumulate;
        self.tracker
            .add_micro(&output.loss, accumulate, &output.scalars);
        let loss = output.loss;
        guarded(step, config.batch_size, || {
            (loss / accumulate as f64).backward()
        })
    }

    /// Log rows, the end of an epoch and checkpoints after step `done` (1-based).
    fn after_step(&mut self, done: usize, lr: f64) -> Result<()> {
        let (config, schedule) = (&self.parts.trainer.config, self.parts.schedule);
        let log = done % config.log_every.max(1) == 0 || done == schedule.total_steps;
        let epoch_end = done % schedule.steps_per_epoch == 0 || done == schedule.total_steps;
        let periodic = config.checkpoint_every > 0 && done % config.checkpoint_every == 0;
        if log || epoch_end || periodic {
            self.read_back()?;
        }
        let epoch = (done - 1) / schedule.steps_per_epoch;
        if log {
            self.log(done, epoch, lr)?;
        }
        self.bar.inc(1);
        let is_best = if epoch_end {
            self.end_epoch(done, epoch)?
        } else {
            false
        };
        if epoch_end || periodic {
            self.checkpoint(is_best)?;
        }
        Ok(())
    }

    /// Reads the pending losses back (one sync); stops at a NaN or infinity.
    fn read_back(&mut self) -> Result<()> {
        let flushed = self.tracker.flush()?;
        for &loss in &flushed.losses {
            if self.clock.first_loss.is_nan() {
                self.clock.first_loss = loss;
            }
            self.clock.last_loss = loss;
            self.counters.epoch_loss_sum += loss;
            self.counters.epoch_steps += 1;
        }
        Ok(())
    }

    /// A metrics row of the mean loss and scalars since the last one, and the bar's message.
    fn log(&mut self, done: usize, epoch: usize, lr: f64) -> Result<()> {
        let (loss, scalars) = self.tracker.take_window()?;
        let metrics = &mut *self.parts.metrics;
        metrics.write(done, epoch, "train", "loss", loss)?;
        metrics.write(done, epoch, "train", "lr", lr)?;
        for (name, value) in &scalars {
            metrics.write(done, epoch, "train", name, *value)?;
        }
        let (rate, unit) = (self.rate(done), self.parts.data.unit());
        self.bar
            .set_message(format!("loss {loss:.4} lr {lr:.2e} {rate:.0} {unit}/s"));
        if self.bar.is_hidden() {
            let total_steps = self.parts.schedule.total_steps;
            tracing::info!(
                step = done,
                total_steps,
                epoch,
                loss,
                lr,
                per_second = rate,
                unit,
                "train"
            );
        }
        Ok(())
    }

    /// Throughput units per second since this process started.
    fn rate(&self, done: usize) -> f64 {
        let schedule = &self.parts.schedule;
        let per_step = self.parts.trainer.config.batch_size
            * schedule.accumulate
            * crate::distributed::world_size()
            * self.parts.data.units_per_sample();
        ((done - self.clock.start_step) * per_step) as f64
            / self.clock.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// The epoch's score (the online probe's accuracy when there is one,
    /// else minus the mean loss); returns whether it is the best so far.
    fn end_epoch(&mut self, done: usize, epoch: usize) -> Result<bool> {
        let score = match self.probe.as_mut() {
            Some(probe) => {
                let accuracy = probe.take_accuracy();
                self.parts
                    .metrics
                    .write(done, epoch, "train", "online_probe_top1", accuracy)?;
                accuracy
            }
            None => -self.counters.epoch_loss_sum / self.counters.epoch_steps.max(1) as f64,
        };
        self.counters.epoch_loss_sum = 0.0;
        self.counters.epoch_steps = 0;
        let is_best = score > self.counters.best_score;
        self.counters.best_score = self.counters.best_score.max(score);
        Ok(is_best)
    }

    /// Every parameter the optimizer updates.
    fn optimizer_params(&self) -> Vec<Tensor> {
        let groups = self.optimizer.groups();
        groups
            .iter()
            .flat_map(|g| g.params.iter().map(Tensor::shallow_clone))
            .collect()
    }

    /// Writes `last` (and `best` when `is_best`); rank 0 alone in a
    /// data-parallel run, where every rank holds the same weights.
    fn checkpoint(&self, is_best: bool) -> Result<()> {
        if !crate::distributed::is_primary() {
            return Ok(());
        }
        let snapshot = Snapshot {
            vs: self.parts.vs,
            optimizer: self.optimizer.as_ref(),
            method: &*self.parts.method,
            probe: self.probe.as_ref(),
            counters: self.counters,
        };
        state::save(self.parts.run, &snapshot, "last")?;
        if is_best {
            state::save(self.parts.run, &snapshot, "best")?;
        }
        Ok(())
    }

    fn report(&self) -> FitReport {
        let seconds = self.clock.started.elapsed().as_secs_f64();
        let steps = self.parts.schedule.total_steps;
        let units_per_second = self.rate(steps);
        let data_wait_share = self.clock.data_seconds / seconds.max(1e-9);
        let unit = self.parts.data.unit();
        tracing::info!(
            per_second = units_per_second,
            unit,
            data_wait_share,
            "throughput"
        );
        FitReport {
            steps,
            first_loss: self.clock.first_loss,
            final_loss: self.clock.last_loss,
            seconds,
            units_per_second,
            unit,
            data_wait_share,
            world_size: crate::distributed::world_size(),
        }
    }
}

/// Runs `f`, turning a libtorch out-of-memory panic into an error that
/// names the batch size (other panics go on unwinding).
fn guarded<T>(step: usize, batch_size: usize, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = crate::check::panic_message(payload.as_ref());
        if message.contains("out of memory") {
            let first_line = message.lines().next().unwrap_or_default().to_string();
            Error::OutOfMemory {
                step: step + 1,
                batch_size,
                message: first_line,
            }
        } else {
            std::panic::resume_unwind(payload)
        }
    })
}

//! The training loop every method shares: batches from the sampler, the
//! configured optimizer with warmup + cosine per step, gradient accumulation and
//! clipping, NaN/Inf checks, metrics rows, a progress bar and atomic checkpoints.
//!
//! Exact resume: the data order derives from `(seed, epoch)` and libtorch's
//! generator is reseeded from `(seed, step)` before every step, so a run that
//! stops and resumes from a checkpoint computes the same steps as one that
//! never stopped, with no RNG state to save. The generator is global to the
//! process, so one process trains one run at a time.

use crate::autocast::with_precision;
use crate::checkpoint;
use crate::config::{OptimConfig, TrainerConfig};
use crate::error::{Error, Result};
use crate::method::{Batch, Method, Progress};
use crate::metrics::MetricsCsv;
use crate::online_probe::OnlineProbe;
use crate::optimizer;
use crate::run_dir::RunDir;
use crate::source::{prefetch, BatchSource};
use indicatif::{ProgressBar, ProgressStyle};
use selfsup_core::optim::Optimizer;
use selfsup_core::schedule::{cosine, warmup_cosine};
use selfsup_data::sampler::{mix, EpochSampler};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

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
    /// Training samples (images, or tokens for text) per second in this process.
    pub images_per_second: f64,
    /// Share of the loop's time spent preparing batches (gather, transfer,
    /// normalise): the accelerator waits for data this much.
    pub data_wait_share: f64,
}

/// Runs the loop; owns no model, only the settings.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// Loop settings.
    pub config: TrainerConfig,
    /// Optimizer and schedule.
    pub optim: OptimConfig,
}

/// Prefixes of the tensor names in a checkpoint.
const MODEL: &str = "model.";
const OPTIM: &str = "optim.";
const METHOD: &str = "method.";
const PROBE: &str = "probe.";
const STEP: &str = "trainer.step";
const BEST: &str = "trainer.best_score";

impl Trainer {
    /// Batches the producer thread keeps ready.
    const PREFETCH: usize = 2;

    /// Optimizer steps per epoch for `len` training samples.
    pub fn steps_per_epoch(&self, len: usize) -> usize {
        len / self.config.batch_size / self.config.accumulate.max(1)
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
        let accumulate = self.config.accumulate.max(1);
        let sampler = EpochSampler {
            len: data.len(),
            batch_size: self.config.batch_size,
            drop_last: true,
            seed: self.config.seed,
        };
        let steps_per_epoch = self.steps_per_epoch(data.len());
        if steps_per_epoch == 0 {
            let message = format!(
                "{} x {accumulate} accumulated is more than the {} training samples",
                self.config.batch_size,
                data.len()
            );
            return Err(Error::Config {
                origin: "trainer.batch_size".into(),
                message,
            });
        }
        let total_steps =
            (steps_per_epoch * self.config.epochs).min(self.config.max_steps.unwrap_or(usize::MAX));
        let warmup_steps = self.optim.warmup_steps.unwrap_or_else(|| {
            (self.optim.warmup_epochs * steps_per_epoch as f64).round() as usize
        });
        let mut optimizer = optimizer::build(vs, &self.optim);
        let (start_step, best_score) = match resume {
            Some(path) => restore(path, vs, optimizer.as_mut(), method)?,
            None => (0, f64::NEG_INFINITY),
        };
        // Every micro-batch from the first step on, in training order.
        let mut shuffled: (usize, Arc<Vec<Vec<usize>>>) = (usize::MAX, Arc::default());
        let plans = (start_step..total_steps).flat_map(move |step| {
            let epoch = step / steps_per_epoch;
            if shuffled.0 != epoch {
                shuffled = (epoch, Arc::new(sampler.epoch(epoch as u64)));
            }
            let batches = Arc::clone(&shuffled.1);
            let first = (step % steps_per_epoch) * accumulate;
            (0..accumulate).map(move |micro| (epoch, batches[first + micro].clone()))
        });
        std::thread::scope(|scope| {
            let batches = prefetch(scope, data, plans, Self::PREFETCH);
            let state = Loop {
                optimizer,
                start_step,
                total_steps,
                steps_per_epoch,
                warmup_steps,
                best_score,
            };
            self.run_loop(method, vs, data, run, metrics, state, &batches)
        })
    }

    /// The steps themselves, fed from `batches`.
    #[allow(clippy::too_many_arguments)]
    fn run_loop(
        &self,
        method: &mut dyn Method,
        vs: &VarStore,
        data: &dyn BatchSource,
        run: &RunDir,
        metrics: &mut MetricsCsv,
        state: Loop,
        batches: &Receiver<Batch>,
    ) -> Result<FitReport> {
        let Loop {
            mut optimizer,
            start_step,
            total_steps,
            steps_per_epoch,
            warmup_steps,
            mut best_score,
        } = state;
        let accumulate = self.config.accumulate.max(1);
        let decayed: Vec<bool> = optimizer
            .groups()
            .iter()
            .map(|g| g.weight_decay != 0.0)
            .collect();
        let mut probe: Option<OnlineProbe> = None;
        let (mut epoch_loss, mut epoch_batches_seen) = (0.0, 0usize);
        let mut data_seconds = 0.0;
        let bar = progress_bar(total_steps as u64, start_step as u64);
        let started = Instant::now();
        let (mut first_loss, mut last_loss) = (f64::NAN, f64::NAN);
        let units_per_step = self.config.batch_size * accumulate * data.units_per_sample();
        let unit = data.unit();
        for step in start_step..total_steps {
            let epoch = step / steps_per_epoch;
            // Every random op of this step (masking, noise) draws from here.
            tch::manual_seed(mix(self.config.seed, step as u64) as i64);
            let lr = warmup_cosine(
                step,
                total_steps,
                warmup_steps,
                self.optim.lr,
                self.optim.min_lr,
            );
            if let Some(end) = self.optim.weight_decay_end {
                let weight_decay = cosine(step, total_steps, self.optim.weight_decay, end);
                let groups = optimizer.groups_mut().iter_mut().zip(&decayed);
                for (group, _) in groups.filter(|(_, decays)| **decays) {
                    group.weight_decay = weight_decay;
                }
            }
            optimizer.zero_grad();
            let mut loss_sum = 0.0;
            for _ in 0..accumulate {
                let data_started = Instant::now();
                let batch = batches
                    .recv()
                    .expect("the producer plans every step's batches");
                data_seconds += data_started.elapsed().as_secs_f64();
                let output = self.guarded(step, || {
                    with_precision(self.config.precision, vs.device(), || {
                        method.step(&batch, true)
                    })
                })???;
                if let Some(features) = &output.features {
                    let dim = features.size()[1];
                    let probe = probe.get_or_insert_with(|| {
                        OnlineProbe::new(dim, data.num_classes() as i64, features.device())
                    });
                    probe.step(features, &batch.labels);
                }
                let loss = output.loss;
                // A host-device sync; cheap next to a step, and it catches NaN at once.
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    bar.abandon();
                    return Err(Error::NonFiniteLoss {
                        step: step + 1,
                        value,
                    });
                }
                loss_sum += value;
                self.guarded(step, || (loss / accumulate as f64).backward())?;
            }
            if let Some(max_norm) = self.config.grad_clip {
                clip_grad_norm(optimizer.as_ref(), max_norm);
            }
            optimizer.step(lr);
            let done = step + 1;
            method.after_step(&Progress {
                step: done,
                total_steps,
                epoch,
            });
            let loss = loss_sum / accumulate as f64;
            if first_loss.is_nan() {
                first_loss = loss;
            }
            last_loss = loss;
            (epoch_loss, epoch_batches_seen) = (epoch_loss + loss, epoch_batches_seen + 1);
            if done % self.config.log_every.max(1) == 0 || done == total_steps {
                metrics.write(done, epoch, "train", "loss", loss)?;
                metrics.write(done, epoch, "train", "lr", lr)?;
                let rate =
                    ((done - start_step) * units_per_step) as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {loss:.4} lr {lr:.2e} {rate:.0} {unit}/s"));
                if bar.is_hidden() {
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
            }
            bar.inc(1);
            let epoch_end = done % steps_per_epoch == 0 || done == total_steps;
            let mut is_best = false;
            if epoch_end {
                // Best: the online probe's accuracy when there is one, else the lowest epoch loss.
                let score = match probe.as_mut() {
                    Some(probe) => {
                        let accuracy = probe.take_accuracy();
                        metrics.write(done, epoch, "train", "online_probe_top1", accuracy)?;
                        accuracy
                    }
                    None => -epoch_loss / epoch_batches_seen.max(1) as f64,
                };
                (epoch_loss, epoch_batches_seen) = (0.0, 0);
                is_best = score > best_score;
                best_score = best_score.max(score);
            }
            let periodic =
                self.config.checkpoint_every > 0 && done % self.config.checkpoint_every == 0;
            if epoch_end || periodic {
                let state = State {
                    vs,
                    optimizer: optimizer.as_ref(),
                    method,
                    probe: probe.as_ref(),
                    step: done,
                    best_score,
                };
                save(run, &state, "last")?;
                if is_best {
                    save(run, &state, "best")?;
                }
            }
        }
        bar.finish();
        let seconds = started.elapsed().as_secs_f64();
        let units = (total_steps - start_step) * units_per_step;
        let data_wait_share = data_seconds / seconds.max(1e-9);
        tracing::info!(
            per_second = units as f64 / seconds,
            unit,
            data_wait_share,
            "throughput"
        );
        Ok(FitReport {
            steps: total_steps,
            first_loss,
            final_loss: last_loss,
            seconds,
            images_per_second: units as f64 / seconds,
            data_wait_share,
        })
    }

    /// Runs `f`, turning a libtorch out-of-memory panic into an error that
    /// names the batch size (other panics go on unwinding).
    fn guarded<T>(&self, step: usize, f: impl FnOnce() -> T) -> Result<T> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            if message.contains("out of memory") {
                let first_line = message.lines().next().unwrap_or_default().to_string();
                Error::OutOfMemory {
                    step: step + 1,
                    batch_size: self.config.batch_size,
                    message: first_line,
                }
            } else {
                std::panic::resume_unwind(payload)
            }
        })
    }
}

/// What `fit` hands the loop.
struct Loop {
    optimizer: Box<dyn Optimizer>,
    start_step: usize,
    total_steps: usize,
    steps_per_epoch: usize,
    warmup_steps: usize,
    best_score: f64,
}

/// Everything a checkpoint holds.
struct State<'a> {
    vs: &'a VarStore,
    optimizer: &'a dyn Optimizer,
    method: &'a dyn Method,
    probe: Option<&'a OnlineProbe>,
    step: usize,
    best_score: f64,
}

/// Writes checkpoint `name` (`last` or `best`) with the model, optimizer,
/// method and probe state and the counters.
fn save(run: &RunDir, state: &State<'_>, name: &str) -> Result<()> {
    let mut tensors = checkpoint::named_variables(state.vs, MODEL);
    tensors.extend(
        state
            .optimizer
            .state()
            .into_iter()
            .map(|(n, t)| (format!("{OPTIM}{n}"), t)),
    );
    tensors.extend(
        state
            .method
            .state()
            .into_iter()
            .map(|(n, t)| (format!("{METHOD}{n}"), t)),
    );
    if let Some(probe) = state.probe {
        tensors.extend(
            probe
                .state()
                .into_iter()
                .map(|(n, t)| (format!("{PROBE}{n}"), t)),
        );
    }
    tensors.push((STEP.into(), Tensor::from(state.step as i64)));
    tensors.push((BEST.into(), Tensor::from(state.best_score)));
    checkpoint::save_atomic(&run.checkpoints(), name, &tensors)?;
    Ok(())
}

/// Restores a checkpoint written by [`save`]; returns the step to continue
/// from and the best score so far. The online probe, if any, starts afresh:
/// it never influences the model, so the model's steps stay exact.
fn restore(
    path: &Path,
    vs: &VarStore,
    optimizer: &mut dyn Optimizer,
    method: &mut dyn Method,
) -> Result<(usize, f64)> {
    let saved = checkpoint::load(path)?;
    checkpoint::restore_variables(vs, MODEL, &saved, path)?;
    let strip = |prefix: &str| -> Vec<(String, Tensor)> {
        saved
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(prefix)
                    .map(|n| (n.to_string(), t.shallow_clone()))
            })
            .collect()
    };
    optimizer.load_state(&strip(OPTIM))?;
    method.load_state(&strip(METHOD))?;
    let find = |key: &str| {
        saved
            .iter()
            .find(|(n, _)| n == key)
            .map(|(_, t)| t.double_value(&[]))
    };
    let missing = || {
        Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no `{STEP}` entry"),
            ),
        )
    };
    let step = find(STEP).ok_or_else(missing)? as usize;
    tracing::info!(step, checkpoint = %path.display(), "resuming");
    Ok((step, find(BEST).unwrap_or(f64::NEG_INFINITY)))
}

/// Scales all gradients so their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_`).
fn clip_grad_norm(optimizer: &dyn Optimizer, max_norm: f64) {
    let grads: Vec<Tensor> = optimizer
        .groups()
        .iter()
        .flat_map(|g| g.params.iter())
        .map(|p| p.grad())
        .filter(|g| g.defined())
        .collect();
    if grads.is_empty() {
        return;
    }
    let norms: Vec<Tensor> = grads
        .iter()
        .map(|g| g.norm().to_kind(Kind::Float))
        .collect();
    let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
    let scale = max_norm / (total + 1e-6);
    if scale < 1.0 {
        tch::no_grad(|| {
            for mut g in grads {
                let _ = g.g_mul_scalar_(scale);
            }
        });
    }
}

/// A live bar on a terminal; hidden (with periodic log lines instead) in CI and pipes.
fn progress_bar(total: u64, position: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total).with_position(position);
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
        .expect("valid template");
    bar.set_style(style);
    bar
}

//! The training loop every method shares: batches from the sampler, AdamW with
//! warmup + cosine per step, NaN/Inf checks, metrics rows, a progress bar and a
//! checkpoint at the end of every epoch.

use crate::checkpoint;
use crate::config::{OptimConfig, TrainerConfig};
use crate::error::{Error, Result};
use crate::image_data::Normalizer;
use crate::method::{Batch, Method, Progress};
use crate::metrics::MetricsCsv;
use crate::run_dir::RunDir;
use indicatif::{ProgressBar, ProgressStyle};
use selfsup_core::optim::{decay_groups, AdamW, AdamWConfig, Optimizer};
use selfsup_core::schedule::warmup_cosine;
use selfsup_data::sampler::EpochSampler;
use selfsup_data::ImageDataset;
use std::io::IsTerminal;
use std::time::Instant;
use tch::nn::VarStore;
use tch::Tensor;

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Optimizer steps taken.
    pub steps: usize,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Mean loss over the first logged window, to compare with `final_loss`.
    pub first_loss: f64,
    /// Wall time of the loop.
    pub seconds: f64,
    /// Training images per second (views counted once).
    pub images_per_second: f64,
}

/// Runs the loop; owns no model, only the settings.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// Loop settings.
    pub config: TrainerConfig,
    /// Optimizer and schedule.
    pub optim: OptimConfig,
}

impl Trainer {
    /// Trains `method` (whose variables live in `vs`) on `data`, writing metrics
    /// rows and a `last` checkpoint in `run` after every epoch.
    pub fn fit(
        &self,
        method: &mut dyn Method,
        vs: &VarStore,
        data: &ImageDataset,
        normalizer: &Normalizer,
        run: &RunDir,
        metrics: &mut MetricsCsv,
    ) -> Result<FitReport> {
        let sampler = EpochSampler {
            len: data.len(),
            batch_size: self.config.batch_size,
            drop_last: true,
            seed: self.config.seed,
        };
        let steps_per_epoch = sampler.batches_per_epoch();
        if steps_per_epoch == 0 {
            return Err(Error::Config {
                origin: "trainer.batch_size".into(),
                message: format!(
                    "{} is larger than the {} training images",
                    self.config.batch_size,
                    data.len()
                ),
            });
        }
        let total_steps = steps_per_epoch * self.config.epochs;
        let warmup_steps = (self.optim.warmup_epochs * steps_per_epoch as f64).round() as usize;
        let adam = AdamWConfig {
            beta1: self.optim.beta1,
            beta2: self.optim.beta2,
            eps: 1e-8,
        };
        let mut optimizer = AdamW::new(decay_groups(vs, self.optim.weight_decay), adam);
        let bar = progress_bar(total_steps as u64);
        let started = Instant::now();
        let (mut step, mut last_loss, mut first_loss) = (0usize, f64::NAN, f64::NAN);
        for epoch in 0..self.config.epochs {
            for indices in sampler.epoch(epoch as u64) {
                let lr = warmup_cosine(
                    step,
                    total_steps,
                    warmup_steps,
                    self.optim.lr,
                    self.optim.min_lr,
                );
                let views = vec![normalizer.apply(&data.gather(&indices))];
                let labels = Tensor::from_slice(
                    &indices.iter().map(|&i| data.labels[i]).collect::<Vec<_>>(),
                );
                let batch = Batch {
                    views,
                    labels,
                    indices,
                };
                let output = method.step(&batch, true)?;
                optimizer.zero_grad();
                output.loss.backward();
                optimizer.step(lr);
                step += 1;
                method.after_step(&Progress {
                    step,
                    total_steps,
                    epoch,
                });
                // A host-device sync; cheap next to a step, and it catches NaN at once.
                let loss = output.loss.double_value(&[]);
                if !loss.is_finite() {
                    bar.abandon();
                    return Err(Error::NonFiniteLoss { step, value: loss });
                }
                if first_loss.is_nan() {
                    first_loss = loss;
                }
                last_loss = loss;
                if step % self.config.log_every.max(1) == 0 || step == total_steps {
                    metrics.write(step, epoch, "train", "loss", loss)?;
                    metrics.write(step, epoch, "train", "lr", lr)?;
                    let rate =
                        (step * self.config.batch_size) as f64 / started.elapsed().as_secs_f64();
                    bar.set_message(format!("loss {loss:.4} lr {lr:.2e} {rate:.0} img/s"));
                    if bar.is_hidden() {
                        tracing::info!(
                            step,
                            total_steps,
                            epoch,
                            loss,
                            lr,
                            images_per_second = rate,
                            "train"
                        );
                    }
                }
                bar.inc(1);
            }
            let mut tensors = checkpoint::named_variables(vs, "model.");
            tensors.extend(
                optimizer
                    .state()
                    .into_iter()
                    .map(|(n, t)| (format!("optim.{n}"), t)),
            );
            tensors.push(("trainer.step".into(), Tensor::from(step as i64)));
            tensors.push(("trainer.epoch".into(), Tensor::from(epoch as i64 + 1)));
            checkpoint::save_atomic(&run.checkpoints(), "last", &tensors)?;
        }
        bar.finish();
        let seconds = started.elapsed().as_secs_f64();
        Ok(FitReport {
            steps: step,
            final_loss: last_loss,
            first_loss,
            seconds,
            images_per_second: (step * self.config.batch_size) as f64 / seconds,
        })
    }
}

/// A live bar on a terminal; hidden (with periodic log lines instead) in CI and pipes.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
        .expect("valid template");
    bar.set_style(style);
    bar
}

//! The trainer's promises: an interrupted and resumed run ends with the same
//! weights, bit for bit, as one that never stopped; a NaN loss stops the run
//! with its step and keeps the last good checkpoint; a process killed while
//! writing a checkpoint leaves the previous one loadable.

use selfsup_train::autocast::Precision;
use selfsup_train::config::{OptimConfig, OptimizerKind, TrainerConfig};
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::testing::{assert_resume_is_exact, lock_torch_rng};
use selfsup_train::{
    checkpoint, Batch, BatchSource, Error, FeatureExtractor, Method, Named, Progress, StepOutput,
    Trainer,
};
use std::path::Path;
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

/// A denoising linear autoencoder: random noise every step exercises the
/// per-step reseeding; `fail_at` makes step N error (an interruption) and
/// `nan_at` makes it return NaN.
struct Denoiser {
    encoder: nn::Linear,
    decoder: nn::Linear,
    steps: usize,
    fail_at: Option<usize>,
    nan_at: Option<usize>,
    oom_at: Option<usize>,
    /// The dtype the encoder computed in at the last step (bf16 under autocast).
    code_kind: Option<Kind>,
    /// `(before the update?, progress.step, progress.epoch)` of every hook call.
    hooks: Vec<(bool, usize, usize)>,
}

impl Denoiser {
    fn new(vs: &VarStore) -> Self {
        let encoder = nn::linear(vs.root() / "encoder", 16, 4, Default::default());
        let decoder = nn::linear(vs.root() / "decoder", 4, 16, Default::default());
        Self {
            encoder,
            decoder,
            steps: 0,
            fail_at: None,
            nan_at: None,
            oom_at: None,
            code_kind: None,
            hooks: Vec::new(),
        }
    }
}

impl FeatureExtractor for Denoiser {
    fn features(&self, images: &Tensor, _train: bool) -> Tensor {
        self.encoder.forward(&images.flatten(1, -1))
    }
}

impl Method for Denoiser {
    fn step(&mut self, batch: &Batch, _train: bool) -> selfsup_train::Result<StepOutput> {
        self.steps += 1;
        if self.fail_at == Some(self.steps) {
            return Err(Error::Config {
                origin: "test".into(),
                message: "interrupted".into(),
            });
        }
        let x = batch.inputs.get("x")?.flatten(1, -1);
        let noisy = &x + Tensor::randn_like(&x) * 0.3;
        if self.oom_at == Some(self.steps) {
            panic!("CUDA out of memory. Tried to allocate 2.00 GiB");
        }
        let code = self.encoder.forward(&noisy);
        self.code_kind = Some(code.kind());
        let loss = self
            .decoder
            .forward(&code)
            .mse_loss(&x, tch::Reduction::Mean);
        let loss = if self.nan_at == Some(self.steps) {
            loss * f64::NAN
        } else {
            loss
        };
        let code_norm = code.detach().norm();
        Ok(StepOutput::new(loss)
            .with_features(code)
            .with_scalar("code_norm", code_norm))
    }

    fn before_optimizer_step(&mut self, progress: &Progress) -> selfsup_train::Result<()> {
        let grads_ready = self.encoder.ws.grad().defined();
        assert!(grads_ready, "the hook runs between backward and the update");
        self.hooks.push((true, progress.step, progress.epoch));
        Ok(())
    }

    fn after_step(&mut self, progress: &Progress) -> selfsup_train::Result<()> {
        self.hooks.push((false, progress.step, progress.epoch));
        Ok(())
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self
    }
}

/// 40 samples of 16 values (a 4x4 "image" of one channel) with two
/// classes; deterministic in the index, and normalised as an image source would.
struct Vectors;

impl BatchSource for Vectors {
    fn len(&self) -> usize {
        40
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn batch(&self, _epoch: usize, indices: &[usize]) -> selfsup_train::Result<Batch> {
        let values: Vec<f32> = indices
            .iter()
            .flat_map(|&n| {
                (0..16)
                    .map(move |p| ((n * 7 + (p / 4) * 5 + (p % 4) * 3) % 256) as f32 / 64.0 - 2.0)
            })
            .collect();
        let labels: Vec<i64> = indices.iter().map(|&i| (i % 2) as i64).collect();
        Ok(Batch {
            inputs: Named::new().with(
                "x",
                Tensor::from_slice(&values).view([indices.len() as i64, 1, 4, 4]),
            ),
            labels: Some(Tensor::from_slice(&labels)),
            indices: indices.to_vec(),
            ..Default::default()
        })
    }
}

fn trainer(optimizer: OptimizerKind) -> Trainer {
    let config = TrainerConfig {
        epochs: 3,
        batch_size: 8,
        seed: 7,
        device: "cpu".into(),
        log_every: 1,
        checkpoint_every: 1,
        ..Default::default()
    };
    let optim = OptimConfig {
        optimizer,
        lr: 0.05,
        warmup_epochs: 1.0,
        ..Default::default()
    };
    Trainer { config, optim }
}

fn weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    checkpoint::named_variables(vs, "")
}

struct Run {
    _parent: tempfile::TempDir,
    dir: RunDir,
    metrics: MetricsCsv,
}

fn new_run() -> Run {
    let parent = tempfile::tempdir().unwrap();
    let dir = RunDir::create(parent.path(), "t").unwrap();
    let metrics = MetricsCsv::open(&dir.file("metrics.csv")).unwrap();
    Run {
        _parent: parent,
        dir,
        metrics,
    }
}

fn fit(
    trainer: &Trainer,
    method: &mut Denoiser,
    vs: &VarStore,
    run: &mut Run,
    resume: Option<&Path>,
) -> selfsup_train::Result<selfsup_train::trainer::FitReport> {
    trainer.fit(method, vs, &Vectors, &run.dir, &mut run.metrics, resume)
}

fn assert_resume_is_exact_with(optimizer: OptimizerKind) {
    let trainer = trainer(optimizer);
    let build = |vs: &VarStore| -> selfsup_train::Result<Box<dyn Method>> {
        Ok(Box::new(Denoiser::new(vs)))
    };
    // 3 epochs of 5 steps, interrupted after 7 (mid-epoch), then resumed.
    let losses = &assert_resume_is_exact(&build, &trainer, &Vectors, 8)["loss"];
    assert_eq!(losses.len(), 15);
}

#[test]
fn resumed_adamw_run_is_bitwise_identical() {
    assert_resume_is_exact_with(OptimizerKind::Adamw);
}

#[test]
fn resumed_sgd_run_is_bitwise_identical() {
    assert_resume_is_exact_with(OptimizerKind::Sgd);
}

#[test]
fn nan_loss_stops_with_its_step_and_keeps_the_last_good_checkpoint() {
    let _rng = lock_torch_rng();
    let trainer = trainer(OptimizerKind::Adamw);
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    method.nan_at = Some(4);
    let mut run = new_run();
    let err = fit(&trainer, &mut method, &vs, &mut run, None).unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { step: 4, .. }), "{err}");
    assert!(err.to_string().contains("step 4"), "{err}");
    let saved = checkpoint::load(&run.dir.checkpoints().join("last.safetensors")).unwrap();
    let step = saved
        .iter()
        .find(|(n, _)| n == "trainer.step")
        .unwrap()
        .1
        .int64_value(&[]);
    assert_eq!(step, 3, "the checkpoint of the last good step is kept");
    let weights = saved.iter().filter(|(n, _)| n.starts_with("model."));
    let finite = weights
        .clone()
        .all(|(_, t)| t.isfinite().all().int64_value(&[]) == 1);
    assert_eq!(weights.count(), 4, "encoder and decoder weights and biases");
    assert!(finite, "no NaN reached the saved weights");
}

#[test]
fn nan_between_log_rows_is_found_at_its_step_before_the_next_checkpoint() {
    let _rng = lock_torch_rng();
    let mut trainer = trainer(OptimizerKind::Adamw);
    trainer.config.log_every = 10;
    trainer.config.checkpoint_every = 0;
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    method.nan_at = Some(7);
    let mut run = new_run();
    let err = fit(&trainer, &mut method, &vs, &mut run, None).unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { step: 7, .. }), "{err}");
    let saved = checkpoint::load(&run.dir.checkpoints().join("last.safetensors")).unwrap();
    let step = saved
        .iter()
        .find(|(n, _)| n == "trainer.step")
        .unwrap()
        .1
        .int64_value(&[]);
    assert_eq!(step, 5, "the epoch-end checkpoint before the NaN is kept");
    assert_eq!(
        method.steps, 10,
        "found at the next epoch end, without a sync per step"
    );
}

#[test]
fn method_scalars_are_averaged_into_metrics_and_plotted() {
    let _rng = lock_torch_rng();
    let mut trainer = trainer(OptimizerKind::Adamw);
    trainer.config.log_every = 5;
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    let mut run = new_run();
    fit(&trainer, &mut method, &vs, &mut run, None).unwrap();
    let metrics = std::fs::read_to_string(run.dir.file("metrics.csv")).unwrap();
    let rows: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains(",train,code_norm,"))
        .collect();
    assert_eq!(rows.len(), 3, "one per log row: {metrics}");
    let plots =
        selfsup_train::plots::plot_metrics(&run.dir.file("metrics.csv"), run.dir.path()).unwrap();
    assert!(
        plots.iter().any(|p| p.ends_with("train_code_norm.png")),
        "{plots:?}"
    );
}

#[test]
fn weights_that_diverge_after_the_last_finite_loss_are_not_saved() {
    let _rng = lock_torch_rng();
    let mut trainer = trainer(OptimizerKind::Sgd);
    trainer.optim.lr = 1e300;
    trainer.config.checkpoint_every = 0;
    trainer.config.max_steps = Some(1);
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    let mut run = new_run();
    let err = fit(&trainer, &mut method, &vs, &mut run, None).unwrap_err();
    assert!(matches!(err, Error::NonFiniteWeights { step: 1 }), "{err}");
    assert!(!run.dir.checkpoints().join("last.safetensors").exists());
}

#[test]
fn hooks_run_around_each_update_with_the_step_and_epoch() {
    let _rng = lock_torch_rng();
    let trainer = trainer(OptimizerKind::Adamw);
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    let mut run = new_run();
    fit(&trainer, &mut method, &vs, &mut run, None).unwrap();
    let expected: Vec<(bool, usize, usize)> = (0..15)
        .flat_map(|step| [(true, step, step / 5), (false, step + 1, step / 5)])
        .collect();
    assert_eq!(method.hooks, expected);
}

#[test]
fn gradient_clipping_and_accumulation_train() {
    let _rng = lock_torch_rng();
    let mut trainer = trainer(OptimizerKind::Lars);
    trainer.config.grad_clip = Some(0.5);
    trainer.config.accumulate = 2;
    trainer.optim.lr = 0.5;
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    let mut run = new_run();
    let report = fit(&trainer, &mut method, &vs, &mut run, None).unwrap();
    assert_eq!(report.steps, 6, "40 images / (8 x 2) = 2 steps per epoch");
    assert!(report.final_loss.is_finite());
    assert_eq!(method.steps, 12, "two batches per optimizer step");
}

#[test]
fn out_of_memory_is_reported_with_the_batch_size() {
    let _rng = lock_torch_rng();
    let trainer = trainer(OptimizerKind::Adamw);
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    method.oom_at = Some(2);
    let mut run = new_run();
    let err = fit(&trainer, &mut method, &vs, &mut run, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfMemory {
                step: 2,
                batch_size: 8,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("batch size 8") && err.to_string().contains("CUDA out of memory"),
        "{err}"
    );
}

#[test]
fn online_probe_best_checkpoint_step_budget_and_data_share() {
    let _rng = lock_torch_rng();
    let mut trainer = trainer(OptimizerKind::Adamw);
    trainer.config.max_steps = Some(12);
    trainer.optim.weight_decay_end = Some(0.4);
    let vs = VarStore::new(Device::Cpu);
    let mut method = Denoiser::new(&vs);
    let mut run = new_run();
    let report = fit(&trainer, &mut method, &vs, &mut run, None).unwrap();
    assert_eq!(report.steps, 12, "max_steps caps 3 epochs of 5 steps");
    assert!(
        report.data_wait_share > 0.0 && report.data_wait_share < 1.0,
        "{}",
        report.data_wait_share
    );
    let metrics = std::fs::read_to_string(run.dir.file("metrics.csv")).unwrap();
    let probe_rows: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("online_probe_top1"))
        .collect();
    assert_eq!(
        probe_rows.len(),
        3,
        "one per epoch, the last one partial: {metrics}"
    );
    assert!(run.dir.checkpoints().join("best.safetensors").exists());
    let best = checkpoint::load(&run.dir.checkpoints().join("best.safetensors")).unwrap();
    assert!(
        best.iter().any(|(n, _)| n.starts_with("probe.")),
        "the probe is saved with the checkpoint"
    );
}

/// The child side of the kill test: writes checkpoints in a loop, each tensor
/// filled with the write's number, until it is killed.
#[test]
fn checkpoint_writer_child() {
    let Ok(dir) = std::env::var("SELFSUP_KILL_TEST_DIR") else {
        return;
    };
    for round in 1i64.. {
        let value = round as f64;
        let tensors: Vec<(String, Tensor)> = (0..8)
            .map(|i| {
                (
                    format!("t{i}"),
                    Tensor::full([256, 1024], value, (Kind::Float, Device::Cpu)),
                )
            })
            .collect();
        checkpoint::save_atomic(Path::new(&dir), "last", &tensors).unwrap();
    }
}

#[test]
fn sigkill_while_writing_leaves_a_loadable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.safetensors");
    // Each write takes a few milliseconds; killing at these offsets after a
    // completed write lands in the middle of later writes.
    for delay_ms in [0u64, 3, 7, 11, 17] {
        let before = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "checkpoint_writer_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("SELFSUP_KILL_TEST_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait (however slow the machine) until this child has completed a write.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::metadata(&path).and_then(|m| m.modified()).ok() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "the child never wrote a checkpoint"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let saved = checkpoint::load(&path).expect("the last complete checkpoint loads");
        assert_eq!(saved.len(), 8);
        let value = saved[0].1.double_value(&[0, 0]);
        assert!(
            saved
                .iter()
                .all(|(_, t)| t.eq(value).all().int64_value(&[]) == 1),
            "a torn checkpoint"
        );
    }
}

#[test]
fn bf16_autocast_trains_fp32_master_weights_close_to_fp32() {
    let _rng = lock_torch_rng();
    let mut losses = Vec::new();
    for precision in [Precision::Fp32, Precision::Bf16] {
        let mut trainer = trainer(OptimizerKind::Adamw);
        trainer.config.precision = precision;
        tch::manual_seed(3);
        let vs = VarStore::new(Device::Cpu);
        let mut method = Denoiser::new(&vs);
        let mut run = new_run();
        let report = fit(&trainer, &mut method, &vs, &mut run, None).unwrap();
        assert!(
            report.final_loss < report.first_loss,
            "{precision:?}: {report:?}"
        );
        let expected = match precision {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        };
        assert_eq!(method.code_kind, Some(expected));
        for (name, tensor) in weights(&vs) {
            assert_eq!(tensor.kind(), Kind::Float, "{name} stays fp32");
        }
        losses.push(report.final_loss);
    }
    let relative = (losses[1] - losses[0]).abs() / losses[0];
    assert!(relative < 0.05, "bf16 {} vs fp32 {}", losses[1], losses[0]);
}

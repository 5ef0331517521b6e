//! The data-parallel contract, end to end through `Trainer::fit`: two
//! ranks of batch B train the same model as one process of batch 2B —
//! the same loss curve and the same weights after ten steps — with a
//! SimCLR-style loss whose negatives are gathered across ranks. The model
//! has no batch norm, whose statistics are per rank by design.

use selfsup_core::losses::{nt_xent, nt_xent_gathered};
use selfsup_train::config::{OptimConfig, OptimizerKind, TrainerConfig};
use selfsup_train::distributed::launch::{self, Launch};
use selfsup_train::distributed::{self, WorldEnv};
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::{
    Batch, BatchSource, FeatureExtractor, Method, Named, Result, StepOutput, Trainer,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tch::nn::{self, Module, VarStore};
use tch::{Device, Tensor};

const SAMPLES: i64 = 96;
const PER_RANK: usize = 8;

/// 96 fixed points in 12 dimensions, each with a fixed second "view".
struct Points(Vec<f32>);

impl Points {
    fn new() -> Self {
        Points((0..SAMPLES * 12).map(|i| (i as f32 * 0.37).sin()).collect())
    }
}

impl BatchSource for Points {
    fn len(&self) -> usize {
        SAMPLES as usize
    }
    fn batch(&self, _epoch: usize, indices: &[usize]) -> Result<Batch> {
        let index = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let x = Tensor::from_slice(&self.0)
            .reshape([SAMPLES, 12])
            .index_select(0, &index);
        let other = (&x * 0.8 + 0.1).roll([1], [1]);
        Ok(Batch {
            inputs: Named::new().with("view0", x).with("view1", other),
            indices: indices.to_vec(),
            ..Default::default()
        })
    }
}

/// A linear encoder trained with NT-Xent (gathered across ranks when there
/// are several); the steps taken, and the step that fails, if any.
struct Contrast(Linear, usize, Option<usize>);

struct Linear(nn::Linear);

impl FeatureExtractor for Linear {
    fn features(&self, inputs: &Tensor, _train: bool) -> Tensor {
        self.0.forward(inputs)
    }
}

impl Method for Contrast {
    fn step(&mut self, batch: &Batch, _train: bool) -> Result<StepOutput> {
        self.1 += 1;
        if distributed::rank() == 1
            && std::env::var("TEST_DIE_AT").is_ok_and(|at| at == self.1.to_string())
        {
            eprintln!("rank 1 dies at step {}", self.1);
            std::process::exit(9);
        }
        if self.2 == Some(self.1) {
            return Err(selfsup_train::Error::distributed("stopped by the test"));
        }
        let views = batch.views();
        let z = self.0 .0.forward(&Tensor::cat(&views, 0));
        let loss = match distributed::current() {
            Some(group) => {
                let all = group.all_gather_with_grad(&z)?;
                nt_xent_gathered(&all, 2, group.world_size() as i64, group.rank() as i64, 0.5)?
            }
            None => nt_xent(&z, 2, 0.5, None)?,
        };
        Ok(StepOutput::new(loss))
    }
    fn backbone(&self) -> &dyn FeatureExtractor {
        &self.0
    }
}

/// Ten SGD steps at `batch_size` per process in `run`; the final weights.
fn train(batch_size: usize, run: &Path) -> Tensor {
    train_from(batch_size, run, None, None).unwrap()
}

/// As [`train`], from the checkpoint `resume` if any, failing at step `stop_at`.
fn train_from(
    batch_size: usize,
    run: &Path,
    resume: Option<&Path>,
    stop_at: Option<usize>,
) -> Result<Tensor> {
    tch::manual_seed(distributed::rank() as i64 + 5); // rank 0's init must win
    let vs = VarStore::new(Device::Cpu);
    let encoder = Linear(nn::linear(vs.root() / "encoder", 12, 6, Default::default()));
    let mut method = Contrast(encoder, 0, stop_at);
    let trainer = Trainer {
        config: TrainerConfig {
            batch_size,
            epochs: 2,
            max_steps: Some(10),
            checkpoint_every: 2,
            log_every: 1,
            seed: 3,
            ..Default::default()
        },
        optim: OptimConfig {
            optimizer: OptimizerKind::Sgd,
            lr: 0.5,
            warmup_epochs: 0.0,
            ..Default::default()
        },
    };
    let dir = RunDir::unwritten(run);
    std::fs::create_dir_all(dir.checkpoints()).unwrap();
    let mut metrics = MetricsCsv::open_on_primary(&dir.file("metrics.csv")).unwrap();
    trainer.fit(&mut method, &vs, &Points::new(), &dir, &mut metrics, resume)?;
    Ok(method.0 .0.ws.detach().copy())
}

fn losses(run: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines()
        .filter(|l| l.contains(",train,loss,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect()
}

/// Starts `test` of this binary as 2 ranks with `env`; the launcher's outcome.
fn launch_ranks(test: &str, logs: &Path, env: Vec<(String, String)>) -> selfsup_train::Result<()> {
    Ok(launch::run(&Launch {
        program: std::env::current_exe().unwrap(),
        args: [test, "--exact", "--nocapture"].map(Into::into).to_vec(),
        nproc: 2,
        log_dir: logs.to_path_buf(),
        timeout: Duration::from_secs(60),
        env,
    })?)
}

#[test]
fn two_ranks_of_b_train_as_one_process_of_2b() {
    if std::env::var_os("RANK").is_some() {
        let env = WorldEnv::from_env().unwrap().unwrap();
        distributed::init(&env, Duration::from_secs(60)).unwrap();
        let run = PathBuf::from(std::env::var("TEST_RUN").unwrap());
        let weights = train(PER_RANK, &run);
        if env.rank == 0 {
            weights.save(run.join("weights.pt")).unwrap();
        }
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let (ranks_run, alone_run) = (scratch.path().join("ranks"), scratch.path().join("alone"));
    let env = vec![("TEST_RUN".into(), ranks_run.display().to_string())];
    let test = "two_ranks_of_b_train_as_one_process_of_2b";
    launch_ranks(test, &scratch.path().join("logs"), env).unwrap_or_else(|e| panic!("{e}"));
    let alone = train(2 * PER_RANK, &alone_run);
    let ranks = Tensor::load(ranks_run.join("weights.pt")).unwrap();
    let (curve, reference) = (losses(&ranks_run), losses(&alone_run));
    assert_eq!(curve.len(), 10);
    for (step, (a, b)) in curve.iter().zip(&reference).enumerate() {
        assert!(
            (a - b).abs() < 1e-5,
            "step {}: {a} on 2 ranks vs {b} alone",
            step + 1
        );
    }
    let moved = (&alone - &ranks).abs().max().double_value(&[]);
    assert!(moved < 1e-5, "weights differ by {moved}");
    assert!(
        reference[9] < reference[0] - 0.01,
        "the loss falls: {reference:?}"
    );
}

/// A run checkpointed alone at batch 2B and resumed on two ranks of B (the
/// same global batch) continues from the same global step, on the same
/// data, and ends with the weights of a run that never stopped.
#[test]
fn a_run_resumed_on_another_world_size_continues_from_its_global_step() {
    if std::env::var_os("RANK").is_some() {
        let env = WorldEnv::from_env().unwrap().unwrap();
        distributed::init(&env, Duration::from_secs(60)).unwrap();
        let run = PathBuf::from(std::env::var("TEST_RUN").unwrap());
        let checkpoint = PathBuf::from(std::env::var("TEST_RESUME").unwrap());
        let weights = train_from(PER_RANK, &run, Some(&checkpoint), None).unwrap();
        if env.rank == 0 {
            weights.save(run.join("weights.pt")).unwrap();
        }
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let path = |name: &str| scratch.path().join(name);
    let stopped = train_from(2 * PER_RANK, &path("stopped"), None, Some(5));
    assert!(stopped.is_err(), "the first run stops at step 5");
    let checkpoint = path("stopped/checkpoints/last.safetensors");
    let env = vec![
        ("TEST_RUN".into(), path("resumed").display().to_string()),
        ("TEST_RESUME".into(), checkpoint.display().to_string()),
    ];
    let test = "a_run_resumed_on_another_world_size_continues_from_its_global_step";
    launch_ranks(test, &path("logs"), env).unwrap_or_else(|e| panic!("{e}"));
    let alone = train(2 * PER_RANK, &path("alone"));
    let (resumed, reference) = (losses(&path("resumed")), losses(&path("alone")));
    assert_eq!(
        resumed.len(),
        6,
        "steps 5 to 10 after the step-4 checkpoint"
    );
    for (step, (a, b)) in resumed.iter().zip(&reference[4..]).enumerate() {
        assert!(
            (a - b).abs() < 1e-5,
            "step {}: {a} resumed on 2 ranks vs {b} uninterrupted",
            step + 5
        );
    }
    let weights = Tensor::load(path("resumed/weights.pt")).unwrap();
    let moved = (&alone - &weights).abs().max().double_value(&[]);
    assert!(moved < 1e-5, "weights differ by {moved}");
}

/// A rank that dies mid-run stops the run with one line naming it, and
/// rank 0's last checkpoint (written atomically every two steps) stays whole.
#[test]
fn a_dead_rank_stops_the_run_and_the_checkpoint_survives() {
    if std::env::var_os("RANK").is_some() {
        let env = WorldEnv::from_env().unwrap().unwrap();
        distributed::init(&env, Duration::from_secs(20)).unwrap();
        let _ = train(PER_RANK, &PathBuf::from(std::env::var("TEST_RUN").unwrap()));
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let run = scratch.path().join("run");
    let env = vec![
        ("TEST_RUN".into(), run.display().to_string()),
        ("TEST_DIE_AT".into(), "6".into()),
    ];
    let test = "a_dead_rank_stops_the_run_and_the_checkpoint_survives";
    let error = launch_ranks(test, &scratch.path().join("logs"), env)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("rank 1 exited") && error.contains("rank 1 dies at step 6"),
        "{error}"
    );
    let checkpoint = run.join("checkpoints/last.safetensors");
    let tensors = Tensor::read_safetensors(&checkpoint).unwrap();
    assert!(
        !tensors.is_empty(),
        "{} holds the weights",
        checkpoint.display()
    );
    let names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert!(
        names.iter().all(|n| n.ends_with(".safetensors")),
        "no temporary file left: {names:?}"
    );
}

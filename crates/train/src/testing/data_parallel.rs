//! The data-parallel check a method runs on itself: two ranks of batch B
//! (Gloo on loopback, started as `--nproc-per-node 2` starts them) end with
//! the same weights, optimizer and method state, and log the same loss
//! curve, as one process of batch 2B. Only methods whose steps draw no
//! random numbers, and whose batch norms are synchronised
//! (`trainer.sync_batch_norm`) or absent, can be equal; the online probe,
//! which each rank trains on its own features, is left out.

use super::resume::{train_once, Build, Curves};
use crate::checkpoint;
use crate::distributed::launch::{self, Launch};
use crate::distributed::{self, WorldEnv};
use crate::run_dir::RunDir;
use crate::source::BatchSource;
use crate::Trainer;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RUN_DIR: &str = "SELFSUP_DATA_PARALLEL_RUN";

/// Run from test `name` (its full path, e.g. `module_path!()` plus the
/// function's name) with `trainer.config.batch_size` as the per-rank batch;
/// panics naming the first tensor or logged loss that differs by more than
/// `tolerance` (relative to the tensor's scale).
pub fn assert_data_parallel_matches(
    name: &str,
    build: Build<'_>,
    trainer: &Trainer,
    source: &dyn BatchSource,
    tolerance: f64,
) {
    if let Some(world) = WorldEnv::from_env().expect("a well-formed rank environment") {
        distributed::init(&world, Duration::from_secs(120)).expect("the ranks meet");
        let dir = PathBuf::from(std::env::var(RUN_DIR).expect("the run folder"))
            .join(format!("rank{}", world.rank));
        let run = RunDir::unwritten(&dir);
        std::fs::create_dir_all(run.checkpoints()).expect("a run folder");
        train_once(build, trainer, source, &run, None, false)
            .1
            .expect("the rank trains");
        return;
    }
    super::in_own_process(name, || {
        let scratch =
            std::env::temp_dir().join(format!("selfsup-data-parallel-{}", std::process::id()));
        let filter = name.split_once("::").map_or(name, |(_, rest)| rest);
        let launch = Launch {
            program: std::env::current_exe().expect("the test binary"),
            args: [filter, "--exact", "--nocapture", "--test-threads", "1"]
                .map(Into::into)
                .to_vec(),
            nproc: 2,
            log_dir: scratch.join("logs"),
            timeout: Duration::from_secs(120),
            env: vec![(RUN_DIR.into(), scratch.display().to_string())],
        };
        launch::run(&launch).unwrap_or_else(|e| panic!("{e}"));
        let mut alone = trainer.clone();
        alone.config.batch_size *= 2;
        let run = RunDir::create(&scratch, "alone").expect("a run folder");
        let (curves, result) = {
            let _same_formula = alone.config.sync_batch_norm.then(one_rank_sync_bn);
            train_once(build, &alone, source, &run, None, false)
        };
        result.expect("one process trains");
        let rank0 = RunDir::unwritten(&scratch.join("rank0"));
        compare_curves(&curves, &read_curves(&rank0.file("metrics.csv")), tolerance);
        compare_checkpoints(&run.checkpoints(), &rank0.checkpoints(), tolerance);
        let _ = std::fs::remove_dir_all(&scratch);
    });
}

/// SyncBatchNorm's formula in a world of one, for the single process of a
/// comparison whose ranks use SyncBatchNorm: both sides then normalise with
/// the same arithmetic, and the comparison sees data parallelism alone.
/// (SyncBatchNorm's equality with libtorch's batch norm kernel is tested on
/// its own, in `tests/distributed.rs`; between the two, rounding is
/// amplified in gradients that mostly cancel, such as the shift of a batch
/// norm that feeds another: 6e-4 of the first layer's in six steps of a
/// small CNN.)
fn one_rank_sync_bn() -> selfsup_core::sync_bn::Installed {
    let one_rank = |stats: &tch::Tensor| stats.unsqueeze(0);
    selfsup_core::sync_bn::install(std::sync::Arc::new(one_rank))
}

fn read_curves(path: &Path) -> Curves {
    let mut curves = Curves::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        if let [_, _, "train", name, value] = line.split(',').collect::<Vec<_>>()[..] {
            if let Ok(value) = value.parse() {
                curves.entry(name.to_string()).or_default().push(value);
            }
        }
    }
    curves
}

fn compare_curves(alone: &Curves, ranks: &Curves, tolerance: f64) {
    let (a, b) = (&alone["loss"], &ranks["loss"]);
    assert_eq!(a.len(), b.len(), "as many logged losses");
    for (step, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tolerance * x.abs().max(1.0),
            "logged loss {}: {x} alone, {y} on 2 ranks ({a:?} against {b:?})",
            step + 1
        );
    }
}

fn compare_checkpoints(alone: &Path, ranks: &Path, tolerance: f64) {
    let load =
        |dir: &Path| checkpoint::load(&dir.join("last.safetensors")).expect("a final checkpoint");
    let kept = |name: &str| !name.starts_with("probe.") && name != "trainer.best_score";
    let (a, b) = (load(alone), load(ranks));
    let (a, b): (Vec<_>, Vec<_>) = (
        a.into_iter().filter(|(n, _)| kept(n)).collect(),
        b.into_iter().filter(|(n, _)| kept(n)).collect(),
    );
    assert_eq!(a.len(), b.len(), "the checkpoints hold the same tensors");
    for ((name, x), (other, y)) in a.iter().zip(&b) {
        assert_eq!(name, other, "the checkpoints hold the same tensors");
        let (x, y) = (x.to_kind(tch::Kind::Double), y.to_kind(tch::Kind::Double));
        let scale = x.abs().max().double_value(&[]).max(1.0);
        let error = (&x - &y).abs().max().double_value(&[]);
        assert!(
            error <= tolerance * scale,
            "`{name}` differs by {error} (scale {scale}) between 2 ranks and one process"
        );
    }
}

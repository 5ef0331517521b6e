//! The smoke test of a method: its loss falls, and a run interrupted
//! mid-epoch and resumed ends with a final checkpoint equal, tensor for
//! tensor, to a run that never stopped (model, optimizer, the method's own
//! state, the online probe and the loop's counters).

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::method::{FeatureExtractor, Method, Progress, StepOutput};
use crate::metrics::MetricsCsv;
use crate::run_dir::RunDir;
use crate::source::BatchSource;
use crate::{Batch, Trainer};
use std::sync::{Mutex, MutexGuard};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// libtorch's generator is global to the process and the trainer reseeds it
/// every step, so tests that train must not run at the same time.
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// Holds the process's libtorch generator for one test.
pub fn lock_torch_rng() -> MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// A method that fails at its `fail_at`-th step: an interruption.
struct Interrupted<'a> {
    inner: &'a mut dyn Method,
    steps: usize,
    fail_at: Option<usize>,
}

impl Method for Interrupted<'_> {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        self.steps += 1;
        if self.fail_at == Some(self.steps) {
            return Err(Error::Config {
                origin: "test".into(),
                message: "interrupted".into(),
            });
        }
        self.inner.step(batch, train)
    }
    fn before_optimizer_step(&mut self, progress: &Progress) -> Result<()> {
        self.inner.before_optimizer_step(progress)
    }
    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        self.inner.after_step(progress)
    }
    fn backbone(&self) -> &dyn FeatureExtractor {
        self.inner.backbone()
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        self.inner.state()
    }
    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.inner.load_state(named)
    }
}

/// Builds a fresh method in a var store: what a smoke test trains.
pub type Build<'a> = &'a dyn Fn(&VarStore) -> Result<Box<dyn Method + 'a>>;

/// One training run in `run`: interrupted at micro-step `fail_at` when
/// given, resumed from `run`'s last checkpoint when `resume`. Returns the
/// logged losses and the outcome.
pub(super) fn train_once(
    build: Build<'_>,
    trainer: &Trainer,
    source: &dyn BatchSource,
    run: &RunDir,
    fail_at: Option<usize>,
    resume: bool,
) -> (Curves, Result<()>) {
    tch::manual_seed(trainer.config.seed as i64 + 11);
    let vs = VarStore::new(Device::Cpu);
    let mut inner = match build(&vs) {
        Ok(method) => method,
        Err(error) => return (Curves::new(), Err(error)),
    };
    let mut method = Interrupted {
        inner: inner.as_mut(),
        steps: 0,
        fail_at,
    };
    let metrics_file = run.file("metrics.csv");
    let checkpoint = run.checkpoints().join("last.safetensors");
    let result = MetricsCsv::open(&metrics_file).and_then(|mut metrics| {
        let resume = resume.then_some(checkpoint.as_path());
        trainer
            .fit(&mut method, &vs, source, run, &mut metrics, resume)
            .map(|_| ())
    });
    (curves(&metrics_file), result)
}

/// Every `train` curve of a `metrics.csv`, by name (`loss`, `lr`, a method's scalars).
pub type Curves = std::collections::BTreeMap<String, Vec<f64>>;

fn curves(metrics_file: &std::path::Path) -> Curves {
    let mut curves = Curves::new();
    for line in std::fs::read_to_string(metrics_file)
        .unwrap_or_default()
        .lines()
    {
        let fields: Vec<&str> = line.split(',').collect();
        if let [_, _, "train", name, value] = fields[..] {
            if let Ok(value) = value.parse() {
                curves.entry(name.to_string()).or_default().push(value);
            }
        }
    }
    curves
}

/// Trains straight through, then interrupted at micro-step `fail_at` and
/// resumed; returns the straight run's logged curves after checking that
/// both final checkpoints hold the same tensors, bit for bit. Panics (it is
/// a test helper) naming the first tensor that differs.
pub fn assert_resume_is_exact(
    build: Build<'_>,
    trainer: &Trainer,
    source: &dyn BatchSource,
    fail_at: usize,
) -> Curves {
    let _rng = lock_torch_rng();
    let parent = tempfile_dir();
    let straight = RunDir::create(&parent, "straight").expect("a run folder");
    let (curves, result) = train_once(build, trainer, source, &straight, None, false);
    result.expect("the uninterrupted run trains");
    let run = RunDir::create(&parent, "interrupted").expect("a run folder");
    let (_, stopped) = train_once(build, trainer, source, &run, Some(fail_at), false);
    assert!(stopped.is_err(), "the run was interrupted");
    let (_, resumed) = train_once(build, trainer, source, &run, None, true);
    resumed.expect("the resumed run trains");
    let load = |dir: &RunDir| {
        checkpoint::load(&dir.checkpoints().join("last.safetensors")).expect("a final checkpoint")
    };
    let (a, b) = (load(&straight), load(&run));
    let names = |v: &[(String, Tensor)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&a),
        names(&b),
        "the checkpoints hold different tensors"
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x.equal(y), "`{name}` differs after resume");
    }
    let _ = std::fs::remove_dir_all(&parent);
    curves
}

/// A fresh folder under the system's temporary folder.
fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "selfsup-resume-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// Runs `check` alone in a child process of this test binary, when called
/// from test `name` (its full path, e.g. from `module_path!()`): libtorch's
/// generator is global to a process, so any other test of the binary that
/// builds a model or draws a random tensor while `check` trains would shift
/// its random stream and break bit-exact comparisons. The child is the same
/// binary asked to run only `name`; its output is shown when it fails.
pub fn in_own_process(name: &str, check: impl FnOnce()) {
    const CHILD: &str = "SELFSUP_TEST_ALONE";
    if std::env::var_os(CHILD).is_some() {
        check();
        return;
    }
    // libtest filters by the path inside the crate, without the crate's name.
    let filter = name.split_once("::").map_or(name, |(_, rest)| rest);
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = std::process::Command::new(exe)
        .args([filter, "--exact", "--test-threads", "1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{filter} failed in its own process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Mean of `values` (of a loss curve's first and last stretches).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

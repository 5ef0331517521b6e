//! Every vision method through the shared trainer on tiny data: the loss
//! falls over a few dozen steps, and a run interrupted after step k and
//! resumed from its checkpoint ends with the same weights, bit for bit, as a
//! run that never stopped (EMA teachers and queues included).

use ndarray::Array4;
use selfsup_data::ImageDataset;
use selfsup_train::config::{OptimConfig, OptimizerKind, TrainerConfig};
use selfsup_train::image_data::{ImageSource, Normalizer};
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::view_config::{recipes, ViewConfig};
use selfsup_train::{
    checkpoint, Batch, Error, FeatureExtractor, Method, Progress, StepOutput, Trainer,
};
use selfsup_vision::VisionMethodConfig;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// libtorch's generator is global and the trainer reseeds it every step.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

const CNN: &str = "[method.backbone]\nkind = \"small_cnn\"\nwidths = [8, 16]\n";

fn method_config(name: &str) -> VisionMethodConfig {
    let text = match name {
        "simclr" => format!("name = \"simclr\"\nproj_hidden = 32\nproj_dim = 16\ntemperature = 0.2\n{CNN}"),
        "moco" => format!(
            "name = \"moco\"\nproj_hidden = 32\nproj_dim = 16\nqueue_size = 64\ntemperature = 0.2\nbase_momentum = 0.9\n{CNN}"
        ),
        "mocov3" => format!(
            "name = \"mocov3\"\nproj_hidden = 32\nproj_dim = 16\npred_hidden = 32\ntemperature = 0.2\nbase_momentum = 0.9\n{CNN}"
        ),
        "rotnet" => format!("name = \"rotnet\"\n{CNN}"),
        "mae" => "name = \"mae\"\nmask_ratio = 0.75\nnorm_pix_loss = true\n\
                  [method.encoder]\nimage_size = 16\npatch_size = 4\nin_channels = 3\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\n\
                  [method.decoder]\ndim = 8\ndepth = 1\nheads = 2\n"
            .to_string(),
        other => panic!("no test config for {other}"),
    };
    // The tables are written under [method]; parse them as that table's contents.
    let text = text.replace("[method.", "[");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// 64 images of 16×16 RGB, each with its own colour and its own pattern of
/// 4×4 cells (so instances are tellable apart, which contrastive methods
/// learn) over a top-to-bottom ramp (so "up" is visible, which rotation
/// prediction learns); labels are the colour's quartile.
fn data() -> ImageDataset {
    let images = Array4::from_shape_fn((64, 16, 16, 3), |(n, y, x, c)| {
        let cell = (y / 4) * 4 + x / 4;
        let bit = ((n * 2654435761usize) >> cell) & 1;
        let colour = (n * 37 + c * 71) % 100;
        (y * 6 + bit * 70 + colour) as u8
    });
    ImageDataset::new(
        images,
        (0..64).map(|i| ((i * 37) % 100 / 25) as i64).collect(),
        4,
    )
    .unwrap()
}

fn views(method: &str) -> Vec<ViewConfig> {
    let count = match method {
        "mae" | "rotnet" => return Vec::new(),
        _ => 2,
    };
    let text = format!(
        "count = {count}\nsize = 16\nscale = [0.5, 1.0]\n\
         jitter = {{ brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.05, p = 0.5 }}\n"
    );
    vec![toml::from_str(&text).unwrap()]
}

fn trainer(method: &str) -> Trainer {
    let config = TrainerConfig {
        epochs: 10,
        batch_size: 16,
        seed: 5,
        device: "cpu".into(),
        log_every: 1,
        checkpoint_every: 1,
        ..Default::default()
    };
    let (optimizer, lr) = match method {
        "mae" => (OptimizerKind::Adamw, 3e-3),
        // On 64 near-duplicate images a fast-moving MoCo encoder fills its
        // queue with ever harder negatives and the loss climbs back; a
        // gentler rate shows the fall.
        "moco" => (OptimizerKind::Sgd, 0.03),
        _ => (OptimizerKind::Sgd, 0.1),
    };
    let optim = OptimConfig {
        optimizer,
        lr,
        weight_decay: 1e-4,
        warmup_epochs: 1.0,
        ..Default::default()
    };
    Trainer { config, optim }
}

/// Stops the run with an error at step `fail_at` (an interruption).
struct Interrupted {
    inner: Box<dyn Method>,
    steps: usize,
    fail_at: Option<usize>,
}

impl Method for Interrupted {
    fn step(&mut self, batch: &Batch, train: bool) -> selfsup_train::Result<StepOutput> {
        self.steps += 1;
        if self.fail_at == Some(self.steps) {
            let message = "interrupted".to_string();
            return Err(Error::Config {
                origin: "test".into(),
                message,
            });
        }
        self.inner.step(batch, train)
    }
    fn after_step(&mut self, progress: &Progress) {
        self.inner.after_step(progress)
    }
    fn backbone(&self) -> &dyn FeatureExtractor {
        self.inner.backbone()
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        self.inner.state()
    }
    fn load_state(&mut self, named: &[(String, Tensor)]) -> selfsup_train::Result<()> {
        self.inner.load_state(named)
    }
}

struct Outcome {
    weights: Vec<(String, Tensor)>,
    losses: Vec<f64>,
    result: selfsup_train::Result<()>,
}

fn train(method: &str, run: &RunDir, fail_at: Option<usize>, resume: Option<&Path>) -> Outcome {
    let trainer = trainer(method);
    let images = data();
    let normalizer = Normalizer::new(&[0.5; 3], &[0.25; 3], Device::Cpu);
    let source = ImageSource {
        images: &images,
        normalizer: &normalizer,
        recipes: recipes(&views(method), 3).unwrap(),
        seed: trainer.config.seed,
    };
    tch::manual_seed(11);
    let vs = VarStore::new(Device::Cpu);
    let inner: Box<dyn Method> = method_config(method).build(vs.root());
    let mut wrapped = Interrupted {
        inner,
        steps: 0,
        fail_at,
    };
    let metrics_file = run.file("metrics.csv");
    let mut metrics = MetricsCsv::open(&metrics_file).unwrap();
    let result = trainer
        .fit(&mut wrapped, &vs, &source, run, &mut metrics, resume)
        .map(|_| ());
    drop(metrics);
    let losses = std::fs::read_to_string(&metrics_file)
        .unwrap()
        .lines()
        .filter(|l| l.contains(",train,loss,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let mut weights = checkpoint::named_variables(&vs, "");
    weights.extend(wrapped.state());
    Outcome {
        weights,
        losses,
        result,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn check_method(method: &str) {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let parent = tempfile::tempdir().unwrap();
    let straight_run = RunDir::create(parent.path(), "straight").unwrap();
    let straight = train(method, &straight_run, None, None);
    straight.result.unwrap();
    let losses = &straight.losses;
    assert_eq!(losses.len(), 40, "64 / 16 = 4 steps x 10 epochs");
    // MoCo's first steps compare against the random initial queue (easy
    // negatives); its loss is measured once the queue (64) holds real keys.
    let start = if method == "moco" { 2 } else { 0 };
    let (first, last) = (mean(&losses[start..start + 8]), mean(&losses[32..]));
    eprintln!("{method}: loss {first:.4} -> {last:.4}");
    assert!(
        last < first * 0.97,
        "{method}: loss went {first:.4} -> {last:.4}: {losses:?}"
    );

    // Interrupted at step 23 (after the checkpoint of step 22), then resumed.
    let run = RunDir::create(parent.path(), "interrupted").unwrap();
    let stopped = train(method, &run, Some(23), None);
    assert!(stopped.result.is_err());
    let checkpoint = run.checkpoints().join("last.safetensors");
    let resumed = train(method, &run, None, Some(&checkpoint));
    resumed.result.unwrap();
    assert_eq!(straight.weights.len(), resumed.weights.len());
    for ((name, a), (other, b)) in straight.weights.iter().zip(&resumed.weights) {
        assert_eq!(name, other);
        assert!(a.equal(b), "{method}: `{name}` differs after resume");
    }
}

#[test]
fn simclr_trains_and_resumes_exactly() {
    check_method("simclr");
}

#[test]
fn moco_v2_trains_and_resumes_exactly() {
    check_method("moco");
}

#[test]
fn moco_v3_trains_and_resumes_exactly() {
    check_method("mocov3");
}

#[test]
fn rotation_prediction_trains_and_resumes_exactly() {
    check_method("rotnet");
}

#[test]
fn mae_trains_and_resumes_exactly() {
    check_method("mae");
}

#[test]
fn a_contrastive_method_without_two_views_is_a_config_error() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let vs = VarStore::new(Device::Cpu);
    let mut method = method_config("simclr").build(vs.root());
    let batch = Batch {
        views: vec![Tensor::zeros(
            [2, 3, 16, 16],
            (tch::Kind::Float, Device::Cpu),
        )],
        labels: Tensor::zeros([2], (tch::Kind::Int64, Device::Cpu)),
        indices: vec![0, 1],
    };
    let error = method.step(&batch, true).unwrap_err().to_string();
    assert!(
        error.contains("data.views") && error.contains("2 views"),
        "{error}"
    );
}

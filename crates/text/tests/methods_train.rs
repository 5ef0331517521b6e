//! Both text methods through the shared trainer on a tiny corpus: the loss
//! falls, the model beats its random initialisation on held-out text, and a
//! run interrupted after step k and resumed from its checkpoint ends with the
//! same weights, bit for bit, as a run that never stopped (dropout included:
//! its masks come from libtorch's generator, which the trainer reseeds).

use selfsup_text::eval::validation_score;
use selfsup_text::source::TextSource;
use selfsup_text::{TextMethod, TextMethodConfig, TokenCorpus};
use selfsup_train::config::{OptimConfig, OptimizerKind, TrainerConfig};
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::{
    checkpoint, Batch, Error, FeatureExtractor, Method, Progress, StepOutput, Trainer,
};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// libtorch's generator is global and the trainer reseeds it every step.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn corpus() -> TokenCorpus {
    let words = [
        "the", "whale", "sea", "ship", "captain", "harpoon", "white", "deep",
    ];
    let text: String = (0..3000)
        .map(|i| format!("{} {}. ", words[i * 7 % 8], words[(i * 3 + 1) % 8]))
        .collect();
    TokenCorpus::from_text_chars(&text, 0.9).unwrap()
}

fn method_config(name: &str) -> TextMethodConfig {
    let text = format!(
        "name = \"{name}\"\n[model]\ncontext = 16\ndim = 32\ndepth = 2\nheads = 2\ndropout = 0.1\n"
    );
    toml::from_str(&text).unwrap()
}

fn trainer(name: &str) -> Trainer {
    let config = TrainerConfig {
        epochs: 100,
        // Masked-LM predicts 15 % of the tokens: less signal per step.
        max_steps: Some(if name == "mlm" { 200 } else { 60 }),
        batch_size: if name == "mlm" { 32 } else { 16 },
        seed: 9,
        device: "cpu".into(),
        log_every: 1,
        checkpoint_every: 1,
        grad_clip: Some(1.0),
        ..Default::default()
    };
    let optim = OptimConfig {
        optimizer: OptimizerKind::Adamw,
        lr: 3e-3,
        weight_decay: 0.01,
        beta2: 0.99,
        warmup_steps: Some(5),
        ..Default::default()
    };
    Trainer { config, optim }
}

/// Stops the run with an error at step `fail_at`.
struct Interrupted {
    inner: Box<dyn TextMethod>,
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
}

struct Outcome {
    weights: Vec<(String, Tensor)>,
    losses: Vec<f64>,
    validation: f64,
    validation_at_init: f64,
    result: selfsup_train::Result<()>,
}

fn train(name: &str, run: &RunDir, fail_at: Option<usize>, resume: Option<&Path>) -> Outcome {
    let corpus = corpus();
    let config = method_config(name);
    let vocab = corpus.tokenizer.vocab_size();
    let objective = config.objective(vocab);
    tch::manual_seed(4);
    let vs = VarStore::new(Device::Cpu);
    let inner = config.build(vs.root(), vocab);
    let score = |method: &dyn TextMethod| {
        let tokens = corpus.validation.as_ref();
        validation_score(method, &objective, tokens, 16, 32, 100, Device::Cpu).loss
    };
    let validation_at_init = score(inner.as_ref());
    let mut wrapped = Interrupted {
        inner,
        steps: 0,
        fail_at,
    };
    let source = TextSource {
        tokens: corpus.train.as_ref(),
        length: 16,
        objective: objective.clone(),
        seed: 9,
        device: Device::Cpu,
    };
    let metrics_file = run.file("metrics.csv");
    let mut metrics = MetricsCsv::open(&metrics_file).unwrap();
    let result = trainer(name)
        .fit(&mut wrapped, &vs, &source, run, &mut metrics, resume)
        .map(|_| ());
    drop(metrics);
    let losses = std::fs::read_to_string(&metrics_file)
        .unwrap()
        .lines()
        .filter(|l| l.contains(",train,loss,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    Outcome {
        weights: checkpoint::named_variables(&vs, ""),
        losses,
        validation: score(wrapped.inner.as_ref()),
        validation_at_init,
        result,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn check_method(name: &str) {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let parent = tempfile::tempdir().unwrap();
    let straight_run = RunDir::create(parent.path(), "straight").unwrap();
    let straight = train(name, &straight_run, None, None);
    straight.result.unwrap();
    let losses = &straight.losses;
    let steps = losses.len();
    assert_eq!(steps, trainer(name).config.max_steps.unwrap());
    let (first, last) = (mean(&losses[..5]), mean(&losses[steps - 10..]));
    let (before, after) = (straight.validation_at_init, straight.validation);
    eprintln!("{name}: loss {first:.4} -> {last:.4}, validation {before:.4} -> {after:.4}");
    // Next-token learns the toy language fast; masked-LM, with 15 % of the
    // tokens to learn from, leaves the unigram level more slowly.
    let factor = if name == "mlm" { 0.9 } else { 0.7 };
    assert!(
        last < first * factor,
        "{name}: loss went {first:.4} -> {last:.4}"
    );
    assert!(
        after < before * factor,
        "{name}: validation {before:.4} -> {after:.4}"
    );

    let run = RunDir::create(parent.path(), "interrupted").unwrap();
    assert!(train(name, &run, Some(steps / 2 + 1), None).result.is_err());
    let checkpoint = run.checkpoints().join("last.safetensors");
    let resumed = train(name, &run, None, Some(&checkpoint));
    resumed.result.unwrap();
    assert_eq!(straight.weights.len(), resumed.weights.len());
    for ((n, a), (_, b)) in straight.weights.iter().zip(&resumed.weights) {
        assert!(a.equal(b), "{name}: `{n}` differs after resume");
    }
}

#[test]
fn next_token_trains_and_resumes_exactly() {
    check_method("gpt");
}

#[test]
fn masked_lm_trains_and_resumes_exactly() {
    check_method("mlm");
}

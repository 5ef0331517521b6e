//! The smoke test every text method's file runs on itself: through the
//! shared trainer on a tiny corpus, the loss falls, the model beats its
//! random initialisation on held-out text, and a run interrupted mid-way and
//! resumed ends with a final checkpoint equal, tensor for tensor, to an
//! uninterrupted one (dropout included: its masks come from libtorch's
//! generator, which the trainer reseeds every step).

use crate::registry::{Text, TextContext, TextMethod};
use crate::text_data::TextData;
use crate::TokenCorpus;
use selfsup_data::documents::{split_at_blank_lines, Documents};
use selfsup_train::config::{OptimConfig, OptimizerKind, TrainerConfig};
use selfsup_train::registry::MethodChoice;
use selfsup_train::testing::{
    assert_data_parallel_matches, assert_resume_is_exact, in_own_process, mean,
};
use selfsup_train::{BatchSource, Method, Trainer};
use std::cell::RefCell;
use tch::nn::VarStore;
use tch::Device;

/// How a smoke test trains.
pub(crate) struct Smoke {
    /// The method's name (`gpt`, `mlm`, `bert`).
    pub name: &'static str,
    /// Optimizer steps.
    pub steps: usize,
    /// Windows per step.
    pub batch_size: usize,
    /// The loss (and validation loss) must end below `factor` times its start.
    pub factor: f64,
}

/// A toy language of two-word sentences, in paragraphs of ten (the
/// documents of sentence-pair methods).
fn text() -> String {
    let words = [
        "the", "whale", "sea", "ship", "captain", "harpoon", "white", "deep",
    ];
    (0..3000)
        .map(|i| {
            let sentence = format!("{} {}. ", words[i * 7 % 8], words[(i * 3 + 1) % 8]);
            match i % 10 {
                9 => sentence + "\n\n",
                _ => sentence,
            }
        })
        .collect()
}

/// Trains, checks the fall and resume; call it from a test named
/// `trains_and_resumes_exactly` with `module_path!()` (it runs in its own process).
pub(crate) fn trains_and_resumes(module: &str, smoke: Smoke) {
    let name = format!("{module}::trains_and_resumes_exactly");
    in_own_process(&name, || check(smoke));
}

fn check(smoke: Smoke) {
    let trainer = Trainer {
        config: TrainerConfig {
            epochs: 100,
            max_steps: Some(smoke.steps),
            batch_size: smoke.batch_size,
            seed: 9,
            device: "cpu".into(),
            log_every: 1,
            checkpoint_every: 1,
            grad_clip: Some(1.0),
            ..Default::default()
        },
        optim: OptimConfig {
            optimizer: OptimizerKind::Adamw,
            lr: 3e-3,
            weight_decay: 0.01,
            beta2: 0.99,
            warmup_steps: Some(5),
            ..Default::default()
        },
    };
    on_toy_text(smoke.name, 0.1, |choice, context, data, source| {
        let score =
            |method: &dyn TextMethod| data.score(method, Device::Cpu).expect("a score").loss;
        // Validation before and after, from the builds the harness makes.
        let scores: RefCell<Vec<f64>> = RefCell::default();
        let build = |vs: &VarStore| -> selfsup_train::Result<Box<dyn Method + '_>> {
            let method = choice.build(vs.root(), context)?;
            scores.borrow_mut().push(score(method.as_ref()));
            Ok(Box::new(Scored {
                inner: method,
                score: &score,
                scores: &scores,
            }))
        };
        let curves = assert_resume_is_exact(&build, &trainer, source, smoke.steps / 2 + 1);
        let losses = &curves["loss"];
        assert_eq!(losses.len(), smoke.steps);
        let (first, last) = (mean(&losses[..5]), mean(&losses[smoke.steps - 10..]));
        let scores = scores.borrow();
        let (before, after) = (scores[0], *scores.last().expect("a final score"));
        assert!(
            last < first * smoke.factor,
            "{}: loss went {first:.4} -> {last:.4}",
            smoke.name
        );
        assert!(
            after < before * smoke.factor,
            "{}: validation {before:.4} -> {after:.4}",
            smoke.name
        );
    });
}

/// The toy language prepared for method `name` (a small transformer with
/// `dropout`): `f` gets the parsed method, its context, the data (for
/// validation scores) and the training batches.
fn on_toy_text<T>(
    name: &str,
    dropout: f64,
    f: impl FnOnce(&MethodChoice<Text>, &TextContext, &TextData, &dyn BatchSource) -> T,
) -> T {
    let table = format!(
        "name = \"{name}\"\n[model]\ncontext = 16\ndim = 32\ndepth = 2\nheads = 2\ndropout = {dropout:?}\n"
    );
    let choice = crate::registry()
        .parse(table.parse().expect("a TOML table"), "smoke test")
        .expect("a valid method table");
    let text = text();
    let corpus = TokenCorpus::from_text_chars(&text, 0.9).expect("a corpus");
    let context = TextContext {
        tokenizer_vocab: corpus.tokenizer.vocab_size(),
    };
    let probe_vs = VarStore::new(Device::Cpu);
    let template = choice.build(probe_vs.root(), &context).expect("a model");
    let documents = |corpus: &TokenCorpus| {
        Ok(Documents::tokenize(
            &split_at_blank_lines(&text),
            &corpus.tokenizer,
        )?)
    };
    let data = TextData::for_method(corpus, template.as_ref(), documents, 0.9, 9).expect("data");
    let source = data.source(template.as_ref(), 9, Device::Cpu);
    f(&choice, &context, &data, source.as_ref())
}

/// A text method that scores itself on validation text when training ends
/// (the harness owns the model; this is how the test sees it afterwards).
struct Scored<'a> {
    inner: Box<dyn TextMethod>,
    score: &'a dyn Fn(&dyn TextMethod) -> f64,
    scores: &'a RefCell<Vec<f64>>,
}

impl Method for Scored<'_> {
    fn step(
        &mut self,
        batch: &selfsup_train::Batch,
        train: bool,
    ) -> selfsup_train::Result<selfsup_train::StepOutput> {
        self.inner.step(batch, train)
    }
    fn after_step(&mut self, progress: &selfsup_train::Progress) -> selfsup_train::Result<()> {
        self.inner.after_step(progress)?;
        if progress.step == progress.total_steps {
            let loss = (self.score)(self.inner.as_ref());
            self.scores.borrow_mut().push(loss);
        }
        Ok(())
    }
    fn backbone(&self) -> &dyn selfsup_train::FeatureExtractor {
        self.inner.backbone()
    }
    fn state(&self) -> Vec<(String, tch::Tensor)> {
        self.inner.state()
    }
    fn load_state(&mut self, named: &[(String, tch::Tensor)]) -> selfsup_train::Result<()> {
        self.inner.load_state(named)
    }
}

/// Two ranks of 8 windows train `name` (without dropout, whose masks are
/// per rank) as one process of 16 for eight steps; call it from a test
/// named `two_ranks_train_as_one_process` with `module_path!()`.
pub(crate) fn data_parallel_matches(module: &str, name: &str) {
    let trainer = Trainer {
        config: TrainerConfig {
            epochs: 100,
            max_steps: Some(8),
            batch_size: 8,
            seed: 9,
            device: "cpu".into(),
            log_every: 1,
            grad_clip: Some(1.0),
            ..Default::default()
        },
        optim: OptimConfig {
            optimizer: OptimizerKind::Adamw,
            lr: 3e-3,
            warmup_steps: Some(2),
            ..Default::default()
        },
    };
    on_toy_text(name, 0.0, |choice, context, _, source| {
        let build = |vs: &VarStore| -> selfsup_train::Result<Box<dyn Method + '_>> {
            let method: Box<dyn Method> = choice.build(vs.root(), context)?;
            Ok(method)
        };
        let test = format!("{module}::two_ranks_train_as_one_process");
        assert_data_parallel_matches(&test, &build, &trainer, source, 1e-4);
    });
}

//! The text experiment behind `selfsup train text-<method>`: read and check
//! the config, tokenise the corpus, build the method, then (in a new run
//! folder) validation loss at random init, pretraining, validation loss
//! again, and a demonstration of what the model learned. Everything that
//! can fail on user input fails in [`Experiment::prepare`], before the run
//! folder exists. `loaded.rs` opens a finished run for generate, fill-mask
//! and the probe.

mod demo;
mod loaded;

pub use demo::{demonstrate, Demo, MaskedChoice};
pub use loaded::{FilledMask, LoadedText};

use crate::eval::LmScore;
use crate::registry::{TextContext, TextMethod, TextRegistry, TextRunConfig};
use crate::text_data::TextData;
use crate::TokenCorpus;
use selfsup_data::documents::Documents;
use selfsup_data::token_file::tokenizer_path;
use selfsup_data::tokenizer::SavedTokenizer;
use selfsup_train::check;
use selfsup_train::device::parse_device;
use selfsup_train::experiment::{
    fit_and_compare, start_run, try_one_step, write_summary, Comparison, Fitting, RunStart, Stage,
};
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::trainer::FitReport;
use selfsup_train::{Result, Trainer};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::Device;

/// What `selfsup train <text task>` was asked to do.
pub struct TrainRequest<'a> {
    /// The task's name (`text-gpt`).
    pub task: &'a str,
    /// The config's text.
    pub config_text: &'a str,
    /// Where the config came from, for messages.
    pub origin: &'a str,
    /// `--set key=value` overrides.
    pub overrides: &'a [String],
    /// `--data <file or folder>`: replaces `data.path`.
    pub data: Option<&'a Path>,
    /// Where the run folder goes, or which one to resume.
    pub start: RunStart,
}

/// A text run, checked and ready.
pub struct Experiment {
    task: String,
    config: TextRunConfig,
    data: TextData,
    device: Device,
    vs: VarStore,
    method: Box<dyn TextMethod>,
    run: RunDir,
    resume: Option<PathBuf>,
}

/// What a text run reports.
#[derive(Debug)]
pub struct TrainReport {
    /// The task.
    pub task: String,
    /// The corpus.
    pub data_path: PathBuf,
    /// Training and validation tokens.
    pub train_tokens: usize,
    /// Validation tokens.
    pub validation_tokens: usize,
    /// The tokenizer's vocabulary.
    pub vocab: usize,
    /// What a token is: `character` or `token`.
    pub unit: &'static str,
    /// The training loop's report.
    pub fit: FitReport,
    /// Validation after training.
    pub trained: LmScore,
    /// Validation of the same model at its random init.
    pub random_init: LmScore,
    /// What the model learned, shown.
    pub demo: Demo,
    /// The run folder.
    pub run: PathBuf,
    /// Plots written.
    pub pictures: Vec<PathBuf>,
}

/// `summary.toml`: the numbers a benchmark compares.
#[derive(Serialize)]
struct Summary<'a> {
    task: &'a str,
    steps: usize,
    train_seconds: f64,
    tokens_per_second: f64,
    data_wait_share: f64,
    first_loss: f64,
    final_loss: f64,
    validation_loss: f64,
    validation_perplexity: f64,
    validation_bits_per_token: f64,
    validation_loss_random_init: f64,
    validation_top1: f64,
    validation_top1_random_init: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_sentence_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_sentence_accuracy_random_init: Option<f64>,
}

impl Experiment {
    /// Parses and checks the config, tokenises the corpus, builds the model
    /// and tries one step; then creates (or reopens) the run folder and
    /// saves the tokenizer in it. An error here leaves no run folder.
    pub fn prepare(registry: &TextRegistry, request: TrainRequest<'_>) -> Result<Self> {
        let mut config: TextRunConfig =
            registry.parse_run(request.config_text, request.origin, request.overrides)?;
        if let Some(path) = request.data {
            config.data.path = path.to_path_buf();
        }
        let device = parse_device(&config.trainer.device)?;
        let corpus = config.data.load()?;
        let saved = saved_tokenizer(&config, &corpus)?;
        let vocab = corpus.tokenizer.vocab_size();
        tch::manual_seed(config.trainer.seed as i64);
        let vs = VarStore::new(device);
        let mut method = config.method.build(
            vs.root(),
            &TextContext {
                tokenizer_vocab: vocab,
            },
        )?;
        let context = method.context();
        let data = TextData::for_method(
            corpus,
            method.as_ref(),
            |corpus| documents(&config, corpus),
            config.data.train_fraction,
            config.trainer.seed,
        )?;
        let corpus = &data.corpus;
        if data.pairs.is_none() && corpus.validation.len() <= context {
            let message = format!(
                "leaves {} validation tokens, fewer than one window of {} + 1",
                corpus.validation.len(),
                context
            );
            return Err(check::invalid("data.train_fraction", message));
        }
        let source = data.source(method.as_ref(), config.trainer.seed, device);
        let trainer = Trainer::of(&config);
        trainer.schedule(source.len())?;
        let batch = source.batch(0, &[0])?;
        try_one_step(method.as_mut(), &batch, "a first step on one window")?;
        // A misspelt `optim.lr_scales` path fails here, before the run folder.
        selfsup_train::optimizer::param_groups(&vs, &config.optim)?;
        drop(source);
        let (run, resume) = start_run(&request.start, &config.name, &config.to_toml()?, &vs)?;
        saved.write(&run.file("tokenizer.toml"))?;
        Ok(Self {
            task: request.task.to_string(),
            config,
            data,
            device,
            vs,
            method,
            run,
            resume,
        })
    }

    /// The run folder (for the log file).
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// Trains between two validation scores, then demonstrates the model.
    pub fn run(mut self) -> Result<TrainReport> {
        let trainer = Trainer::of(&self.config);
        let source = self
            .data
            .source(self.method.as_ref(), self.config.trainer.seed, self.device);
        let steps_per_epoch = trainer.schedule(source.len())?.steps_per_epoch;
        let (data, device) = (&self.data, self.device);
        let fitting = Fitting {
            trainer: &trainer,
            method: self.method.as_mut(),
            vs: &self.vs,
            source: source.as_ref(),
            run: &self.run,
            resume: self.resume.as_deref(),
        };
        let comparison = fit_and_compare(fitting, |method, metrics, stage| {
            let scored = data.score(method, device)?;
            record(metrics, stage, stage.step() / steps_per_epoch, &scored)?;
            Ok(scored)
        })?;
        drop(source);
        self.write_summary(&comparison)?;
        let demo = demonstrate(
            self.method.as_ref(),
            &self.data.corpus,
            self.config.trainer.seed,
            self.device,
        )?;
        if let Demo::Sample { text } = &demo {
            let path = self.run.file("sample.txt");
            std::fs::write(&path, text).map_err(|e| selfsup_train::Error::io(&path, e))?;
        }
        Ok(TrainReport {
            task: self.task.clone(),
            data_path: self.config.data.path.clone(),
            train_tokens: self.data.corpus.train.len(),
            validation_tokens: self.data.corpus.validation.len(),
            vocab: self.data.corpus.tokenizer.vocab_size(),
            unit: self.data.corpus.tokenizer.unit(),
            fit: comparison.report,
            trained: comparison.trained,
            random_init: comparison.random_init,
            demo,
            run: self.run.path().to_path_buf(),
            pictures: comparison.plots,
        })
    }
}

impl Experiment {
    fn write_summary(&self, comparison: &Comparison<LmScore>) -> Result<()> {
        let fit = &comparison.report;
        let summary = Summary {
            task: &self.task,
            steps: fit.steps,
            train_seconds: fit.seconds,
            tokens_per_second: fit.units_per_second,
            data_wait_share: fit.data_wait_share,
            first_loss: fit.first_loss,
            final_loss: fit.final_loss,
            validation_loss: comparison.trained.loss,
            validation_perplexity: comparison.trained.perplexity,
            validation_bits_per_token: comparison.trained.bits_per_token,
            validation_loss_random_init: comparison.random_init.loss,
            validation_top1: comparison.trained.top1,
            validation_top1_random_init: comparison.random_init.top1,
            validation_sentence_accuracy: comparison.trained.sentence_accuracy,
            validation_sentence_accuracy_random_init: comparison.random_init.sentence_accuracy,
        };
        write_summary(&self.run, &summary)?;
        Ok(())
    }
}

/// Writes a validation score's rows: the loss (suffixed `_random_init`
/// before training), and after training its perplexity and bits per token.
fn record(metrics: &mut MetricsCsv, stage: Stage, epoch: usize, scored: &LmScore) -> Result<()> {
    let step = stage.step();
    metrics.write(
        step,
        epoch,
        "eval",
        &stage.metric("validation_loss"),
        scored.loss,
    )?;
    if stage != Stage::RandomInit {
        metrics.write(
            step,
            epoch,
            "eval",
            "validation_perplexity",
            scored.perplexity,
        )?;
        metrics.write(
            step,
            epoch,
            "eval",
            "validation_bits_per_token",
            scored.bits_per_token,
        )?;
    }
    let name = stage.metric("validation_top1");
    metrics.write(step, epoch, "eval", &name, scored.top1)?;
    if let Some(accuracy) = scored.sentence_accuracy {
        let name = stage.metric("validation_sentence_accuracy");
        metrics.write(step, epoch, "eval", &name, accuracy)?;
    }
    tracing::info!(validation_loss = scored.loss, top1 = scored.top1, sentence_accuracy = ?scored.sentence_accuracy, stage = ?stage, "validation");
    Ok(())
}

/// The tokenizer as saved next to the run: a token file's own, else the configured one.
fn saved_tokenizer(config: &TextRunConfig, corpus: &TokenCorpus) -> Result<SavedTokenizer> {
    let path = &config.data.path;
    Ok(match path.extension().is_some_and(|e| e == "tokens") {
        true => SavedTokenizer::read(&tokenizer_path(path))?,
        false => SavedTokenizer::of(&corpus.tokenizer, config.data.tokenizer_files.as_deref())?,
    })
}

/// The documents of a sentence-pair run, tokenised as the corpus is.
fn documents(config: &TextRunConfig, corpus: &TokenCorpus) -> Result<Documents> {
    let path = &config.data.path;
    if path.extension().is_some_and(|e| e == "tokens") {
        let message =
            "sentence pairs need the text itself (sentences and documents), not a .tokens file";
        return Err(check::invalid("data.path", message));
    }
    Ok(Documents::read(path, &corpus.tokenizer)?)
}

//! `selfsup train text-gpt | text-mlm`: pretrain a language model on a text
//! corpus, then score it on the held-out tail of the text (loss, perplexity,
//! bits per character) next to the same model at random initialisation, and
//! show what it learned (a sample, or filled-in masks).

use crate::logging;
use crate::train::TrainArgs;
use anyhow::{Context, Result};
use selfsup_data::token_file::tokenizer_path;
use selfsup_data::tokenizer::SavedTokenizer;
use selfsup_text::eval::{fill_mask, generate, validation_score, LmScore, Sampling};
use selfsup_text::source::TextSource;
use selfsup_text::{TextMethod, TextRunConfig, TokenCorpus};
use selfsup_train::image_data::parse_device;
use selfsup_train::metrics::MetricsCsv;
use selfsup_train::run_dir::RunDir;
use selfsup_train::{RunConfig, Trainer};
use std::path::Path;
use tch::nn::VarStore;
use tch::Device;

/// Windows scored for validation (of `context` tokens each).
const VALIDATION_WINDOWS: usize = 400;

/// Parses a text config with overrides.
pub fn parse_config(text: &str, origin: &str, overrides: &[String]) -> Result<TextRunConfig> {
    Ok(RunConfig::parse(text, origin, overrides)?)
}

/// `summary.toml`: the numbers a benchmark compares.
#[derive(serde::Serialize)]
struct Summary {
    task: String,
    steps: usize,
    train_seconds: f64,
    tokens_per_second: f64,
    data_wait_share: f64,
    first_loss: f64,
    final_loss: f64,
    validation_loss: f64,
    validation_perplexity: f64,
    validation_bits_per_character: f64,
    validation_loss_random_init: f64,
}

/// Scores `method` on the validation tokens.
pub fn score(
    method: &dyn TextMethod,
    config: &TextRunConfig,
    corpus: &TokenCorpus,
    device: Device,
) -> LmScore {
    let objective = config.method.objective(corpus.tokenizer.vocab_size());
    let length = config.method.model().context as usize;
    validation_score(
        method,
        &objective,
        corpus.validation.as_ref(),
        length,
        32,
        VALIDATION_WINDOWS,
        device,
    )
}

/// Reads the corpus a config names.
pub fn load_corpus(config: &TextRunConfig) -> Result<TokenCorpus> {
    config
        .data
        .load()
        .with_context(|| format!("reading the corpus {}", config.data.path.display()))
}

/// Trains and reports.
pub fn run(args: &TrainArgs, text: &str, origin: &str) -> Result<()> {
    let mut config = parse_config(text, origin, &args.set)?;
    if let Some(path) = args
        .data
        .as_ref()
        .map(Path::new)
        .or(args.data_dir.as_deref())
    {
        config.data.path = path.to_path_buf();
    }
    let device =
        parse_device(&config.trainer.device).map_err(|e| anyhow::anyhow!("trainer.device: {e}"))?;
    let corpus = load_corpus(&config)?;
    let run = match &args.resume {
        Some(dir) => RunDir::open(dir)?,
        None => RunDir::create(&args.runs, &config.name)?,
    };
    logging::init_with_file(&run.file("train.log"));
    std::fs::write(run.file("config.toml"), config.to_toml()).context("writing config.toml")?;
    let saved = match config.data.path.extension().is_some_and(|e| e == "tokens") {
        // A token file's tokenizer is the one saved next to it.
        true => SavedTokenizer::read(&tokenizer_path(&config.data.path))?,
        false => SavedTokenizer::of(&corpus.tokenizer, config.data.tokenizer_files.as_deref())?,
    };
    saved.write(&run.file("tokenizer.toml"))?;
    let vocab = corpus.tokenizer.vocab_size();
    tracing::info!(
        task = %config.name,
        train_tokens = corpus.train.len(),
        validation_tokens = corpus.validation.len(),
        vocab,
        "corpus"
    );

    tch::manual_seed(config.trainer.seed as i64);
    let vs = VarStore::new(device);
    let mut method = config.method.build(vs.root(), vocab);
    let random_init = score(method.as_ref(), &config, &corpus, device);
    tracing::info!(validation_loss = random_init.loss, "random-init model");

    let source = TextSource {
        tokens: corpus.train.as_ref(),
        length: config.method.model().context as usize,
        objective: config.method.objective(vocab),
        seed: config.trainer.seed,
        device,
    };
    let mut metrics = MetricsCsv::open(&run.file("metrics.csv"))?;
    let trainer = Trainer {
        config: config.trainer.clone(),
        optim: config.optim.clone(),
    };
    let checkpoint = run.checkpoints().join("last.safetensors");
    let resume = args.resume.is_some().then_some(checkpoint.as_path());
    let report = trainer.fit(method.as_mut(), &vs, &source, &run, &mut metrics, resume)?;
    let trained = score(method.as_ref(), &config, &corpus, device);
    let epoch = report.steps
        / trainer
            .steps_per_epoch(source.tokens.len() / source.length)
            .max(1);
    for (name, value) in [
        ("validation_loss", trained.loss),
        ("validation_perplexity", trained.perplexity),
        ("validation_bits_per_character", trained.bits_per_token),
    ] {
        metrics.write(report.steps, epoch, "eval", name, value)?;
    }
    metrics.write(
        0,
        0,
        "eval",
        "validation_loss_random_init",
        random_init.loss,
    )?;
    let summary = Summary {
        task: config.name.clone(),
        steps: report.steps,
        train_seconds: report.seconds,
        tokens_per_second: report.images_per_second,
        data_wait_share: report.data_wait_share,
        first_loss: report.first_loss,
        final_loss: report.final_loss,
        validation_loss: trained.loss,
        validation_perplexity: trained.perplexity,
        validation_bits_per_character: trained.bits_per_token,
        validation_loss_random_init: random_init.loss,
    };
    std::fs::write(run.file("summary.toml"), toml::to_string(&summary)?)
        .context("writing summary.toml")?;
    let plots = selfsup_train::plots::plot_metrics(&run.file("metrics.csv"), run.path())?;

    let unit = corpus.tokenizer.unit();
    println!();
    println!(
        "{} on {} ({} train / {} validation {unit}s, vocabulary {vocab})",
        config.name,
        config.data.path.display(),
        corpus.train.len(),
        corpus.validation.len()
    );
    println!(
        "  pretraining: {} steps in {:.0} s ({:.0} tokens/s, {:.0} % waiting for data), loss {:.4} -> {:.4}",
        report.steps,
        report.seconds,
        report.images_per_second,
        report.data_wait_share * 100.0,
        report.first_loss,
        report.final_loss
    );
    println!("  validation ({} predicted {unit}s):", trained.tokens);
    println!(
        "    {:<28} {:>8} {:>11} {:>8}",
        "",
        "loss",
        "perplexity",
        format!("bits/{unit}")
    );
    for (label, s) in [
        ("trained", trained),
        ("same model, random init", random_init),
    ] {
        println!(
            "    {label:<28} {:>8.4} {:>11.2} {:>8.3}",
            s.loss, s.perplexity, s.bits_per_token
        );
    }
    show_what_it_learned(method.as_ref(), &config, &corpus, device, &run)?;
    println!("  run folder: {}", run.path().display());
    for file in plots {
        println!("  picture:    {}", file.display());
    }
    Ok(())
}

/// A sample for GPT (also written to `sample.txt`); filled-in masks for MLM.
fn show_what_it_learned(
    method: &dyn TextMethod,
    config: &TextRunConfig,
    corpus: &TokenCorpus,
    device: Device,
    run: &RunDir,
) -> Result<()> {
    let validation = corpus.validation.to_vec(0..corpus.validation.len().min(64));
    let prompt = &validation[..validation.len().min(32)];
    match method.as_next_token() {
        Some(gpt) => {
            let sampling = Sampling {
                tokens: 300,
                temperature: 0.8,
                top_k: 40,
                seed: config.trainer.seed,
            };
            let new = generate(gpt, prompt, sampling, device);
            let text = format!(
                "{}{}",
                corpus.tokenizer.decode(prompt)?,
                corpus.tokenizer.decode(&new)?
            );
            std::fs::write(run.file("sample.txt"), &text).context("writing sample.txt")?;
            println!("  sample (temperature 0.8, top-k 40) after a validation prompt:");
            for line in text.lines().take(12) {
                println!("    | {line}");
            }
        }
        None => {
            let mask_id = corpus.tokenizer.vocab_size() as u32;
            let context = config.method.model().context as usize;
            let mut ids = validation[..validation.len().min(context)].to_vec();
            let hidden: Vec<usize> = (5..ids.len()).step_by(9).collect();
            let truth = corpus.tokenizer.decode(&ids)?;
            for &i in &hidden {
                ids[i] = mask_id;
            }
            let filled = fill_mask(method, &ids, mask_id, 1, device);
            let mut guess = ids.clone();
            let mut right = 0;
            for (position, candidates) in &filled {
                guess[*position] = candidates[0].0;
                right += usize::from(candidates[0].0 == validation[*position]);
            }
            let original = &validation[..ids.len()];
            let shown = original
                .iter()
                .enumerate()
                .map(|(i, &t)| match hidden.contains(&i) {
                    true => Ok("_".to_string()),
                    false => corpus.tokenizer.decode(&[t]),
                })
                .collect::<selfsup_data::Result<String>>()?;
            println!(
                "  fill-mask on validation text ({right} of {} masked {}s right):",
                hidden.len(),
                corpus.tokenizer.unit()
            );
            println!("    masked:  {}", shown.replace('\n', " "));
            println!(
                "    filled:  {}",
                corpus.tokenizer.decode(&guess)?.replace('\n', " ")
            );
            println!("    truth:   {}", truth.replace('\n', " "));
        }
    }
    Ok(())
}

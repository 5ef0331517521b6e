//! `selfsup generate`, `fill-mask` and `probe`: parse, call the text
//! library on a trained run folder, print.

use anyhow::{Context, Result};
use selfsup_text::eval::Sampling;
use selfsup_text::experiment::LoadedText;
use std::path::PathBuf;

/// Arguments of `selfsup generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The run folder of a `text-gpt` run.
    run: PathBuf,
    /// Text to continue.
    #[arg(long, default_value = "\n")]
    prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 500)]
    tokens: usize,
    /// Softmax temperature.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Sample from the k most likely tokens only (0: all).
    #[arg(long, default_value_t = 40)]
    top_k: i64,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Recompute every earlier token for each new one instead of keeping
    /// their keys and values (the same text within the context; slower).
    #[arg(long)]
    no_kv_cache: bool,
}

/// Arguments of `selfsup fill-mask`.
#[derive(clap::Args)]
pub struct FillMaskArgs {
    /// The run folder of a `text-mlm` run.
    run: PathBuf,
    /// Text with each hidden character written as `--mask`.
    #[arg(long)]
    text: String,
    /// The placeholder character.
    #[arg(long, default_value_t = '_')]
    mask: char,
    /// Candidates to show per hidden character.
    #[arg(long, default_value_t = 5)]
    top_k: i64,
}

/// Arguments of `selfsup probe`.
#[derive(clap::Args)]
pub struct ProbeArgs {
    /// The run folder of a text run.
    run: PathBuf,
    /// Two or more texts; the probe tells which one a passage comes from.
    #[arg(long, num_args = 2.., required = true)]
    texts: Vec<PathBuf>,
    /// Passages per text (every 5th is held out for scoring).
    #[arg(long, default_value_t = 500)]
    passages: usize,
    /// Characters per passage.
    #[arg(long, default_value_t = 256)]
    chars: usize,
}

fn load(run: &std::path::Path) -> Result<LoadedText> {
    crate::logging::init_stderr();
    Ok(LoadedText::open(&selfsup_text::registry(), run)?)
}

/// Runs `selfsup generate`.
pub fn run_generate(args: GenerateArgs) -> Result<()> {
    let loaded = load(&args.run)?;
    let sampling = Sampling {
        tokens: args.tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
        kv_cache: !args.no_kv_cache,
    };
    let started = std::time::Instant::now();
    let text = loaded.generate(&args.prompt, sampling)?;
    let seconds = started.elapsed().as_secs_f64();
    println!("{text}");
    eprintln!(
        "{} tokens in {seconds:.2} s ({:.0} tokens/s, key/value cache {})",
        args.tokens,
        args.tokens as f64 / seconds.max(1e-9),
        if args.no_kv_cache { "off" } else { "on" }
    );
    Ok(())
}

/// Runs `selfsup fill-mask`.
pub fn run_fill_mask(args: FillMaskArgs) -> Result<()> {
    let loaded = load(&args.run)?;
    let filled = loaded.fill_mask(&args.text, args.mask, args.top_k)?;
    for (position, candidates) in &filled.positions {
        let shown: Vec<String> = candidates
            .iter()
            .map(|(c, p)| format!("{c:?} {:.1} %", p * 100.0))
            .collect();
        println!("position {position}: {}", shown.join(", "));
    }
    println!("{}", filled.best);
    Ok(())
}

/// Runs `selfsup probe`: a linear probe on frozen passage features, trained
/// model against the same model at random initialisation.
pub fn run_probe(args: ProbeArgs) -> Result<()> {
    let loaded = load(&args.run)?;
    let texts = args
        .texts
        .iter()
        .map(|p| {
            selfsup_data::text::read_text(p).with_context(|| format!("reading {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let report = selfsup_text::probe::probe_texts(&loaded, &texts, args.chars, args.passages)?;
    println!(
        "which text a {}-character passage comes from ({} texts; {} train / {} test passages, {} skipped for unknown characters)",
        args.chars,
        texts.len(),
        report.train_passages,
        report.test_passages,
        report.skipped
    );
    println!("  linear probe on frozen mean-pooled features:");
    println!("    {:<28} {:>6.2} %", "trained", report.trained * 100.0);
    println!(
        "    {:<28} {:>6.2} %",
        "same model, random init",
        report.random_init * 100.0
    );
    Ok(())
}

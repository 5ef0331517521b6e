//! `selfsup generate` and `selfsup fill-mask`: use a trained text run from its
//! folder (config, `tokenizer.toml`, last checkpoint) without its corpus.

use crate::text_train::parse_config;
use anyhow::{bail, Context, Result};
use selfsup_data::tokenizer::SavedTokenizer;
use selfsup_data::tokenizer::Tokenizer;
use selfsup_text::eval::{fill_mask, generate, Sampling};
use selfsup_text::{TextMethod, TextRunConfig};
use selfsup_train::checkpoint;
use selfsup_train::image_data::parse_device;
use selfsup_train::run_dir::RunDir;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Arguments of `selfsup generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The run folder of a `text-gpt` run.
    run: PathBuf,
    /// Text to continue.
    #[arg(long, default_value = "\n")]
    prompt: String,
    /// Characters to generate.
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

/// A trained text model loaded from its run folder.
struct Loaded {
    method: Box<dyn TextMethod>,
    tokenizer: Tokenizer,
    device: Device,
    _vs: VarStore,
}

fn load(run: &std::path::Path) -> Result<(Loaded, TextRunConfig)> {
    crate::logging::init_stderr();
    let run = RunDir::open(run)?;
    let config_path = run.file("config.toml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config = parse_config(&text, &config_path.display().to_string(), &[])?;
    let tokenizer_path = run.file("tokenizer.toml");
    let tokenizer = SavedTokenizer::read(&tokenizer_path)?.load()?;
    let device =
        parse_device(&config.trainer.device).map_err(|e| anyhow::anyhow!("trainer.device: {e}"))?;
    let vs = VarStore::new(device);
    let method = config.method.build(vs.root(), tokenizer.vocab_size());
    let checkpoint_path = run.checkpoints().join("last.safetensors");
    let tensors = checkpoint::load(&checkpoint_path)?;
    checkpoint::restore_variables(&vs, "model.", &tensors, &checkpoint_path)?;
    Ok((
        Loaded {
            method,
            tokenizer,
            device,
            _vs: vs,
        },
        config,
    ))
}

/// Runs `selfsup generate`.
pub fn run_generate(args: GenerateArgs) -> Result<()> {
    let (loaded, _) = load(&args.run)?;
    let Some(gpt) = loaded.method.as_next_token() else {
        bail!(
            "{} is not a next-token (text-gpt) run; use fill-mask for masked-LM runs",
            args.run.display()
        );
    };
    let prompt = loaded
        .tokenizer
        .encode(&args.prompt)
        .context("the prompt has a character the model never saw")?;
    let sampling = Sampling {
        tokens: args.tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
    };
    let new = generate(gpt, &prompt, sampling, loaded.device);
    println!("{}{}", args.prompt, loaded.tokenizer.decode(&new)?);
    Ok(())
}

/// Runs `selfsup fill-mask`.
pub fn run_fill_mask(args: FillMaskArgs) -> Result<()> {
    let (loaded, config) = load(&args.run)?;
    if loaded.method.as_next_token().is_some()
        || !matches!(config.method, selfsup_text::TextMethodConfig::Mlm(_))
    {
        bail!("{} is not a masked-LM (text-mlm) run", args.run.display());
    }
    let mask_id = loaded.tokenizer.vocab_size() as u32;
    // Each placeholder is one token; the text between them is tokenised as usual.
    let mut ids = Vec::new();
    for (i, segment) in args.text.split(args.mask).enumerate() {
        if i > 0 {
            ids.push(mask_id);
        }
        let segment_ids = loaded
            .tokenizer
            .encode(segment)
            .with_context(|| format!("{segment:?} has a character the model never saw"))?;
        ids.extend(segment_ids);
    }
    if !ids.contains(&mask_id) {
        bail!("the text has no `{}` to fill in", args.mask);
    }
    let context = config.method.model().context as usize;
    if ids.len() > context {
        bail!(
            "the text has {} tokens; the model reads at most {context}",
            ids.len()
        );
    }
    let filled = fill_mask(
        loaded.method.as_ref(),
        &ids,
        mask_id,
        args.top_k,
        loaded.device,
    );
    let mut best = ids.clone();
    for (position, candidates) in &filled {
        best[*position] = candidates[0].0;
        let shown: Vec<String> = candidates
            .iter()
            .map(|(id, p)| {
                let c = loaded.tokenizer.decode(&[*id]).unwrap_or_default();
                format!("{c:?} {:.1} %", p * 100.0)
            })
            .collect();
        println!("position {position}: {}", shown.join(", "));
    }
    println!("{}", loaded.tokenizer.decode(&best)?);
    Ok(())
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

/// Runs `selfsup probe`: a linear probe on frozen passage features, trained
/// model against the same model at random initialisation.
pub fn run_probe(args: ProbeArgs) -> Result<()> {
    let (loaded, config) = load(&args.run)?;
    let texts = args
        .texts
        .iter()
        .map(|p| {
            selfsup_data::text::read_text(p).with_context(|| format!("reading {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let found = selfsup_text::probe::passages(&texts, &loaded.tokenizer, args.chars, args.passages);
    if found.ids.is_empty() {
        bail!("no passage could be tokenised");
    }
    let context = config.method.model().context as usize;
    let (train, test): (Vec<usize>, Vec<usize>) = (0..found.ids.len()).partition(|i| i % 5 != 0);
    let pick = |rows: &[usize]| -> (Vec<Vec<u32>>, Tensor) {
        let ids = rows.iter().map(|&i| found.ids[i].clone()).collect();
        let labels: Vec<i64> = rows.iter().map(|&i| found.labels[i]).collect();
        (ids, Tensor::from_slice(&labels))
    };
    let ((train_ids, train_y), (test_ids, test_y)) = (pick(&train), pick(&test));
    let score = |method: &dyn TextMethod| {
        let features = |ids: &[Vec<u32>]| {
            selfsup_text::probe::passage_features(method, ids, context, loaded.device)
        };
        selfsup_train::eval::linear_probe(
            &features(&train_ids),
            &train_y,
            &features(&test_ids),
            &test_y,
            texts.len() as i64,
            &config.eval.linear_probe,
        )
    };
    let trained = score(loaded.method.as_ref());
    tch::manual_seed(config.trainer.seed as i64);
    let fresh_vs = VarStore::new(loaded.device);
    let fresh = config
        .method
        .build(fresh_vs.root(), loaded.tokenizer.vocab_size());
    let random_init = score(fresh.as_ref());
    println!(
        "which text a {}-character passage comes from ({} texts; {} train / {} test passages, {} skipped for unknown characters)",
        args.chars,
        texts.len(),
        train.len(),
        test.len(),
        found.skipped
    );
    println!("  linear probe on frozen mean-pooled features:");
    println!("    {:<28} {:>6.2} %", "trained", trained * 100.0);
    println!(
        "    {:<28} {:>6.2} %",
        "same model, random init",
        random_init * 100.0
    );
    Ok(())
}

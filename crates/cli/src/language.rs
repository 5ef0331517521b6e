//! `selfsup generate` and `selfsup fill-mask`: use a trained text run from its
//! folder (config, `tokenizer.toml`, last checkpoint) without its corpus.

use crate::text_train::{parse_config, SavedTokenizer};
use anyhow::{bail, Context, Result};
use selfsup_data::text::CharTokenizer;
use selfsup_text::eval::{fill_mask, generate, Sampling};
use selfsup_text::{TextMethod, TextRunConfig};
use selfsup_train::checkpoint;
use selfsup_train::image_data::parse_device;
use selfsup_train::run_dir::RunDir;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::Device;

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
    tokenizer: CharTokenizer,
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
    let saved: SavedTokenizer = toml::from_str(
        &std::fs::read_to_string(&tokenizer_path)
            .with_context(|| format!("reading {}", tokenizer_path.display()))?,
    )
    .with_context(|| format!("parsing {}", tokenizer_path.display()))?;
    let tokenizer = CharTokenizer::fit(&saved.characters);
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
    let mut ids = Vec::new();
    for c in args.text.chars() {
        if c == args.mask {
            ids.push(mask_id);
        } else {
            let id = loaded
                .tokenizer
                .encode(&c.to_string())
                .with_context(|| format!("the text has {c:?}, which the model never saw"))?;
            ids.extend(id);
        }
    }
    if !ids.contains(&mask_id) {
        bail!("the text has no `{}` to fill in", args.mask);
    }
    let context = config.method.model().context as usize;
    if ids.len() > context {
        bail!(
            "the text has {} characters; the model reads at most {context}",
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

//! A trained text run opened from its folder (config, `tokenizer.toml`,
//! last checkpoint) without its corpus: what `selfsup generate`,
//! `fill-mask` and `probe` use.

use crate::eval::{fill_mask, generate, Sampling};
use crate::registry::{TextContext, TextMethod, TextRegistry, TextRunConfig};
use selfsup_data::tokenizer::{SavedTokenizer, Tokenizer};
use selfsup_train::check;
use selfsup_train::device::parse_device;
use selfsup_train::experiment::TrainedRun;
use selfsup_train::{Error, Result};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::Device;

/// A trained text model and what it needs to read and write text.
pub struct LoadedText {
    /// The model, with the last checkpoint's weights.
    pub method: Box<dyn TextMethod>,
    /// The run's tokenizer.
    pub tokenizer: Tokenizer,
    /// Where it computes.
    pub device: Device,
    /// The run's config.
    pub config: TextRunConfig,
    /// The run folder.
    pub path: PathBuf,
    vs: VarStore,
}

/// The outcome of fill-mask: each hidden position's candidates, and the text
/// with the first choices filled in.
#[derive(Debug, Clone)]
pub struct FilledMask {
    /// `(position, [(token text, probability)])`, most likely first.
    pub positions: Vec<(usize, Vec<(String, f64)>)>,
    /// The text with every hidden token replaced by its first choice.
    pub best: String,
}

fn run_error(path: &Path, message: String) -> Error {
    Error::Config {
        origin: path.display().to_string(),
        message,
    }
}

impl LoadedText {
    /// Opens the run at `path`.
    pub fn open(registry: &TextRegistry, path: &Path) -> Result<Self> {
        let run = TrainedRun::open(path)?;
        let config: TextRunConfig =
            registry.parse_run(&run.config_text, &run.config_origin, &[])?;
        let tokenizer = SavedTokenizer::read(&run.dir.file("tokenizer.toml"))?.load()?;
        let device = parse_device(&config.trainer.device)?;
        let vs = VarStore::new(device);
        let method = config.method.build(vs.root(), &Self::context(&tokenizer))?;
        run.restore_model(&vs)?;
        Ok(Self {
            method,
            tokenizer,
            device,
            config,
            path: path.to_path_buf(),
            vs,
        })
    }

    /// The model's variables (fine-tuning trains them).
    pub fn vs(&self) -> &VarStore {
        &self.vs
    }

    fn context(tokenizer: &Tokenizer) -> TextContext {
        TextContext {
            tokenizer_vocab: tokenizer.vocab_size(),
        }
    }

    /// The same model at its random initialisation (the run's seed), in its own var store.
    pub fn random_init(&self) -> Result<(VarStore, Box<dyn TextMethod>)> {
        tch::manual_seed(self.config.trainer.seed as i64);
        let vs = VarStore::new(self.device);
        let method = self
            .config
            .method
            .build(vs.root(), &Self::context(&self.tokenizer))?;
        Ok((vs, method))
    }

    /// Continues `prompt`; an error for a run that is not next-token, or a
    /// prompt with text the tokenizer cannot encode.
    pub fn generate(&self, prompt: &str, sampling: Sampling) -> Result<String> {
        let Some(gpt) = crate::methods::as_next_token(self.method.as_ref()) else {
            let message =
                "not a next-token (text-gpt) run; use fill-mask for masked-LM runs".to_string();
            return Err(run_error(&self.path, message));
        };
        let ids = self
            .tokenizer
            .encode(prompt)
            .map_err(|e| check::invalid("--prompt", format!("the model cannot read it: {e}")))?;
        let new = generate(gpt, &ids, sampling, self.device)?;
        Ok(format!("{prompt}{}", self.tokenizer.decode(&new)?))
    }

    /// Fills in each `mask` character of `text` (one token each) with the
    /// `top_k` most likely tokens.
    pub fn fill_mask(&self, text: &str, mask: char, top_k: i64) -> Result<FilledMask> {
        let Some(mask_id) = self.method.mask_id() else {
            return Err(run_error(
                &self.path,
                "not a masked-LM (text-mlm) run".into(),
            ));
        };
        let mut ids = Vec::new();
        for (i, segment) in text.split(mask).enumerate() {
            if i > 0 {
                ids.push(mask_id);
            }
            let segment_ids = self.tokenizer.encode(segment).map_err(|e| {
                check::invalid(
                    "--text",
                    format!("{segment:?}: the model cannot read it: {e}"),
                )
            })?;
            ids.extend(segment_ids);
        }
        if !ids.contains(&mask_id) {
            return Err(check::invalid(
                "--text",
                format!("it has no `{mask}` to fill in"),
            ));
        }
        let context = self.method.text_tokens();
        if ids.len() > context {
            return Err(check::invalid(
                "--text",
                format!("{} tokens; the model reads at most {context}", ids.len()),
            ));
        }
        let top_k = top_k.clamp(1, self.tokenizer.vocab_size() as i64);
        let filled = fill_mask(self.method.as_ref(), &ids, mask_id, top_k, self.device);
        let mut best = ids.clone();
        let mut positions = Vec::new();
        for (position, candidates) in &filled {
            best[*position] = candidates[0].0;
            let shown = candidates
                .iter()
                .map(|(id, p)| {
                    let text = self
                        .tokenizer
                        .decode(&[*id])
                        .unwrap_or_else(|_| "[MASK]".into());
                    (text, *p)
                })
                .collect();
            positions.push((*position, shown));
        }
        Ok(FilledMask {
            positions,
            best: self.tokenizer.decode(&best)?,
        })
    }
}

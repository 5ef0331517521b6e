//! What a trained text model shows at the end of a run: a sample after a
//! validation prompt (next-token), or hidden tokens filled in (masked-LM).

use crate::eval::{fill_mask, generate, Sampling};
use crate::registry::TextMethod;
use crate::TokenCorpus;
use selfsup_train::Result;
use tch::Device;

/// The demonstration of a run.
#[derive(Debug, Clone)]
pub enum Demo {
    /// A validation prompt and the model's continuation (temperature 0.8, top-k 40).
    Sample {
        /// Prompt and continuation.
        text: String,
    },
    /// Every 9th token of a validation window hidden, then filled in.
    FillMask(MaskedChoice),
}

/// A fill-mask demonstration.
#[derive(Debug, Clone)]
pub struct MaskedChoice {
    /// The text with `_` at each hidden token.
    pub masked: String,
    /// The text with the model's first choices.
    pub filled: String,
    /// The original text.
    pub truth: String,
    /// Hidden tokens the model got right.
    pub right: usize,
    /// Hidden tokens.
    pub hidden: usize,
}

/// Shows what `method` learned on `corpus`'s validation text.
pub fn demonstrate(
    method: &dyn TextMethod,
    corpus: &TokenCorpus,
    seed: u64,
    device: Device,
) -> Result<Demo> {
    let validation = corpus.validation.to_vec(0..corpus.validation.len().min(64));
    let tokenizer = &corpus.tokenizer;
    if let Some(gpt) = method.as_next_token() {
        let prompt = &validation[..validation.len().min(32)];
        let sampling = Sampling {
            tokens: 300,
            temperature: 0.8,
            top_k: 40,
            seed,
        };
        let new = generate(gpt, prompt, sampling, device)?;
        let text = format!("{}{}", tokenizer.decode(prompt)?, tokenizer.decode(&new)?);
        return Ok(Demo::Sample { text });
    }
    let Some(mask_id) = method.mask_id() else {
        return Ok(Demo::Sample {
            text: String::new(),
        });
    };
    let mut ids = validation[..validation.len().min(method.context())].to_vec();
    let original = ids.clone();
    let hidden: Vec<usize> = (5..ids.len()).step_by(9).collect();
    for &i in &hidden {
        ids[i] = mask_id;
    }
    let filled = fill_mask(method, &ids, mask_id, 1, device);
    let mut guess = ids.clone();
    let mut right = 0;
    for (position, candidates) in &filled {
        guess[*position] = candidates[0].0;
        right += usize::from(candidates[0].0 == original[*position]);
    }
    let masked = original
        .iter()
        .enumerate()
        .map(|(i, &t)| match hidden.contains(&i) {
            true => Ok("_".to_string()),
            false => tokenizer.decode(&[t]),
        })
        .collect::<selfsup_data::Result<String>>()?;
    Ok(Demo::FillMask(MaskedChoice {
        masked,
        filled: tokenizer.decode(&guess)?,
        truth: tokenizer.decode(&original)?,
        right,
        hidden: hidden.len(),
    }))
}

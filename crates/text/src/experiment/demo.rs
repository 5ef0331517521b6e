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
    /// Up to seven word tokens of a validation passage hidden, then filled in.
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
    /// Each hidden token's text and the model's three first choices with
    /// their probabilities.
    pub choices: Vec<(String, Vec<(String, f64)>)>,
}

/// Shows what `method` learned on `corpus`'s validation text.
pub fn demonstrate(
    method: &dyn TextMethod,
    corpus: &TokenCorpus,
    seed: u64,
    device: Device,
) -> Result<Demo> {
    let validation = corpus
        .validation
        .to_vec(0..corpus.validation.len().min(64))?;
    let tokenizer = &corpus.tokenizer;
    if let Some(gpt) = crate::methods::as_next_token(method) {
        let prompt = &validation[..validation.len().min(32)];
        let sampling = Sampling {
            tokens: 300,
            temperature: 0.8,
            top_k: 40,
            seed,
            // nanoGPT's sliding window, so the sample reads the full context.
            kv_cache: false,
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
    let original = demo_text(corpus, method.text_tokens().min(DEMO_TOKENS))?;
    let hidden = hidden_positions(&original, tokenizer)?;
    let mut ids = original.clone();
    for &i in &hidden {
        ids[i] = mask_id;
    }
    let filled = fill_mask(method, &ids, mask_id, 3, device);
    let mut guess = ids.clone();
    let (mut right, mut choices) = (0, Vec::new());
    for (position, candidates) in &filled {
        guess[*position] = candidates[0].0;
        right += usize::from(candidates[0].0 == original[*position]);
        let shown = candidates
            .iter()
            .map(|(id, p)| Ok((tokenizer.decode(&[*id])?, *p)))
            .collect::<selfsup_data::Result<Vec<_>>>()?;
        choices.push((tokenizer.decode(&[original[*position]])?, shown));
    }
    let masked = original
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let text = tokenizer.decode(&[t])?;
            Ok(match hidden.contains(&i) {
                true if text.starts_with(char::is_whitespace) => " _".to_string(),
                true => "_".to_string(),
                false => text,
            })
        })
        .collect::<selfsup_data::Result<String>>()?;
    Ok(Demo::FillMask(MaskedChoice {
        masked,
        filled: tokenizer.decode(&guess)?,
        truth: tokenizer.decode(&original)?,
        right,
        hidden: hidden.len(),
        choices,
    }))
}

/// Tokens of the demonstration text (at most).
const DEMO_TOKENS: usize = 64;

/// Tokens hidden in the demonstration (at most).
const DEMO_HIDDEN: usize = 7;

/// The validation text from its second sentence on (the first is cut off),
/// re-tokenised, at most `length` tokens.
fn demo_text(corpus: &TokenCorpus, length: usize) -> Result<Vec<u32>> {
    let tokenizer = &corpus.tokenizer;
    let start = corpus
        .validation
        .to_vec(0..corpus.validation.len().min(length * 8))?;
    let text = tokenizer.decode(&start)?;
    let sentences = selfsup_data::documents::sentences(&text);
    let from_second = match sentences.len() {
        0 | 1 => text,
        _ => sentences[1..].concat(),
    };
    let mut ids = tokenizer.encode(&from_second)?;
    ids.truncate(length);
    Ok(ids)
}

/// Up to [`DEMO_HIDDEN`] positions, evenly spread over the tokens that are
/// most of a word (the longest run of letters among the tokens, at most
/// three): whole words for a BPE tokenizer, letters for a character one.
fn hidden_positions(
    ids: &[u32],
    tokenizer: &selfsup_data::tokenizer::Tokenizer,
) -> Result<Vec<usize>> {
    let letters = ids
        .iter()
        .map(|&t| {
            Ok(tokenizer
                .decode(&[t])?
                .chars()
                .filter(|c| c.is_alphabetic())
                .count())
        })
        .collect::<selfsup_data::Result<Vec<usize>>>()?;
    let wanted = letters.iter().copied().max().unwrap_or(0).clamp(1, 3);
    let candidates: Vec<usize> = (1..ids.len()).filter(|&i| letters[i] >= wanted).collect();
    let step = (candidates.len() / DEMO_HIDDEN).max(1);
    Ok(candidates
        .into_iter()
        .step_by(step)
        .take(DEMO_HIDDEN)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfsup_data::text::CharTokenizer;
    use selfsup_data::tokenizer::Tokenizer;

    #[test]
    fn the_demo_hides_word_tokens_spread_over_the_text() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/tests/fixtures/hf/bpe.json");
        let bpe = selfsup_data::hf_tokenizer::HfTokenizer::load(&fixtures).unwrap();
        let tokenizer = Tokenizer::HuggingFace(Box::new(bpe));
        let text =
            "Call me Ishmael. Some years ago, never mind how long precisely, having little money.";
        let ids = tokenizer.encode(text).unwrap();
        let hidden = hidden_positions(&ids, &tokenizer).unwrap();
        assert!(!hidden.is_empty() && hidden.len() <= DEMO_HIDDEN);
        for &i in &hidden {
            let token = tokenizer.decode(&ids[i..=i]).unwrap();
            assert!(
                token.chars().filter(|c| c.is_alphabetic()).count() >= 3,
                "{token:?}"
            );
        }
        let chars = Tokenizer::Char(CharTokenizer::fit(text));
        let ids = chars.encode(text).unwrap();
        let hidden = hidden_positions(&ids, &chars).unwrap();
        assert_eq!(
            hidden.len(),
            DEMO_HIDDEN,
            "letters, for a character tokenizer"
        );
        assert!(
            hidden.windows(2).all(|w| w[1] - w[0] >= 5),
            "spread: {hidden:?}"
        );
    }

    #[test]
    fn the_demo_text_starts_at_a_sentence() {
        let text = "ago. Call me Ishmael. Some years ago I went to sea.";
        let corpus = TokenCorpus::from_text_chars(&format!("{text}{text}"), 0.5).unwrap();
        let ids = demo_text(&corpus, 30).unwrap();
        assert_eq!(
            corpus.tokenizer.decode(&ids).unwrap(),
            "Call me Ishmael. Some years ag"
        );
    }
}

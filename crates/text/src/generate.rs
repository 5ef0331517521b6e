//! Sampling from a next-token model (temperature, top-k), with or without a
//! key/value cache. Without it every new token re-reads the last `context`
//! tokens, as nanoGPT's `generate`; with it each new token costs one
//! position. Within the context the two give the same tokens; once the
//! context is full the cached path starts a new window from the last half
//! of the text (positions must restart), the uncached one slides by one.

use crate::methods::next_token::NextToken;
use crate::transformer::KvCache;
use tch::{Device, Kind, Tensor};

/// Sampling settings.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// New tokens to draw.
    pub tokens: usize,
    /// Softmax temperature (1: the model's distribution; lower: more conservative).
    pub temperature: f64,
    /// Draw only from the `top_k` most likely tokens (0: all).
    pub top_k: i64,
    /// Seeds the draws.
    pub seed: u64,
    /// Keep keys and values of earlier tokens instead of recomputing them.
    pub kv_cache: bool,
}

/// Continues `prompt` (token ids) by `sampling.tokens` tokens. A model
/// whose outputs are not finite (a diverged run) is an error, not a panic.
pub fn generate(
    model: &NextToken,
    prompt: &[u32],
    sampling: Sampling,
    device: Device,
) -> selfsup_train::Result<Vec<u32>> {
    let mut ids: Vec<u32> = prompt.to_vec();
    let context = model.context() as usize;
    tch::manual_seed(sampling.seed as i64);
    let _no_grad = tch::no_grad_guard();
    // The cache holds the keys and values of `ids[start..start + cache.len()]`.
    let (mut cache, mut start) = (KvCache::default(), 0);
    let as_input = |tokens: &[u32]| {
        let tokens: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        Tensor::from_slice(&tokens).view([1, -1]).to_device(device)
    };
    for _ in 0..sampling.tokens {
        let logits = if sampling.kv_cache {
            // Feed what the cache lacks; a window past the context starts
            // anew from the last half of it.
            if cache.is_empty() || ids.len() - start > context {
                cache = KvCache::default();
                start = match ids.len() > context {
                    true => ids.len() - (context / 2).max(1),
                    false => 0,
                };
            }
            let fresh = &ids[start + cache.len()..];
            let hidden = model
                .transformer()
                .hidden_cached(&as_input(fresh), &mut cache);
            model.transformer().tied_logits(&hidden)
        } else {
            let start = ids.len().saturating_sub(context);
            model.logits(&as_input(&ids[start..]), false)
        };
        let logits = logits.get(0).get(-1) / sampling.temperature.max(1e-6);
        let probabilities = top_k(logits, sampling.top_k).softmax(0, Kind::Float);
        if probabilities.isfinite().all().int64_value(&[]) == 0 {
            let message =
                "the model's next-token probabilities are not finite: did its training diverge?";
            return Err(selfsup_train::check::invalid("generate", message));
        }
        ids.push(probabilities.f_multinomial(1, false)?.int64_value(&[0]) as u32);
    }
    Ok(ids[prompt.len()..].to_vec())
}

/// `logits` with all but the `k` largest set to −∞ (`k` of 0: all kept).
fn top_k(logits: Tensor, k: i64) -> Tensor {
    let vocab = logits.size()[0];
    if k <= 0 || k >= vocab {
        return logits;
    }
    let (top, _) = logits.topk(k, 0, true, true);
    let threshold = top.get(k - 1);
    logits.where_self(
        &logits.ge_tensor(&threshold),
        &Tensor::from(f64::NEG_INFINITY).to_kind(logits.kind()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::next_token::NextTokenConfig;
    use tch::nn::VarStore;

    fn model(vs: &VarStore) -> NextToken {
        let config: NextTokenConfig =
            toml::from_str("[model]\ncontext = 16\ndim = 32\ndepth = 2\nheads = 2\n").unwrap();
        NextToken::new(vs.root(), &config, 11).unwrap()
    }

    #[test]
    fn the_cache_gives_the_same_tokens_within_the_context() {
        let _rng = selfsup_train::testing::lock_torch_rng();
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let gpt = model(&vs);
        let sampling = |kv_cache| Sampling {
            tokens: 12,
            temperature: 1.0,
            top_k: 0,
            seed: 5,
            kv_cache,
        };
        let prompt = [1, 2, 3, 4];
        let plain = generate(&gpt, &prompt, sampling(false), Device::Cpu).unwrap();
        let cached = generate(&gpt, &prompt, sampling(true), Device::Cpu).unwrap();
        assert_eq!(plain, cached);
        // Past the context the cached path restarts its window and goes on.
        let long = Sampling {
            tokens: 40,
            ..sampling(true)
        };
        assert_eq!(
            generate(&gpt, &prompt, long, Device::Cpu).unwrap().len(),
            40
        );
        let long_prompt: Vec<u32> = (0..30).map(|i| i % 11).collect();
        assert_eq!(
            generate(&gpt, &long_prompt, long, Device::Cpu)
                .unwrap()
                .len(),
            40
        );
    }
}

//! The transformer both text methods share: token embeddings, learned or
//! sinusoidal positions, pre-LayerNorm blocks (core's `TransformerBlock`,
//! attention through libtorch's `scaled_dot_product_attention`), a final
//! LayerNorm, and the output projection tied to the token embeddings.
//! Causal for GPT-style next-token prediction, bidirectional for masked-LM.
//! Initialised as GPT-2 / nanoGPT: N(0, 0.02), residual projections scaled
//! by 1/√(2·depth).

use selfsup_core::attention_mask::alibi_slopes;
use selfsup_core::blocks::{Attention, AttentionMask, TransformerBlock};

mod config;

pub use config::{sinusoids, Positions, TransformerConfig};
use selfsup_train::{check, Result};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Keys and values of the tokens decoded so far, per block, so that each
/// new token costs one position's work instead of the whole window's.
#[derive(Debug, Default)]
pub struct KvCache {
    blocks: Vec<Option<(Tensor, Tensor)>>,
    length: i64,
}

impl KvCache {
    /// Tokens in the cache.
    pub fn len(&self) -> usize {
        self.length as usize
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }
}

/// The network, up to the final LayerNorm.
#[derive(Debug)]
pub struct Transformer {
    /// Its shape.
    pub config: TransformerConfig,
    token_embed: nn::Embedding,
    learned_positions: Option<nn::Embedding>,
    fixed_positions: Option<Tensor>,
    /// ALiBi's per-head slopes `[heads]`, for `Positions::Alibi`.
    alibi: Option<Tensor>,
    segment_embed: Option<nn::Embedding>,
    blocks: Vec<TransformerBlock>,
    norm: nn::LayerNorm,
    attention: Attention,
}

/// Embeddings drawn from N(0, 0.02), as GPT-2 and BERT draw theirs.
fn normal_embedding() -> nn::EmbeddingConfig {
    nn::EmbeddingConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        ..Default::default()
    }
}

impl Transformer {
    /// Builds it under `path` for `vocab_size` tokens, causal for
    /// next-token models; the config is checked first (as `method.model`).
    pub fn new(
        path: nn::Path,
        config: &TransformerConfig,
        vocab_size: i64,
        attention: Attention,
    ) -> Result<Self> {
        config.validate("method.model")?;
        check::size("data (the tokenizer's vocabulary)", vocab_size)?;
        let normal = normal_embedding();
        let token_embed = nn::embedding(&path / "token_embed", vocab_size, config.dim, normal);
        let (learned_positions, fixed_positions) = match config.positions {
            Positions::Learned => (
                Some(nn::embedding(
                    &path / "position_embed",
                    config.context,
                    config.dim,
                    normal,
                )),
                None,
            ),
            Positions::Sinusoidal => (
                None,
                Some(sinusoids(config.context, config.dim, path.device())),
            ),
            Positions::Alibi => (None, None),
        };
        let alibi = (config.positions == Positions::Alibi).then(|| {
            let slopes: Vec<f32> = alibi_slopes(config.heads)
                .into_iter()
                .map(|m| m as f32)
                .collect();
            Tensor::from_slice(&slopes).to_device(path.device())
        });
        let blocks = (0..config.depth)
            .map(|i| {
                TransformerBlock::gpt2(
                    &path / "blocks" / i,
                    config.dim,
                    config.heads,
                    config.mlp_ratio,
                    config.depth,
                )
                .with_dropout(config.dropout)
            })
            .collect();
        let norm = nn::layer_norm(&path / "norm", vec![config.dim], Default::default());
        Ok(Self {
            config: config.clone(),
            token_embed,
            learned_positions,
            fixed_positions,
            alibi,
            segment_embed: None,
            blocks,
            norm,
            attention,
        })
    }

    /// Adds a learned embedding per segment (BERT's token types: A and B
    /// of a sentence pair), under `path`, N(0, 0.02) as the others.
    pub fn with_segments(mut self, path: nn::Path, segments: i64) -> Self {
        let embed = nn::embedding(path, segments, self.config.dim, normal_embedding());
        self.segment_embed = Some(embed);
        self
    }

    /// `[batch, tokens]` int64 ids → `[batch, tokens, dim]` final hidden states.
    pub fn hidden(&self, ids: &Tensor, train: bool) -> Tensor {
        self.hidden_masked(ids, None, train)
    }

    /// Mean of the final hidden states over the tokens, `[batch, dim]`: the
    /// features every text method gives the evaluation protocols.
    pub fn mean_features(&self, ids: &Tensor, train: bool) -> Tensor {
        self.hidden(ids, train).mean_dim(1, false, Kind::Float)
    }

    /// Sum of the final hidden states over the kept tokens, `[batch, dim]`,
    /// and the number kept, `[batch]`: `keep` `[batch, tokens]` is false at
    /// (right) padding, which the tokens do not attend to either.
    pub fn pooled_sum(&self, ids: &Tensor, keep: &Tensor) -> (Tensor, Tensor) {
        let hidden = self.hidden_masked(ids, Some(keep), false);
        let weights = keep.to_kind(Kind::Float).unsqueeze(-1);
        (
            (hidden * &weights).sum_dim_intlist(1, false, Kind::Float),
            weights
                .sum_dim_intlist(1, false, Kind::Float)
                .squeeze_dim(-1),
        )
    }

    /// As [`Transformer::hidden`], with a padding mask (see [`Transformer::pooled_sum`]).
    pub fn hidden_masked(&self, ids: &Tensor, keep: Option<&Tensor>, train: bool) -> Tensor {
        self.encode(ids, None, keep, train)
    }

    /// The final hidden states of `ids` with `segments` (`[batch, tokens]`
    /// int64 segment ids, for a model built [`Transformer::with_segments`];
    /// `None`: all segment 0) and the padding mask `keep`.
    pub fn encode(
        &self,
        ids: &Tensor,
        segments: Option<&Tensor>,
        keep: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let mut x = self.embed(ids, 0);
        if let Some(embed) = &self.segment_embed {
            x = match segments {
                Some(segments) => x + embed.forward(segments),
                None => x + embed.ws.get(0),
            };
        }
        let mut x = x.dropout(self.config.dropout, train);
        let tokens = ids.size()[1];
        let mask = AttentionMask::new(
            self.attention,
            keep,
            self.alibi.as_ref(),
            tokens,
            ids.device(),
        );
        for block in &self.blocks {
            x = block.forward_masked(&x, &mask, train);
        }
        x.apply(&self.norm)
    }

    /// Token plus position embeddings of `ids` `[batch, tokens]` sitting at
    /// positions `start..`; they must end within the context.
    fn embed(&self, ids: &Tensor, start: i64) -> Tensor {
        let end = start + ids.size()[1];
        assert!(
            end <= self.config.context,
            "{end} tokens exceed the context of {}",
            self.config.context
        );
        let tokens = self.token_embed.forward(ids);
        match (&self.learned_positions, &self.fixed_positions) {
            (Some(embed), _) => {
                tokens
                    + embed.forward(&Tensor::arange_start(
                        start,
                        end,
                        (Kind::Int64, ids.device()),
                    ))
            }
            (None, Some(fixed)) => tokens + fixed.narrow(0, start, end - start),
            // ALiBi: positions enter through the attention mask.
            (None, None) => tokens,
        }
    }

    /// Hidden states of `ids` `[batch, new]`, the tokens that follow the
    /// `cache.len()` already decoded (causal models only): their keys and
    /// values join the cache, the earlier ones are not recomputed. The cache
    /// and the new tokens together must fit in the context.
    pub fn hidden_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Tensor {
        let mut x = self.embed(ids, cache.length);
        let new = ids.size()[1];
        let mask =
            AttentionMask::cached(new, cache.length + new, self.alibi.as_ref(), ids.device());
        cache.blocks.resize_with(self.blocks.len(), || None);
        for (block, kv) in self.blocks.iter().zip(cache.blocks.iter_mut()) {
            x = block.forward_cached(&x, kv, &mask);
        }
        cache.length += ids.size()[1];
        x.apply(&self.norm)
    }

    /// Hidden states → `[batch, tokens, vocab]` logits through the tied token embeddings.
    pub fn tied_logits(&self, hidden: &Tensor) -> Tensor {
        hidden.matmul(&self.token_embed.ws.tr())
    }

    /// The token embedding matrix `[vocab, dim]`.
    pub fn token_embeddings(&self) -> &Tensor {
        &self.token_embed.ws
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn config(positions: Positions) -> TransformerConfig {
        TransformerConfig {
            context: 8,
            dim: 16,
            depth: 2,
            heads: 2,
            mlp_ratio: 4.0,
            dropout: 0.0,
            positions,
        }
    }

    #[test]
    fn causal_outputs_ignore_later_tokens_and_logits_are_tied() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Transformer::new(
            vs.root(),
            &config(Positions::Learned),
            11,
            Attention::Causal,
        )
        .unwrap();
        let ids = Tensor::from_slice(&[1i64, 2, 3, 4, 5]).view([1, 5]);
        let changed = Tensor::from_slice(&[1i64, 2, 3, 4, 9]).view([1, 5]);
        let (a, b) = (model.hidden(&ids, false), model.hidden(&changed, false));
        assert!(a
            .narrow(1, 0, 4)
            .allclose(&b.narrow(1, 0, 4), 1e-6, 1e-6, false));
        let effect = (a.narrow(1, 4, 1) - b.narrow(1, 4, 1))
            .abs()
            .max()
            .double_value(&[]);
        assert!(effect > 1e-3, "the changed token itself differs: {effect}");
        let logits = model.tied_logits(&a);
        assert_eq!(logits.size(), vec![1, 5, 11]);
        let names = vs.variables();
        assert!(
            !names.keys().any(|n| n.contains("head")),
            "no separate output matrix: {names:?}"
        );
    }

    #[test]
    fn bidirectional_outputs_see_every_token() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Transformer::new(
            vs.root(),
            &config(Positions::Sinusoidal),
            11,
            Attention::Bidirectional,
        )
        .unwrap();
        let ids = Tensor::from_slice(&[1i64, 2, 3, 4]).view([1, 4]);
        let changed = Tensor::from_slice(&[1i64, 2, 3, 9]).view([1, 4]);
        let (a, b) = (model.hidden(&ids, false), model.hidden(&changed, false));
        // GPT-2's small init keeps attention near uniform: the effect is small but there.
        let effect = (a.narrow(1, 0, 1) - b.narrow(1, 0, 1))
            .abs()
            .max()
            .double_value(&[]);
        assert!(effect > 1e-6, "{effect}");
        assert!(!vs.variables().contains_key("position_embed.weight"));
    }

    #[test]
    fn alibi_positions_need_no_embedding_and_still_see_order() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Transformer::new(
            vs.root(),
            &config(Positions::Alibi),
            11,
            Attention::Bidirectional,
        )
        .unwrap();
        assert!(!vs.variables().keys().any(|n| n.contains("position")));
        // Without any position embedding, token 1 still reads its
        // neighbour more than a far token: swapping which is near changes it.
        let ids = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6]).view([1, 6]);
        let swapped = Tensor::from_slice(&[1i64, 6, 3, 4, 5, 2]).view([1, 6]);
        let (a, b) = (model.hidden(&ids, false), model.hidden(&swapped, false));
        let effect = (a.get(0).get(0) - b.get(0).get(0))
            .abs()
            .max()
            .double_value(&[]);
        assert!(effect > 1e-6, "{effect}");
    }

    #[test]
    fn gpt2_init_scales_the_residual_projections() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut big = config(Positions::Learned);
        big.dim = 256;
        big.depth = 8;
        big.heads = 4;
        let _ = Transformer::new(vs.root(), &big, 64, Attention::Causal).unwrap();
        let std = |name: &str| vs.variables()[name].std(true).double_value(&[]);
        assert!((std("blocks.0.attn.qkv.weight") - 0.02).abs() < 0.001);
        assert!((std("blocks.0.mlp.fc2.weight") - 0.02 / 4.0).abs() < 0.0005);
        assert!((std("token_embed.weight") - 0.02).abs() < 0.002);
        big.heads = 3;
        let error = Transformer::new(vs.root() / "bad", &big, 64, Attention::Causal)
            .unwrap_err()
            .to_string();
        assert!(error.contains("method.model.dim"), "{error}");
    }
}

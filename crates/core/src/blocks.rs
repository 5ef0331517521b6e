//! Building blocks shared by the vision and text backbones (which may not
//! depend on each other): the pre-LayerNorm transformer block, Xavier
//! linears and PyTorch-initialised batch norm.

pub use crate::attention_mask::{Attention, AttentionMask};
use tch::nn::{self, Module};
use tch::Tensor;

/// `nn::Init` for Xavier/Glorot uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`,
/// the initialisation of ViT and MAE linear layers.
pub fn xavier_uniform(fan_in: i64, fan_out: i64) -> nn::Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// A linear layer with Xavier-uniform weights and zero bias.
pub fn xavier_linear(path: nn::Path, input: i64, output: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: xavier_uniform(input, output),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(path, input, output, config)
}

/// A linear layer with weights from N(0, 0.02) and zero bias: the
/// initialisation of BERT's and GPT-2's heads (and DINO's).
pub fn normal_linear(path: nn::Path, input: i64, output: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(path, input, output, config)
}

/// Batch norm initialised as PyTorch's (weight 1, bias 0). tch's default
/// draws the weight from U(0, 1), which changes what a network computes at
/// initialisation and how it trains; every batch norm here uses this instead.
pub fn batch_norm_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    }
}

/// Pre-LN transformer block: `x + attn(ln(x))`, then `x + mlp(ln(x))`, with a
/// GELU MLP. Attention goes through libtorch's fused `scaled_dot_product_attention`.
#[derive(Debug)]
pub struct TransformerBlock {
    norm1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
    dropout: f64,
}

impl TransformerBlock {
    /// A block of width `dim` with `heads` heads and an MLP of `mlp_ratio * dim`.
    /// Variable names follow timm (`norm1`, `attn.qkv`, `attn.proj`, `mlp.fc1`, ...).
    /// Linears are Xavier-initialised with zero biases, as MAE and timm's ViTs.
    pub fn new(path: nn::Path, dim: i64, heads: i64, mlp_ratio: f64) -> Self {
        Self::build(path, dim, heads, mlp_ratio, None)
    }

    /// As [`TransformerBlock::new`] with GPT-2's initialisation: weights from
    /// N(0, 0.02), the two projections back into the residual stream from
    /// N(0, 0.02 / √(2 · depth)), zero biases (nanoGPT does the same).
    pub fn gpt2(path: nn::Path, dim: i64, heads: i64, mlp_ratio: f64, depth: i64) -> Self {
        Self::build(path, dim, heads, mlp_ratio, Some(depth))
    }

    /// Drops attention weights and residual-branch outputs with probability
    /// `p` in training passes ([`TransformerBlock::forward_t`] with `train`).
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    fn build(
        path: nn::Path,
        dim: i64,
        heads: i64,
        mlp_ratio: f64,
        gpt2_depth: Option<i64>,
    ) -> Self {
        assert!(
            dim % heads == 0,
            "dim {dim} is not divisible by {heads} heads"
        );
        let hidden = (dim as f64 * mlp_ratio) as i64;
        let ln = |name: &str| {
            nn::layer_norm(
                &path / name,
                vec![dim],
                nn::LayerNormConfig {
                    eps: 1e-6,
                    ..Default::default()
                },
            )
        };
        let linear = |path: nn::Path, input: i64, output: i64, residual: bool| match gpt2_depth {
            None => xavier_linear(path, input, output),
            Some(depth) => {
                let scale = if residual {
                    (2.0 * depth as f64).sqrt()
                } else {
                    1.0
                };
                let config = nn::LinearConfig {
                    ws_init: nn::Init::Randn {
                        mean: 0.0,
                        stdev: 0.02 / scale,
                    },
                    bs_init: Some(nn::Init::Const(0.0)),
                    bias: true,
                };
                nn::linear(path, input, output, config)
            }
        };
        Self {
            norm1: ln("norm1"),
            qkv: linear(&path / "attn" / "qkv", dim, 3 * dim, false),
            proj: linear(&path / "attn" / "proj", dim, dim, true),
            norm2: ln("norm2"),
            fc1: linear(&path / "mlp" / "fc1", dim, hidden, false),
            fc2: linear(&path / "mlp" / "fc2", hidden, dim, true),
            heads,
            dropout: 0.0,
        }
    }

    /// `[batch, tokens, dim]` → same shape, without dropout.
    pub fn forward(&self, x: &Tensor, attention: Attention) -> Tensor {
        self.forward_t(x, attention, false)
    }

    /// As [`TransformerBlock::forward`], with dropout when `train`.
    pub fn forward_t(&self, x: &Tensor, attention: Attention, train: bool) -> Tensor {
        let mask = AttentionMask::new(attention, None, None, x.size()[1], x.device());
        self.forward_masked(x, &mask, train)
    }

    /// As [`TransformerBlock::forward_t`], with an attention pattern built
    /// once for all blocks ([`AttentionMask`]: padding, ALiBi biases).
    pub fn forward_masked(&self, x: &Tensor, mask: &AttentionMask, train: bool) -> Tensor {
        let p = if train { self.dropout } else { 0.0 };
        let (q, k, v) = self.project(x);
        let (mask, causal) = mask.sdpa();
        let attended =
            Tensor::scaled_dot_product_attention(&q, &k, &v, mask, p, causal, None, false);
        self.finish(x, &attended, p, train)
    }

    /// Causal decoding with a key/value cache: `x` `[batch, new, dim]` are
    /// the newest tokens, `cache` the keys and values of every earlier one
    /// (`None` before the first call), which this appends to; `mask` is
    /// [`AttentionMask::cached`] for them. The output equals
    /// [`TransformerBlock::forward`]'s on the whole sequence, at the new
    /// positions, without recomputing the earlier ones.
    pub fn forward_cached(
        &self,
        x: &Tensor,
        cache: &mut Option<(Tensor, Tensor)>,
        mask: &AttentionMask,
    ) -> Tensor {
        let (q, k, v) = self.project(x);
        let (k, v) = match cache.take() {
            Some((past_k, past_v)) => (Tensor::cat(&[past_k, k], 2), Tensor::cat(&[past_v, v], 2)),
            None => (k, v),
        };
        let (mask, causal) = mask.sdpa();
        let attended =
            Tensor::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, causal, None, false);
        *cache = Some((k, v));
        self.finish(x, &attended, 0.0, false)
    }

    /// Queries, keys and values of `x`, each `[batch, heads, tokens, head_dim]`.
    fn project(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (b, t, d) = x.size3().expect("[batch, tokens, dim]");
        let qkv = self
            .qkv
            .forward(&x.apply(&self.norm1))
            .view([b, t, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        (qkv.get(0), qkv.get(1), qkv.get(2))
    }

    /// The residual additions after attention: projection, then the MLP.
    fn finish(&self, x: &Tensor, attended: &Tensor, p: f64, train: bool) -> Tensor {
        let (b, t, d) = x.size3().expect("[batch, tokens, dim]");
        let attended = attended.transpose(1, 2).reshape([b, t, d]);
        let x = x + self.proj.forward(&attended).dropout(p, train);
        let mlp = self
            .fc2
            .forward(&self.fc1.forward(&x.apply(&self.norm2)).gelu("none"));
        x + mlp.dropout(p, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn attention_matches_the_explicit_softmax_formula() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = TransformerBlock::new(vs.root(), 8, 2, 2.0);
        let x = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        // Recompute the attention branch by hand.
        let h = x.apply(&block.norm1);
        let qkv = block
            .qkv
            .forward(&h)
            .view([2, 5, 3, 2, 4])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let weights = (q.matmul(&k.transpose(-2, -1)) / 2.0).softmax(-1, Kind::Float);
        let attended = weights.matmul(&v).transpose(1, 2).reshape([2, 5, 8]);
        let y = &x + block.proj.forward(&attended);
        let expected = &y
            + block
                .fc2
                .forward(&block.fc1.forward(&y.apply(&block.norm2)).gelu("none"));
        let got = block.forward(&x, Attention::Bidirectional);
        assert!(got.allclose(&expected, 1e-5, 1e-5, false));
    }

    #[test]
    fn cached_decoding_equals_the_whole_causal_pass() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = TransformerBlock::new(vs.root(), 8, 2, 2.0);
        let x = Tensor::randn([2, 7, 8], (Kind::Float, Device::Cpu));
        let slopes = Tensor::from_slice(&[0.5f32, 0.25]);
        for alibi in [None, Some(&slopes)] {
            let whole_mask = AttentionMask::new(Attention::Causal, None, alibi, 7, Device::Cpu);
            let whole = block.forward_masked(&x, &whole_mask, false);
            let mut cache = None;
            // A prompt of 3, one token, then 3 at once after a cache.
            let parts: Vec<Tensor> = [(0, 3), (3, 1), (4, 3)]
                .iter()
                .map(|&(start, len)| {
                    let mask = AttentionMask::cached(len, start + len, alibi, Device::Cpu);
                    block.forward_cached(&x.narrow(1, start, len), &mut cache, &mask)
                })
                .collect();
            assert!(
                Tensor::cat(&parts, 1).allclose(&whole, 1e-5, 1e-5, false),
                "alibi {}",
                alibi.is_some()
            );
            assert_eq!(cache.unwrap().0.size(), vec![2, 2, 7, 4]);
        }
    }

    #[test]
    fn alibi_biases_attention_towards_near_tokens() {
        // With zero queries and keys every score is equal, so the attention
        // weights are the softmax of the bias alone: −|i − j|/2 for one head.
        let vs = nn::VarStore::new(Device::Cpu);
        let block = TransformerBlock::new(vs.root(), 4, 1, 2.0);
        tch::no_grad(|| {
            let _ = block.qkv.ws.narrow(0, 0, 8).zero_();
        });
        let x = Tensor::randn([1, 5, 4], (Kind::Float, Device::Cpu));
        let slopes = Tensor::from_slice(&[0.5f32]);
        let mask = AttentionMask::new(
            Attention::Bidirectional,
            None,
            Some(&slopes),
            5,
            Device::Cpu,
        );
        let got = block.forward_masked(&x, &mask, false);
        let h = x.apply(&block.norm1);
        let v = block.qkv.forward(&h).narrow(2, 8, 4);
        let weights = crate::attention_mask::alibi_bias(&slopes, 0, 5, 5).softmax(-1, Kind::Float);
        let y = &x + block.proj.forward(&weights.matmul(&v));
        let expected = &y
            + block
                .fc2
                .forward(&block.fc1.forward(&y.apply(&block.norm2)).gelu("none"));
        assert!(got.allclose(&expected, 1e-5, 1e-5, false));
    }

    #[test]
    fn padded_positions_change_nothing_for_the_real_tokens() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = TransformerBlock::new(vs.root(), 8, 2, 2.0);
        let short = Tensor::randn([1, 3, 8], (Kind::Float, Device::Cpu));
        let padded = Tensor::cat(
            &[
                short.shallow_clone(),
                Tensor::randn([1, 2, 8], (Kind::Float, Device::Cpu)) * 5.0,
            ],
            1,
        );
        let keep = Tensor::from_slice(&[true, true, true, false, false]).view([1, 5]);
        for attention in [Attention::Bidirectional, Attention::Causal] {
            let causal = attention == Attention::Causal;
            let alone = block.forward(&short, attention);
            let mask = AttentionMask::new(attention, Some(&keep), None, 5, Device::Cpu);
            let masked = block.forward_masked(&padded, &mask, false);
            assert!(
                masked.narrow(1, 0, 3).allclose(&alone, 1e-5, 1e-5, false),
                "causal {causal}"
            );
            let unmasked = block.forward(&padded, attention);
            if !causal {
                assert!(
                    !unmasked.narrow(1, 0, 3).allclose(&alone, 1e-3, 1e-3, false),
                    "padding leaks without the mask"
                );
            }
        }
    }

    #[test]
    fn causal_blocks_do_not_look_ahead() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = TransformerBlock::new(vs.root(), 8, 2, 4.0);
        let x = Tensor::randn([1, 6, 8], (Kind::Float, Device::Cpu));
        let changed = x.copy();
        let _ = changed.narrow(1, 5, 1).fill_(3.0);
        let (a, b) = (
            block.forward(&x, Attention::Causal),
            block.forward(&changed, Attention::Causal),
        );
        assert!(a
            .narrow(1, 0, 5)
            .allclose(&b.narrow(1, 0, 5), 1e-6, 1e-6, false));
        assert!(!a
            .narrow(1, 5, 1)
            .allclose(&b.narrow(1, 5, 1), 1e-3, 1e-3, false));
    }

    #[test]
    fn xavier_bound() {
        match xavier_uniform(100, 200) {
            nn::Init::Uniform { lo, up } => assert!((up - 0.1414213).abs() < 1e-6 && lo == -up),
            other => panic!("{other:?}"),
        }
    }
}

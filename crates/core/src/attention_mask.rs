//! What each query may attend to, and with what additive bias: built once
//! per forward pass and shared by every block, in the form libtorch's
//! `scaled_dot_product_attention` takes (its causal flag, or a mask).
//!
//! The bias is ALiBi's (Press et al., 2022, "Train Short, Test Long"):
//! instead of position embeddings, head h adds −m_h · |i − j| to the score of
//! query i for key j, with slopes m_h a geometric sequence (1/2 … 1/256 for 8
//! heads). Attention starts out local, so a masked-LM can read a token's
//! neighbours from the first step instead of first having to discover
//! positions; learned positions leave a small masked-LM on the unigram
//! plateau for thousands of steps (docs/results.md).

use tch::{Device, Kind, Tensor};

/// Which tokens attend to which (re-exported by [`crate::blocks`], whose
/// transformer block takes it; it lives here so that this module needs
/// nothing of the blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// Every token sees every token (ViT, BERT).
    Bidirectional,
    /// A token sees itself and earlier tokens only (GPT).
    Causal,
}

/// ALiBi's slopes for `heads` heads: 2^(−8(h+1)/n) for the largest power of
/// two n ≤ heads, the rest taken from the 2n sequence's odd terms, as the
/// paper does for head counts that are not powers of two.
pub fn alibi_slopes(heads: i64) -> Vec<f64> {
    let geometric = |n: i64| -> Vec<f64> {
        (0..n)
            .map(|h| 2f64.powf(-8.0 * (h + 1) as f64 / n as f64))
            .collect()
    };
    let power = 1i64 << (63 - heads.max(1).leading_zeros());
    let mut slopes = geometric(power);
    let extra = geometric(2 * power);
    slopes.extend(extra.iter().step_by(2).take((heads - power) as usize));
    slopes
}

/// `[heads, queries, keys]` biases −m_h · |i − j| for queries at positions
/// `query_start..query_start + queries` and keys at `0..keys`; `slopes` is
/// `[heads]`.
pub fn alibi_bias(slopes: &Tensor, query_start: i64, queries: i64, keys: i64) -> Tensor {
    let options = (Kind::Float, slopes.device());
    let query = Tensor::arange_start(query_start, query_start + queries, options).unsqueeze(1);
    let key = Tensor::arange(keys, options).unsqueeze(0);
    let distance = (query - key).abs().unsqueeze(0);
    -(slopes.to_kind(Kind::Float).view([-1, 1, 1]) * distance)
}

/// The attention pattern of one forward pass.
#[derive(Debug)]
pub struct AttentionMask {
    /// `[batch or 1, heads or 1, queries, keys]`: bool (true = attend) or
    /// an additive float bias (−∞ = never).
    mask: Option<Tensor>,
    /// SDPA's own causal triangle, used when there is no mask.
    causal: bool,
}

impl AttentionMask {
    /// For `tokens` tokens attending among themselves: causal or not,
    /// `keep` `[batch, tokens]` false at (right) padding, which no token
    /// attends to, and ALiBi `slopes` `[heads]`.
    pub fn new(
        attention: Attention,
        keep: Option<&Tensor>,
        slopes: Option<&Tensor>,
        tokens: i64,
        device: Device,
    ) -> Self {
        let causal = attention == Attention::Causal;
        if keep.is_none() && slopes.is_none() {
            return Self { mask: None, causal };
        }
        let keys = keep.map(|keep| keep.to_kind(Kind::Bool).view([-1, 1, 1, tokens]));
        let allowed = match (keys, causal) {
            (keys, true) => {
                let triangle = Tensor::ones([tokens, tokens], (Kind::Bool, device)).tril(0);
                Some(match keys {
                    Some(keys) => keys.logical_and(&triangle),
                    None => triangle,
                })
            }
            (keys, false) => keys,
        };
        let mask = match slopes {
            Some(slopes) => with_bias(alibi_bias(slopes, 0, tokens, tokens), allowed),
            None => allowed.expect("a padding mask when there is no bias"),
        };
        Self {
            mask: Some(mask),
            causal: false,
        }
    }

    /// For causal decoding with a key/value cache: `new` queries at the end
    /// of `all` keys, each seeing the keys up to its own position.
    pub fn cached(new: i64, all: i64, slopes: Option<&Tensor>, device: Device) -> Self {
        let triangle = || Tensor::ones([new, all], (Kind::Bool, device)).tril(all - new);
        match slopes {
            Some(slopes) => Self {
                mask: Some(with_bias(
                    alibi_bias(slopes, all - new, new, all),
                    Some(triangle()),
                )),
                causal: false,
            },
            // One new token sees every key; a first chunk is SDPA's own
            // triangle; later chunks need the shifted one.
            None => {
                let mask = (new > 1 && all > new).then(triangle);
                let causal = new > 1 && mask.is_none();
                Self { mask, causal }
            }
        }
    }

    /// The mask and causal flag to hand to `scaled_dot_product_attention`.
    pub fn sdpa(&self) -> (Option<&Tensor>, bool) {
        (self.mask.as_ref(), self.causal)
    }
}

/// `bias` where `allowed`, −∞ elsewhere (broadcast together).
fn with_bias(bias: Tensor, allowed: Option<Tensor>) -> Tensor {
    match allowed {
        Some(allowed) => {
            let never = Tensor::from(f32::NEG_INFINITY).to_device(bias.device());
            bias.where_self(&allowed, &never)
        }
        None => bias,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_follow_the_paper() {
        let eight = alibi_slopes(8);
        assert_eq!(eight[0], 0.5);
        assert_eq!(eight[7], 1.0 / 256.0);
        assert_eq!(alibi_slopes(4), vec![0.25, 0.0625, 0.015625, 0.00390625]);
        // 6 heads: the 4-head sequence, then the 8-head one's 1st and 3rd.
        let six = alibi_slopes(6);
        assert_eq!(six.len(), 6);
        assert_eq!(&six[..4], &alibi_slopes(4)[..]);
        assert_eq!(six[4], eight[0]);
        assert_eq!(six[5], eight[2]);
        assert_eq!(alibi_slopes(1), vec![2f64.powi(-8)]);
    }

    #[test]
    fn bias_falls_linearly_with_distance() {
        let slopes = Tensor::from_slice(&[0.5f32, 0.25]);
        let bias = alibi_bias(&slopes, 2, 2, 4); // queries at 2 and 3
        assert_eq!(bias.size(), vec![2, 2, 4]);
        let row: Vec<f32> = Vec::try_from(bias.get(0).get(0)).unwrap();
        assert_eq!(row, vec![-1.0, -0.5, 0.0, -0.5]);
        let row: Vec<f32> = Vec::try_from(bias.get(1).get(1)).unwrap();
        assert_eq!(row, vec![-0.75, -0.5, -0.25, 0.0]);
    }

    #[test]
    fn causal_padded_alibi_masks_the_future_and_the_padding() {
        let slopes = Tensor::from_slice(&[0.5f32]);
        let keep = Tensor::from_slice(&[true, true, false]).view([1, 3]);
        let mask = AttentionMask::new(
            Attention::Causal,
            Some(&keep),
            Some(&slopes),
            3,
            Device::Cpu,
        );
        let (Some(mask), false) = mask.sdpa() else {
            panic!("a float mask, no causal flag");
        };
        assert_eq!(mask.size(), vec![1, 1, 3, 3]);
        let rows: Vec<f32> = Vec::try_from(mask.flatten(0, -1)).unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(rows, vec![0.0, inf, inf, -0.5, 0.0, inf, -1.0, -0.5, inf]);
    }

    #[test]
    fn without_padding_or_bias_sdpa_draws_its_own_triangle() {
        let mask = AttentionMask::new(Attention::Causal, None, None, 5, Device::Cpu);
        assert!(matches!(mask.sdpa(), (None, true)));
        let mask = AttentionMask::new(Attention::Bidirectional, None, None, 5, Device::Cpu);
        assert!(matches!(mask.sdpa(), (None, false)));
    }
}

//! MAE's per-sample random masking (He et al., 2021): which patches the
//! encoder sees, and the permutation that puts them back in image order.

use tch::{Kind, Tensor};

/// The result of [`random_masking`].
#[derive(Debug)]
pub struct Masking {
    /// `[batch, keep, dim]`, the kept tokens in shuffled order.
    pub visible: Tensor,
    /// `[batch, patches]`, 1 for hidden patches, in image order.
    pub mask: Tensor,
    /// `[batch, patches]`, the permutation that restores image order.
    pub ids_restore: Tensor,
}

/// Per-sample random masking: sort uniform noise, keep the first
/// `patches · (1 − ratio)` (rounded down) tokens of each sample.
pub fn random_masking(tokens: &Tensor, ratio: f64) -> Masking {
    let (b, patches, dim) = tokens.size3().expect("[batch, patches, dim]");
    let keep = (patches as f64 * (1.0 - ratio)) as i64;
    let noise = Tensor::rand([b, patches], (Kind::Float, tokens.device()));
    let ids_shuffle = noise.argsort(1, false);
    let ids_restore = ids_shuffle.argsort(1, false);
    let ids_keep = ids_shuffle.narrow(1, 0, keep);
    let visible = tokens.gather(
        1,
        &ids_keep.unsqueeze(-1).expand([b, keep, dim], false),
        false,
    );
    let shuffled_mask = Tensor::cat(
        &[
            Tensor::zeros([b, keep], (Kind::Float, tokens.device())),
            Tensor::ones([b, patches - keep], (Kind::Float, tokens.device())),
        ],
        1,
    );
    let mask = shuffled_mask.gather(1, &ids_restore, false);
    Masking {
        visible,
        mask,
        ids_restore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn masking_keeps_a_quarter_per_sample_and_restores_order() {
        tch::manual_seed(0);
        let tokens = Tensor::arange(2 * 16, (Kind::Float, Device::Cpu)).view([2, 16, 1]);
        let m = random_masking(&tokens, 0.75);
        assert_eq!(m.visible.size(), vec![2, 4, 1]);
        assert_eq!(
            m.mask.sum_dim_intlist(1, false, Kind::Float),
            Tensor::from_slice(&[12f32, 12.])
        );
        // Visible tokens are exactly the unmasked positions.
        for s in 0..2 {
            let hidden: Vec<f32> = Vec::try_from(m.mask.get(s)).unwrap();
            let mut kept: Vec<f32> = Vec::try_from(m.visible.get(s).flatten(0, -1)).unwrap();
            kept.sort_by(f32::total_cmp);
            let expected: Vec<f32> = (0..16)
                .filter(|&i| hidden[i] == 0.0)
                .map(|i| (s as usize * 16 + i) as f32)
                .collect();
            assert_eq!(kept, expected);
        }
        let masks_differ = !m.mask.get(0).equal(&m.mask.get(1));
        assert!(masks_differ, "masking is per sample");
    }
}

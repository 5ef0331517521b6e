//! The masked-autoencoder reconstruction loss (He et al., 2021, "Masked
//! Autoencoders Are Scalable Vision Learners").

use crate::error::{check_shape, Result};
use tch::{Kind, Tensor};

/// Per-patch normalisation of target pixels, as MAE's `norm_pix_loss`:
/// `(x - mean) / sqrt(var + 1e-6)` over each patch's pixels, with the unbiased
/// variance as the reference implementation uses.
///
/// # Shapes
/// `patches`: `[batch, patches, patch_dim]` → same shape.
pub fn normalize_patches(patches: &Tensor) -> Tensor {
    let mean = patches.mean_dim(-1, true, Kind::Float);
    let var = patches.var_dim(-1, true, true);
    (patches - mean) / (var + 1e-6).sqrt()
}

/// Mean squared error over the masked patches only.
///
/// With `norm_pix`, targets are normalised per patch first ([`normalize_patches`]),
/// which the paper finds gives better representations.
///
/// # Shapes
/// - `pred`: `[batch, patches, patch_dim]`, the decoder's pixel predictions;
/// - `target`: `[batch, patches, patch_dim]`, the patchified input;
/// - `mask`: `[batch, patches]`, 1 where a patch was hidden, 0 where visible;
/// - returns a scalar.
///
/// # Example
/// ```
/// use selfsup_core::losses::mae_loss;
/// use tch::{kind::FLOAT_CPU, Tensor};
/// let target = Tensor::zeros([1, 4, 3], FLOAT_CPU);
/// let pred = Tensor::ones([1, 4, 3], FLOAT_CPU);
/// let mask = Tensor::from_slice(&[1f32, 1., 0., 0.]).view([1, 4]);
/// let loss = mae_loss(&pred, &target, &mask, false).unwrap();
/// assert_eq!(loss.double_value(&[]), 1.0);
/// ```
pub fn mae_loss(pred: &Tensor, target: &Tensor, mask: &Tensor, norm_pix: bool) -> Result<Tensor> {
    let p = pred.size();
    check_shape(
        p.len() == 3,
        "mae_loss: pred",
        "[batch, patches, patch_dim]",
        pred,
    )?;
    check_shape(
        target.size() == p,
        "mae_loss: target",
        &format!("{p:?} (as pred)"),
        target,
    )?;
    check_shape(
        mask.size() == p[..2],
        "mae_loss: mask",
        &format!("{:?}", &p[..2]),
        mask,
    )?;
    let target = if norm_pix {
        normalize_patches(target)
    } else {
        target.shallow_clone()
    };
    let per_patch = pred
        .mse_loss(&target, tch::Reduction::None)
        .mean_dim(-1, false, Kind::Float); // [batch, patches]
    let mask = mask.to_kind(Kind::Float).flatten(0, -1);
    // Masked mean as one dot product.
    Ok(per_patch.flatten(0, -1).dot(&mask) / mask.sum(Kind::Float))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_masked_patches_count() {
        let target = Tensor::zeros([1, 2, 4], (Kind::Float, tch::Device::Cpu));
        // Patch 0 is predicted perfectly, patch 1 off by 1 everywhere.
        let pred = Tensor::cat(
            &[
                Tensor::zeros([1, 1, 4], tch::kind::FLOAT_CPU),
                Tensor::ones([1, 1, 4], tch::kind::FLOAT_CPU),
            ],
            1,
        );
        let hide_second = Tensor::from_slice(&[0f32, 1.]).view([1, 2]);
        let hide_first = Tensor::from_slice(&[1f32, 0.]).view([1, 2]);
        let loss = |mask: &Tensor| {
            mae_loss(&pred, &target, mask, false)
                .unwrap()
                .double_value(&[])
        };
        assert_eq!(loss(&hide_second), 1.0);
        assert_eq!(loss(&hide_first), 0.0);
    }

    #[test]
    fn normalized_patches_have_zero_mean_unit_variance() {
        let x = Tensor::from_slice(&[1f32, 2., 3., 4., 10., 10., 10., 14.]).view([1, 2, 4]);
        let n = normalize_patches(&x);
        let mean = n.mean_dim(-1, false, Kind::Float);
        let var = n.var_dim(-1, true, false);
        assert!(mean.abs().max().double_value(&[]) < 1e-6);
        assert!((var - 1.0).abs().max().double_value(&[]) < 1e-4);
    }

    #[test]
    fn wrong_mask_shape_names_both_shapes() {
        let pred = Tensor::zeros([2, 3, 4], tch::kind::FLOAT_CPU);
        let mask = Tensor::zeros([2, 4], tch::kind::FLOAT_CPU);
        let err = mae_loss(&pred, &pred, &mask, true).unwrap_err().to_string();
        assert!(
            err.contains("mask") && err.contains("[2, 3]") && err.contains("[2, 4]"),
            "{err}"
        );
    }
}

//! MAE's picture of what it learned: originals, masked inputs and
//! reconstructions, written next to the run.

use super::Mae;
use crate::data::Normalizer;
use crate::pictures::{write_png_grid, PictureRow};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// `mae_reconstructions.png`: rows of originals, masked inputs (hidden
/// patches grey) and reconstructions (visible patches pasted back). With
/// `norm_pix_loss` the predictions are in per-patch normalised units; they
/// are mapped back with each true patch's mean and variance, as MAE's own
/// visualisations do.
pub(super) fn write_reconstructions(
    mae: &Mae,
    images: &Tensor,
    normalizer: &Normalizer,
    dir: &Path,
) -> crate::Result<Vec<PathBuf>> {
    let out = tch::no_grad(|| mae.forward(images))?;
    let target = mae.patchify(images);
    let pred = if mae.config.norm_pix_loss {
        let mean = target.mean_dim(-1, true, Kind::Float);
        let std = (target.var_dim(-1, true, true) + 1e-6).sqrt();
        &out.pred * std + mean
    } else {
        out.pred.shallow_clone()
    };
    let hidden = out.mask.unsqueeze(-1).expand_as(&target); // [B, L, p·p·C]
    let recon = &target * (-&hidden + 1.0) + pred * &hidden;
    let hidden_pixels = mae.unpatchify(&hidden);
    let original = normalizer.unapply(images);
    let masked = &original * (-&hidden_pixels + 1.0) + 0.5 * &hidden_pixels;
    let rows = [
        PictureRow { images: original },
        PictureRow { images: masked },
        PictureRow {
            images: normalizer.unapply(&mae.unpatchify(&recon)),
        },
    ];
    let path = dir.join("mae_reconstructions.png");
    write_png_grid(&rows, 4, &path)?;
    Ok(vec![path])
}

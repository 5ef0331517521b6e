//! Vision SSL methods, one file each. Adding one is its file plus one line
//! in the list below (docs/architecture.md, "Adding a method").

mod encoder;
mod gather;
pub mod momentum;
#[cfg(test)]
mod smoke;

pub use encoder::{each_view, Encoder};

use crate::registry::Vision;
use selfsup_train::{check, Batch, Result};
use tch::Tensor;

selfsup_train::methods! { Vision;
    mae::Mae,
    simclr::SimClr,
    moco::Moco,
    mocov3::MocoV3,
    rotnet::RotNet,
    byol::Byol,
    simsiam::SimSiam,
    barlow::BarlowTwins,
    vicreg::VicReg,
    swav::Swav,
    dino::Dino,
    dae::Dae,
}

/// A multi-view method's views (set by `[[data.views]]` in its config): at
/// least `min` of them, each `[batch, C, H, W]`; views may differ in size
/// (multi-crop). Returns the views and the batch size.
pub(crate) fn views_of<'a>(
    method: &str,
    batch: &'a Batch,
    min: usize,
) -> Result<(Vec<&'a Tensor>, i64)> {
    let views = batch.views();
    if views.len() < min {
        let message = format!(
            "{method} needs at least {min} views per image, got {} (add `count = {min}` to its [[data.views]])",
            views.len()
        );
        return Err(check::invalid("data.views", message));
    }
    let batch_size = views[0].size()[0];
    Ok((views, batch_size))
}

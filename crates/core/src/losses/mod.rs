//! SSL losses as free functions. Each documents the shapes it takes in a
//! `# Shapes` block and returns a shape error, not a libtorch panic, on a
//! mismatch. Values and gradients are checked against PyTorch in
//! `crates/core/tests/losses_match_pytorch.rs`.

mod classification;
mod contrastive;
mod dino;
mod mae;
mod redundancy;
mod swav;

pub use classification::{masked_lm, next_token, rotation_prediction, IGNORE_INDEX};
pub use contrastive::{moco_infonce, moco_v3, nt_xent, nt_xent_gathered};
pub use dino::{dino_loss, DinoCenter};
pub use mae::{mae_loss, normalize_patches};
pub use redundancy::{
    barlow_twins, barlow_twins_terms, negative_cosine, vicreg, vicreg_terms, BarlowTerms,
    VicRegTerms, VicRegWeights,
};
pub use swav::{sinkhorn, sinkhorn_across, swav_loss};

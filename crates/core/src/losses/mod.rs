//! SSL losses as free functions. Each documents the shapes it takes in a
//! `# Shapes` block and returns a shape error, not a libtorch panic, on a mismatch.

mod mae;

pub use mae::{mae_loss, normalize_patches};

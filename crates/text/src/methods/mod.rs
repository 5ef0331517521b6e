//! Text SSL methods, one file each.

pub mod masked_lm;
pub mod next_token;

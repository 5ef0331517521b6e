//! Vision SSL methods, one file each.

pub mod mae;

//! Checks every method and every modality's config should pass, for tests
//! of method crates (and of methods written outside this workspace).

mod configs;
mod data_parallel;
mod resume;

pub use configs::{judge, numeric_keys, set_value, value_for, NumericKey, Step, ValueKind};
pub use data_parallel::assert_data_parallel_matches;
pub use resume::{assert_resume_is_exact, in_own_process, lock_torch_rng, mean, Build, Curves};

//! The error type of `selfsup-core`.

use thiserror::Error;

/// What can go wrong in core computations; shape errors name both shapes.
#[derive(Debug, Error)]
pub enum Error {
    /// An input tensor does not have the shape the function documents.
    #[error("{what}: expected shape {expected}, got {actual:?}")]
    Shape {
        /// Which argument, e.g. `"mae_loss: mask"`.
        what: String,
        /// The expected shape in words, e.g. `"[batch, patches]"`.
        expected: String,
        /// The shape that was passed.
        actual: Vec<i64>,
    },
    /// A saved optimizer state does not match the parameters it is loaded into.
    #[error("optimizer state: {0}")]
    State(String),
    /// A reduction across data-parallel ranks failed (a rank died or hung).
    #[error("across ranks: {0}")]
    AcrossRanks(String),
    /// An error raised by libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Returns a shape error unless `ok`.
pub(crate) fn check_shape(
    ok: bool,
    what: &str,
    expected: &str,
    actual: &tch::Tensor,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Shape {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.size(),
        })
    }
}

//! Vision SSL methods, one file each.

pub mod mae;
pub mod moco;
pub mod mocov3;
pub mod momentum;
pub mod rotnet;
pub mod simclr;

use tch::Tensor;

/// Checks that a multi-view method got at least `min` views of one shape
/// (set by `[[data.views]]` in its config); returns the batch size.
pub(crate) fn check_views(
    method: &str,
    views: &[Tensor],
    min: usize,
) -> selfsup_train::Result<usize> {
    let bad = |message: String| selfsup_train::Error::Config {
        origin: "data.views".into(),
        message: format!("{method}: {message}"),
    };
    if views.len() < min {
        return Err(bad(format!(
            "needs at least {min} views per image, got {} (add `count = {min}` to its [[data.views]])",
            views.len()
        )));
    }
    let shape = views[0].size();
    if let Some(other) = views.iter().find(|v| v.size() != shape) {
        return Err(bad(format!(
            "views differ in shape: {shape:?} and {:?}",
            other.size()
        )));
    }
    Ok(shape[0] as usize)
}

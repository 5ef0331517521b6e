//! Embeddings of the whole global batch in a data-parallel run, laid out
//! as one process holding it would see them: view-major, each view's
//! samples in rank order. Alone, or outside training, a method's own
//! batch is the global batch and these return it unchanged.

use selfsup_core::across_ranks::{AcrossRanks, OneProcess};
use selfsup_train::distributed;
use selfsup_train::Result;
use tch::Tensor;

/// The ranks a training step's losses reduce over: the process group in a
/// data-parallel run, else (and outside training) this process alone.
pub(crate) fn ranks(train: bool) -> &'static dyn AcrossRanks {
    match distributed::current().filter(|_| train) {
        Some(group) => group.as_ref(),
        None => &OneProcess,
    }
}

/// Every rank's view-major `[n_views * batch, dim]` block, stacked rank-major
/// by an all_gather, reordered to `[n_views * world * batch, dim]` view-major.
fn view_major(gathered: &Tensor, n_views: i64, world: i64) -> Tensor {
    let (rows, dim) = (gathered.size()[0], gathered.size()[1]);
    let batch = rows / (world * n_views);
    gathered
        .view([world, n_views, batch, dim])
        .transpose(0, 1)
        .reshape([rows, dim])
}

/// The global batch's embeddings and its per-view size, differentiable:
/// a loss computed from them on every rank trains every rank's encoder as
/// one batch of `world × batch` would (the gather's backward sums the
/// ranks' gradients, the trainer averages them).
pub(crate) fn gather_views(z: &Tensor, n_views: i64, train: bool) -> Result<(Tensor, i64)> {
    let batch = z.size()[0] / n_views;
    match distributed::current().filter(|_| train) {
        Some(group) => {
            let world = group.world_size() as i64;
            let all = view_major(&group.all_gather_with_grad(z)?, n_views, world);
            Ok((all, world * batch))
        }
        None => Ok((z.shallow_clone(), batch)),
    }
}

/// As [`gather_views`] without gradient (momentum encoders' keys), plus
/// where this rank's samples start within each view.
pub(crate) fn gather_keys(k: &Tensor, n_views: i64, train: bool) -> Result<(Tensor, i64, i64)> {
    let batch = k.size()[0] / n_views;
    match distributed::current().filter(|_| train) {
        Some(group) => {
            let world = group.world_size() as i64;
            let all = view_major(&group.all_gather(k)?, n_views, world);
            Ok((all, world * batch, group.rank() as i64 * batch))
        }
        None => Ok((k.shallow_clone(), batch, 0)),
    }
}

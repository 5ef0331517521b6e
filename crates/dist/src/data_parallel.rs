//! What makes N processes train one model: the same starting weights on
//! every rank, and gradients averaged across ranks after each backward
//! pass, so that every rank takes the same optimizer step.
//!
//! Gradients travel in flat buckets (one all_reduce per bucket rather than
//! one per parameter tensor), as PyTorch's DDP does; the default bucket is
//! its 25 MiB. tch exposes no per-parameter gradient hooks, so the
//! all_reduce starts after the backward pass instead of overlapping it.

use super::group::{ProcessGroup, ReduceOp};
use crate::error::Result;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// PyTorch DDP's default bucket size.
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// Overwrites every variable in `vs` (parameters and buffers) with rank
/// 0's, in name order so that all ranks pair the same tensors.
pub fn broadcast_variables(group: &ProcessGroup, vs: &VarStore) -> Result<()> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, variable) in variables {
        // Detached: shares the storage, so rank 0's values land in the
        // variable without autograd seeing an in-place write on a leaf.
        let mut data = variable.detach();
        group.broadcast_(&mut data, 0)?;
    }
    Ok(())
}

/// Replaces each defined gradient of `params` with its mean across ranks.
/// Every rank must hold gradients for the same parameters (a method that
/// freezes a layer freezes it on all ranks, as the step decides it).
pub fn average_gradients(
    group: &ProcessGroup,
    params: &[Tensor],
    bucket_bytes: usize,
) -> Result<()> {
    let world = group.world_size() as f64;
    let grads: Vec<Tensor> = params
        .iter()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .collect();
    for bucket in buckets(&grads, bucket_bytes) {
        let flat: Vec<Tensor> = bucket.iter().map(|g| g.reshape([-1])).collect();
        let mut flat = Tensor::cat(&flat, 0);
        group.all_reduce_(&mut flat, ReduceOp::Sum)?;
        let _ = flat.g_div_scalar_(world);
        let mut offset = 0;
        for grad in bucket {
            let n = grad.numel() as i64;
            let mut grad = grad.shallow_clone();
            grad.copy_(&flat.narrow(0, offset, n).view_as(&grad));
            offset += n;
        }
    }
    Ok(())
}

/// Makes every training-mode batch norm of this process use the global
/// batch's statistics (see `selfsup_core::sync_bn`) until the guard drops.
/// A failed collective inside a forward pass panics with its message: the
/// rank stops, and the launcher names it.
pub fn sync_batch_norm(group: &std::sync::Arc<ProcessGroup>) -> selfsup_core::sync_bn::Installed {
    let group = std::sync::Arc::clone(group);
    let reducer = move |stats: &Tensor| -> Tensor {
        group
            .all_gather_with_grad(&stats.unsqueeze(0))
            .unwrap_or_else(|e| panic!("SyncBatchNorm: {e}"))
    };
    selfsup_core::sync_bn::install(std::sync::Arc::new(reducer))
}

/// Consecutive runs of same-kind gradients of at most `bucket_bytes`
/// (a single larger tensor gets a bucket of its own).
fn buckets(grads: &[Tensor], bucket_bytes: usize) -> Vec<Vec<&Tensor>> {
    let mut buckets: Vec<Vec<&Tensor>> = Vec::new();
    let mut bytes = 0;
    let mut kind: Option<Kind> = None;
    for grad in grads {
        let size = grad.numel() * grad.kind().elt_size_in_bytes();
        let fits = kind == Some(grad.kind()) && bytes + size <= bucket_bytes;
        if !fits {
            buckets.push(Vec::new());
            bytes = 0;
            kind = Some(grad.kind());
        }
        bytes += size;
        buckets.last_mut().expect("pushed above").push(grad);
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_same_kind_runs_up_to_the_size() {
        let f = |n: i64| Tensor::zeros([n], (Kind::Float, tch::Device::Cpu));
        let grads = [
            f(10),
            f(10),
            f(30),
            Tensor::zeros([2], (Kind::Double, tch::Device::Cpu)),
            f(1),
        ];
        let sizes: Vec<Vec<i64>> = buckets(&grads, 80)
            .iter()
            .map(|b| b.iter().map(|g| g.numel() as i64).collect())
            .collect();
        assert_eq!(sizes, vec![vec![10, 10], vec![30], vec![2], vec![1]]);
    }
}

//! SyncBatchNorm: batch norm whose training statistics are those of every
//! rank's batch, as `torch.nn.SyncBatchNorm`. Layers call [`batch_norm`]
//! instead of applying their `nn::BatchNorm`; it behaves exactly as the
//! plain layer unless a reducer is installed (the trainer installs one for
//! `trainer.sync_batch_norm` in a data-parallel run). This crate knows no
//! process group: the gatherer is any function that stacks a tensor from
//! every rank, differentiably.
//!
//! Each rank contributes its mean, centred sum of squares and count, which
//! combine exactly (Chan et al.'s parallel variance) without the
//! cancellation of `E[x²] − E[x]²`, as PyTorch's SyncBatchNorm does.

use std::sync::{Arc, RwLock};
use tch::{nn, Kind, Tensor};

/// Stacks a 1-D tensor of every rank into `[world, len]` (rank order); its
/// backward sums the ranks' gradients back to each one's own row.
pub type Reducer = dyn Fn(&Tensor) -> Tensor + Send + Sync;

static REDUCER: RwLock<Option<Arc<Reducer>>> = RwLock::new(None);

/// tch's `BatchNormConfig` defaults, which every layer here keeps (tch does
/// not expose a layer's config).
const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

fn set_reducer(reducer: Option<Arc<Reducer>>) {
    *REDUCER.write().unwrap_or_else(|e| e.into_inner()) = reducer;
}

/// Makes every training-mode [`batch_norm`] call use `reducer` until the
/// returned guard drops.
pub fn install(reducer: Arc<Reducer>) -> Installed {
    set_reducer(Some(reducer));
    Installed
}

/// While alive, batch norm is synchronised; dropping it restores the plain layer.
#[must_use = "batch norm is synchronised only while the guard lives"]
pub struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        set_reducer(None);
    }
}

/// Whether training-mode batch norm uses the global batch's statistics now
/// (a reducer is installed).
pub fn is_synchronised() -> bool {
    REDUCER.read().unwrap_or_else(|e| e.into_inner()).is_some()
}

/// `bn` applied to `x` (`[batch, channels, …]`): the plain layer, or in
/// training with a reducer installed, normalised by the statistics of the
/// global batch, whose running averages it updates as PyTorch does.
pub fn batch_norm(bn: &nn::BatchNorm, x: &Tensor, train: bool) -> Tensor {
    let reducer = REDUCER.read().unwrap_or_else(|e| e.into_inner()).clone();
    match reducer {
        Some(reduce) if train => synchronised(bn, x, reduce.as_ref()),
        _ => x.apply_t(bn, train),
    }
}

fn synchronised(bn: &nn::BatchNorm, x: &Tensor, gather: &Reducer) -> Tensor {
    let channels = x.size()[1];
    let dims: Vec<i64> = (0..x.dim() as i64).filter(|&d| d != 1).collect();
    let local = (x.numel() as i64 / channels) as f64;
    let xf = x.to_kind(Kind::Float);
    let mean_here = xf.mean_dim(dims.as_slice(), true, Kind::Float);
    let centred = &xf - &mean_here;
    let stats = Tensor::cat(
        &[
            mean_here.reshape([-1]),
            (&centred * &centred).sum_dim_intlist(dims.as_slice(), false, Kind::Float),
            Tensor::full([1], local, (Kind::Float, x.device())),
        ],
        0,
    );
    let all = gather(&stats); // [world, 2 C + 1]
    let (means, squares) = (
        all.narrow(1, 0, channels),
        all.narrow(1, channels, channels),
    );
    let counts = all.narrow(1, 2 * channels, 1);
    let count = counts.sum(Kind::Float);
    let mean = (&counts * &means).sum_dim_intlist([0].as_slice(), false, Kind::Float) / &count;
    let spread = &counts * (&means - &mean).square();
    let var = (squares + spread).sum_dim_intlist([0].as_slice(), false, Kind::Float) / &count;
    let mut shape = vec![1; x.dim()];
    shape[1] = channels;
    let mut y = (&xf - mean.view(shape.as_slice())) * (&var + EPS).rsqrt().view(shape.as_slice());
    if let (Some(weight), Some(bias)) = (&bn.ws, &bn.bs) {
        y = y * weight.view(shape.as_slice()) + bias.view(shape.as_slice());
    }
    tch::no_grad(|| {
        // Bessel's correction on the device: no host sync in the step.
        let count = count.detach();
        let unbiased = var.detach() * &count / (&count - 1.0).clamp_min(1.0);
        let mut running_mean = bn.running_mean.shallow_clone();
        let mut running_var = bn.running_var.shallow_clone();
        running_mean.copy_(&(&bn.running_mean * (1.0 - MOMENTUM) + mean.detach() * MOMENTUM));
        running_var.copy_(&(&bn.running_var * (1.0 - MOMENTUM) + unbiased * MOMENTUM));
    });
    y.to_kind(x.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// With the identity as reducer (one rank) the synchronised layer is
    /// the plain one: output, gradients and running statistics.
    #[test]
    fn one_rank_matches_the_plain_layer() {
        tch::manual_seed(1);
        let make = |vs: &nn::VarStore| {
            tch::manual_seed(2); // the same random affine weights in both
            nn::batch_norm2d(vs.root() / "bn", 3, Default::default())
        };
        let (vs_a, vs_b) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let (a, b) = (make(&vs_a), make(&vs_b));
        let x = Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu)) * 2.0 + 1.0;
        let weights = Tensor::randn([4, 3, 5, 5], (Kind::Float, Device::Cpu));
        let plain = x.apply_t(&a, true);
        let identity: &Reducer = &|t: &Tensor| t.unsqueeze(0);
        let synced = synchronised(&b, &x, identity);
        assert!(plain.allclose(&synced, 1e-4, 1e-4, false));
        (&plain * &weights).sum(Kind::Float).backward();
        (&synced * &weights).sum(Kind::Float).backward();
        let (ga, gb) = (a.ws.as_ref().unwrap().grad(), b.ws.as_ref().unwrap().grad());
        assert!(ga.allclose(&gb, 1e-4, 1e-4, false), "{ga} vs {gb}");
        assert!(a.running_mean.allclose(&b.running_mean, 1e-5, 1e-5, false));
        assert!(a.running_var.allclose(&b.running_var, 1e-5, 1e-5, false));
    }
}

//! Safe handles on libtorch's c10d: the Gloo (and NCCL) process group over
//! all ranks, with its collectives (the store is [`super::store`]).
//!
//! Every call blocks until the collective completes on this rank or the
//! group's timeout passes; a rank that died or hangs surfaces as an
//! [`Error::Distributed`] carrying Gloo's message, never as a hang or a panic.

#![allow(unsafe_code)]

use super::ffi;
pub use super::store::Store;
use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::raw::c_char;
use std::ptr::NonNull;
use std::time::Duration;
use tch::Tensor;

pub(super) const ERROR_LEN: usize = 1024;

pub(super) fn message(error: &[c_char]) -> String {
    let bytes: Vec<u8> = error
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) fn c_string(what: &str, value: &str) -> Result<CString> {
    CString::new(value)
        .map_err(|_| Error::distributed(format!("{what} {value:?} contains a NUL byte")))
}

pub(super) fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

/// How [`ProcessGroup::all_reduce_`] combines the ranks' tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Element-wise sum.
    Sum,
    /// Element-wise maximum.
    Max,
    /// Element-wise minimum.
    Min,
}

/// A process group over every rank of the run: Gloo for CPU tensors,
/// NCCL for CUDA tensors where built and asked for.
pub struct ProcessGroup {
    raw: NonNull<ffi::RawGroup>,
    rank: usize,
    world: usize,
    // Dropped after the group, which holds the store only through libtorch.
    _store: Store,
}

// SAFETY: c10d process groups are used from any thread in PyTorch; the
// handle is only freed on drop.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl ProcessGroup {
    /// Forms the group over `store`: every rank calls this with the same
    /// `prefix` and `world`, and its own `rank`. Collectives that do not
    /// complete within `timeout` fail.
    pub fn new(
        store: Store,
        prefix: &str,
        rank: usize,
        world: usize,
        timeout: Duration,
    ) -> Result<Self> {
        Self::with_backends(store, prefix, rank, world, false, timeout)
    }

    /// Whether this build can reduce CUDA tensors (a CUDA build, whose shim
    /// links libtorch's ProcessGroupNCCL).
    pub fn nccl_built() -> bool {
        // SAFETY: no arguments, no state.
        unsafe { ffi::selfsup_has_nccl() }
    }

    /// As [`ProcessGroup::new`]; with `nccl`, CUDA tensors are reduced by
    /// NCCL (CPU tensors always by Gloo), as torch.distributed's default
    /// `cpu:gloo,cuda:nccl` does.
    pub fn with_backends(
        store: Store,
        prefix: &str,
        rank: usize,
        world: usize,
        nccl: bool,
        timeout: Duration,
    ) -> Result<Self> {
        if world == 0 || rank >= world {
            return Err(Error::distributed(format!(
                "rank {rank} is outside a world of {world}"
            )));
        }
        // The name libtorch registers the group under, where the functional
        // collectives (the differentiable all_gather) look it up; unique per
        // process, so that tests may form several ranks in one.
        let name = format!("{prefix}:rank{rank}");
        let (c_prefix, c_name) = (c_string("prefix", prefix)?, c_string("name", &name)?);
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: as in `Store::open`; the store outlives the group (field order).
        let raw = unsafe {
            ffi::selfsup_group_new(
                store.raw.as_ptr(),
                c_prefix.as_ptr(),
                c_name.as_ptr(),
                rank as i32,
                world as i32,
                nccl,
                store.loopback,
                millis(timeout),
                error.as_mut_ptr(),
                error.len(),
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| {
            Error::distributed(format!(
                "rank {rank} of {world} could not form the process group: {}",
                message(&error)
            ))
        })?;
        Ok(ProcessGroup {
            raw,
            rank,
            world,
            _store: store,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world
    }

    fn check(&self, ok: bool, what: &str, error: &[c_char]) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::distributed(format!(
                "rank {}: {what} failed: {}",
                self.rank,
                message(error)
            )))
        }
    }

    /// Combines `tensor` across ranks in place.
    pub fn all_reduce_(&self, tensor: &mut Tensor, op: ReduceOp) -> Result<()> {
        let op = match op {
            ReduceOp::Sum => 0,
            ReduceOp::Max => 1,
            ReduceOp::Min => 2,
        };
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: the tensor handle is live and borrowed mutably for the call.
        let ok = unsafe {
            ffi::selfsup_group_all_reduce(
                self.raw.as_ptr(),
                tensor.as_mut_ptr(),
                op,
                error.as_mut_ptr(),
                error.len(),
            )
        };
        self.check(ok, "all_reduce", &error)
    }

    /// Every rank's `input` stacked along dim 0 in rank order
    /// (`world × input.size(0)` rows); no gradient flows through it.
    pub fn all_gather(&self, input: &Tensor) -> Result<Tensor> {
        let mut input = input.detach().contiguous();
        let mut shape = input.size();
        if shape.is_empty() {
            input = input.reshape([1]);
            shape = vec![1];
        }
        shape[0] *= self.world as i64;
        let mut output = Tensor::empty(shape.as_slice(), (input.kind(), input.device()));
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: both handles are live for the call; output has world × input elements.
        let ok = unsafe {
            ffi::selfsup_group_all_gather(
                self.raw.as_ptr(),
                output.as_mut_ptr(),
                input.as_mut_ptr(),
                error.as_mut_ptr(),
                error.len(),
            )
        };
        self.check(ok, "all_gather", &error)?;
        Ok(output)
    }

    /// As [`ProcessGroup::all_gather`], differentiable: the backward pass
    /// sums the gradient of the gathered tensor across ranks and keeps this
    /// rank's rows, so a loss over everyone's embeddings trains every rank's
    /// encoder as one big batch would (libtorch's
    /// `_c10d_functional_autograd::all_gather_into_tensor`).
    pub fn all_gather_with_grad(&self, input: &Tensor) -> Result<Tensor> {
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: the input handle is live for the call; the result is a new
        // handle that the returned Tensor owns.
        let raw = unsafe {
            ffi::selfsup_all_gather_with_grad(
                self.raw.as_ptr(),
                input.as_ptr(),
                error.as_mut_ptr(),
                error.len(),
            )
        };
        if raw.is_null() {
            self.check(false, "all_gather (with grad)", &error)?;
        }
        // SAFETY: non-null, freshly allocated by the shim.
        Ok(unsafe { Tensor::from_ptr(raw) })
    }

    /// Overwrites `tensor` on every rank with rank `root`'s.
    pub fn broadcast_(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: the tensor handle is live and borrowed mutably for the call.
        let ok = unsafe {
            ffi::selfsup_group_broadcast(
                self.raw.as_ptr(),
                tensor.as_mut_ptr(),
                root as i32,
                error.as_mut_ptr(),
                error.len(),
            )
        };
        self.check(ok, "broadcast", &error)
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: the buffer outlives the call.
        let ok = unsafe {
            ffi::selfsup_group_barrier(self.raw.as_ptr(), error.as_mut_ptr(), error.len())
        };
        self.check(ok, "barrier", &error)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: allocated by `selfsup_group_new`, freed once.
        unsafe { ffi::selfsup_group_free(self.raw.as_ptr()) }
    }
}

/// The process group as the losses see it (SwAV's Sinkhorn, DINO's centre).
impl selfsup_core::across_ranks::AcrossRanks for ProcessGroup {
    fn world(&self) -> i64 {
        self.world_size() as i64
    }
    fn sum_(&self, tensor: &mut Tensor) -> selfsup_core::Result<()> {
        self.all_reduce_(tensor, ReduceOp::Sum)
            .map_err(|e| selfsup_core::Error::AcrossRanks(e.to_string()))
    }
    fn max_(&self, tensor: &mut Tensor) -> selfsup_core::Result<()> {
        self.all_reduce_(tensor, ReduceOp::Max)
            .map_err(|e| selfsup_core::Error::AcrossRanks(e.to_string()))
    }
}

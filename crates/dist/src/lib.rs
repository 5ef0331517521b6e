//! Data-parallel training on PyTorch's c10d, through the small C++ shim in
//! `csrc/c10d.cpp`: the rendezvous store ([`store`]) and the Gloo (and
//! NCCL) process group of libtorch ([`group`]), where a process learns its
//! rank ([`world`]), the `--nproc-per-node` launcher ([`launch`]), and the
//! process-wide group that the trainer and the methods use once it is
//! formed ([`init`], [`current`]). Its own crate, below the trainer: it
//! needs nothing of it, and `selfsup-train` re-exports it as
//! `selfsup_train::distributed`.
//!
//! Nothing here sends a byte or adds a number itself: rendezvous,
//! transport and reductions are libtorch's and Gloo's.

pub mod data_parallel;
pub mod error;
mod ffi;
pub mod group;
pub mod launch;
pub mod shuffle_bn;
pub mod store;
pub mod world;

pub use error::{Error, Result};
pub use group::{ProcessGroup, ReduceOp, Store};
pub use world::WorldEnv;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

static CURRENT: OnceLock<Arc<ProcessGroup>> = OnceLock::new();
static LOCAL_RANK: OnceLock<usize> = OnceLock::new();

/// Joins the run described by `env`: connects to (or, on rank 0 without a
/// launcher, serves) the store and forms the process group, which
/// [`current`] then returns for the rest of the process. Where CUDA is
/// available (a CUDA build on a machine with GPUs), CUDA tensors go through
/// NCCL and this rank computes on GPU `LOCAL_RANK`.
pub fn init(env: &WorldEnv, timeout: Duration) -> Result<Arc<ProcessGroup>> {
    let serve = env.rank == 0 && !env.agent_store;
    let store = match &env.store_file {
        Some(path) => Store::file(path, env.world_size, timeout)?,
        None if serve => Store::serve(&env.master_addr, env.master_port, env.world_size, timeout)?,
        None => Store::connect(&env.master_addr, env.master_port, timeout)?,
    };
    let prefix = format!("selfsup/attempt{}", env.attempt);
    let nccl = ProcessGroup::nccl_built() && tch::Cuda::is_available();
    let group = Arc::new(ProcessGroup::with_backends(
        store,
        &prefix,
        env.rank,
        env.world_size,
        nccl,
        timeout,
    )?);
    let _ = LOCAL_RANK.set(env.local_rank);
    CURRENT
        .set(Arc::clone(&group))
        .map_err(|_| Error::distributed("this process already joined a process group"))?;
    Ok(group)
}

/// The process group this process joined, if it trains with others.
pub fn current() -> Option<&'static Arc<ProcessGroup>> {
    CURRENT.get()
}

/// This process's rank among those on its machine: the GPU it uses (0
/// when it trains alone).
pub fn local_rank() -> usize {
    LOCAL_RANK.get().copied().unwrap_or(0)
}

/// This process's rank (0 when it trains alone).
pub fn rank() -> usize {
    current().map_or(0, |g| g.rank())
}

/// The number of processes training together (1 when alone).
pub fn world_size() -> usize {
    current().map_or(1, |g| g.world_size())
}

/// Whether this process writes the run folder: rank 0, or the only one.
pub fn is_primary() -> bool {
    rank() == 0
}

/// The mean of `values` over the ranks (a copy of `values` when alone):
/// logged losses and scalars describe the global batch.
pub fn mean_over_ranks(values: &tch::Tensor) -> Result<tch::Tensor> {
    let mut mean = values
        .detach()
        .to_kind(tch::Kind::Float)
        .contiguous()
        .copy();
    if let Some(group) = current() {
        group.all_reduce_(&mut mean, ReduceOp::Sum)?;
        mean /= group.world_size() as f64;
    }
    Ok(mean)
}

/// Runs `f` on rank 0 with the threads of every rank on this node: the
/// other ranks only wait while rank 0 evaluates, so their cores are free
/// (a launcher gives each rank `OMP_NUM_THREADS=1`). Alone, just `f`.
pub fn with_node_threads<T>(f: impl FnOnce() -> T) -> T {
    let local = std::env::var("LOCAL_WORLD_SIZE")
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    match (current(), local) {
        (Some(_), Some(local)) if local > 1 => {
            let before = tch::get_num_threads();
            tch::set_num_threads(before * local);
            let result = f();
            tch::set_num_threads(before);
            result
        }
        _ => f(),
    }
}

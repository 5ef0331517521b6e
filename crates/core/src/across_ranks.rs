//! The reductions across data-parallel ranks that some losses need inside
//! their arithmetic (SwAV's Sinkhorn normalises over the global batch,
//! DINO's centre averages the global batch), as the official code does
//! with `torch.distributed.all_reduce`. `core` knows nothing of processes:
//! a method passes its process group through this trait, and one process
//! passes [`OneProcess`], for which every reduction is the identity.

use crate::error::Result;
use tch::Tensor;

/// Element-wise reductions over every rank of a data-parallel run.
pub trait AcrossRanks {
    /// How many ranks take part.
    fn world(&self) -> i64;
    /// Replaces `tensor` by its element-wise sum over the ranks.
    fn sum_(&self, tensor: &mut Tensor) -> Result<()>;
    /// Replaces `tensor` by its element-wise maximum over the ranks.
    fn max_(&self, tensor: &mut Tensor) -> Result<()>;
}

/// A run of one process: nothing to reduce.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneProcess;

impl AcrossRanks for OneProcess {
    fn world(&self) -> i64 {
        1
    }
    fn sum_(&self, _tensor: &mut Tensor) -> Result<()> {
        Ok(())
    }
    fn max_(&self, _tensor: &mut Tensor) -> Result<()> {
        Ok(())
    }
}

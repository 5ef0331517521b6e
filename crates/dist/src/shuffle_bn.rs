//! MoCo's shuffling batch norm across ranks (He et al., 2020, §3.3): the
//! key encoder's batch-norm statistics come from a random subset of the
//! global batch rather than from the rank's own samples, so that a query
//! and its key never share the statistics of one sub-batch (through which
//! the model could find its positive without learning a representation).
//!
//! As the paper's code does it: gather every rank's inputs, draw one
//! permutation on rank 0 and broadcast it, run the encoder on this rank's
//! slice of the shuffled batch, gather the outputs and undo the
//! permutation. Alone, or with SyncBatchNorm (whose statistics are the
//! global batch's whatever the order), it is the encoder on the rank's own
//! batch.

use super::group::ProcessGroup;
use crate::error::Result;
use tch::{Kind, Tensor};

/// `encoder` applied to this rank's `inputs` (`[rows, …]`, the same number
/// of rows on every rank), with each call of `encoder` seeing a random
/// sample of every rank's rows; row `i` of the result is still the output
/// for row `i` of `inputs`. No gradient flows through it: it is for
/// momentum encoders, as in MoCo.
pub fn shuffled_across_ranks(
    group: &ProcessGroup,
    inputs: &Tensor,
    encoder: impl FnOnce(&Tensor) -> Tensor,
) -> Result<Tensor> {
    let rows = inputs.size()[0];
    let start = group.rank() as i64 * rows;
    let everyone = group.all_gather(inputs)?;
    let total = everyone.size()[0];
    let device = inputs.device();
    let mut order = if group.rank() == 0 {
        Tensor::randperm(total, (Kind::Int64, device))
    } else {
        Tensor::zeros([total], (Kind::Int64, device))
    };
    group.broadcast_(&mut order, 0)?;
    let mine = everyone.index_select(0, &order.narrow(0, start, rows));
    let outputs = tch::no_grad(|| encoder(&mine));
    // Row j of the gathered outputs belongs to input `order[j]`.
    let shuffled = group.all_gather(&outputs)?;
    let restored = shuffled.index_select(0, &order.argsort(0, false));
    Ok(restored.narrow(0, start, rows))
}

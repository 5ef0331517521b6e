//! Where a run's batches come from, and the producer thread that builds them
//! ahead of the training step.
//!
//! A source must make batch `indices` of `epoch` from those two alone (its
//! own seeded RNGs, never libtorch's global generator, which the trainer
//! reseeds every step): then a prefetched batch equals one built on demand,
//! and a resumed run sees the same batches as an uninterrupted one.

use crate::batch::Batch;
use crate::error::Result;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::Scope;

/// A data set the trainer can draw batches from.
pub trait BatchSource: Sync {
    /// Samples per epoch; the sampler shuffles `0..len`.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Classes of the labels the online probe trains on (0: no probe).
    fn num_classes(&self) -> usize {
        0
    }
    /// Builds the batch of samples `indices` in `epoch`, on the device; an
    /// error (an unreadable file, say) stops the run with its message.
    fn batch(&self, epoch: usize, indices: &[usize]) -> Result<Batch>;
    /// What one throughput unit is (`images`, `tokens`).
    fn unit(&self) -> &'static str {
        "images"
    }
    /// Throughput units per sample (1 image; a window's tokens).
    fn units_per_sample(&self) -> usize {
        1
    }
    /// The order of `epoch`'s samples when the source wants its own (e.g.
    /// shard after shard for WebDataset shards); `None`: the sampler's
    /// shuffle. It must depend on `(seed, epoch)` alone, as batches do.
    fn epoch_order(&self, _seed: u64, _epoch: u64) -> Option<Vec<usize>> {
        None
    }
}

/// One planned batch: its epoch and sample indices.
pub type Plan = (usize, Vec<usize>);

/// Starts a thread in `scope` that builds the batches of `plans` in order and
/// keeps up to `depth` of them ready. Dropping the receiver stops it after
/// the batch in hand.
pub fn prefetch<'scope, 'env, S, I>(
    scope: &'scope Scope<'scope, 'env>,
    source: &'env S,
    plans: I,
    depth: usize,
) -> Receiver<Result<Batch>>
where
    S: BatchSource + ?Sized,
    I: Iterator<Item = Plan> + Send + 'scope,
{
    let (sender, receiver) = sync_channel(depth.max(1));
    scope.spawn(move || {
        for (epoch, indices) in plans {
            if sender.send(source.batch(epoch, &indices)).is_err() {
                return;
            }
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Named;
    use tch::Tensor;

    struct Counting;

    impl BatchSource for Counting {
        fn len(&self) -> usize {
            100
        }
        fn batch(&self, epoch: usize, indices: &[usize]) -> Result<Batch> {
            let values: Vec<i64> = indices.iter().map(|&i| (epoch * 1000 + i) as i64).collect();
            Ok(Batch {
                inputs: Named::new().with("values", Tensor::from_slice(&values)),
                indices: indices.to_vec(),
                ..Default::default()
            })
        }
    }

    #[test]
    fn prefetched_batches_arrive_in_plan_order() {
        let plans: Vec<Plan> = (0..20).map(|b| (b / 5, vec![b, b + 1])).collect();
        let got: Vec<Vec<usize>> = std::thread::scope(|scope| {
            let batches = prefetch(scope, &Counting, plans.clone().into_iter(), 2);
            batches.iter().map(|b| b.unwrap().indices).collect()
        });
        let expected: Vec<Vec<usize>> = plans.iter().map(|p| p.1.clone()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn dropping_the_receiver_stops_the_producer() {
        let plans = (0..).map(|b| (0, vec![b % 100]));
        std::thread::scope(|scope| {
            let batches = prefetch(scope, &Counting, plans, 1);
            let first = batches.recv().unwrap().unwrap();
            assert_eq!(first.indices, vec![0]);
            drop(batches);
        });
        // Reaching here means the scope joined: the infinite producer stopped.
    }
}

//! MoCo's queue of negative keys: a ring buffer of the most recent L2-normalised
//! keys, saved in checkpoints so a resumed run sees the same negatives.

use crate::error::{check_shape, Error, Result};
use crate::optim::state::{find, find_count};
use tch::{Device, Kind, Tensor};

/// A fixed-size FIFO of `[size, dim]` keys.
#[derive(Debug)]
pub struct NegativeQueue {
    keys: Tensor,
    pointer: i64,
}

impl NegativeQueue {
    /// Random unit vectors, as MoCo initialises its queue.
    pub fn new(size: i64, dim: i64, device: Device) -> Self {
        let keys = Tensor::randn([size, dim], (Kind::Float, device));
        let keys = &keys / keys.norm_scalaropt_dim(2, [1], true);
        Self { keys, pointer: 0 }
    }

    /// The current negatives, `[size, dim]`.
    pub fn keys(&self) -> &Tensor {
        &self.keys
    }

    /// Replaces the oldest entries with `keys` `[batch, dim]` (normalised here,
    /// detached), wrapping around the end; of a batch larger than the queue,
    /// the last `size` keys stay.
    pub fn enqueue(&mut self, keys: &Tensor) -> Result<()> {
        let (size, dim) = (self.keys.size()[0], self.keys.size()[1]);
        check_shape(
            keys.dim() == 2 && keys.size()[1] == dim,
            "NegativeQueue::enqueue: keys",
            &format!("[batch, {dim}]"),
            keys,
        )?;
        let keys = match keys.size()[0] {
            batch if batch > size => keys.narrow(0, batch - size, size),
            _ => keys.shallow_clone(),
        };
        tch::no_grad(|| {
            let keys = keys.detach();
            let keys = &keys / keys.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
            let batch = keys.size()[0];
            let first = batch.min(size - self.pointer);
            self.keys
                .narrow(0, self.pointer, first)
                .copy_(&keys.narrow(0, 0, first));
            if first < batch {
                self.keys
                    .narrow(0, 0, batch - first)
                    .copy_(&keys.narrow(0, first, batch - first));
            }
            self.pointer = (self.pointer + batch) % size;
        });
        Ok(())
    }

    /// `queue.keys` and `queue.pointer`, for checkpoints.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![
            (format!("{prefix}keys"), self.keys.shallow_clone()),
            (format!("{prefix}pointer"), Tensor::from(self.pointer)),
        ]
    }

    /// Restores what [`NegativeQueue::state`] saved.
    pub fn load_state(&mut self, prefix: &str, named: &[(String, Tensor)]) -> Result<()> {
        let keys = find(named, &format!("{prefix}keys"))?;
        if keys.size() != self.keys.size() {
            return Err(Error::State(format!(
                "`{prefix}keys` has shape {:?}, the queue {:?}",
                keys.size(),
                self.keys.size()
            )));
        }
        tch::no_grad(|| self.keys.copy_(keys));
        // The next row written: past the queue's end it would index outside it.
        let rows = self.keys.size()[0];
        self.pointer = find_count(named, &format!("{prefix}pointer"), rows - 1)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enqueue_wraps_around_and_keeps_the_newest() {
        let mut queue = NegativeQueue::new(5, 2, Device::Cpu);
        let batch = |v: f32| Tensor::from_slice(&[v, 0.0, v, 0.0, v, 0.0]).view([3, 2]);
        queue.enqueue(&batch(1.0)).unwrap();
        queue.enqueue(&batch(-1.0)).unwrap(); // rows 3, 4, then 0
        let first_column: Vec<f32> = Vec::try_from(queue.keys().select(1, 0)).unwrap();
        assert_eq!(first_column, vec![-1.0, 1.0, 1.0, -1.0, -1.0]);
        let mut restored = NegativeQueue::new(5, 2, Device::Cpu);
        restored
            .load_state("queue.", &queue.state("queue."))
            .unwrap();
        assert!(restored.keys().equal(queue.keys()));
        assert!(queue
            .enqueue(&Tensor::zeros([6, 3], (Kind::Float, Device::Cpu)))
            .is_err());
        // A batch larger than the queue leaves its newest keys.
        let mut small = NegativeQueue::new(2, 1, Device::Cpu);
        small
            .enqueue(&Tensor::from_slice(&[1f32, -1., 1., -1.]).view([4, 1]))
            .unwrap();
        assert_eq!(
            Vec::<f32>::try_from(small.keys().flatten(0, -1)).unwrap(),
            vec![1., -1.]
        );
    }
}

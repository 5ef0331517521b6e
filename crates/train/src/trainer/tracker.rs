//! Losses and method scalars kept on the device until someone needs them.
//! Reading a value back is a host-device sync that stalls a GPU; the loop
//! reads all pending step losses in one go when it writes a log row, ends an
//! epoch or saves a checkpoint, and still names the first step whose loss
//! was NaN or infinite (so the last checkpoint saved is always a good one).

use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// Step losses and scalars not yet read back.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// This optimizer step's micro-batch losses, summed (already divided by
    /// the number of micro-batches).
    micro: Option<Tensor>,
    /// `(optimizer step, loss)` of finished steps not yet read back.
    pending: Vec<(usize, Tensor)>,
    /// Losses read back since the last log row.
    window: Vec<f64>,
    /// Per scalar name: its sum over the micro-steps since the last log row, and their count.
    scalars: Vec<(&'static str, Tensor, usize)>,
}

/// What a flush read back.
#[derive(Debug, Default)]
pub(super) struct Flushed {
    /// The losses of the steps read, in order.
    pub losses: Vec<f64>,
}

impl Tracker {
    /// Adds one micro-batch's loss (scaled by `1 / micro_batches`) and its scalars.
    pub fn add_micro(
        &mut self,
        loss: &Tensor,
        micro_batches: usize,
        scalars: &[(&'static str, Tensor)],
    ) {
        let share = loss.detach().to_kind(Kind::Float) / micro_batches as f64;
        self.micro = Some(match self.micro.take() {
            Some(sum) => sum + share,
            None => share,
        });
        for (name, value) in scalars {
            let value = value.detach().to_kind(Kind::Float);
            match self.scalars.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, sum, count)) => {
                    *sum = &*sum + value;
                    *count += 1;
                }
                None => self.scalars.push((name, value, 1)),
            }
        }
    }

    /// Closes optimizer step `step` (1-based).
    pub fn end_step(&mut self, step: usize) {
        if let Some(loss) = self.micro.take() {
            self.pending.push((step, loss));
        }
    }

    /// Reads every pending loss back in one transfer; the first NaN or
    /// infinite one becomes an error naming its step.
    pub fn flush(&mut self) -> Result<Flushed> {
        if self.pending.is_empty() {
            return Ok(Flushed::default());
        }
        let (steps, tensors): (Vec<usize>, Vec<Tensor>) =
            std::mem::take(&mut self.pending).into_iter().unzip();
        let stacked = crate::distributed::mean_over_ranks(&Tensor::stack(&tensors, 0))?;
        let values: Vec<f64> = Vec::<f32>::try_from(stacked)?
            .into_iter()
            .map(f64::from)
            .collect();
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteLoss {
                step: steps[bad],
                value: values[bad],
            });
        }
        self.window.extend(&values);
        Ok(Flushed { losses: values })
    }

    /// The mean loss and the mean of each scalar since the last call (after
    /// a [`Tracker::flush`]); starts a new window.
    pub fn take_window(&mut self) -> Result<(f64, Vec<(&'static str, f64)>)> {
        let window = std::mem::take(&mut self.window);
        let loss = window.iter().sum::<f64>() / window.len().max(1) as f64;
        let scalars = std::mem::take(&mut self.scalars);
        if scalars.is_empty() {
            return Ok((loss, Vec::new()));
        }
        let means: Vec<Tensor> = scalars
            .iter()
            .map(|(_, sum, count)| sum.reshape([1]) / *count as f64)
            .collect();
        let means = Vec::<f32>::try_from(crate::distributed::mean_over_ranks(&Tensor::cat(
            &means, 0,
        ))?)?;
        let named = scalars
            .iter()
            .zip(means)
            .map(|((name, _, _), mean)| (*name, f64::from(mean)));
        Ok((loss, named.collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_wait_on_the_device_and_nan_names_its_step() {
        let mut tracker = Tracker::default();
        for (step, value) in [(1, 2.0), (2, 4.0)] {
            for _ in 0..2 {
                let scalar = [("cosine", Tensor::from(value / 10.0))];
                tracker.add_micro(&Tensor::from(value), 2, &scalar);
            }
            tracker.end_step(step);
        }
        assert_eq!(tracker.flush().unwrap().losses, vec![2.0, 4.0]);
        let (loss, scalars) = tracker.take_window().unwrap();
        assert_eq!(loss, 3.0);
        assert_eq!(scalars.len(), 1);
        assert!((scalars[0].1 - 0.3).abs() < 1e-6, "{scalars:?}");
        for (step, value) in [(3, 1.0), (4, f64::NAN), (5, f64::INFINITY)] {
            tracker.add_micro(&Tensor::from(value), 1, &[]);
            tracker.end_step(step);
        }
        let error = tracker.flush().unwrap_err();
        assert!(
            matches!(error, Error::NonFiniteLoss { step: 4, .. }),
            "{error}"
        );
    }
}

//! Per-parameter state buffers shared by the optimizers: one tensor per
//! parameter per named slot, saved as `<slot>.<parameter name>`.

use super::ParamGroup;
use crate::error::{Error, Result};
use tch::Tensor;

/// Zero-initialised buffers shaped like every parameter of every group.
#[derive(Debug)]
pub struct Buffers {
    /// The slot name used in saved state, e.g. `momentum_buffer`.
    pub slot: &'static str,
    /// `[group][parameter]`.
    pub values: Vec<Vec<Tensor>>,
}

impl Buffers {
    /// Zeros like each parameter.
    pub fn zeros_like(slot: &'static str, groups: &[ParamGroup]) -> Self {
        Self {
            slot,
            values: groups
                .iter()
                .map(|g| g.params.iter().map(Tensor::zeros_like).collect())
                .collect(),
        }
    }

    /// Named tensors for saving.
    pub fn state(&self, groups: &[ParamGroup]) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            for (i, name) in group.names.iter().enumerate() {
                out.push((
                    format!("{}.{name}", self.slot),
                    self.values[g][i].shallow_clone(),
                ));
            }
        }
        out
    }

    /// Copies saved tensors back; each must be present with the parameter's shape.
    pub fn load(&mut self, groups: &[ParamGroup], named: &[(String, Tensor)]) -> Result<()> {
        for (g, group) in groups.iter().enumerate() {
            for (i, name) in group.names.iter().enumerate() {
                let key = format!("{}.{name}", self.slot);
                let saved = find(named, &key)?;
                let slot = &mut self.values[g][i];
                if saved.size() != slot.size() {
                    return Err(Error::State(format!(
                        "`{key}` has shape {:?}, the parameter {:?}",
                        saved.size(),
                        slot.size()
                    )));
                }
                tch::no_grad(|| slot.copy_(saved));
            }
        }
        Ok(())
    }
}

/// The tensor saved under `key`, or an error naming it.
pub fn find<'a>(named: &'a [(String, Tensor)], key: &str) -> Result<&'a Tensor> {
    named
        .iter()
        .find(|(n, _)| n == key)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::State(format!("missing entry `{key}`")))
}

/// The whole number saved under `key`, in `0..=max`: one element (any
/// shape of one, as a 0-d tensor is), integral. A crafted or damaged
/// checkpoint with a vector, a fraction or an out-of-range count there is
/// an error naming the key, never a panic or an index past a buffer.
pub fn find_count(named: &[(String, Tensor)], key: &str, max: i64) -> Result<i64> {
    let tensor = find(named, key)?;
    if tensor.numel() != 1 {
        return Err(Error::State(format!(
            "`{key}` has shape {:?}; it must be one number",
            tensor.size()
        )));
    }
    let value = tensor
        .reshape([])
        .f_double_value(&[])
        .map_err(|e| Error::State(format!("`{key}`: {e}")))?;
    if !(value >= 0.0 && value.fract() == 0.0 && value <= max as f64) {
        return Err(Error::State(format!(
            "`{key}` is {value}; it must be a whole number from 0 to {max}"
        )));
    }
    Ok(value as i64)
}

/// A 0-dimensional tensor holding `value` on `like`'s device and dtype: with
/// `addcmul_` it gives `p += value · t` in one kernel and no temporary
/// (tch's `add_` has no `alpha`).
pub fn scalar_like(value: f64, like: &Tensor) -> Tensor {
    Tensor::from(value)
        .to_kind(like.kind())
        .to_device(like.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_must_be_one_whole_number_in_range() {
        let named = |t: Tensor| vec![("step".to_string(), t)];
        assert_eq!(
            find_count(&named(Tensor::from(7i64)), "step", 10).unwrap(),
            7
        );
        assert_eq!(
            find_count(&named(Tensor::from_slice(&[3i64])), "step", 10).unwrap(),
            3
        );
        for (bad, problem) in [
            (Tensor::from_slice(&[1i64, 2]), "has shape [2]"),
            (Tensor::from(2.5f64), "whole number"),
            (Tensor::from(-1i64), "whole number"),
            (Tensor::from(11i64), "from 0 to 10"),
            (Tensor::from(f64::NAN), "whole number"),
        ] {
            let error = find_count(&named(bad), "step", 10).unwrap_err().to_string();
            assert!(
                error.contains("`step`") && error.contains(problem),
                "{error}"
            );
        }
    }
}

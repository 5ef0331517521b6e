//! Cross-entropy losses of the classification-style pretext tasks: rotation
//! prediction, masked language modelling and next-token prediction.

use crate::error::{check_shape, Result};
use tch::Tensor;

/// Label value that the token losses ignore (PyTorch's convention).
pub const IGNORE_INDEX: i64 = -100;

/// Rotation prediction (Gidaris et al., 2018): cross-entropy of the 4-way
/// rotation logits.
///
/// # Shapes
/// - `logits`: `[batch, 4]`; `rotations`: `[batch]` int64 in `0..4`; returns a scalar.
pub fn rotation_prediction(logits: &Tensor, rotations: &Tensor) -> Result<Tensor> {
    check_shape(
        logits.dim() == 2 && logits.size()[1] == 4,
        "rotation_prediction: logits",
        "[batch, 4]",
        logits,
    )?;
    check_shape(
        rotations.size() == [logits.size()[0]],
        "rotation_prediction: rotations",
        &format!("[{}]", logits.size()[0]),
        rotations,
    )?;
    Ok(logits.cross_entropy_for_logits(rotations))
}

fn token_cross_entropy(logits: &Tensor, labels: &Tensor, what: &str) -> Result<Tensor> {
    check_shape(
        logits.dim() == 3,
        &format!("{what}: logits"),
        "[batch, tokens, vocab]",
        logits,
    )?;
    let size = logits.size();
    check_shape(
        labels.size() == size[..2],
        &format!("{what}: labels"),
        &format!("{:?}", &size[..2]),
        labels,
    )?;
    Ok(logits.reshape([-1, size[2]]).cross_entropy_loss::<Tensor>(
        &labels.reshape([-1]),
        None,
        tch::Reduction::Mean,
        IGNORE_INDEX,
        0.0,
    ))
}

/// Masked-LM cross-entropy (BERT): mean over positions whose label is not
/// [`IGNORE_INDEX`], i.e. over the selected tokens only.
///
/// # Shapes
/// - `logits`: `[batch, tokens, vocab]`; `labels`: `[batch, tokens]` int64; returns a scalar.
pub fn masked_lm(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    token_cross_entropy(logits, labels, "masked_lm")
}

/// Next-token cross-entropy (GPT): `targets` are the inputs shifted by one.
///
/// # Shapes
/// - `logits`: `[batch, tokens, vocab]`; `targets`: `[batch, tokens]` int64; returns a scalar.
pub fn next_token(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    token_cross_entropy(logits, targets, "next_token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn ignored_labels_do_not_count() {
        let logits = Tensor::randn([1, 3, 5], (Kind::Float, Device::Cpu));
        let all = Tensor::from_slice(&[1i64, 2, 3]).view([1, 3]);
        let some = Tensor::from_slice(&[1i64, IGNORE_INDEX, IGNORE_INDEX]).view([1, 3]);
        let expected = -logits
            .get(0)
            .get(0)
            .log_softmax(0, Kind::Float)
            .double_value(&[1]);
        assert!((masked_lm(&logits, &some).unwrap().double_value(&[]) - expected).abs() < 1e-6);
        assert!(next_token(&logits, &all).is_ok());
        let err = masked_lm(&logits, &all.narrow(1, 0, 2))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("masked_lm: labels") && err.contains("[1, 3]"),
            "{err}"
        );
    }

    #[test]
    fn rotation_needs_four_classes() {
        let logits = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let err = rotation_prediction(&logits, &Tensor::from_slice(&[0i64, 1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[batch, 4]"), "{err}");
    }
}

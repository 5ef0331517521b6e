//! One batch as a method sees it: named model inputs, named targets, and the
//! class labels an online probe may train on. The trainer never looks inside
//! inputs or targets; a modality's source and its methods agree on the names
//! (images: `view0`, `view1`, …; text: `tokens`, and the pretext task's targets).

use crate::error::{Error, Result};
use tch::Tensor;

/// Tensors by name, in the order they were added.
#[derive(Debug, Default)]
pub struct Named {
    entries: Vec<(String, Tensor)>,
}

impl Named {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `tensor` as `name` and returns the set (builder style).
    pub fn with(mut self, name: impl Into<String>, tensor: Tensor) -> Self {
        self.push(name, tensor);
        self
    }

    /// Adds `tensor` as `name`.
    pub fn push(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.entries.push((name.into(), tensor));
    }

    /// The tensor called `name`; the error lists the names there are, so a
    /// method paired with the wrong data source says so.
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                let present: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
                Error::Config {
                    origin: "data".into(),
                    message: format!(
                        "the batch has no `{name}` (it has: {}); is the method paired with the right data?",
                        present.join(", ")
                    ),
                }
            })
    }

    /// Every tensor, in order.
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.entries.iter().map(|(_, t)| t).collect()
    }

    /// `(name, tensor)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// How many tensors there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One batch, already on the device.
#[derive(Debug, Default)]
pub struct Batch {
    /// What the model reads. Image sources give one normalised
    /// `[batch, channels, height, width]` float tensor per view (`view0`,
    /// `view1`, …; views may differ in size, as in multi-crop); text sources
    /// give `[batch, tokens]` int64 ids as `tokens`.
    pub inputs: Named,
    /// What a pretext task predicts, when the source prepares it (text: the
    /// next or the masked tokens); empty for images.
    pub targets: Named,
    /// `[batch]` int64 class labels for the trainer's online probe, when the
    /// data has them; pretext tasks ignore them.
    pub labels: Option<Tensor>,
    /// Index of each sample in the data set.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Image views: every input, in order (see [`Batch::inputs`]).
    pub fn views(&self) -> Vec<&Tensor> {
        self.inputs.tensors()
    }

    /// The name of view `index` (`view0`, `view1`, …).
    pub fn view_name(index: usize) -> String {
        format!("view{index}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_and_missing_ones_listed() {
        let named = Named::new()
            .with("tokens", Tensor::from(1i64))
            .with("targets", Tensor::from(2i64));
        assert_eq!(named.get("targets").unwrap().int64_value(&[]), 2);
        assert_eq!(named.len(), 2);
        let error = named.get("segments").unwrap_err().to_string();
        assert!(
            error.contains("`segments`") && error.contains("tokens, targets"),
            "{error}"
        );
        let names: Vec<&str> = named.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["tokens", "targets"]);
    }
}

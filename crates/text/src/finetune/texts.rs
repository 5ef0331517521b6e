//! Labelled texts as a text model reads them, and the pooled features a
//! classifier head sits on.

use crate::registry::TextMethod;
use selfsup_data::labelled_texts::{encode_start, ClassTexts};
use selfsup_data::tokenizer::Tokenizer;
use selfsup_train::eval::LabelledData;
use selfsup_train::{FeatureExtractor, Result};
use tch::{Device, Kind, Tensor};

/// Padding in the id tensors: not a token; the features mask it out.
const PAD: i64 = -1;

/// How a sequence's hidden states become one feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// BERT's pooled `[CLS]` for BERT runs, the mean otherwise.
    Auto,
    /// The first position (`[CLS]` for BERT, through its pooler).
    Cls,
    /// The mean over the real tokens.
    Mean,
}

impl std::str::FromStr for Pooling {
    type Err = selfsup_train::Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(Self::Auto),
            "cls" => Ok(Self::Cls),
            "mean" => Ok(Self::Mean),
            _ => Err(selfsup_train::check::invalid(
                "--pooling",
                format!("{text:?}: use auto, cls or mean"),
            )),
        }
    }
}

/// Token ids of labelled texts, framed as the model was pretrained
/// (`[CLS] … [SEP]` for BERT) and cut to its context.
#[derive(Debug)]
pub struct LabelledTexts {
    ids: Vec<Vec<i64>>,
    labels: Vec<i64>,
    classes: usize,
    length: usize,
    device: Device,
}

impl LabelledTexts {
    /// Tokenises the start of each text for `method` (at most its context).
    pub fn new(
        texts: &ClassTexts,
        tokenizer: &Tokenizer,
        method: &dyn TextMethod,
        device: Device,
    ) -> Self {
        let ids = texts
            .texts
            .iter()
            .map(|text| {
                method
                    .framed(&encode_start(tokenizer, text, method.text_tokens()))
                    .0
            })
            .collect();
        Self {
            ids,
            labels: texts.labels.clone(),
            classes: texts.classes.len(),
            length: method.context(),
            device,
        }
    }
}

impl LabelledData for LabelledTexts {
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn num_classes(&self) -> usize {
        self.classes
    }
    /// `[batch, context]` ids, −1 after each text's end (an empty text is
    /// one token 0, so no row is all padding).
    fn inputs(&self, indices: &[usize]) -> Result<Tensor> {
        let mut flat = Vec::with_capacity(indices.len() * self.length);
        for &i in indices {
            let row = &self.ids[i];
            match row.is_empty() {
                true => flat.push(0),
                false => flat.extend_from_slice(row),
            }
            flat.resize(flat.len().div_ceil(self.length) * self.length, PAD);
        }
        Ok(Tensor::from_slice(&flat)
            .view([indices.len() as i64, self.length as i64])
            .to_device(self.device))
    }
    fn labels(&self, indices: &[usize]) -> Tensor {
        Tensor::from_slice(&indices.iter().map(|&i| self.labels[i]).collect::<Vec<_>>())
    }
}

/// A text model's pooled features of padded ids (see [`LabelledTexts`]).
pub struct Pooled<'a> {
    /// The model.
    pub method: &'a dyn TextMethod,
    /// How states are pooled.
    pub pooling: Pooling,
}

impl FeatureExtractor for Pooled<'_> {
    fn features(&self, ids: &Tensor, train: bool) -> Tensor {
        let keep = ids.ne(PAD);
        let hidden = self
            .method
            .transformer()
            .encode(&ids.clamp_min(0), None, Some(&keep), train);
        let bert = crate::methods::as_bert(self.method);
        match (self.pooling, bert) {
            (Pooling::Auto | Pooling::Cls, Some(bert)) => bert.pooled(&hidden),
            (Pooling::Cls, None) => hidden.select(1, 0),
            _ => {
                let weights = keep.to_kind(Kind::Float).unsqueeze(-1);
                (hidden * &weights).sum_dim_intlist(1, false, Kind::Float)
                    / weights.sum_dim_intlist(1, false, Kind::Float)
            }
        }
    }
}

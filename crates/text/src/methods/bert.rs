//! BERT pretraining (Devlin et al., 2019): masked-LM plus a sentence-pair
//! task on `[CLS] A [SEP] B [SEP]` inputs with segment embeddings.
//! Next-sentence prediction by default, ALBERT's sentence-order prediction
//! (Lan et al., 2020) as `task = "sop"`. The sentence head is BERT's: a
//! pooler (dense + tanh) on the `[CLS]` state, then two logits; the loss
//! is the MLM loss plus the sentence loss.

use super::masked_lm::MlmHead;
use crate::registry::{Text, TextContext, TextMethod};
use crate::source::{Objective, PairObjective};
use crate::transformer::{Transformer, TransformerConfig};
use selfsup_core::blocks::{normal_linear, Attention};
use selfsup_core::losses::masked_lm;
use selfsup_data::sentence_pairs::{PairTask, PairTokens};
use selfsup_data::token_batches::Masking;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// BERT settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BertConfig {
    /// The encoder; `context` is the pair's length, specials included.
    pub model: TransformerConfig,
    /// Share of tokens selected for prediction (0.15).
    #[serde(default = "fifteen_percent")]
    pub select: f64,
    /// Share of the selected replaced by `[MASK]` (0.8).
    #[serde(default = "eighty_percent")]
    pub mask: f64,
    /// `nsp` (next sentence, BERT) or `sop` (sentence order, ALBERT).
    #[serde(default)]
    pub task: PairTask,
}

fn fifteen_percent() -> f64 {
    0.15
}

fn eighty_percent() -> f64 {
    0.8
}

/// The special tokens, after the tokenizer's ids: `[MASK]`, `[CLS]`,
/// `[SEP]`, `[PAD]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BertTokens {
    /// `[MASK]`.
    pub mask: u32,
    /// `[CLS]`, `[SEP]`, `[PAD]`.
    pub pair: PairTokens,
}

impl BertTokens {
    /// The specials of a tokenizer of `vocab` ids.
    pub fn after(vocab: usize) -> Self {
        let v = vocab as u32;
        Self {
            mask: v,
            pair: PairTokens {
                cls: v + 1,
                sep: v + 2,
                pad: v + 3,
            },
        }
    }
}

/// A BERT model: encoder with segments, MLM head, sentence head.
#[derive(Debug)]
pub struct Bert {
    config: BertConfig,
    tokens: BertTokens,
    /// Ids of the tokenizer (random replacements come from these).
    tokenizer_vocab: u32,
    model: Transformer,
    mlm: MlmHead,
    pooler: nn::Linear,
    sentence_head: nn::Linear,
}

impl Bert {
    /// Builds it under `path` for a tokenizer of `tokenizer_vocab` ids
    /// (the model has four more: the specials).
    pub fn new(path: nn::Path, config: &BertConfig, tokenizer_vocab: usize) -> Result<Self> {
        check::probability("method.select", config.select)?;
        if config.select == 0.0 {
            return Err(check::invalid("method.select", "0 selects no token to predict"));
        }
        check::probability("method.mask", config.mask)?;
        if config.model.context < 5 {
            return Err(check::invalid(
                "method.model.context",
                "`[CLS] A [SEP] B [SEP]` needs at least 5 tokens",
            ));
        }
        let vocab_size = tokenizer_vocab as i64 + 4;
        let dim = config.model.dim;
        let encoder = Transformer::new(&path / "encoder", &config.model, vocab_size, Attention::Bidirectional)?
            .with_segments(&path / "encoder" / "segment_embed", 2);
        Ok(Self {
            config: config.clone(),
            tokens: BertTokens::after(tokenizer_vocab),
            tokenizer_vocab: tokenizer_vocab as u32,
            model: encoder,
            mlm: MlmHead::new(&path, dim, vocab_size),
            pooler: normal_linear(&path / "pooler", dim, dim),
            sentence_head: normal_linear(&path / "sentence_head", dim, 2),
        })
    }

    /// Its special tokens.
    pub fn special_tokens(&self) -> BertTokens {
        self.tokens
    }

    /// The pooled `[CLS]` state, `[batch, dim]`: BERT's sentence representation.
    pub fn pooled(&self, hidden: &Tensor) -> Tensor {
        self.pooler.forward(&hidden.select(1, 0)).tanh()
    }

    /// `(MLM logits [batch, tokens, vocab], sentence logits [batch, 2])` of
    /// a pair batch's inputs (`tokens`, `segments`, `keep`).
    pub fn pair_logits(&self, batch: &Batch, train: bool) -> Result<(Tensor, Tensor)> {
        let inputs = &batch.inputs;
        let hidden = self.model.encode(
            inputs.get("tokens")?,
            Some(inputs.get("segments")?),
            Some(inputs.get("keep")?),
            train,
        );
        let sentence = self.sentence_head.forward(&self.pooled(&hidden));
        Ok((self.mlm.logits(&self.model, &hidden), sentence))
    }
}

impl Register<Text> for Bert {
    const NAME: &'static str = "bert";
    const SUMMARY: &'static str = "BERT: masked-LM plus next-sentence (or sentence-order) prediction on sentence pairs";
    const TEST_TABLE: &'static str = "name = \"bert\"\ntask = \"nsp\"\nselect = 0.15\nmask = 0.8\n[model]\ncontext = 16\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\ndropout = 0.1\n";
    type Config = BertConfig;
    fn build(config: &BertConfig, path: nn::Path, context: &TextContext) -> Result<Box<dyn TextMethod>> {
        Ok(Box::new(Self::new(path, config, context.tokenizer_vocab)?))
    }
}

impl TextMethod for Bert {
    /// MLM logits of plain ids (one segment, no padding): for fill-mask.
    fn logits(&self, ids: &Tensor, train: bool) -> Tensor {
        self.mlm.logits(&self.model, &self.model.hidden(ids, train))
    }
    fn transformer(&self) -> &Transformer {
        &self.model
    }
    fn objective(&self) -> Objective {
        let BertTokens { mask, pair } = self.tokens;
        let mut masking = Masking::bert(mask, self.tokenizer_vocab, vec![mask, pair.cls, pair.sep, pair.pad]);
        (masking.select, masking.mask) = (self.config.select, self.config.mask);
        Objective::Pairs(PairObjective {
            masking,
            task: self.config.task,
            tokens: pair,
        })
    }
    fn mask_id(&self) -> Option<u32> {
        Some(self.tokens.mask)
    }
    fn framed(&self, text: &[u32]) -> (Vec<i64>, usize) {
        let PairTokens { cls, sep, .. } = self.tokens.pair;
        let ids = std::iter::once(cls)
            .chain(text.iter().copied())
            .chain(std::iter::once(sep))
            .map(i64::from)
            .collect();
        (ids, 1)
    }
    fn text_tokens(&self) -> usize {
        self.context() - 2
    }
}

impl Method for Bert {
    /// Inputs `tokens`, `segments`, `keep`; targets `tokens` (MLM labels)
    /// and `sentence` (the pair's label). Loss: MLM + sentence.
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (mlm_logits, sentence_logits) = self.pair_logits(batch, train)?;
        let mlm = masked_lm(&mlm_logits, batch.targets.get("tokens")?)?;
        let labels = batch.targets.get("sentence")?;
        let sentence = sentence_logits.cross_entropy_for_logits(labels);
        let accuracy = sentence_logits
            .argmax(-1, false)
            .eq_tensor(labels)
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        let mut output = StepOutput::new(&mlm + &sentence);
        output.scalars = vec![
            ("mlm_loss", mlm.detach()),
            ("sentence_loss", sentence.detach()),
            ("sentence_accuracy", accuracy),
        ];
        Ok(output)
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self
    }
}

impl FeatureExtractor for Bert {
    /// Mean of the encoder's final hidden states over the tokens: `[batch, dim]`.
    fn features(&self, ids: &Tensor, train: bool) -> Tensor {
        self.model.mean_features(ids, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair_source::pair_batch;
    use selfsup_data::documents::Documents;
    use selfsup_data::sentence_pairs::SentencePairs;
    use tch::Device;

    /// `batch` with input `name` replaced by `tensor`.
    fn replaced(batch: &Batch, name: &str, tensor: Tensor) -> Batch {
        let mut inputs = selfsup_train::Named::new();
        for (n, t) in batch.inputs.iter() {
            inputs.push(n, if n == name { tensor.shallow_clone() } else { t.shallow_clone() });
        }
        let mut targets = selfsup_train::Named::new();
        for (n, t) in batch.targets.iter() {
            targets.push(n, t.shallow_clone());
        }
        Batch { inputs, targets, labels: None, indices: batch.indices.clone() }
    }

    fn config(task: PairTask) -> BertConfig {
        let text = format!(
            "task = \"{}\"\n[model]\ncontext = 24\ndim = 32\ndepth = 2\nheads = 2\n",
            match task {
                PairTask::Nsp => "nsp",
                PairTask::Sop => "sop",
            }
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn padding_changes_nothing_and_segments_matter() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let bert = Bert::new(vs.root(), &config(PairTask::Nsp), 10).unwrap();
        let tokens = bert.special_tokens();
        assert_eq!((tokens.mask, tokens.pair.cls, tokens.pair.pad), (10, 11, 13));
        let documents = Documents {
            documents: (0..4).map(|d| (0..5).map(|s| vec![(d + s) % 10; 3]).collect()).collect(),
        };
        let pairs = SentencePairs::new(documents, 24, PairTask::Nsp, tokens.pair, 0).unwrap();
        let Objective::Pairs(objective) = bert.objective() else { panic!("pairs") };
        let batch = pair_batch(&pairs, &objective, &[0, 1, 2], |i| (0, 0, i as u64), Device::Cpu);
        let (mlm, sentence) = bert.pair_logits(&batch, false).unwrap();
        assert_eq!(mlm.size(), vec![3, 24, 14]);
        assert_eq!(sentence.size(), vec![3, 2]);
        // Other ids under the padding leave the real positions' outputs alone.
        let keep = batch.inputs.get("keep").unwrap();
        let scrambled = batch.inputs.get("tokens").unwrap().where_self(keep, &Tensor::from(3i64));
        let other = replaced(&batch, "tokens", scrambled);
        let (mlm_other, sentence_other) = bert.pair_logits(&other, false).unwrap();
        assert!(sentence.allclose(&sentence_other, 1e-5, 1e-5, false));
        let real = keep.unsqueeze(-1).expand_as(&mlm);
        assert!(mlm.masked_select(&real).allclose(&mlm_other.masked_select(&real), 1e-5, 1e-5, false));
        let segments = 1 - batch.inputs.get("segments").unwrap();
        let swapped = replaced(&batch, "segments", segments);
        let (_, sentence_swapped) = bert.pair_logits(&swapped, false).unwrap();
        assert!(!sentence.allclose(&sentence_swapped, 1e-6, 1e-6, false));
    }

    #[test]
    fn the_loss_is_mlm_plus_sentence_and_both_heads_get_gradients() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut bert = Bert::new(vs.root(), &config(PairTask::Sop), 10).unwrap();
        let documents = Documents {
            documents: vec![(0..8).map(|s| vec![s as u32; 3]).collect()],
        };
        let pairs = SentencePairs::new(documents, 24, PairTask::Sop, bert.special_tokens().pair, 0).unwrap();
        let Objective::Pairs(objective) = bert.objective() else { panic!("pairs") };
        let batch = pair_batch(&pairs, &objective, &[0, 1], |i| (1, 0, i as u64), Device::Cpu);
        let output = bert.step(&batch, true).unwrap();
        let part = |name: &str| output.scalars.iter().find(|(n, _)| *n == name).unwrap().1.double_value(&[]);
        let total = output.loss.double_value(&[]);
        assert!((total - part("mlm_loss") - part("sentence_loss")).abs() < 1e-5);
        assert!((part("sentence_loss") - 2f64.ln()).abs() < 0.1, "near chance at init");
        output.loss.backward();
        let variables = vs.variables();
        for name in ["sentence_head.weight", "pooler.weight", "encoder.segment_embed.weight", "mlm_head.dense.weight"] {
            let grad = variables[name].grad().abs().sum(Kind::Float).double_value(&[]);
            assert!(grad > 0.0, "{name} gets a gradient");
        }
    }

    #[test]
    fn trains_and_resumes_exactly() {
        // Pairs of 16 characters: as masked-LM, few predicted tokens a step.
        super::super::smoke::trains_and_resumes(module_path!(), super::super::smoke::Smoke {
            name: "bert",
            steps: 200,
            batch_size: 32,
            factor: 0.9,
        });
    }

    #[test]
    fn bad_values_are_named() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut bad = config(PairTask::Nsp);
        bad.select = 0.0;
        let error = Bert::new(vs.root(), &bad, 10).unwrap_err().to_string();
        assert!(error.contains("method.select"), "{error}");
        let mut bad = config(PairTask::Nsp);
        bad.model.context = 4;
        let error = Bert::new(vs.root() / "b", &bad, 10).unwrap_err().to_string();
        assert!(error.contains("method.model.context"), "{error}");
    }
}

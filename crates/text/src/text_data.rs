//! What a text run trains and validates on: the token stream (next-token,
//! masked-LM, and the tokenizer every run saves), plus, for sentence-pair
//! models (BERT), the pairs of the training and the held-out documents.
//! The method's objective decides which batches it gets and how it is
//! scored, so the experiment and the tests treat every method alike.

use crate::eval::{pair_score, validation_score, LmScore};
use crate::pair_source::PairSource;
use crate::registry::TextMethod;
use crate::source::{Objective, TextSource};
use crate::TokenCorpus;
use selfsup_data::documents::Documents;
use selfsup_data::sentence_pairs::SentencePairs;
use selfsup_train::{check, BatchSource, Result};
use tch::Device;

/// Validation windows (or pairs) scored.
pub const VALIDATION_SAMPLES: usize = 400;

/// Training and held-out sentence pairs.
#[derive(Debug)]
pub struct PairSets {
    /// Pairs of the first documents.
    pub train: SentencePairs,
    /// Pairs of the held-out documents.
    pub validation: SentencePairs,
}

/// A run's data.
#[derive(Debug)]
pub struct TextData {
    /// The token stream and its tokenizer.
    pub corpus: TokenCorpus,
    /// The sentence pairs, for a model whose objective asks for them.
    pub pairs: Option<PairSets>,
}

impl TextData {
    /// The data `method` trains on: `corpus` alone, or for a sentence-pair
    /// method also `documents()` (tokenised with the corpus's tokenizer),
    /// split as the corpus is at `train_fraction`; `seed` fixes the chunking.
    pub fn for_method(
        corpus: TokenCorpus,
        method: &dyn TextMethod,
        documents: impl FnOnce(&TokenCorpus) -> Result<Documents>,
        train_fraction: f64,
        seed: u64,
    ) -> Result<Self> {
        let Objective::Pairs(objective) = method.objective() else {
            return Ok(Self {
                corpus,
                pairs: None,
            });
        };
        let (train, validation) = documents(&corpus)?.split(train_fraction);
        let pairs_of = |documents: Documents, which: &str| {
            let count = documents.len();
            SentencePairs::new(
                documents,
                method.context(),
                objective.task,
                objective.tokens,
                seed,
            )
            .map_err(|e| {
                let message = format!("{e} ({count} {which} documents)");
                check::invalid("data.train_fraction", message)
            })
        };
        let pairs = PairSets {
            train: pairs_of(train, "training")?,
            validation: pairs_of(validation, "validation")?,
        };
        Ok(Self {
            corpus,
            pairs: Some(pairs),
        })
    }

    /// The training batches `method` asks for.
    pub fn source<'a>(
        &'a self,
        method: &dyn TextMethod,
        seed: u64,
        device: Device,
    ) -> Box<dyn BatchSource + 'a> {
        match (method.objective(), &self.pairs) {
            (Objective::Pairs(objective), Some(pairs)) => Box::new(PairSource {
                pairs: &pairs.train,
                objective,
                seed,
                device,
            }),
            (objective, _) => Box::new(TextSource {
                tokens: self.corpus.train.as_ref(),
                length: method.context(),
                objective,
                seed,
                device,
            }),
        }
    }

    /// `method` on held-out text: held-out pairs for a sentence-pair model
    /// (MLM loss and sentence accuracy), validation windows otherwise.
    pub fn score(&self, method: &dyn TextMethod, device: Device) -> Result<LmScore> {
        let objective = method.objective();
        if let (Objective::Pairs(objective), Some(pairs), Some(bert)) =
            (&objective, &self.pairs, crate::methods::as_bert(method))
        {
            return pair_score(
                bert,
                objective,
                &pairs.validation,
                VALIDATION_SAMPLES,
                32,
                device,
            );
        }
        Ok(validation_score(
            method,
            &objective,
            self.corpus.validation.as_ref(),
            method.context(),
            32,
            VALIDATION_SAMPLES,
            device,
        )?)
    }
}

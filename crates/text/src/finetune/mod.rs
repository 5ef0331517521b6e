//! `selfsup finetune` for text runs: a labelled set (`root/<class>/<file>`),
//! a stratified held-out fifth (or a separate test set), a class-balanced
//! share of the rest's labels; the run's pretrained encoder and the same
//! architecture from random init are each fine-tuned whole with a linear
//! head (AdamW, warmup then cosine), next to a bag-of-words logistic
//! regression trained on the same labelled texts (`bow.rs`).

pub mod bow;
mod texts;

pub use texts::{LabelledTexts, Pooled, Pooling};

use crate::experiment::LoadedText;
use crate::registry::TextRegistry;
use selfsup_data::labelled_texts::{read_class_folders, ClassTexts};
use selfsup_train::eval::few_labels::{fine_tune_both, FewLabelSplit, FewLabels, Tunable};
use selfsup_train::eval::{FineTuneConfig, LabelledData};
use selfsup_train::{check, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Share of each class held out for scoring when no test set is given.
pub const HELD_OUT: f64 = 0.2;

/// What `selfsup finetune` on a text run was asked to do.
#[derive(Debug, Clone)]
pub struct FinetuneRequest<'a> {
    /// The run folder.
    pub run: &'a Path,
    /// `root/<class>/<file>` labelled texts.
    pub data: &'a Path,
    /// A separate labelled test set; without it a fifth of `data` is held out.
    pub test: Option<&'a Path>,
    /// Share of the training labels to use, in (0, 1].
    pub share: f64,
    /// Epochs, batch size, learning rate, weight decay, seed.
    pub config: FineTuneConfig,
    /// How hidden states become features.
    pub pooling: Pooling,
}

/// What it measured (also written to `<run>/finetune-<share>.toml`).
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneReport {
    /// The run folder.
    pub run: PathBuf,
    /// The class names.
    pub classes: Vec<String>,
    /// Tokens of each text the model reads (its context).
    pub tokens: usize,
    /// Share, sample counts, pretrained and random-init top-1.
    #[serde(flatten)]
    pub scores: Scores,
    /// Top-1 of bag-of-words logistic regression on the same labelled texts.
    pub bag_of_words: f64,
}

/// [`FewLabels`] in a form that serialises.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    /// Share of the training labels.
    pub share: f64,
    /// Labelled texts trained on.
    pub labelled: usize,
    /// Texts scored.
    pub held_out: usize,
    /// Top-1 of the pretrained model, fine-tuned.
    pub pretrained: f64,
    /// Top-1 of the same model from random init, fine-tuned.
    pub random_init: f64,
}

impl From<FewLabels> for Scores {
    fn from(f: FewLabels) -> Self {
        Self {
            share: f.share,
            labelled: f.labelled,
            held_out: f.held_out,
            pretrained: f.pretrained,
            random_init: f.random_init,
        }
    }
}

/// Fine-tunes the run at `request.run` on the labelled texts and reports.
pub fn finetune(registry: &TextRegistry, request: &FinetuneRequest<'_>) -> Result<FinetuneReport> {
    if !(request.share > 0.0 && request.share <= 1.0) {
        return Err(check::invalid(
            "--labels",
            format!("{} must be in (0, 1]", request.share),
        ));
    }
    request.config.validate("finetune")?;
    let loaded = LoadedText::open(registry, request.run)?;
    let texts = read_class_folders(request.data)?;
    let test_texts = request.test.map(read_class_folders).transpose()?;
    if let Some(test) = &test_texts {
        if test.classes != texts.classes {
            let message = format!(
                "classes {:?}, but the training set has {:?}",
                test.classes, texts.classes
            );
            return Err(check::invalid("--test", message));
        }
    }
    let encode = |t: &ClassTexts| {
        LabelledTexts::new(t, &loaded.tokenizer, loaded.method.as_ref(), loaded.device)
    };
    let data = encode(&texts);
    let test = test_texts.as_ref().map(encode);
    let split = FewLabelSplit::new(
        &data,
        test.as_ref().map(|t| t as &dyn LabelledData),
        HELD_OUT,
        request.share,
        request.config.seed,
    );
    let (random_vs, random) = loaded.random_init()?;
    let pooled = |method| Pooled {
        method,
        pooling: request.pooling,
    };
    let (trained_features, random_features) =
        (pooled(loaded.method.as_ref()), pooled(random.as_ref()));
    let scores = fine_tune_both(
        Tunable {
            backbone: &trained_features,
            vs: loaded.vs(),
        },
        Tunable {
            backbone: &random_features,
            vs: &random_vs,
        },
        &split,
        request.share,
        &request.config,
    )?;
    let train_bow = pick(&texts, &split.labelled.indices);
    let test_bow = pick(
        test_texts.as_ref().unwrap_or(&texts),
        &split.held_out.indices,
    );
    let bag_of_words = bow::bag_of_words_accuracy(
        (&train_bow.0, &train_bow.1),
        (&test_bow.0, &test_bow.1),
        texts.classes.len(),
    );
    let report = FinetuneReport {
        run: request.run.to_path_buf(),
        classes: texts.classes.clone(),
        tokens: loaded.method.context(),
        scores: scores.into(),
        bag_of_words,
    };
    write_report(&report)?;
    Ok(report)
}

/// The texts and labels of samples `indices`.
fn pick<'a>(source: &'a ClassTexts, indices: &[usize]) -> (Vec<&'a str>, Vec<i64>) {
    indices
        .iter()
        .map(|&i| (source.texts[i].as_str(), source.labels[i]))
        .unzip()
}

/// `<run>/finetune-<percent>pct.toml`, written atomically.
fn write_report(report: &FinetuneReport) -> Result<()> {
    let percent = report.scores.share * 100.0;
    let path = report.run.join(format!("finetune-{percent}pct.toml"));
    let text =
        toml::to_string(report).map_err(|e| check::invalid("finetune report", e.to_string()))?;
    let temporary = path.with_extension("toml.tmp");
    std::fs::write(&temporary, text).map_err(|e| selfsup_train::Error::io(&temporary, e))?;
    std::fs::rename(&temporary, &path).map_err(|e| selfsup_train::Error::io(&path, e))
}

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
use selfsup_train::eval::few_labels::{
    fine_tune_both, FewLabelRequest, FewLabelSplit, FewLabels, Tunable,
};
use selfsup_train::eval::LabelledData;
use selfsup_train::{check, Result};
use serde::Serialize;
use std::path::PathBuf;

/// What `selfsup finetune` on a text run was asked to do.
#[derive(Debug, Clone)]
pub struct FinetuneRequest<'a> {
    /// Run, labelled data, test set, label share and fine-tuning settings.
    pub few: FewLabelRequest<'a>,
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
    /// Tokens of each text the model reads (its context less `[CLS]`/`[SEP]`).
    pub tokens: usize,
    /// Share, sample counts, pretrained and random-init top-1.
    #[serde(flatten)]
    pub scores: FewLabels,
    /// Top-1 of bag-of-words logistic regression on the same labelled
    /// texts (TF-IDF over all the training text, C cross-validated).
    pub bag_of_words: f64,
    /// The L2 strength C the baseline's cross-validation chose.
    pub bag_of_words_c: f64,
}

/// Fine-tunes the run at `request.run` on the labelled texts and reports.
pub fn finetune(registry: &TextRegistry, request: &FinetuneRequest<'_>) -> Result<FinetuneReport> {
    let few = &request.few;
    few.validate()?;
    let loaded = LoadedText::open(registry, few.run)?;
    let texts = read_class_folders(few.data)?;
    let test_texts = few.test.map(read_class_folders).transpose()?;
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
    let split = FewLabelSplit::new(&data, test.as_ref().map(|t| t as &dyn LabelledData), few);
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
        few,
    )?;
    let train_bow = pick(&texts, &split.labelled.indices);
    let test_bow = pick(
        test_texts.as_ref().unwrap_or(&texts),
        &split.held_out.indices,
    );
    // All the training text (labelled or not; never the held-out texts)
    // gives the vocabulary, as pretraining saw it.
    let held_out: std::collections::BTreeSet<usize> = match test_texts {
        Some(_) => Default::default(),
        None => split.held_out.indices.iter().copied().collect(),
    };
    let corpus: Vec<&str> = (0..texts.texts.len())
        .filter(|i| !held_out.contains(i))
        .map(|i| texts.texts[i].as_str())
        .collect();
    let baseline = bow::bag_of_words(
        &corpus,
        (&train_bow.0, &train_bow.1),
        (&test_bow.0, &test_bow.1),
        texts.classes.len(),
    );
    let report = FinetuneReport {
        run: few.run.to_path_buf(),
        classes: texts.classes.clone(),
        tokens: loaded.method.text_tokens(),
        scores,
        bag_of_words: baseline.accuracy,
        bag_of_words_c: baseline.c,
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

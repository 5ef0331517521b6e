//! The classical baseline next to every fine-tuning number: bag-of-words
//! logistic regression, tuned as a reviewer would tune it. Words are
//! lower-cased runs of letters and digits over the whole text; the
//! vocabulary and IDF come from all the training text (labels unused, as
//! the pretraining saw it), the `MAX_WORDS` words in most documents;
//! features are TF-IDF (log-scaled counts times smoothed IDF, each row
//! L2-normalised, as scikit-learn's `TfidfVectorizer(sublinear_tf=True)`);
//! the classifier is multinomial logistic regression with L2 strength C
//! chosen by stratified cross-validation on the labelled texts alone (as
//! `LogisticRegressionCV`), fitted full-batch.

use std::collections::HashMap;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Vocabulary size (most frequent words by document frequency).
pub const MAX_WORDS: usize = 20_000;

/// Optimiser steps of the full-batch fit (convex; converges well before).
const STEPS: usize = 300;

/// Lower-cased alphanumeric words of `text`.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// A fitted TF-IDF vocabulary.
#[derive(Debug)]
pub struct TfIdf {
    index: HashMap<String, usize>,
    idf: Vec<f32>,
}

impl TfIdf {
    /// The vocabulary and IDF of `texts` (the training documents).
    pub fn fit(texts: &[&str], max_words: usize) -> Self {
        let mut document_frequency: HashMap<String, usize> = HashMap::new();
        for text in texts {
            let mut seen: Vec<String> = words(text).collect();
            seen.sort_unstable();
            seen.dedup();
            for word in seen {
                *document_frequency.entry(word).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> = document_frequency.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(max_words);
        let n = texts.len() as f32;
        let idf = ranked
            .iter()
            .map(|(_, df)| ((1.0 + n) / (1.0 + *df as f32)).ln() + 1.0)
            .collect();
        let index = ranked
            .into_iter()
            .enumerate()
            .map(|(i, (w, _))| (w, i))
            .collect();
        Self { index, idf }
    }

    /// Words in the vocabulary.
    pub fn len(&self) -> usize {
        self.idf.len()
    }

    /// True when no word was kept.
    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// `[texts, words]` L2-normalised TF-IDF rows.
    pub fn transform(&self, texts: &[&str]) -> Tensor {
        let width = self.len().max(1);
        let mut rows = vec![0f32; texts.len() * width];
        for (r, text) in texts.iter().enumerate() {
            let row = &mut rows[r * width..(r + 1) * width];
            for word in words(text) {
                if let Some(&column) = self.index.get(&word) {
                    row[column] += 1.0;
                }
            }
            for (value, idf) in row.iter_mut().zip(&self.idf) {
                if *value > 0.0 {
                    *value = (1.0 + value.ln()) * idf;
                }
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|v| *v /= norm);
        }
        Tensor::from_slice(&rows).view([texts.len() as i64, width as i64])
    }
}

/// The L2 strengths cross-validation chooses from (five decades around
/// scikit-learn's default C = 1).
pub const C_GRID: [f64; 5] = [0.01, 0.1, 1.0, 10.0, 100.0];

/// Folds of the cross-validation (fewer when a class has fewer samples).
const FOLDS: usize = 5;

/// The baseline's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BagOfWords {
    /// Top-1 on the test texts, 0–1.
    pub accuracy: f64,
    /// The L2 strength cross-validation chose.
    pub c: f64,
}

/// Logistic regression on TF-IDF words: vocabulary and IDF from `corpus`
/// (all training text, labels unused), C by cross-validation on `train`,
/// then fitted on all of `train` and scored on `test`.
pub fn bag_of_words(
    corpus: &[&str],
    train: (&[&str], &[i64]),
    test: (&[&str], &[i64]),
    classes: usize,
) -> BagOfWords {
    let tfidf = TfIdf::fit(corpus, MAX_WORDS);
    let x = tfidf.transform(train.0);
    let c = cross_validated_c(&x, train.1, classes);
    let (_vs, model) = fit(&x, train.1, classes, c);
    let x_test = tfidf.transform(test.0);
    BagOfWords {
        accuracy: accuracy(&model, &x_test, test.1),
        c,
    }
}

/// The C of [`C_GRID`] with the best mean held-out accuracy over
/// stratified folds of `(x, labels)` (the smallest C on a tie); C = 1 when
/// a class has a single sample.
pub fn cross_validated_c(x: &Tensor, labels: &[i64], classes: usize) -> f64 {
    let fold_of = stratified_folds(labels, FOLDS);
    let folds = fold_of.iter().max().map_or(0, |f| f + 1);
    if folds < 2 {
        return 1.0;
    }
    let rows = |keep: &dyn Fn(usize) -> bool| -> Vec<i64> {
        (0..labels.len())
            .filter(|&i| keep(fold_of[i]))
            .map(|i| i as i64)
            .collect()
    };
    let mut best = (f64::NEG_INFINITY, 1.0);
    for c in C_GRID {
        let mut total = 0.0;
        for fold in 0..folds {
            let (train, held) = (rows(&|f| f != fold), rows(&|f| f == fold));
            let pick = |idx: &[i64]| x.index_select(0, &Tensor::from_slice(idx));
            let labels_of =
                |idx: &[i64]| idx.iter().map(|&i| labels[i as usize]).collect::<Vec<_>>();
            let (_vs, model) = fit(&pick(&train), &labels_of(&train), classes, c);
            total += accuracy(&model, &pick(&held), &labels_of(&held));
        }
        let mean = total / folds as f64;
        if mean > best.0 {
            best = (mean, c);
        }
    }
    best.1
}

/// Each sample's fold: every class dealt round-robin over at most `k`
/// folds, as many as its smallest class has samples.
fn stratified_folds(labels: &[i64], k: usize) -> Vec<usize> {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    labels
        .iter()
        .for_each(|&l| *counts.entry(l).or_default() += 1);
    let folds = counts.values().copied().min().unwrap_or(0).min(k).max(1);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    labels
        .iter()
        .map(|&l| {
            let n = seen.entry(l).or_default();
            *n += 1;
            (*n - 1) % folds
        })
        .collect()
}

/// Multinomial logistic regression with scikit-learn's objective per
/// sample (mean loss + ‖W‖² / (2 C n)), fitted full-batch.
fn fit(x: &Tensor, labels: &[i64], classes: usize, c: f64) -> (nn::VarStore, nn::Linear) {
    // Zero weights and bias, as scikit-learn starts: nothing drawn from
    // libtorch's (process-wide) generator, which other work may be using.
    let vs = nn::VarStore::new(Device::Cpu);
    let linear = nn::linear(
        vs.root(),
        x.size()[1],
        classes as i64,
        nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: Some(nn::Init::Const(0.0)),
            ..Default::default()
        },
    );
    let y = Tensor::from_slice(labels);
    let strength = 1.0 / (2.0 * c * labels.len().max(1) as f64);
    let mut optimizer = nn::Adam::default().build(&vs, 0.1).expect("an optimiser");
    for _ in 0..STEPS {
        let loss = linear.forward(x).cross_entropy_for_logits(&y)
            + linear.ws.square().sum(Kind::Float) * strength;
        optimizer.backward_step(&loss);
    }
    (vs, linear)
}

/// Top-1 (0–1) of `model` on rows `x` labelled `labels`.
fn accuracy(model: &nn::Linear, x: &Tensor, labels: &[i64]) -> f64 {
    let predicted = tch::no_grad(|| model.forward(x).argmax(1, false));
    let right = predicted
        .eq_tensor(&Tensor::from_slice(labels))
        .sum(Kind::Int64)
        .int64_value(&[]);
    right as f64 / labels.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfidf_rows_are_normalised_and_rare_words_weigh_more() {
        let texts = ["the whale the sea", "the ship", "the whale"];
        let tfidf = TfIdf::fit(&texts, 10);
        assert_eq!(tfidf.len(), 4);
        let x = tfidf.transform(&["the whale sea sea unknown"]);
        let norm = x.square().sum(Kind::Float).double_value(&[]);
        assert!((norm - 1.0).abs() < 1e-5);
        let (the, sea) = (tfidf.index["the"] as i64, tfidf.index["sea"] as i64);
        assert!(x.double_value(&[0, sea]) > x.double_value(&[0, the]));
        assert_eq!(
            words("Hello, WORLD-42!").collect::<Vec<_>>(),
            vec!["hello", "world", "42"]
        );
    }

    #[test]
    fn logistic_regression_separates_word_classes() {
        let train: Vec<String> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    format!("cheap offer {i} buy now")
                } else {
                    format!("meeting notes {i} agenda")
                }
            })
            .collect();
        let labels: Vec<i64> = (0..40).map(|i| i % 2).collect();
        let test = ["buy this cheap offer", "agenda for the meeting"];
        let train_refs: Vec<&str> = train.iter().map(String::as_str).collect();
        let result = bag_of_words(&train_refs, (&train_refs, &labels), (&test, &[0, 1]), 2);
        assert_eq!(result.accuracy, 1.0);
        assert!(C_GRID.contains(&result.c));
    }

    /// The vocabulary comes from all the training text: a word only the
    /// unlabelled texts hold still gets a column (and its IDF counts them).
    #[test]
    fn the_vocabulary_comes_from_unlabelled_text_too() {
        let labelled = ["cheap offer", "meeting agenda"];
        let corpus = [
            "cheap offer",
            "meeting agenda",
            "unsubscribe here",
            "unsubscribe now",
        ];
        assert!(!TfIdf::fit(&labelled, 10).index.contains_key("unsubscribe"));
        let tfidf = TfIdf::fit(&corpus, 10);
        assert!(tfidf.index.contains_key("unsubscribe"));
        let x = tfidf.transform(&["unsubscribe"]);
        assert!(x.double_value(&[0, tfidf.index["unsubscribe"] as i64]) > 0.99);
    }

    /// Folds keep every class in every fold, C comes from the grid, and
    /// too few samples for two folds fall back to C = 1.
    #[test]
    fn c_is_chosen_by_stratified_cross_validation() {
        let labels: Vec<i64> = (0..20).map(|i| (i % 2) as i64).collect();
        let folds = stratified_folds(&labels, 5);
        for fold in 0..5 {
            let classes: Vec<i64> = (0..20)
                .filter(|&i| folds[i] == fold)
                .map(|i| labels[i])
                .collect();
            assert!(
                classes.contains(&0) && classes.contains(&1),
                "fold {fold}: {classes:?}"
            );
        }
        assert_eq!(
            stratified_folds(&[0, 0, 0, 1], 5),
            vec![0, 0, 0, 0],
            "a class of one: one fold"
        );
        // Each text is its class word plus a unique random-ish word: only
        // the class words generalise.
        let texts: Vec<String> = (0..20)
            .map(|i| format!("{} noise{i}", ["spam", "ham"][i % 2]))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let x = TfIdf::fit(&refs, 100).transform(&refs);
        let c = cross_validated_c(&x, &labels, 2);
        assert!(C_GRID.contains(&c), "{c}");
        assert_eq!(
            cross_validated_c(&x.narrow(0, 0, 3), &labels[..3], 2),
            1.0,
            "too few for folds"
        );
    }
}

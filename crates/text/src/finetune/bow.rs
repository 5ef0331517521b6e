//! The classical baseline next to every fine-tuning number: bag-of-words
//! logistic regression. Words are lower-cased runs of letters and digits
//! over the whole text; the vocabulary is the `MAX_WORDS` words in most
//! training documents; features are TF-IDF (log-scaled counts times smoothed
//! IDF, each row L2-normalised, as scikit-learn's `TfidfVectorizer(
//! sublinear_tf=True)`); the classifier is multinomial logistic regression
//! with scikit-learn's default L2 strength (C = 1), fitted full-batch.

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

/// Top-1 (0–1) on the test texts of logistic regression on TF-IDF words,
/// fitted on the training texts.
pub fn bag_of_words_accuracy(
    train: (&[&str], &[i64]),
    test: (&[&str], &[i64]),
    classes: usize,
) -> f64 {
    let tfidf = TfIdf::fit(train.0, MAX_WORDS);
    let (x, y) = (tfidf.transform(train.0), Tensor::from_slice(train.1));
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let linear = nn::linear(
        vs.root(),
        x.size()[1],
        classes as i64,
        nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            ..Default::default()
        },
    );
    // scikit-learn's objective, per sample: mean loss + ‖W‖² / (2 C n), C = 1.
    let strength = 1.0 / (2.0 * train.0.len().max(1) as f64);
    let mut optimizer = nn::Adam::default().build(&vs, 0.1).expect("an optimiser");
    for _ in 0..STEPS {
        let loss = linear.forward(&x).cross_entropy_for_logits(&y)
            + linear.ws.square().sum(Kind::Float) * strength;
        optimizer.backward_step(&loss);
    }
    let predicted = tch::no_grad(|| linear.forward(&tfidf.transform(test.0)).argmax(1, false));
    let right = predicted
        .eq_tensor(&Tensor::from_slice(test.1))
        .sum(Kind::Int64)
        .int64_value(&[]);
    right as f64 / test.0.len().max(1) as f64
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
        let accuracy = bag_of_words_accuracy((&train_refs, &labels), (&test, &[0, 1]), 2);
        assert_eq!(accuracy, 1.0);
    }
}

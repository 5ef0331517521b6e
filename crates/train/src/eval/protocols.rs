//! The protocols `selfsup eval` reports, for any modality: weighted k-NN and
//! a linear probe on frozen features, and fine-tuning on class-balanced
//! fractions of the labels, each fine-tuning on a fresh copy of the model.

use super::{
    extract_features, fine_tune, knn_top1, labels_of, linear_probe, EvalConfig, LabelledData,
};
use crate::error::Result;
use crate::method::FeatureExtractor;
use selfsup_data::sampler::balanced_subset;
use tch::nn::VarStore;

/// One line of an evaluation report.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRow {
    /// The `metrics.csv` name, e.g. `knn_top1`, `fine_tune_10pct_top1`.
    pub key: String,
    /// What a person reads, e.g. `k-NN (k = 200, T = 0.1)`.
    pub label: String,
    /// Top-1 accuracy, 0–1.
    pub value: f64,
}

/// k-NN top-1 of `extractor`'s features: `memory` is the memory bank,
/// `queries` are scored.
pub fn knn_accuracy(
    extractor: &dyn FeatureExtractor,
    memory: &dyn LabelledData,
    queries: &dyn LabelledData,
    eval: &EvalConfig,
) -> Result<f64> {
    let bank = extract_features(extractor, memory, eval.batch_size)?;
    let scored = extract_features(extractor, queries, eval.batch_size)?;
    Ok(knn_top1(
        &bank,
        &labels_of(memory),
        &scored,
        &labels_of(queries),
        memory.num_classes() as i64,
        eval.knn_k as i64,
        eval.knn_temperature,
    ))
}

/// Every protocol of `eval` on models made by `build` (a fresh one for the
/// frozen-feature protocols and one per fine-tuning fraction, since
/// fine-tuning changes the weights); `backbone` picks the feature extractor
/// out of what `build` made. Trains on `train`, scores on `held_out`.
pub fn run_protocols<T>(
    mut build: impl FnMut() -> Result<(VarStore, T)>,
    backbone: impl Fn(&T) -> &dyn FeatureExtractor,
    train: &dyn LabelledData,
    held_out: &dyn LabelledData,
    eval: &EvalConfig,
) -> Result<Vec<EvalRow>> {
    let mut rows = Vec::new();
    {
        let (_vs, model) = build()?;
        let extractor = backbone(&model);
        let bank = extract_features(extractor, train, eval.batch_size)?;
        let scored = extract_features(extractor, held_out, eval.batch_size)?;
        let (bank_labels, scored_labels) = (labels_of(train), labels_of(held_out));
        let classes = train.num_classes() as i64;
        let (k, t) = (eval.knn_k, eval.knn_temperature);
        let knn = knn_top1(
            &bank,
            &bank_labels,
            &scored,
            &scored_labels,
            classes,
            k as i64,
            t,
        );
        rows.push(row("knn_top1", format!("k-NN (k = {k}, T = {t})"), knn));
        tracing::info!(knn, "k-NN done; linear probe next");
        let probe = &eval.linear_probe;
        let accuracy = linear_probe(&bank, &bank_labels, &scored, &scored_labels, classes, probe);
        let label = format!("linear probe ({} epochs)", probe.epochs);
        rows.push(row("linear_probe_top1", label, accuracy));
    }
    let labels = train.all_labels();
    for &fraction in &eval.fine_tune.fractions {
        tracing::info!(fraction, "fine-tuning");
        let (vs, model) = build()?;
        let subset = balanced_subset(&labels, fraction, eval.fine_tune.seed);
        let accuracy = fine_tune(
            backbone(&model),
            &vs,
            train,
            &subset,
            held_out,
            &eval.fine_tune,
        )?;
        let percent = fraction * 100.0;
        rows.push(row(
            &format!("fine_tune_{}pct_top1", format_percent(percent)),
            format!(
                "fine-tune, {percent} % of labels ({} samples, {} epochs)",
                subset.len(),
                eval.fine_tune.epochs_for(subset.len(), labels.len())
            ),
            accuracy,
        ));
    }
    Ok(rows)
}

fn row(key: &str, label: String, value: f64) -> EvalRow {
    EvalRow {
        key: key.to_string(),
        label,
        value,
    }
}

/// `10` for 10 %, `0p5` for 0.5 %: a percentage as a metric-name part.
fn format_percent(percent: f64) -> String {
    let text = format!("{}", (percent * 1000.0).round() / 1000.0);
    text.replace('.', "p")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_make_clean_metric_names() {
        assert_eq!(format_percent(10.0), "10");
        assert_eq!(format_percent(1.0), "1");
        assert_eq!(format_percent(0.5), "0p5");
        assert_eq!(format_percent(100.0), "100");
    }
}

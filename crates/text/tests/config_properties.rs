//! `selfsup train text-<method>` on any config a user might write: every
//! numeric value of each text method's resolved config, set to 0, -1, a huge
//! number, NaN or a plausible random value, either trains (two steps on a
//! tiny corpus) or fails with one error that names the key, before a run
//! folder exists. Never a panic.

use proptest::prelude::*;
use selfsup_text::experiment::{Experiment, TrainRequest};
use selfsup_train::experiment::RunStart;
use selfsup_train::testing::{judge, numeric_keys, set_value, value_for, NumericKey, ValueKind};
use std::path::Path;

const COMMON: &str = r#"
[data]
path = "CORPUS"
train_fraction = 0.9

[optim]
optimizer = "adamw"
lr = 1e-3
min_lr = 1e-4
weight_decay = 0.01
weight_decay_end = 0.02
warmup_steps = 1

[trainer]
epochs = 1
max_steps = 2
batch_size = 4
device = "cpu"
log_every = 1
grad_clip = 1.0
"#;

/// Every registered method's test table (`Register::TEST_TABLE`), with
/// its task: a method that registers is fuzzed without editing this file.
fn methods() -> Vec<(String, String)> {
    selfsup_text::registry()
        .test_tables()
        .map(|(name, table)| (format!("text-{name}"), table.to_string()))
        .collect()
}

/// Two-word sentences in paragraphs of ten (the documents that
/// sentence-pair methods such as BERT's need).
fn write_corpus(dir: &Path) -> std::path::PathBuf {
    let words = ["call", "me", "ishmael", "some", "years", "ago"];
    let text: String = (0..300)
        .map(|i| {
            let sentence = format!("{} {}. ", words[i * 5 % 6], words[(i * 3 + 2) % 6]);
            match i % 10 {
                9 => sentence + "\n\n",
                _ => sentence,
            }
        })
        .collect();
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// The resolved config of one method (its test table under `[method]`).
fn resolved(task: &str, method: &str, corpus: &Path) -> toml::Table {
    let common = COMMON.replace("CORPUS", &corpus.display().to_string());
    let mut table: toml::Table = format!("name = \"{task}\"\n{common}").parse().unwrap();
    table.insert("method".into(), toml::Value::Table(method.parse().unwrap()));
    let text = toml::to_string(&table).unwrap();
    let config: selfsup_text::TextRunConfig = selfsup_text::registry()
        .parse_run(&text, "base", &[])
        .unwrap();
    config.to_toml().unwrap().parse().unwrap()
}

/// Keys whose bad values may be reported under another key they constrain.
fn related(key: &str) -> &'static [&'static str] {
    match key {
        "data.train_fraction" | "method.model.context" => {
            &["trainer.batch_size", "data.train_fraction"]
        }
        "method.model.heads" => &["method.model.dim"],
        _ => &[],
    }
}

fn try_config(
    task: &str,
    table: &toml::Table,
    key: &NumericKey,
    runs: &Path,
) -> Result<(), TestCaseError> {
    let text = toml::to_string(table).unwrap();
    let request = TrainRequest {
        task,
        config_text: &text,
        origin: "property",
        overrides: &[],
        data: None,
        start: RunStart {
            runs: runs.to_path_buf(),
            resume: None,
        },
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Experiment::prepare(&selfsup_text::registry(), request).map(|e| e.run().map(|_| ()))
    }));
    let outcome = outcome.map(|prepared| {
        prepared
            .map_err(|e| selfsup_train::check::invalid("(the error)", e))
            .map(|run| run.map_err(|e| selfsup_train::check::invalid("(the error)", e)))
    });
    let verdict = judge(key, related(&key.to_string()), runs, outcome);
    prop_assert!(verdict.is_ok(), "{task}: {}\n{text}", verdict.unwrap_err());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn any_numeric_value_trains_or_names_its_key(
        method in 0..selfsup_text::registry().len(),
        pick in any::<prop::sample::Index>(),
        kind in prop::sample::select(ValueKind::ALL.to_vec()),
        random in 0.0..1.0f64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let corpus = write_corpus(dir.path());
        let (task, table) = &methods()[method];
        let mut config = resolved(task, table, &corpus);
        let keys = numeric_keys(&config);
        let key = &keys[pick.index(keys.len())];
        set_value(&mut config, key, value_for(key, kind, random));
        try_config(task, &config, key, &dir.path().join("runs"))?;
    }
}

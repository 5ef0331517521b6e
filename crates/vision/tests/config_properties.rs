//! `selfsup train` on any config a user might write: every numeric value of
//! each vision method's resolved config, set to 0, -1, a huge number, NaN or
//! a plausible random value, either trains (a few steps on 40 tiny CIFAR-style
//! images) or fails with one error that names the key, before a run folder
//! exists. Never a panic.

use proptest::prelude::*;
use selfsup_data::cifar;
use selfsup_train::experiment::RunStart;
use selfsup_train::testing::{judge, numeric_keys, set_value, value_for, NumericKey, ValueKind};
use selfsup_vision::experiment::{Experiment, TrainRequest};
use std::path::Path;

/// The shared sections: CIFAR-format data with both colour views, a short
/// schedule with clipping and decay, a small k-NN.
const COMMON: &str = r#"
[data]
dataset = "cifar10"
path = "DATA"
split = "test"
held_out_every = 5

[[data.views]]
count = 2
size = 16
scale = [0.5, 1.0]
jitter = { brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1, p = 0.8 }
grayscale_p = 0.2
blur = { p = 0.5, kernel = 3, sigma = [0.1, 2.0] }
solarize_p = 0.1

[optim]
optimizer = "sgd"
lr = 0.1
weight_decay = 1e-4
weight_decay_end = 1e-3
warmup_epochs = 0.5

[trainer]
epochs = 1
max_steps = 2
batch_size = 8
device = "cpu"
log_every = 1
grad_clip = 1.0

[eval]
knn_k = 5
batch_size = 16
"#;

/// Every registered method's test table (`Register::TEST_TABLE`), with
/// its task: a method that registers is fuzzed without editing this file.
fn methods() -> Vec<(String, String)> {
    selfsup_vision::registry()
        .test_tables()
        .map(|(name, table)| (format!("vision-{name}"), table.to_string()))
        .collect()
}

/// 40 CIFAR-format images of 32x32; the views crop them to 16 (MAE and the
/// autoencoder read the whole 32x32 image: their test tables say
/// `image_size = 32`).
fn write_data(dir: &Path) {
    let records: Vec<(Vec<u8>, Vec<u8>)> = (0..40u8)
        .map(|i| {
            (
                vec![i % 10],
                (0..32 * 32 * 3)
                    .map(|p| (p as u8).wrapping_mul(i).wrapping_add(i))
                    .collect(),
            )
        })
        .collect();
    std::fs::write(dir.join("test_batch.bin"), cifar::encode_records(&records)).unwrap();
}

/// The resolved config of one method (its test table under `[method]`), as
/// `selfsup train` would write it.
fn resolved(task: &str, method: &str, data: &Path) -> toml::Table {
    let common = COMMON.replace("DATA", &data.display().to_string());
    let mut table: toml::Table = format!("name = \"{task}\"\n{common}").parse().unwrap();
    let method: toml::Table = method.parse().unwrap();
    // The vision test convention: a method that reads whole images (MAE,
    // the autoencoder) declares `image_size = 32`; the others take the
    // 16x16 views.
    if method.to_string().contains("image_size = 32") {
        table["data"].as_table_mut().unwrap().remove("views");
    }
    table.insert("method".into(), toml::Value::Table(method));
    let text = toml::to_string(&table).unwrap();
    let config: selfsup_vision::VisionRunConfig = selfsup_vision::registry()
        .parse_run(&text, "base", &[])
        .unwrap();
    config.to_toml().unwrap().parse().unwrap()
}

/// Keys whose bad values may be reported under another key they constrain.
fn related(key: &str) -> &'static [&'static str] {
    match key {
        "data.max_images" => &["trainer.batch_size", "eval.knn_k", "data.held_out_every"],
        "data.held_out_every" => &["trainer.batch_size", "eval.knn_k"],
        _ => &[],
    }
}

fn fails(_: &str) -> selfsup_vision::Result<std::path::PathBuf> {
    Err(selfsup_train::check::invalid("data.path", "no download in tests").into())
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
        dataset: None,
        data_dir: None,
        start: RunStart {
            runs: runs.to_path_buf(),
            resume: None,
        },
        fetch: &fails,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Experiment::prepare(&selfsup_vision::registry(), request).map(|e| e.run().map(|_| ()))
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
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_numeric_value_trains_or_names_its_key(
        method in 0..selfsup_vision::registry().len(),
        pick in any::<prop::sample::Index>(),
        kind in prop::sample::select(ValueKind::ALL.to_vec()),
        random in 0.0..1.0f64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_data(dir.path());
        let (task, table) = &methods()[method];
        let mut config = resolved(task, table, dir.path());
        let keys = numeric_keys(&config);
        let key = &keys[pick.index(keys.len())];
        set_value(&mut config, key, value_for(key, kind, random));
        try_config(task, &config, key, &dir.path().join("runs"))?;
    }
}

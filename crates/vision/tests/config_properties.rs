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

const CNN: &str = "[method.backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";

/// Each method's `[method]` table, small.
fn methods() -> Vec<(&'static str, String)> {
    vec![
        ("vision-simclr", format!("[method]\nname = \"simclr\"\nproj_hidden = 16\nproj_dim = 8\ntemperature = 0.2\n{CNN}")),
        ("vision-moco", format!("[method]\nname = \"moco\"\nproj_hidden = 16\nproj_dim = 8\nqueue_size = 32\ntemperature = 0.2\nbase_momentum = 0.99\n{CNN}")),
        ("vision-mocov3", format!("[method]\nname = \"mocov3\"\nproj_hidden = 16\nproj_dim = 8\npred_hidden = 16\ntemperature = 0.2\nbase_momentum = 0.99\n{CNN}")),
        ("vision-rotnet", format!("[method]\nname = \"rotnet\"\n{CNN}")),
        ("vision-byol", format!("[method]\nname = \"byol\"\nproj_hidden = 16\nproj_dim = 8\npred_hidden = 16\nbase_momentum = 0.99\n{CNN}")),
        ("vision-simsiam", format!("[method]\nname = \"simsiam\"\nproj_hidden = 16\nproj_dim = 16\nproj_layers = 2\npred_hidden = 8\n{CNN}")),
        ("vision-barlowtwins", format!("[method]\nname = \"barlowtwins\"\nproj_hidden = 16\nproj_dim = 16\nlambda = 0.0051\nscale_loss = 0.1\n{CNN}")),
        ("vision-vicreg", format!("[method]\nname = \"vicreg\"\nproj_hidden = 16\nproj_dim = 16\ninvariance = 25.0\nvariance = 25.0\ncovariance = 1.0\n{CNN}")),
        ("vision-swav", format!("[method]\nname = \"swav\"\nproj_hidden = 16\nproj_dim = 8\nprototypes = 12\ntemperature = 0.1\nepsilon = 0.05\nsinkhorn_iterations = 3\nqueue_size = 16\nqueue_start_epoch = 0\nfreeze_prototypes_epochs = 1\n{CNN}")),
        (
            "vision-dino",
            "[method]\nname = \"dino\"\nhead_hidden = 16\nbottleneck = 8\nout_dim = 32\nbase_momentum = 0.99\n\
             student_temperature = 0.1\nteacher_temperature = 0.04\nteacher_temperature_final = 0.07\nteacher_warmup_epochs = 1\n\
             center_momentum = 0.9\nfreeze_last_layer_epochs = 1\n\
             [method.backbone]\nkind = \"vit\"\nimage_size = 16\npatch_size = 8\nin_channels = 3\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\npool = \"cls\"\n"
                .to_string(),
        ),
        ("vision-dae", format!("[method]\nname = \"dae\"\nimage_size = 32\ndecoder_hidden = 16\nnoise = \"gaussian\"\nmask_ratio = 0.25\nsigma = 0.5\n{CNN}")),
        (
            "vision-mae",
            "[method]\nname = \"mae\"\nmask_ratio = 0.75\nnorm_pix_loss = true\n\
             [method.encoder]\nimage_size = 16\npatch_size = 8\nin_channels = 3\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\n\
             [method.decoder]\ndim = 8\ndepth = 1\nheads = 2\n"
                .to_string(),
        ),
    ]
}

/// 40 CIFAR-format images of 16x16 would not be CIFAR: the records are
/// 32x32; the views crop them to 16 (MAE reads the 32x32 image, so its
/// encoder's image_size is set to 32 below).
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

/// The resolved config of one method, as `selfsup train` would write it.
fn resolved(task: &str, method: &str, data: &Path) -> toml::Table {
    let mut text = format!(
        "name = \"{task}\"\n{}{method}",
        COMMON.replace("DATA", &data.display().to_string())
    );
    if task == "vision-mae" || task == "vision-dae" {
        // MAE and the autoencoder read whole images, not views.
        text = text.replace("image_size = 16", "image_size = 32");
        let start = text.find("[[data.views]]").unwrap();
        let end = text.find("[optim]").unwrap();
        text.replace_range(start..end, "");
    }
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
        method in 0..12usize,
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

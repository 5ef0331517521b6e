//! Adding a method the way docs/architecture.md says: one file (here, the
//! `toy` module below: a config, a model, `Register`, `Method`,
//! `VisionMethod`), one registry line (`.with::<toy::Toy>()`) and one recipe
//! file (`configs/vision/toy-mnist.toml`, here a string). The method then has
//! a task, its recipe is found by name, and the vision experiment trains and
//! evaluates it on the bundled MNIST, with nothing else edited.

mod toy {
    //! A denoising linear autoencoder: the smallest honest pretext task.

    use selfsup_train::{check, Batch, FeatureExtractor, Method, Register, Result, StepOutput};
    use selfsup_vision::backbones::BackboneConfig;
    use selfsup_vision::{Vision, VisionContext, VisionMethod};
    use serde::{Deserialize, Serialize};
    use tch::nn::{self, Module};
    use tch::Tensor;

    /// The toy's hyper-parameters.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ToyConfig {
        /// The encoder (its feature width is the code's).
        pub backbone: BackboneConfig,
        /// Std of the Gaussian noise added to the input.
        pub noise: f64,
    }

    /// Backbone, then a linear decoder back to the pixels.
    #[derive(Debug)]
    pub struct Toy {
        config: ToyConfig,
        backbone: Box<dyn selfsup_vision::backbones::Backbone>,
        decoder: nn::Linear,
        pixels: i64,
    }

    impl Register<Vision> for Toy {
        const NAME: &'static str = "toy";
        const SUMMARY: &'static str = "a denoising autoencoder, added by a test";
        const TEST_TABLE: &'static str =
            "name = \"toy\"\nnoise = 0.1\n[backbone]\nkind = \"small_cnn\"\nwidths = [4, 8]\n";
        type Config = ToyConfig;
        fn build(
            config: &ToyConfig,
            path: nn::Path,
            context: &VisionContext,
        ) -> Result<Box<dyn VisionMethod>> {
            check::non_negative("method.noise", config.noise)?;
            let backbone =
                config
                    .backbone
                    .build(&path / "backbone", "method.backbone", context.channels)?;
            let pixels = 28 * 28;
            let decoder = nn::linear(
                &path / "decoder",
                config.backbone.feature_dim(),
                pixels,
                Default::default(),
            );
            Ok(Box::new(Toy {
                config: config.clone(),
                backbone,
                decoder,
                pixels,
            }))
        }
    }

    impl Method for Toy {
        fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
            let images = batch.inputs.get("view0")?;
            let noisy = images + Tensor::randn_like(images) * self.config.noise;
            let code = self.backbone.features(&noisy, train);
            let target = images.reshape([-1, self.pixels]);
            let loss = self
                .decoder
                .forward(&code)
                .mse_loss(&target, tch::Reduction::Mean);
            Ok(StepOutput::new(loss).with_features(code))
        }

        fn backbone(&self) -> &dyn FeatureExtractor {
            self.backbone.as_ref()
        }
    }

    impl VisionMethod for Toy {
        fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
            (&self.config.backbone, "backbone.")
        }
    }
}

use selfsup_train::experiment::RunStart;
use selfsup_train::recipes::{config_text, find_task, tasks_of, ConfigChoice, RecipeFile};
use selfsup_vision::experiment::{Experiment, TrainRequest};

const RECIPE: RecipeFile = RecipeFile {
    path: "configs/vision/toy-mnist.toml",
    text: r#"
name = "vision-toy"

[data]
dataset = "mnist"
path = "../../datasets/mnist"
split = "t10k"
max_images = 600

[method]
name = "toy"
noise = 0.3

[method.backbone]
kind = "small_cnn"
in_channels = 1
widths = [8, 16]

[optim]
optimizer = "adamw"
lr = 3e-3

[trainer]
epochs = 3
batch_size = 32
device = "cpu"

[eval]
knn_k = 20
"#,
};

#[test]
fn a_method_added_the_documented_way_gets_a_task_and_trains() {
    let registry = selfsup_vision::registry().with::<toy::Toy>();
    let tasks = tasks_of(&registry, &[RECIPE]);
    let task = find_task(&tasks, "vision-toy").unwrap();
    assert_eq!(task.summary, "a denoising autoencoder, added by a test");
    // The tests generated from the registry (property tests, and the rest
    // that read `test_tables`) now cover it, and its test table parses.
    let (name, table) = registry.test_tables().last().unwrap();
    assert_eq!(name, "toy");
    registry
        .parse(table.parse().unwrap(), "TEST_TABLE")
        .unwrap();
    let (text, origin) = config_text(task, ConfigChoice::default()).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let fetch = |_: &str| -> selfsup_vision::Result<std::path::PathBuf> {
        unreachable!("the data is bundled")
    };
    let request = TrainRequest {
        task: &task.name,
        config_text: &text,
        origin: &origin,
        overrides: &[],
        dataset: None,
        data_dir: None,
        start: RunStart {
            runs: runs.path().into(),
            resume: None,
        },
        fetch: &fetch,
    };
    let _rng = selfsup_train::testing::lock_torch_rng();
    let report = Experiment::prepare(&registry, request)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(report.fit.steps, 3 * (480 / 32));
    assert!(
        report.fit.final_loss < report.fit.first_loss,
        "{:?}",
        report.fit
    );
    assert!(
        report.knn > 0.3 && report.knn_random_init > 0.1,
        "{report:?}"
    );
    let metrics = std::fs::read_to_string(report.run.join("metrics.csv")).unwrap();
    assert!(metrics.contains(",train,online_probe_top1,") && metrics.contains(",eval,knn_top1,"));
    // An unknown method in a config names the known ones, the new one included.
    let bad = text.replace("name = \"toy\"", "name = \"toys\"");
    let error = registry
        .parse_run::<selfsup_vision::data::ImageDataConfig>(&bad, "t", &[])
        .unwrap_err();
    assert!(error.to_string().contains("toy"), "{error}");
}

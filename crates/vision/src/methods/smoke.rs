//! The smoke test every vision method's file runs on itself: through the
//! shared trainer on 64 tiny images, the loss falls, and a run interrupted
//! mid-epoch and resumed ends with a final checkpoint equal, tensor for
//! tensor, to an uninterrupted one (teachers, queues and the probe included).

use crate::data::{recipes, ImageSource, Normalizer, SplitImages, ViewConfig};
use crate::registry::{Vision, VisionContext};
use ndarray::Array4;
use selfsup_data::ImageDataset;
use selfsup_train::config::{OptimConfig, OptimizerKind, TrainerConfig};
use selfsup_train::testing::{assert_data_parallel_matches, assert_resume_is_exact, mean, Build};
use selfsup_train::{Method, Register, Trainer};
use tch::nn::VarStore;
use tch::Device;

/// How a smoke test trains.
pub(crate) struct Smoke<'a> {
    /// The `[method]` table, e.g. `name = "simclr"` and its fields.
    pub method: &'a str,
    /// Augmented views per image (0: the image itself).
    pub views: usize,
    /// Optimizer and learning rate.
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// The first logged step of the "before" stretch of the curve.
    pub skip: usize,
    /// The curve that must fall: `loss`, or a logged scalar (DINO's loss
    /// rises while its teacher sharpens; its `kl` falls).
    pub falls: &'static str,
}

/// A small CNN backbone for smoke tests, as the `[method.backbone]` table.
pub(crate) const TINY_CNN: &str = "[backbone]\nkind = \"small_cnn\"\nwidths = [8, 16]\n";

/// 64 images of 16×16 RGB, each with its own colour and its own pattern of
/// 4×4 cells (so instances are tellable apart, which contrastive methods
/// learn) over a top-to-bottom ramp (so "up" is visible, which rotation
/// prediction learns); labels are the colour's quartile.
fn images() -> ImageDataset {
    let images = Array4::from_shape_fn((64, 16, 16, 3), |(n, y, x, c)| {
        let cell = (y / 4) * 4 + x / 4;
        let bit = ((n * 2654435761usize) >> cell) & 1;
        let colour = (n * 37 + c * 71) % 100;
        (y * 6 + bit * 70 + colour) as u8
    });
    let labels = (0..64).map(|i| ((i * 37) % 100 / 25) as i64).collect();
    ImageDataset::new(images, labels, 4).expect("consistent images and labels")
}

fn view_configs(count: usize) -> Vec<ViewConfig> {
    if count == 0 {
        return Vec::new();
    }
    let text = format!(
        "count = {count}\nsize = 16\nscale = [0.5, 1.0]\n\
         jitter = {{ brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.05, p = 0.5 }}\n"
    );
    vec![toml::from_str(&text).expect("a view recipe")]
}

/// Trains the method 10 epochs of 4 steps: its loss falls by 3 % or more,
/// and resume (interrupted at step 23) is exact. Call it from a test named
/// `trains_and_resumes_exactly` with `module_path!()`: it runs in its own
/// process (see `selfsup_train::testing::in_own_process`).
pub(crate) fn trains_and_resumes(module: &str, smoke: Smoke<'_>) {
    let name = format!("{module}::trains_and_resumes_exactly");
    selfsup_train::testing::in_own_process(&name, || check(smoke));
}

/// The method of `smoke` trained by `trainer` (with `smoke`'s optimizer and
/// learning rate) on the smoke images: `f` gets the builder, the trainer and
/// the batches.
fn on_images<T>(
    smoke: &Smoke<'_>,
    config: TrainerConfig,
    warmup_epochs: f64,
    f: impl FnOnce(Build<'_>, &Trainer, &ImageSource<'_>) -> T,
) -> T {
    let choice = crate::registry()
        .parse(smoke.method.parse().expect("a TOML table"), "smoke test")
        .expect("a valid method table");
    let optim = OptimConfig {
        optimizer: smoke.optimizer,
        lr: smoke.lr,
        weight_decay: 1e-4,
        warmup_epochs,
        ..Default::default()
    };
    let trainer = Trainer { config, optim };
    let data = SplitImages::Memory(images());
    let normalizer = Normalizer::new(&[0.5; 3], &[0.25; 3], Device::Cpu);
    let source = ImageSource {
        images: &data,
        normalizer: &normalizer,
        recipes: recipes(&view_configs(smoke.views), 3).expect("valid recipes"),
        seed: trainer.config.seed,
    };
    let build = |vs: &VarStore| -> selfsup_train::Result<Box<dyn Method>> {
        let method: Box<dyn Method> =
            choice.build(vs.root(), &VisionContext { channels: Some(3) })?;
        Ok(method)
    };
    f(&build, &trainer, &source)
}

fn check(smoke: Smoke<'_>) {
    let config = TrainerConfig {
        epochs: 10,
        batch_size: 16,
        seed: 5,
        device: "cpu".into(),
        log_every: 1,
        checkpoint_every: 1,
        ..Default::default()
    };
    let curves = on_images(&smoke, config, 1.0, |build, trainer, source| {
        assert_resume_is_exact(build, trainer, source, 23)
    });
    let curve = &curves[smoke.falls];
    assert_eq!(curve.len(), 40, "64 / 16 = 4 steps x 10 epochs");
    let (first, last) = (mean(&curve[smoke.skip..smoke.skip + 8]), mean(&curve[32..]));
    assert!(
        last < first * 0.97,
        "{}: {} went {first:.4} -> {last:.4}: {curve:?}",
        smoke.method.lines().next().unwrap_or_default(),
        smoke.falls
    );
}

/// Two ranks of batch 8 train the method as one process of batch 16 (six
/// steps, SyncBatchNorm on, see `selfsup_train::testing::assert_data_parallel_matches`).
/// Call it from a test named `two_ranks_train_as_one_process` with `module_path!()`.
pub(crate) fn data_parallel_matches(module: &str, smoke: Smoke<'_>) {
    data_parallel_matches_within(module, smoke, true, 1e-4)
}

/// [`data_parallel_matches`] for the registered method `T` on its own
/// `Register::TEST_TABLE` (`views` views, 0 for the image itself; SGD at
/// 0.01): what a method whose step draws no random numbers calls from
/// `two_ranks_train_as_one_process`. Tensors may differ by `tolerance`
/// relative to their scale (1e-4 unless the method says why not).
pub(crate) fn registered_method_data_parallel_matches<T: Register<Vision>>(
    module: &str,
    views: usize,
    tolerance: f64,
) {
    let smoke = Smoke {
        method: T::TEST_TABLE,
        views,
        optimizer: OptimizerKind::Sgd,
        lr: 0.01,
        skip: 0,
        falls: "loss",
    };
    data_parallel_matches_within(module, smoke, true, tolerance)
}

/// As [`data_parallel_matches`], with `trainer.sync_batch_norm` as given
/// (off: a method's own cross-rank batch-norm scheme, MoCo's shuffling BN).
pub(crate) fn data_parallel_matches_with(module: &str, smoke: Smoke<'_>, sync_batch_norm: bool) {
    data_parallel_matches_within(module, smoke, sync_batch_norm, 1e-4)
}

/// As [`data_parallel_matches_with`], to `tolerance` relative to each tensor's scale.
fn data_parallel_matches_within(
    module: &str,
    smoke: Smoke<'_>,
    sync_batch_norm: bool,
    tolerance: f64,
) {
    let name = format!("{module}::two_ranks_train_as_one_process");
    let config = TrainerConfig {
        epochs: 2,
        max_steps: Some(6),
        batch_size: 8,
        seed: 5,
        device: "cpu".into(),
        log_every: 1,
        sync_batch_norm,
        ..Default::default()
    };
    on_images(&smoke, config, 0.5, |build, trainer, source| {
        assert_data_parallel_matches(&name, build, trainer, source, tolerance)
    });
}

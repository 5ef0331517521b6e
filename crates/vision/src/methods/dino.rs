//! DINO (Caron et al., 2021, "Emerging Properties in Self-Supervised Vision
//! Transformers").
//!
//! A student (a ViT and DINO's head: a 3-layer GELU MLP to a bottleneck,
//! L2-normalised, then a weight-normalised layer to `out_dim` logits) sees
//! every crop of the multi-crop (2 global + N local, the ViT interpolating
//! its positions for the small ones); a teacher, the student's EMA (momentum
//! on a cosine from 0.996 to 1), sees the global crops. The student's
//! softmax (τ 0.1) on each crop matches the teacher's centred, sharpened
//! softmax on the other global crops. The teacher's temperature warms up
//! linearly from 0.04 to 0.07 over 30 epochs; its centre is an EMA (0.9) of
//! its outputs; the head's last layer gets no update in the first epoch.
//! Recipes add weight decay on a cosine from 0.04 to 0.4 and gradient
//! clipping (the paper clips each parameter's gradient norm at 3; selfsup's
//! trainer clips the global norm). Logs the teacher's entropy and the
//! student-teacher KL.

use super::momentum::MomentumTeacher;
use super::gather::ranks;
use super::views_of;
use crate::backbones::{features_of_views, Backbone, BackboneConfig};
use crate::registry::{Vision, VisionContext, VisionMethod};
use selfsup_core::heads::DinoHead;
use selfsup_core::losses::{dino_loss, DinoCenter};
use selfsup_core::schedule::linear_warmup;
use selfsup_train::{check, Batch, FeatureExtractor, Method, Progress, Register, Result, StepOutput};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// DINO hyper-parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DinoConfig {
    /// The encoder (a ViT with `pool = "cls"` in the paper).
    pub backbone: BackboneConfig,
    /// Head hidden width (2048).
    pub head_hidden: i64,
    /// Head bottleneck (256).
    pub bottleneck: i64,
    /// Output logits (65,536 on ImageNet).
    pub out_dim: i64,
    /// Keep the last layer's weight norm at 1 (the paper's default for stability).
    #[serde(default = "yes")]
    pub norm_last_layer: bool,
    /// Teacher momentum at the start of the cosine to 1 (0.996).
    pub base_momentum: f64,
    /// Student temperature (0.1).
    pub student_temperature: f64,
    /// Teacher temperature at the start of its warmup (0.04).
    pub teacher_temperature: f64,
    /// Teacher temperature after the warmup (0.07 for ViT-S; 0.04 is safer).
    pub teacher_temperature_final: f64,
    /// Epochs of the teacher temperature's warmup (30).
    pub teacher_warmup_epochs: usize,
    /// Momentum of the teacher centre's EMA (0.9).
    #[serde(default = "nine_tenths")]
    pub center_momentum: f64,
    /// Epochs during which the head's last layer does not move (1).
    #[serde(default = "one")]
    pub freeze_last_layer_epochs: usize,
}

fn yes() -> bool {
    true
}
fn nine_tenths() -> f64 {
    0.9
}
fn one() -> usize {
    1
}

/// A backbone and DINO's head: student, and (built the same way) teacher.
#[derive(Debug)]
pub struct DinoNet {
    backbone: Box<dyn Backbone>,
    head: DinoHead,
}

impl DinoNet {
    fn new(path: &nn::Path, config: &DinoConfig, channels: Option<i64>) -> Result<Self> {
        let backbone = config.backbone.build(path / "backbone", "method.backbone", channels)?;
        let head = DinoHead::new(
            path / "head",
            config.backbone.feature_dim(),
            config.head_hidden,
            config.bottleneck,
            config.out_dim,
            config.norm_last_layer,
        );
        Ok(Self { backbone, head })
    }

    /// `(features, logits)` of the views, view-major.
    fn forward(&self, views: &[&Tensor], train: bool) -> (Tensor, Tensor) {
        let features = features_of_views(self.backbone.as_ref(), views, train);
        let logits = self.head.forward(&features);
        (features, logits)
    }
}

/// The DINO model.
#[derive(Debug)]
pub struct Dino {
    config: DinoConfig,
    student: DinoNet,
    teacher: MomentumTeacher<DinoNet>,
    center: DinoCenter,
    /// The epoch of the next step (teacher temperature, last-layer freeze).
    epoch: usize,
}

impl Dino {
    /// Builds the student under `path` and its momentum teacher.
    pub fn new(path: nn::Path, config: &DinoConfig, channels: Option<i64>) -> Result<Self> {
        check::size("method.head_hidden", config.head_hidden)?;
        check::size("method.bottleneck", config.bottleneck)?;
        check::size("method.out_dim", config.out_dim)?;
        check::fraction_below_one("method.base_momentum", config.base_momentum)?;
        check::positive("method.student_temperature", config.student_temperature)?;
        check::positive("method.teacher_temperature", config.teacher_temperature)?;
        check::positive("method.teacher_temperature_final", config.teacher_temperature_final)?;
        check::fraction_below_one("method.center_momentum", config.center_momentum)?;
        let student = DinoNet::new(&path, config, channels)?;
        let teacher = MomentumTeacher::new(&path, config.base_momentum, |p| DinoNet::new(&p, config, channels))?;
        let center = DinoCenter::new(config.out_dim, config.center_momentum, path.device());
        Ok(Self {
            config: config.clone(),
            student,
            teacher,
            center,
            epoch: 0,
        })
    }

    fn teacher_temperature(&self) -> f64 {
        let c = &self.config;
        linear_warmup(self.epoch, c.teacher_warmup_epochs, c.teacher_temperature, c.teacher_temperature_final)
    }
}

impl Register<Vision> for Dino {
    const NAME: &'static str = "dino";
    const SUMMARY: &'static str = "DINO: a ViT student matches its EMA teacher across multi-crops";
    const TEST_TABLE: &'static str = "name = \"dino\"\nhead_hidden = 16\nbottleneck = 8\nout_dim = 32\nbase_momentum = 0.99\nstudent_temperature = 0.1\nteacher_temperature = 0.04\nteacher_temperature_final = 0.07\nteacher_warmup_epochs = 1\ncenter_momentum = 0.9\nfreeze_last_layer_epochs = 1\n[backbone]\nkind = \"vit\"\nimage_size = 16\npatch_size = 8\nin_channels = 3\ndim = 16\ndepth = 1\nheads = 2\nmlp_ratio = 2.0\npool = \"cls\"\n";
    type Config = DinoConfig;
    fn build(config: &DinoConfig, path: nn::Path, context: &VisionContext) -> Result<Box<dyn VisionMethod>> {
        Ok(Box::new(Self::new(path, config, context.channels)?))
    }
}

impl Method for Dino {
    fn step(&mut self, batch: &Batch, train: bool) -> Result<StepOutput> {
        let (views, n) = views_of("dino", batch, 2)?;
        let (features, student) = self.student.forward(&views, train);
        let teacher = tch::no_grad(|| self.teacher.net.forward(&views[..2], train).1);
        let temperature = self.teacher_temperature();
        let c = &self.config;
        let loss = dino_loss(&student, &teacher, &self.center.center, views.len() as i64, c.student_temperature, temperature)?;
        let entropy = tch::no_grad(|| {
            let p = ((&teacher - &self.center.center) / temperature).softmax(-1, Kind::Float);
            -(&p * p.clamp_min(1e-12).log()).sum_dim_intlist(1, false, Kind::Float).mean(Kind::Float)
        });
        let kl = loss.detach() - &entropy;
        if train {
            // Over every rank's teacher outputs, as the official code's
            // all_reduce does: each rank keeps the one-process centre.
            self.center.update_across(&teacher, ranks(train))?;
        }
        Ok(StepOutput::new(loss)
            .with_features(features.narrow(0, 0, n))
            .with_scalar("teacher_entropy", entropy)
            .with_scalar("kl", kl))
    }

    fn before_optimizer_step(&mut self, progress: &Progress) -> Result<()> {
        if progress.epoch < self.config.freeze_last_layer_epochs {
            self.student.head.freeze_last_layer_step();
        }
        Ok(())
    }

    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        self.teacher.update(progress);
        self.epoch = progress.step / progress.steps_per_epoch.max(1);
        Ok(())
    }

    fn backbone(&self) -> &dyn FeatureExtractor {
        self.student.backbone.as_ref()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.teacher.state();
        state.push(("center".into(), self.center.center.shallow_clone()));
        state.push(("epoch".into(), Tensor::from(self.epoch as i64)));
        state
    }

    fn load_state(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.teacher.load_state(named)?;
        let find = |key: &str| named.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        match (find("center"), find("epoch")) {
            (Some(center), Some(_)) if center.size() == self.center.center.size() => {
                self.center.center = center.to_device(self.center.center.device());
                self.epoch = selfsup_core::optim::find_count(named, "epoch", i64::MAX / 2)? as usize;
                Ok(())
            }
            _ => Err(selfsup_core::Error::State("the checkpoint has no DINO centre of this size".into()).into()),
        }
    }
}

impl VisionMethod for Dino {
    fn backbone_spec(&self) -> (&BackboneConfig, &'static str) {
        (&self.config.backbone, "backbone.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::smoke::{data_parallel_matches, trains_and_resumes, Smoke};
    use selfsup_train::config::OptimizerKind;

    const TINY_VIT: &str = "[backbone]\nkind = \"vit\"\nimage_size = 16\npatch_size = 4\nin_channels = 3\ndim = 16\n\
                            depth = 1\nheads = 2\nmlp_ratio = 2.0\npool = \"cls\"\n";

    /// The teacher's centre averaged over every rank's outputs (all-reduced,
    /// as the official code does): two ranks of 8 images train the ViT
    /// student, its EMA teacher and the centre as one process of 16. (SGD:
    /// AdamW's normalisation turns last-bit differences of near-zero
    /// gradients into 1e-4 weight differences; with each rank's own centre
    /// the logged losses already differ.)
    #[test]
    fn two_ranks_train_as_one_process() {
        let method = "name = \"dino\"\nhead_hidden = 32\nbottleneck = 8\nout_dim = 64\nbase_momentum = 0.9\n\
                      student_temperature = 0.1\nteacher_temperature = 0.04\nteacher_temperature_final = 0.07\n\
                      teacher_warmup_epochs = 1\nfreeze_last_layer_epochs = 0\n";
        data_parallel_matches(
            module_path!(),
            Smoke {
                method: &format!("{method}{TINY_VIT}"),
                views: 2,
                optimizer: OptimizerKind::Sgd,
                lr: 0.05,
                skip: 0,
                falls: "kl",
            },
        );
    }

    #[test]
    fn trains_and_resumes_exactly() {
        // The teacher temperature warms up over 3 of the 10 epochs and the
        // last layer is frozen in the first: both cross the interruption.
        let method = "name = \"dino\"\nhead_hidden = 32\nbottleneck = 8\nout_dim = 64\nbase_momentum = 0.9\n\
                      student_temperature = 0.1\nteacher_temperature = 0.04\nteacher_temperature_final = 0.07\n\
                      teacher_warmup_epochs = 3\n\
                      [backbone]\nkind = \"vit\"\nimage_size = 16\npatch_size = 4\nin_channels = 3\ndim = 16\n\
                      depth = 1\nheads = 2\nmlp_ratio = 2.0\npool = \"cls\"\n";
        trains_and_resumes(
            module_path!(),
            Smoke {
                method,
                views: 2,
                optimizer: OptimizerKind::Adamw,
                lr: 3e-3,
                skip: 0,
                falls: "kl",
            },
        );
    }
}

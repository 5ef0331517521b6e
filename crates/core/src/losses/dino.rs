//! DINO's self-distillation loss (Caron et al., 2021) and its teacher centre.

use crate::across_ranks::{AcrossRanks, OneProcess};
use crate::error::{check_shape, Result};
use tch::{Kind, Tensor};

/// Cross-entropy between sharpened, centred teacher distributions on the global
/// crops and student distributions on every crop, skipping pairs where student
/// and teacher saw the same crop; averaged over pairs and samples.
///
/// # Shapes
/// - `student`: `[n_crops * batch, out_dim]`, crop-major, the first two crops global;
/// - `teacher`: `[n_global * batch, out_dim]` (teacher sees global crops only);
/// - `center`: `[1, out_dim]`;
/// - returns a scalar.
pub fn dino_loss(
    student: &Tensor,
    teacher: &Tensor,
    center: &Tensor,
    n_crops: i64,
    student_temperature: f64,
    teacher_temperature: f64,
) -> Result<Tensor> {
    check_shape(
        teacher.dim() == 2,
        "dino_loss: teacher",
        "[n_global * batch, out_dim]",
        teacher,
    )?;
    let out_dim = teacher.size()[1];
    check_shape(
        student.dim() == 2 && student.size()[1] == out_dim && student.size()[0] % n_crops == 0,
        "dino_loss: student",
        &format!("[{n_crops} * batch, {out_dim}]"),
        student,
    )?;
    let batch = student.size()[0] / n_crops;
    check_shape(
        teacher.size()[0] % batch == 0,
        "dino_loss: teacher",
        &format!("[n_global * {batch}, {out_dim}]"),
        teacher,
    )?;
    check_shape(
        center.size() == [1, out_dim],
        "dino_loss: center",
        &format!("[1, {out_dim}]"),
        center,
    )?;
    let n_global = teacher.size()[0] / batch;
    let student_log = (student / student_temperature)
        .log_softmax(-1, Kind::Float)
        .chunk(n_crops, 0);
    let teacher_prob = ((teacher - center) / teacher_temperature)
        .softmax(-1, Kind::Float)
        .detach()
        .chunk(n_global, 0);
    let mut total = Tensor::zeros([], (Kind::Float, student.device()));
    let mut terms = 0;
    for (t_index, t) in teacher_prob.iter().enumerate() {
        for (s_index, s) in student_log.iter().enumerate() {
            if s_index == t_index {
                continue;
            }
            total += (-(t * s).sum_dim_intlist(-1, false, Kind::Float)).mean(Kind::Float);
            terms += 1;
        }
    }
    Ok(total / terms as f64)
}

/// The teacher-output centre, an EMA of the batch mean:
/// `c ← m·c + (1 − m)·mean(teacher)`; centring and sharpening together keep
/// DINO from collapsing.
#[derive(Debug)]
pub struct DinoCenter {
    /// `[1, out_dim]`.
    pub center: Tensor,
    /// EMA momentum (0.9 in the paper).
    pub momentum: f64,
}

impl DinoCenter {
    /// A zero centre.
    pub fn new(out_dim: i64, momentum: f64, device: tch::Device) -> Self {
        Self {
            center: Tensor::zeros([1, out_dim], (Kind::Float, device)),
            momentum,
        }
    }

    /// Updates from a batch of teacher outputs `[rows, out_dim]` on one
    /// process; see [`DinoCenter::update_across`].
    pub fn update(&mut self, teacher: &Tensor) {
        self.update_across(teacher, &OneProcess)
            .expect("one process reduces nothing, so nothing fails")
    }

    /// Updates from this rank's teacher outputs `[rows, out_dim]`, the
    /// batch mean taken over every rank's rows (the official code
    /// all-reduces the sum), so all ranks keep the centre one process of
    /// the whole batch would.
    pub fn update_across(&mut self, teacher: &Tensor, ranks: &dyn AcrossRanks) -> Result<()> {
        tch::no_grad(|| {
            let mut sum = teacher.sum_dim_intlist(0, true, Kind::Float);
            ranks.sum_(&mut sum)?;
            let batch_center = sum / (teacher.size()[0] * ranks.world()) as f64;
            self.center = &self.center * self.momentum + batch_center * (1.0 - self.momentum);
            Ok(())
        })
    }
}

//! Exponential moving average of parameters, for momentum encoders and
//! teachers (MoCo, BYOL, DINO): `teacher ← m·teacher + (1 − m)·student`.

use crate::error::{Error, Result};
use tch::nn::{self, VarStore};
use tch::Tensor;

/// Pairs of (teacher, student) tensors matched by name, updated in place.
#[derive(Debug)]
pub struct Ema {
    pairs: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    /// Matches every variable of `teacher` with the student variable of the same
    /// name; a missing or differently-shaped student variable is an error. The
    /// teacher is initialised as a copy of the student and frozen.
    pub fn new(teacher: &VarStore, student: &VarStore) -> Result<Self> {
        let students = student.variables();
        Self::matching(teacher, |name| {
            students.get(name).map(Tensor::shallow_clone)
        })
    }

    /// As [`Ema::new`], with the student's variables under `student` (a
    /// method built below the root of its store): teacher variable `a.b`
    /// pairs with the student's `<student path>.a.b`.
    pub fn under(teacher: &VarStore, student: &nn::Path) -> Result<Self> {
        Self::matching(teacher, |name| {
            // tch looks variables up one path component at a time.
            match name.rsplit_once('.') {
                None => student.get(name),
                Some((parents, leaf)) => {
                    let mut components = parents.split('.');
                    let first = student.sub(components.next().unwrap_or_default());
                    components.fold(first, |path, c| path.sub(c)).get(leaf)
                }
            }
        })
    }

    fn matching(teacher: &VarStore, student: impl Fn(&str) -> Option<Tensor>) -> Result<Self> {
        let mut pairs = Vec::new();
        let mut names: Vec<(String, Tensor)> = teacher.variables().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut t) in names {
            let s = student(&name).ok_or_else(|| {
                Error::State(format!("EMA: the student has no variable `{name}`"))
            })?;
            if s.size() != t.size() {
                return Err(Error::State(format!(
                    "EMA: `{name}` is {:?} in the teacher, {:?} in the student",
                    t.size(),
                    s.size()
                )));
            }
            tch::no_grad(|| t.copy_(&s));
            let t = t.set_requires_grad(false);
            pairs.push((name, t, s));
        }
        Ok(Self { pairs })
    }

    /// One update with momentum `m` (1 keeps the teacher, 0 copies the student).
    pub fn update(&mut self, momentum: f64) {
        tch::no_grad(|| {
            for (_, teacher, student) in &mut self.pairs {
                let _ = teacher.lerp_(student, 1.0 - momentum);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn net(vs: &VarStore) {
        let _ = nn::linear(vs.root() / "fc", 2, 2, Default::default());
    }

    #[test]
    fn update_is_the_convex_combination() {
        let (teacher, student) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        net(&teacher);
        net(&student);
        let mut ema = Ema::new(&teacher, &student).unwrap();
        let w_teacher = teacher.variables()["fc.weight"].shallow_clone();
        assert!(
            w_teacher.equal(&student.variables()["fc.weight"]),
            "starts as a copy"
        );
        let before = w_teacher.copy();
        let _ = tch::no_grad(|| student.variables()["fc.weight"].shallow_clone().fill_(1.0));
        ema.update(0.9);
        let expected = &before * 0.9 + 0.1;
        assert!(w_teacher.allclose(&expected, 1e-6, 1e-6, false));
        assert!(!w_teacher.requires_grad());
    }

    #[test]
    fn a_student_below_the_root_pairs_by_relative_name() {
        let (teacher, student) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        net(&teacher);
        let _ = nn::linear(student.root() / "method" / "fc", 2, 2, Default::default());
        let mut ema = Ema::under(&teacher, &(student.root() / "method")).unwrap();
        let w_student = student.variables()["method.fc.weight"].shallow_clone();
        assert!(teacher.variables()["fc.weight"].equal(&w_student));
        let _ = tch::no_grad(|| w_student.shallow_clone().fill_(2.0));
        ema.update(0.0);
        assert!(teacher.variables()["fc.weight"].equal(&w_student));
    }

    #[test]
    fn mismatched_networks_are_named() {
        let (teacher, student) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        let _ = nn::linear(teacher.root() / "head", 2, 2, Default::default());
        net(&student);
        let err = Ema::new(&teacher, &student).unwrap_err().to_string();
        assert!(err.contains("head."), "{err}");
    }
}

//! Learning-rate (and momentum) schedules, as pure functions of the step.

/// Linear warmup from 0 to `base` over `warmup` steps, then a half-cosine from
/// `base` down to `final_value` at `total` steps (the schedule of SimCLR, MoCo v3,
/// MAE and DINO). Steps past `total` stay at `final_value`.
pub fn warmup_cosine(step: usize, total: usize, warmup: usize, base: f64, final_value: f64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    if step >= total || total <= warmup {
        return final_value;
    }
    let progress = (step - warmup) as f64 / (total - warmup) as f64;
    final_value + (base - final_value) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Cosine from `base` up to 1 over the run, as BYOL, MoCo v3 and DINO schedule
/// the EMA momentum: `1 − (1 − base)(cos(π·step/total) + 1)/2`.
pub fn momentum_cosine(step: usize, total: usize, base: f64) -> f64 {
    let progress = (step as f64 / total.max(1) as f64).min(1.0);
    1.0 - (1.0 - base) * ((std::f64::consts::PI * progress).cos() + 1.0) / 2.0
}

/// Multiplies `base` by `gamma` at each milestone step passed (MultiStepLR).
pub fn step_decay(step: usize, base: f64, milestones: &[usize], gamma: f64) -> f64 {
    base * gamma.powi(milestones.iter().filter(|&&m| step >= m).count() as i32)
}

/// Half-cosine from `start` to `end` over `total` steps with no warmup: DINO's
/// weight-decay schedule (0.04 → 0.4).
pub fn cosine(step: usize, total: usize, start: f64, end: f64) -> f64 {
    warmup_cosine(step, total, 0, start, end)
}

/// Linear from `start` to `end` over `warmup` steps, then `end`: DINO's teacher
/// temperature (0.04 → 0.07 over the first 30 epochs).
pub fn linear_warmup(step: usize, warmup: usize, start: f64, end: f64) -> f64 {
    if step >= warmup || warmup == 0 {
        end
    } else {
        start + (end - start) * step as f64 / warmup as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_rises_from_base_to_one() {
        assert!((momentum_cosine(0, 100, 0.99) - 0.99).abs() < 1e-12);
        assert!((momentum_cosine(50, 100, 0.99) - 0.995).abs() < 1e-12);
        assert_eq!(momentum_cosine(100, 100, 0.99), 1.0);
    }

    #[test]
    fn step_decay_and_linear_warmup_closed_forms() {
        assert_eq!(step_decay(0, 0.1, &[10, 20], 0.1), 0.1);
        assert!((step_decay(15, 0.1, &[10, 20], 0.1) - 0.01).abs() < 1e-15);
        assert!((step_decay(20, 0.1, &[10, 20], 0.1) - 0.001).abs() < 1e-15);
        assert!((linear_warmup(15, 30, 0.04, 0.07) - 0.055).abs() < 1e-12);
        assert_eq!(linear_warmup(31, 30, 0.04, 0.07), 0.07);
        assert!((cosine(0, 10, 0.04, 0.4) - 0.04).abs() < 1e-12);
        assert!((cosine(5, 10, 0.04, 0.4) - 0.22).abs() < 1e-12);
    }

    #[test]
    fn warmup_then_cosine_closed_form() {
        let (total, warmup, base) = (110, 10, 0.4);
        assert!((warmup_cosine(0, total, warmup, base, 0.0) - 0.04).abs() < 1e-12);
        assert!((warmup_cosine(9, total, warmup, base, 0.0) - 0.4).abs() < 1e-12);
        assert!((warmup_cosine(10, total, warmup, base, 0.0) - 0.4).abs() < 1e-12);
        // Half-way through the cosine part the value is the mean of the ends.
        assert!((warmup_cosine(60, total, warmup, base, 0.1) - 0.25).abs() < 1e-12);
        assert_eq!(warmup_cosine(110, total, warmup, base, 0.1), 0.1);
        assert_eq!(warmup_cosine(500, total, warmup, base, 0.1), 0.1);
    }

    #[test]
    fn never_increases_after_warmup() {
        let values: Vec<f64> = (5..100)
            .map(|s| warmup_cosine(s, 100, 5, 1.0, 0.0))
            .collect();
        assert!(values.windows(2).all(|w| w[1] <= w[0]));
    }
}

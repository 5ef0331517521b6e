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

#[cfg(test)]
mod tests {
    use super::*;

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

//! Checks of config values, each naming its key: a bad value becomes one
//! clear error before anything runs, never an `assert!` deep in a model or a
//! libtorch panic. Every `validate` and fallible `build` uses these.

use crate::error::{Error, Result};
use std::fmt::Display;

/// The largest width, count or batch size a config may ask for: beyond any
/// published recipe (DINO's 65,536 prototypes), and small enough that a typo
/// such as `1e12` is refused by name instead of failing an allocation.
pub const MAX_SIZE: i64 = 1 << 20;

/// A config error at `key`.
pub fn invalid(key: &str, message: impl Display) -> Error {
    Error::Config {
        origin: key.to_string(),
        message: message.to_string(),
    }
}

/// `value` is a whole number in `1..=MAX_SIZE`.
pub fn size<T: Copy + TryInto<i64> + Display>(key: &str, value: T) -> Result<()> {
    match value.try_into() {
        Ok(v) if (1..=MAX_SIZE).contains(&v) => Ok(()),
        _ => Err(invalid(
            key,
            format!("{value} must be at least 1 and at most {MAX_SIZE}"),
        )),
    }
}

/// `value` is a whole number of at least 1 (a count with no memory cost,
/// such as epochs or steps).
pub fn at_least_one(key: &str, value: usize) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(invalid(key, "must be at least 1"))
    }
}

/// `value` is finite and `> 0`.
pub fn positive(key: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(key, format!("{value} must be a finite number > 0")))
    }
}

/// `value` is finite and `>= 0`.
pub fn non_negative(key: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{value} must be a finite number >= 0"),
        ))
    }
}

/// `value` is a probability, in `[0, 1]`.
pub fn probability(key: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{value} is not a probability in [0, 1]"),
        ))
    }
}

/// `value` is in `[0, 1)`: a momentum, a β, a ratio that must leave something.
pub fn fraction_below_one(key: &str, value: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, format!("{value} must be in [0, 1)")))
    }
}

/// `value` is in `(0, 1)`: a split that leaves something on both sides.
pub fn open_fraction(key: &str, value: f64) -> Result<()> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{value} must be strictly between 0 and 1"),
        ))
    }
}

/// Checks a transformer's shape under `at` (`method.model`, `method.encoder`):
/// `dim` and `heads` are sizes, `dim` divides by `heads` and by
/// `dim_multiple` (4 for 2-D sin-cos positions), 1 to 256 blocks, and a
/// finite, positive MLP ratio that keeps the MLP within [`MAX_SIZE`].
pub fn transformer_shape(
    at: &str,
    dim: i64,
    heads: i64,
    depth: i64,
    mlp_ratio: f64,
    dim_multiple: i64,
) -> Result<()> {
    let key = |field: &str| format!("{at}.{field}");
    size(&key("dim"), dim)?;
    size(&key("heads"), heads)?;
    if dim % heads != 0 || dim % dim_multiple != 0 {
        let message = format!("{dim} must be divisible by {dim_multiple} and by the {heads} heads");
        return Err(invalid(&key("dim"), message));
    }
    if !(1..=256).contains(&depth) {
        return Err(invalid(
            &key("depth"),
            format!("{depth} must be 1 to 256 blocks"),
        ));
    }
    positive(&key("mlp_ratio"), mlp_ratio)?;
    if mlp_ratio * dim as f64 > MAX_SIZE as f64 {
        return Err(invalid(
            &key("mlp_ratio"),
            format!("{mlp_ratio} x dim {dim} is too wide"),
        ));
    }
    Ok(())
}

/// Runs `build`, turning a libtorch panic (an allocation that cannot be
/// made, a shape libtorch refuses) into an error at `key`: the last guard
/// between a config and a panic.
pub fn guard_build<T>(key: &str, build: impl FnOnce() -> Result<T>) -> Result<T> {
    guard(key, "building the model", build)
}

/// As [`guard_build`] for any work: a panic while `doing` becomes an error at
/// `key` that quotes libtorch's first line.
pub fn guard<T>(key: &str, doing: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    // The default hook would print "thread panicked" for a panic that
    // becomes an ordinary error here; silence it while building.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // `tch::no_grad` does not restore grad mode when its closure panics;
    // this guard puts back the mode `guard` was called in, whatever the
    // work left behind (the work itself runs with gradients on).
    let restore_grad_mode = tch::no_grad_guard();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tch::with_grad(work)));
    drop(restore_grad_mode);
    std::panic::set_hook(hook);
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            let first = message.lines().next().unwrap_or("libtorch failed");
            Err(invalid(
                key,
                format!("{doing} failed ({first}); check the sizes under `{key}`"),
            ))
        }
    }
}

/// The text of a caught panic (tch's panics carry libtorch's message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_the_key_and_value() {
        assert!(size("a.b", 3usize).is_ok());
        let error = size("a.b", 0usize).unwrap_err().to_string();
        assert!(error.contains("a.b") && error.contains('0'), "{error}");
        assert!(size("a.b", -4i64).is_err() && size("a.b", MAX_SIZE + 1).is_err());
        assert!(positive("lr", f64::NAN)
            .unwrap_err()
            .to_string()
            .contains("NaN"));
        assert!(positive("lr", f64::INFINITY).is_err() && positive("lr", 0.0).is_err());
        assert!(non_negative("wd", 0.0).is_ok() && non_negative("wd", -1e-9).is_err());
        assert!(probability("p", 1.0).is_ok() && probability("p", f64::NAN).is_err());
        assert!(fraction_below_one("m", 1.0).is_err() && fraction_below_one("m", 0.0).is_ok());
        assert!(open_fraction("f", 1.0).is_err() && open_fraction("f", 0.5).is_ok());
        assert!(at_least_one("e", 0).is_err());
    }

    #[test]
    fn a_panic_inside_no_grad_leaves_gradients_on() {
        let _ = guard::<()>("k", "work", || tch::no_grad(|| panic!("inside no_grad")));
        let x = tch::Tensor::ones([2], tch::kind::FLOAT_CPU).set_requires_grad(true);
        assert!((&x * 2.0).requires_grad(), "grad mode was restored");
    }

    #[test]
    fn a_panic_while_building_becomes_an_error() {
        let error = guard_build::<()>("method.width", || panic!("can't allocate memory"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("method.width") && error.contains("can't allocate"),
            "{error}"
        );
    }
}

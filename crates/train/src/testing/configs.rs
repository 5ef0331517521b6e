//! Config property tests: every numeric value of a resolved config, set to
//! 0, a negative, a huge number, NaN or a plausible random value, must give
//! either a run or one error that names the key, never a panic. These are
//! the generator's pieces; each modality's test drives them with proptest.

use crate::check::panic_message;
use crate::error::Result;
use std::fmt;
use std::path::Path;

/// Where a number sits in a config table: `method.backbone.widths[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericKey {
    /// Table keys and array indices from the top.
    pub path: Vec<Step>,
    /// Whether the value there is an integer (else a float).
    pub integer: bool,
}

/// One step of a [`NumericKey`]'s path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl fmt::Display for NumericKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.path.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => write!(f, "{key}")?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl NumericKey {
    /// Whether an error `message` names this key: the key itself, the
    /// table or array holding it (`method.decoder` for `method.decoder.heads`
    /// when the check is on the pair), or any of `related`.
    pub fn is_named_by(&self, message: &str, related: &[&str]) -> bool {
        let full = self.to_string();
        let mut candidates = vec![full.clone()];
        if let Some(at) = full.rfind(['.', '[']) {
            candidates.push(full[..at].to_string());
        }
        if let Some(at) = full.find('[') {
            candidates.push(full[..at].to_string());
        }
        candidates.extend(related.iter().map(|r| r.to_string()));
        candidates.iter().any(|c| message.contains(c.as_str()))
    }
}

/// Every number in `table` (integers and floats, in tables and arrays).
pub fn numeric_keys(table: &toml::Table) -> Vec<NumericKey> {
    let mut found = Vec::new();
    for (key, value) in table {
        collect(value, vec![Step::Key(key.clone())], &mut found);
    }
    found
}

fn collect(value: &toml::Value, path: Vec<Step>, found: &mut Vec<NumericKey>) {
    match value {
        toml::Value::Integer(_) => found.push(NumericKey {
            path,
            integer: true,
        }),
        toml::Value::Float(_) => found.push(NumericKey {
            path,
            integer: false,
        }),
        toml::Value::Table(table) => {
            for (key, value) in table {
                let mut next = path.clone();
                next.push(Step::Key(key.clone()));
                collect(value, next, found);
            }
        }
        toml::Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                let mut next = path.clone();
                next.push(Step::Index(index));
                collect(value, next, found);
            }
        }
        _ => {}
    }
}

/// The kinds of value a property test tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// 0.
    Zero,
    /// -1.
    Negative,
    /// 10^12 (integers) or 10^300 (floats).
    Huge,
    /// NaN (a type error for integers).
    NotANumber,
    /// A plausible value: an integer in 1..=64 or a float in (0, 2).
    Plausible,
}

impl ValueKind {
    /// All kinds, for a strategy to pick from.
    pub const ALL: [ValueKind; 5] = [
        ValueKind::Zero,
        ValueKind::Negative,
        ValueKind::Huge,
        ValueKind::NotANumber,
        ValueKind::Plausible,
    ];
}

/// The value of `kind` for `key`; `random` in `[0, 1)` picks the plausible one.
pub fn value_for(key: &NumericKey, kind: ValueKind, random: f64) -> toml::Value {
    match (kind, key.integer) {
        (ValueKind::Zero, true) => toml::Value::Integer(0),
        (ValueKind::Zero, false) => toml::Value::Float(0.0),
        (ValueKind::Negative, true) => toml::Value::Integer(-1),
        (ValueKind::Negative, false) => toml::Value::Float(-1.0),
        (ValueKind::Huge, true) => toml::Value::Integer(1_000_000_000_000),
        (ValueKind::Huge, false) => toml::Value::Float(1e300),
        (ValueKind::NotANumber, _) => toml::Value::Float(f64::NAN),
        (ValueKind::Plausible, true) => toml::Value::Integer(1 + (random * 64.0) as i64),
        (ValueKind::Plausible, false) => toml::Value::Float(random * 2.0),
    }
}

/// `table` with the value at `key` replaced by `value`.
pub fn set_value(table: &mut toml::Table, key: &NumericKey, value: toml::Value) {
    let Some((Step::Key(first), rest)) = key.path.split_first() else {
        return;
    };
    let Some(mut slot) = table.get_mut(first) else {
        return;
    };
    for step in rest {
        let next = match (step, slot) {
            (Step::Key(k), toml::Value::Table(t)) => t.get_mut(k),
            (Step::Index(i), toml::Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => slot = next,
            None => return,
        }
    }
    *slot = value;
}

/// Judges one case of a config property test: what preparing a config whose
/// `key` was changed gave (the outer result) and, when it was ready, what
/// running it gave (the inner one), or the panic it raised. Passing: it
/// trained; or preparing failed with a message that names the key (or one
/// of `related`) and left no folder in `runs`; or the run stopped on a
/// diverged loss or weights. Failing: anything else, with the reason.
pub fn judge(
    key: &NumericKey,
    related: &[&str],
    runs: &Path,
    outcome: std::thread::Result<Result<Result<()>>>,
) -> std::result::Result<(), String> {
    let folders = || std::fs::read_dir(runs).map(|d| d.count()).unwrap_or(0);
    match outcome {
        Err(payload) => Err(format!(
            "{key} panicked: {}",
            panic_message(payload.as_ref())
        )),
        Ok(Err(error)) if !key.is_named_by(&error.to_string(), related) => {
            Err(format!("{key}: the error does not name it: {error}"))
        }
        Ok(Err(_)) if folders() > 0 => Err(format!("{key}: a run folder was left")),
        Ok(Ok(Err(error))) => {
            let message = error.to_string();
            let diverged = message.contains("loss is") || message.contains("weights are NaN");
            match diverged {
                true => Ok(()),
                false => Err(format!("{key}: the run failed: {message}")),
            }
        }
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_set_and_recognised_in_messages() {
        let mut table: toml::Table = "a = 1\n[b]\nc = [4, 5]\nd = 0.5\n[[e]]\nf = 2\n"
            .parse()
            .unwrap();
        let keys: Vec<String> = numeric_keys(&table).iter().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["a", "b.c[0]", "b.c[1]", "b.d", "e[0].f"]);
        let key = &numeric_keys(&table)[2];
        set_value(&mut table, key, value_for(key, ValueKind::Huge, 0.0));
        assert_eq!(table["b"]["c"][1].as_integer(), Some(1_000_000_000_000));
        assert!(key.is_named_by("config b.c[1]: too big", &[]));
        assert!(key.is_named_by("config b.c: empty", &[]));
        assert!(!key.is_named_by("config a: bad", &[]));
        assert!(key.is_named_by("config a: bad", &["a"]));
        let nested = &numeric_keys(&table)[4];
        assert!(
            nested.is_named_by("data e: needs 2", &[]),
            "the array holding it"
        );
    }
}

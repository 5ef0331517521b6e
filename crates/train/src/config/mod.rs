//! `RunConfig`: one TOML file per recipe, typed, with unknown keys rejected and
//! `--set key=value` overrides checked the same way, then every value
//! validated before anything runs.

mod sections;

pub use sections::{EvalConfig, OptimConfig, OptimizerKind, TrainerConfig};

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A config section that checks its own values (each modality's `[data]`).
pub trait Validate {
    /// The first bad value, as an error naming its key.
    fn validate(&self) -> Result<()>;
}

impl Validate for toml::Table {
    /// A raw table is typed (and checked) later, by a method registry.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// A whole run: data, method (generic, so this crate never names methods),
/// optimizer, trainer and evaluation settings. `D` is the modality's data
/// section (image data sets, a text corpus); `M` is the method, a raw TOML
/// table until a modality's registry types it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig<M, D> {
    /// Short name; the run folder is `<runs>/<name>-<timestamp>`.
    pub name: String,
    /// Which data set and split.
    pub data: D,
    /// The method and its hyper-parameters (`name` picks it).
    pub method: M,
    /// Optimizer and learning-rate schedule.
    #[serde(default)]
    pub optim: OptimConfig,
    /// Loop settings.
    #[serde(default)]
    pub trainer: TrainerConfig,
    /// Evaluation settings.
    #[serde(default)]
    pub eval: EvalConfig,
}

impl<M, D> RunConfig<M, D> {
    /// The same config with its method section turned into another type (a
    /// registry types the raw table); the method's own errors pass through.
    pub fn try_map_method<N>(self, f: impl FnOnce(M) -> Result<N>) -> Result<RunConfig<N, D>> {
        Ok(RunConfig {
            name: self.name,
            data: self.data,
            method: f(self.method)?,
            optim: self.optim,
            trainer: self.trainer,
            eval: self.eval,
        })
    }
}

impl<M: DeserializeOwned + Serialize + Validate, D: DeserializeOwned + Serialize + Validate>
    RunConfig<M, D>
{
    /// Parses `text` (from `origin`, a file name for messages), then applies
    /// `overrides` of the form `a.b=value`, then validates every section.
    /// Values parse as TOML (`3`, `0.5`, `true`, `[1, 2]`, `"text"`);
    /// anything else is taken as a string.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        let config_error = |origin: &str, message: String| Error::Config {
            origin: origin.to_string(),
            message,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| config_error(origin, e.to_string()))?;
        for spec in overrides {
            apply_override(&mut table, spec)
                .map_err(|m| config_error(&format!("--set {spec}"), m))?;
        }
        let origin = if overrides.is_empty() {
            origin.to_string()
        } else {
            format!("{origin} with --set overrides")
        };
        let resolved = toml::to_string(&table).map_err(|e| config_error(&origin, e.to_string()))?;
        let config: Self = deserialize_table(&resolved, &origin, "")?;
        crate::run_dir::check_run_name(&config.name)?;
        config.optim.validate()?;
        config.trainer.validate()?;
        config.eval.validate()?;
        config.data.validate()?;
        config.method.validate()?;
        Ok(config)
    }
}

impl<M: Serialize, D: Serialize> RunConfig<M, D> {
    /// The resolved config as TOML, as written into the run folder.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Config {
            origin: "the resolved config".into(),
            message: e.to_string(),
        })
    }
}

/// Deserialises TOML `text` into `T`; an error names `origin` and the key
/// (`prefix` + the path inside `text`, e.g. `method.` + `proj_dim`).
pub fn deserialize_table<T: DeserializeOwned>(text: &str, origin: &str, prefix: &str) -> Result<T> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            prefix.trim_end_matches('.').to_string()
        } else {
            format!("{prefix}{path}")
        };
        let message = e.into_inner().message().to_string();
        // A nested reader (e.g. a tagged backbone) reports its own path as
        // "at `widths[0]`: …"; join it to this one.
        let nested = message
            .strip_prefix("at `")
            .and_then(|m| m.split_once("`: "));
        let (key, message) = match nested {
            Some((inner, rest)) if inner.starts_with('[') || key.is_empty() => {
                (format!("{key}{inner}"), rest.to_string())
            }
            Some((inner, rest)) => (format!("{key}.{inner}"), rest.to_string()),
            None => (key, message),
        };
        let key = if key.is_empty() {
            key
        } else {
            format!("{key}: ")
        };
        Error::Config {
            origin: origin.to_string(),
            message: format!("{key}{message}"),
        }
    })
}

fn apply_override(table: &mut toml::Table, spec: &str) -> std::result::Result<(), String> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or("expected key=value, e.g. optim.lr=0.3")?;
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, parents) = parts.split_last().expect("split gives at least one part");
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` in `{key}` is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(tag = "name", deny_unknown_fields)]
    enum TestMethod {
        #[serde(rename = "toy")]
        Toy { width: usize },
    }

    impl Validate for TestMethod {
        fn validate(&self) -> Result<()> {
            Ok(())
        }
    }

    impl Validate for TestData {
        fn validate(&self) -> Result<()> {
            crate::check::at_least_one("data.held_out_every", self.held_out_every)
        }
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct TestData {
        dataset: String,
        path: String,
        split: String,
        held_out_every: usize,
    }

    const TEXT: &str = r#"
name = "toy-run"
[data]
dataset = "mnist"
path = "datasets/mnist"
split = "t10k"
held_out_every = 5
[method]
name = "toy"
width = 3
[trainer]
epochs = 2
"#;

    fn parse(text: &str, overrides: &[&str]) -> Result<RunConfig<TestMethod, TestData>> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        RunConfig::parse(text, "toy.toml", &overrides)
    }

    #[test]
    fn parses_with_defaults_and_round_trips() {
        let config = parse(TEXT, &[]).unwrap();
        assert_eq!(config.trainer.epochs, 2);
        assert_eq!(
            config.trainer.batch_size,
            TrainerConfig::default().batch_size
        );
        assert_eq!(config.method, TestMethod::Toy { width: 3 });
        let again = parse(&config.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(again.to_toml().unwrap(), config.to_toml().unwrap());
    }

    #[test]
    fn overrides_are_typed() {
        let config = parse(
            TEXT,
            &["optim.lr=0.3", "method.width=5", "trainer.device=cpu"],
        )
        .unwrap();
        assert_eq!(config.optim.lr, 0.3);
        assert_eq!(config.method, TestMethod::Toy { width: 5 });
        assert_eq!(config.trainer.device, "cpu");
        let err = parse(TEXT, &["trainer.epochs=many"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trainer.epochs") && err.contains("invalid type"),
            "{err}"
        );
        let err = parse(TEXT, &["trainer.epochs"]).unwrap_err().to_string();
        assert!(err.contains("key=value"), "{err}");
    }

    #[test]
    fn every_section_is_validated_after_overrides() {
        for (key, value) in [
            ("trainer.batch_size", "0"),
            ("optim.lr", "nan"),
            ("eval.knn_k", "0"),
            ("data.held_out_every", "0"),
        ] {
            let err = parse(TEXT, &[&format!("{key}={value}")])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let err = parse(TEXT, &["trainer.batch_size=-1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("trainer.batch_size"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse(TEXT, &["trainer.epoch=3"]).unwrap_err().to_string();
        assert!(
            err.contains("trainer") && err.contains("unknown field `epoch`"),
            "{err}"
        );
        let bad_file = TEXT.replace("width = 3", "width = 3\ndepth = 2");
        let err = parse(&bad_file, &[]).unwrap_err().to_string();
        assert!(err.contains("toy.toml") && err.contains("depth"), "{err}");
        let err = parse("name = ", &[]).unwrap_err().to_string();
        assert!(err.contains("toy.toml"), "{err}");
    }
}

//! Method registries: the one place a modality lists its methods. A method
//! registers with one line (`.with::<simclr::SimClr>()`); its `[method]`
//! table is typed by the registry (unknown keys and bad types named), its
//! task `<modality>-<name>` and its recipes come from the registry and the
//! files in `configs/` (see [`crate::recipes`]).

use crate::config::{deserialize_table, RunConfig, Validate};
use crate::error::Result;
use crate::{check, Error};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use std::any::Any;
use std::fmt::Debug;
use std::marker::PhantomData;
use tch::nn;

/// A family of methods that share an input type and an experiment.
pub trait Modality: 'static {
    /// What a method of this modality builds into (e.g. `dyn VisionMethod`).
    type Built: ?Sized;
    /// What building needs besides the config (text: the vocabulary size).
    type Context;
    /// The folder under `configs/` and the task-name prefix (`vision`).
    const NAME: &'static str;
    /// The recipe a task runs without `--recipe`: the one on bundled data.
    const DEFAULT_RECIPE: &'static str;
}

/// A method of modality `M`, as its registry sees it.
pub trait Register<M: Modality>: 'static {
    /// `name` in its `[method]` table and the second half of its task name;
    /// lowercase letters and digits.
    const NAME: &'static str;
    /// One line for `selfsup tasks`.
    const SUMMARY: &'static str;
    /// A small `[method]` table of this method (`name`, its fields, and
    /// sub-tables such as `[backbone]`, as TOML relative to `[method]`),
    /// tiny enough to train in a test. The tests generated from the
    /// registry read it (every numeric key fuzzed, and more), so a method
    /// that registers is covered by them without editing a test; its
    /// modality says what data it must fit.
    const TEST_TABLE: &'static str;
    /// Its hyper-parameters (`deny_unknown_fields`).
    type Config: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// Builds the model under `path`; every config value is checked here,
    /// and a bad one is an error naming its key (`method.<field>`).
    fn build(config: &Self::Config, path: nn::Path, context: &M::Context) -> Result<Box<M::Built>>;
}

/// A typed `[method]` table of some registered method.
trait AnyConfig<M: Modality>: Debug + Send + Sync {
    fn name(&self) -> &'static str;
    fn build(&self, path: nn::Path, context: &M::Context) -> Result<Box<M::Built>>;
    fn to_value(&self) -> Result<toml::Value>;
    fn as_any(&self) -> &dyn Any;
    fn clone_box(&self) -> Box<dyn AnyConfig<M>>;
}

struct Typed<M, T: Register<M>>(T::Config, PhantomData<fn() -> (M, T)>)
where
    M: Modality;

impl<M: Modality, T: Register<M>> Debug for Typed<M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", T::NAME, self.0)
    }
}

/// `name` first, then the method's own fields, as a config file writes them.
#[derive(Serialize)]
struct Tagged<'a, C> {
    name: &'static str,
    #[serde(flatten)]
    config: &'a C,
}

impl<M: Modality, T: Register<M>> AnyConfig<M> for Typed<M, T> {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn build(&self, path: nn::Path, context: &M::Context) -> Result<Box<M::Built>> {
        check::guard_build("method", || T::build(&self.0, path, context))
    }
    fn to_value(&self) -> Result<toml::Value> {
        let tagged = Tagged {
            name: T::NAME,
            config: &self.0,
        };
        toml::Value::try_from(tagged).map_err(|e| check::invalid("method", e))
    }
    fn as_any(&self) -> &dyn Any {
        &self.0
    }
    fn clone_box(&self) -> Box<dyn AnyConfig<M>> {
        Box::new(Typed::<M, T>(self.0.clone(), PhantomData))
    }
}

/// The method a config chose, typed by its registry.
pub struct MethodChoice<M: Modality> {
    inner: Box<dyn AnyConfig<M>>,
}

impl<M: Modality> Debug for MethodChoice<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<M: Modality> Clone for MethodChoice<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone_box(),
        }
    }
}

impl<M: Modality> MethodChoice<M> {
    /// The method's registered name.
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Builds the model under `path`: a bad value, or a libtorch failure
    /// while allocating, is an error naming the key, never a panic.
    pub fn build(&self, path: nn::Path, context: &M::Context) -> Result<Box<M::Built>> {
        self.inner.build(path, context)
    }

    /// The typed config, when the choice is method `T`.
    pub fn get<T: Register<M>>(&self) -> Option<&T::Config> {
        self.inner.as_any().downcast_ref::<T::Config>()
    }
}

impl<M: Modality> Serialize for MethodChoice<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let value = self.inner.to_value().map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

/// Types a method's table (TOML text, origin for messages).
type Parse<M> = fn(&str, &str) -> Result<Box<dyn AnyConfig<M>>>;

struct Entry<M: Modality> {
    name: &'static str,
    summary: &'static str,
    test_table: &'static str,
    parse: Parse<M>,
}

/// The methods of modality `M`.
pub struct Registry<M: Modality> {
    entries: Vec<Entry<M>>,
}

impl<M: Modality> Default for Registry<M> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<M: Modality> Debug for Registry<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.name))
            .finish()
    }
}

fn parse_typed<M: Modality, T: Register<M>>(
    text: &str,
    origin: &str,
) -> Result<Box<dyn AnyConfig<M>>> {
    let config: T::Config = deserialize_table(text, origin, "method.")?;
    Ok(Box::new(Typed::<M, T>(config, PhantomData)))
}

impl<M: Modality> Registry<M> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry with method `T` added (replacing one of the same name).
    pub fn with<T: Register<M>>(mut self) -> Self {
        debug_assert!(
            T::NAME
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "method names are lowercase letters and digits: `{}`",
            T::NAME
        );
        self.entries.retain(|e| e.name != T::NAME);
        self.entries.push(Entry {
            name: T::NAME,
            summary: T::SUMMARY,
            test_table: T::TEST_TABLE,
            parse: parse_typed::<M, T>,
        });
        self
    }

    /// `(name, summary)` of every method, in registration order.
    pub fn methods(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.entries.iter().map(|e| (e.name, e.summary))
    }

    /// `(name, test table)` of every method, in registration order: what
    /// the tests generated from the registry train (see
    /// [`Register::TEST_TABLE`]).
    pub fn test_tables(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.entries.iter().map(|e| (e.name, e.test_table))
    }

    /// Number of registered methods.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no method is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Types a raw `[method]` table (from `origin`, for messages).
    pub fn parse(&self, mut table: toml::Table, origin: &str) -> Result<MethodChoice<M>> {
        let known: Vec<&str> = self.entries.iter().map(|e| e.name).collect();
        let name = match table.remove("name") {
            Some(toml::Value::String(name)) => name,
            Some(other) => {
                return Err(bad_name(
                    origin,
                    &format!("{other} is not a method name"),
                    &known,
                ))
            }
            None => return Err(bad_name(origin, "missing", &known)),
        };
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| bad_name(origin, &format!("unknown method `{name}`"), &known))?;
        let text = toml::to_string(&table).map_err(|e| check::invalid("method", e))?;
        Ok(MethodChoice {
            inner: (entry.parse)(&text, origin)?,
        })
    }

    /// Parses a whole run config (`text` from `origin`, then `overrides`),
    /// validates every section and types its method.
    pub fn parse_run<D>(
        &self,
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<RunConfig<MethodChoice<M>, D>>
    where
        D: DeserializeOwned + Serialize + Validate,
    {
        let raw: RunConfig<toml::Table, D> = RunConfig::parse(text, origin, overrides)?;
        raw.try_map_method(|table| self.parse(table, origin))
    }
}

fn bad_name(origin: &str, problem: &str, known: &[&str]) -> Error {
    Error::Config {
        origin: origin.to_string(),
        message: format!(
            "method.name: {problem}; known methods: {}",
            known.join(", ")
        ),
    }
}

/// Declares a modality's method modules and its `registry()` in one list,
/// one line per method: `module::Type` (the file `module.rs` beside the
/// invocation, and the type in it that implements [`Register`]).
///
/// ```ignore
/// selfsup_train::methods! { Vision;
///     simclr::SimClr,
///     moco::Moco,
/// }
/// ```
#[macro_export]
macro_rules! methods {
    ($modality:ty; $($module:ident :: $method:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Every built-in method of this modality, in the order `selfsup tasks` lists them.
        pub fn registry() -> $crate::registry::Registry<$modality> {
            $crate::registry::Registry::new()$(.with::<$module::$method>())*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    struct Toys;
    impl Modality for Toys {
        type Built = i64;
        type Context = i64;
        const NAME: &'static str = "toys";
        const DEFAULT_RECIPE: &'static str = "small";
    }

    struct Doubler;
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DoublerConfig {
        factor: i64,
    }
    impl Register<Toys> for Doubler {
        const NAME: &'static str = "doubler";
        const SUMMARY: &'static str = "multiplies";
        const TEST_TABLE: &'static str = "";
        type Config = DoublerConfig;
        fn build(config: &DoublerConfig, _path: nn::Path, context: &i64) -> Result<Box<i64>> {
            check::size("method.factor", config.factor)?;
            Ok(Box::new(config.factor * context))
        }
    }

    fn registry() -> Registry<Toys> {
        Registry::new().with::<Doubler>()
    }

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn a_registered_method_parses_builds_and_round_trips() {
        let choice = registry()
            .parse(table("name = \"doubler\"\nfactor = 3"), "t.toml")
            .unwrap();
        assert_eq!(choice.name(), "doubler");
        assert_eq!(choice.get::<Doubler>().unwrap().factor, 3);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        assert_eq!(*choice.build(vs.root(), &5).unwrap(), 15);
        let written = toml::to_string(&choice).unwrap();
        assert_eq!(written, "name = \"doubler\"\nfactor = 3\n");
    }

    #[test]
    fn bad_tables_name_the_key() {
        let registry = registry();
        let error = |text: &str| {
            registry
                .parse(table(text), "t.toml")
                .unwrap_err()
                .to_string()
        };
        let unknown = error("name = \"tripler\"");
        assert!(
            unknown.contains("unknown method `tripler`") && unknown.contains("doubler"),
            "{unknown}"
        );
        assert!(error("factor = 2").contains("method.name: missing"));
        let typo = error("name = \"doubler\"\nfactr = 2");
        assert!(typo.contains("t.toml") && typo.contains("factr"), "{typo}");
        let kind = error("name = \"doubler\"\nfactor = \"two\"");
        assert!(kind.contains("method.factor"), "{kind}");
        let choice = registry
            .parse(table("name = \"doubler\"\nfactor = 0"), "t")
            .unwrap();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let built = choice.build(vs.root(), &1).unwrap_err().to_string();
        assert!(built.contains("method.factor"), "{built}");
    }
}

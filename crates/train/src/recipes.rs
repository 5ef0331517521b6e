//! Tasks and their recipes, derived from a registry and the config files:
//! method `simclr` of modality `vision` is task `vision-simclr`, and every
//! file `configs/vision/simclr-<recipe>.toml` is one of its recipes. Adding
//! a recipe is adding a file; a task whose default recipe file is missing
//! is a clear error when it runs, not a build failure.

use crate::error::{Error, Result};
use crate::registry::{Modality, Registry};
use std::path::Path;

/// A config file built into the binary: its path from the repository root
/// (`configs/vision/simclr-mnist.toml`) and its text.
#[derive(Debug, Clone, Copy)]
pub struct RecipeFile {
    /// Path from the repository root.
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

/// One recipe of a task.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Name for `--recipe`, e.g. `mnist`, `cifar10`, `cifar10-cpu`.
    pub name: String,
    /// Path from the repository root.
    pub path: &'static str,
    /// The config's text.
    pub text: &'static str,
}

/// A task: a method of a modality with its recipes.
#[derive(Debug, Clone)]
pub struct Task {
    /// `<modality>-<method>`, e.g. `vision-simclr`.
    pub name: String,
    /// The modality, e.g. `vision`.
    pub modality: &'static str,
    /// The method's registered name.
    pub method: &'static str,
    /// One line for listings.
    pub summary: &'static str,
    /// Recipes by name, sorted; see [`Task::recipe`] for the default.
    pub recipes: Vec<Recipe>,
    /// The recipe used without `--recipe`.
    pub default_recipe: &'static str,
}

/// Every task of `registry`, with its recipes found among `files`.
pub fn tasks_of<M: Modality>(registry: &Registry<M>, files: &[RecipeFile]) -> Vec<Task> {
    registry
        .methods()
        .map(|(method, summary)| {
            let prefix = format!("configs/{}/{method}-", M::NAME);
            let mut recipes: Vec<Recipe> = files
                .iter()
                .filter_map(|file| {
                    let name = file.path.strip_prefix(&prefix)?.strip_suffix(".toml")?;
                    Some(Recipe {
                        name: name.to_string(),
                        path: file.path,
                        text: file.text,
                    })
                })
                .collect();
            recipes.sort_by(|a, b| a.name.cmp(&b.name));
            Task {
                name: format!("{}-{method}", M::NAME),
                modality: M::NAME,
                method,
                summary,
                recipes,
                default_recipe: M::DEFAULT_RECIPE,
            }
        })
        .collect()
}

/// The task called `name`; an unknown name lists the known ones.
pub fn find_task<'a>(tasks: &'a [Task], name: &str) -> Result<&'a Task> {
    tasks.iter().find(|t| t.name == name).ok_or_else(|| {
        let known: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        task_error(
            name,
            format!("unknown task; known tasks: {}", known.join(", ")),
        )
    })
}

fn task_error(task: &str, message: String) -> Error {
    Error::Config {
        origin: format!("task `{task}`"),
        message,
    }
}

impl Task {
    /// The recipe named `name`, or the default; an unknown or missing one
    /// says which file it looked for and which recipes there are.
    pub fn recipe(&self, name: Option<&str>) -> Result<&Recipe> {
        let wanted = name.unwrap_or(self.default_recipe);
        self.recipes.iter().find(|r| r.name == wanted).ok_or_else(|| {
            let known: Vec<&str> = self.recipes.iter().map(|r| r.name.as_str()).collect();
            let file = format!("configs/{}/{}-{wanted}.toml", self.modality, self.method);
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            task_error(
                &self.name,
                format!("no recipe `{wanted}` ({file} is not built in); its recipes: {known}; or pass --config FILE"),
            )
        })
    }

    /// The recipe `--data <dataset>` implies: the one named after the data
    /// set, if the task has one.
    pub fn recipe_for_data(&self, dataset: &str) -> Option<&Recipe> {
        self.recipes.iter().find(|r| r.name == dataset)
    }
}

/// Where a run's config comes from, in the order a user would expect:
/// a resumed run's own config, then `--config`, then the task's recipe
/// (`--recipe`, else the one named after `--data`, else the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigChoice<'a> {
    /// `--resume <run folder>`.
    pub resume: Option<&'a Path>,
    /// `--config <file>`.
    pub config: Option<&'a Path>,
    /// `--recipe <name>`.
    pub recipe: Option<&'a str>,
    /// `--data <name>`.
    pub data: Option<&'a str>,
}

/// The config text and its origin (for messages) that `choice` selects for `task`.
pub fn config_text(task: &Task, choice: ConfigChoice<'_>) -> Result<(String, String)> {
    let resumed = choice.resume.map(|dir| dir.join("config.toml"));
    if let Some(path) = resumed.as_deref().or(choice.config) {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        return Ok((text, path.display().to_string()));
    }
    let recipe = match (choice.recipe, choice.data) {
        (None, Some(data)) => match task.recipe_for_data(data) {
            Some(recipe) => recipe,
            None => task.recipe(None)?,
        },
        (name, _) => task.recipe(name)?,
    };
    Ok((
        recipe.text.to_string(),
        format!("{} (built in)", recipe.path),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Register;

    struct Toys;
    impl Modality for Toys {
        type Built = ();
        type Context = ();
        const NAME: &'static str = "toys";
        const DEFAULT_RECIPE: &'static str = "small";
    }
    struct Ball;
    impl Register<Toys> for Ball {
        const NAME: &'static str = "ball";
        const SUMMARY: &'static str = "bounces";
        const TEST_TABLE: &'static str = "";
        type Config = toml::Table;
        fn build(_: &toml::Table, _: tch::nn::Path, _: &()) -> Result<Box<()>> {
            Ok(Box::new(()))
        }
    }
    struct Kite;
    impl Register<Toys> for Kite {
        const NAME: &'static str = "kite";
        const SUMMARY: &'static str = "flies";
        const TEST_TABLE: &'static str = "";
        type Config = toml::Table;
        fn build(_: &toml::Table, _: tch::nn::Path, _: &()) -> Result<Box<()>> {
            Ok(Box::new(()))
        }
    }

    const FILES: &[RecipeFile] = &[
        RecipeFile {
            path: "configs/toys/ball-small.toml",
            text: "small ball",
        },
        RecipeFile {
            path: "configs/toys/ball-big-cpu.toml",
            text: "big ball",
        },
        RecipeFile {
            path: "configs/other/ball-small.toml",
            text: "not a toy",
        },
    ];

    #[test]
    fn tasks_come_from_the_registry_and_recipes_from_files() {
        let tasks = tasks_of(
            &Registry::<Toys>::new().with::<Ball>().with::<Kite>(),
            FILES,
        );
        let ball = find_task(&tasks, "toys-ball").unwrap();
        let names: Vec<&str> = ball.recipes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["big-cpu", "small"]);
        assert_eq!(ball.recipe(None).unwrap().text, "small ball");
        assert_eq!(ball.recipe_for_data("big-cpu").unwrap().text, "big ball");
        let error = ball.recipe(Some("huge")).unwrap_err().to_string();
        assert!(
            error.contains("configs/toys/ball-huge.toml") && error.contains("big-cpu"),
            "{error}"
        );
        let kite = find_task(&tasks, "toys-kite").unwrap();
        let error = kite.recipe(None).unwrap_err().to_string();
        assert!(
            error.contains("configs/toys/kite-small.toml") && error.contains("none"),
            "{error}"
        );
        let error = find_task(&tasks, "toys-yoyo").unwrap_err().to_string();
        assert!(error.contains("toys-ball, toys-kite"), "{error}");
    }

    #[test]
    fn the_config_comes_from_resume_then_file_then_recipe() {
        let tasks = tasks_of(&Registry::<Toys>::new().with::<Ball>(), FILES);
        let ball = &tasks[0];
        let by_data = ConfigChoice {
            data: Some("big-cpu"),
            ..Default::default()
        };
        assert_eq!(config_text(ball, by_data).unwrap().0, "big ball");
        let unknown_data = ConfigChoice {
            data: Some("cifar10"),
            ..Default::default()
        };
        assert_eq!(config_text(ball, unknown_data).unwrap().0, "small ball");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "resumed").unwrap();
        let resumed = ConfigChoice {
            resume: Some(dir.path()),
            recipe: Some("small"),
            ..Default::default()
        };
        assert_eq!(config_text(ball, resumed).unwrap().0, "resumed");
        let missing = ConfigChoice {
            config: Some(Path::new("/no/such.toml")),
            ..Default::default()
        };
        assert!(config_text(ball, missing)
            .unwrap_err()
            .to_string()
            .contains("/no/such.toml"));
    }
}

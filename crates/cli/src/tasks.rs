//! The named tasks of `selfsup train <task>`: each has recipes (configs built
//! into the binary so it runs from anywhere): the first runs on the bundled
//! data; the others are named after their data (`cifar10`, the published
//! recipe for a GPU; `cifar10-cpu`, a 2-core budget). `--config` replaces them.

use anyhow::{bail, Result};

/// One built-in config of a task.
#[derive(Debug)]
pub struct Recipe {
    /// Name for `--recipe`, e.g. `mnist`, `cifar10`, `cifar10-cpu`.
    pub name: &'static str,
    /// Where the config lives in the repository.
    pub path: &'static str,
    /// The config's text.
    pub text: &'static str,
}

/// Which half of the library a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Images: `selfsup-vision`, evaluated with k-NN.
    Vision,
    /// Text: `selfsup-text`, evaluated with validation loss.
    Text,
}

/// A task: its name, what it does, and its recipes (the first is the default).
pub struct Task {
    /// Vision or text.
    pub kind: Kind,
    /// Name on the command line, e.g. `vision-mae`.
    pub name: &'static str,
    /// One line for listings.
    pub summary: &'static str,
    /// Built-in configs; the first runs on the bundled data.
    pub recipes: &'static [Recipe],
}

macro_rules! recipes {
    ($method:literal) => {
        &[
            Recipe {
                name: "mnist",
                path: concat!("configs/vision/", $method, "-mnist.toml"),
                text: include_str!(concat!("../../../configs/vision/", $method, "-mnist.toml")),
            },
            Recipe {
                name: "cifar10",
                path: concat!("configs/vision/", $method, "-cifar10.toml"),
                text: include_str!(concat!(
                    "../../../configs/vision/",
                    $method,
                    "-cifar10.toml"
                )),
            },
            Recipe {
                name: "cifar10-cpu",
                path: concat!("configs/vision/", $method, "-cifar10-cpu.toml"),
                text: include_str!(concat!(
                    "../../../configs/vision/",
                    $method,
                    "-cifar10-cpu.toml"
                )),
            },
        ]
    };
}

/// Every task.
pub const TASKS: &[Task] = &[
    Task {
        kind: Kind::Vision,
        name: "vision-mae",
        summary: "MAE (ViT) on bundled MNIST, then k-NN vs random init",
        recipes: recipes!("mae"),
    },
    Task {
        kind: Kind::Vision,
        name: "vision-simclr",
        summary: "SimCLR (small CNN) on bundled MNIST, then k-NN vs random init",
        recipes: recipes!("simclr"),
    },
    Task {
        kind: Kind::Vision,
        name: "vision-moco",
        summary: "MoCo v2+ (small CNN) on bundled MNIST, then k-NN vs random init",
        recipes: recipes!("moco"),
    },
    Task {
        kind: Kind::Vision,
        name: "vision-mocov3",
        summary: "MoCo v3 (small CNN) on bundled MNIST, then k-NN vs random init",
        recipes: recipes!("mocov3"),
    },
    Task {
        kind: Kind::Vision,
        name: "vision-rotnet",
        summary: "rotation prediction (small CNN) on bundled MNIST, then k-NN vs random init",
        recipes: recipes!("rotnet"),
    },
    Task {
        kind: Kind::Text,
        name: "text-gpt",
        summary:
            "next-token GPT (char-level) on bundled Moby-Dick, then validation loss vs random init",
        recipes: &[
            Recipe {
                name: "moby-dick",
                path: "configs/text/gpt-moby-dick.toml",
                text: include_str!("../../../configs/text/gpt-moby-dick.toml"),
            },
            Recipe {
                name: "shakespeare",
                path: "configs/text/gpt-shakespeare.toml",
                text: include_str!("../../../configs/text/gpt-shakespeare.toml"),
            },
            Recipe {
                name: "shakespeare-cpu",
                path: "configs/text/gpt-shakespeare-cpu.toml",
                text: include_str!("../../../configs/text/gpt-shakespeare-cpu.toml"),
            },
        ],
    },
    Task {
        kind: Kind::Text,
        name: "text-mlm",
        summary:
            "masked-LM BERT (char-level) on bundled Moby-Dick, then validation loss vs random init",
        recipes: &[Recipe {
            name: "moby-dick",
            path: "configs/text/mlm-moby-dick.toml",
            text: include_str!("../../../configs/text/mlm-moby-dick.toml"),
        }],
    },
];

/// Looks a task up; an unknown name lists the known ones.
pub fn find(name: &str) -> Result<&'static Task> {
    match TASKS.iter().find(|t| t.name == name) {
        Some(task) => Ok(task),
        None => {
            let known: Vec<&str> = TASKS.iter().map(|t| t.name).collect();
            bail!("unknown task `{name}`; known tasks: {}", known.join(", "))
        }
    }
}

impl Task {
    /// The recipe named `name`, or the default; an unknown name lists the known ones.
    pub fn recipe(&self, name: Option<&str>) -> Result<&'static Recipe> {
        let Some(name) = name else {
            return Ok(&self.recipes[0]);
        };
        match self.recipes.iter().find(|r| r.name == name) {
            Some(recipe) => Ok(recipe),
            None => {
                let known: Vec<&str> = self.recipes.iter().map(|r| r.name).collect();
                bail!(
                    "task `{}` has no recipe `{name}`; its recipes: {}",
                    self.name,
                    known.join(", ")
                )
            }
        }
    }

    /// The recipe `--data <dataset>` implies: the one named after the data
    /// set, if the task has one.
    pub fn recipe_for_data(&self, dataset: &str) -> Option<&'static Recipe> {
        self.recipes.iter().find(|r| r.name == dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_task_lists_the_known_ones() {
        let err = find("vision-nope").err().unwrap().to_string();
        assert!(
            err.contains("vision-nope") && err.contains("vision-mae"),
            "{err}"
        );
    }

    #[test]
    fn every_recipe_parses_and_names_its_task() {
        for task in TASKS {
            for recipe in task.recipes {
                let name = match task.kind {
                    Kind::Vision => {
                        crate::train::parse_config(recipe.text, recipe.path, &[]).map(|c| c.name)
                    }
                    Kind::Text => crate::text_train::parse_config(recipe.text, recipe.path, &[])
                        .map(|c| c.name),
                };
                let name = name.unwrap_or_else(|e| panic!("{} {}: {e:#}", task.name, recipe.name));
                assert_eq!(name, task.name, "{}", recipe.path);
            }
        }
    }

    #[test]
    fn recipes_are_chosen_by_name_or_data_set() {
        let task = find("vision-simclr").unwrap();
        assert_eq!(task.recipe(None).unwrap().name, "mnist");
        assert_eq!(
            task.recipe(Some("cifar10-cpu")).unwrap().name,
            "cifar10-cpu"
        );
        assert_eq!(task.recipe_for_data("cifar10").unwrap().name, "cifar10");
        assert!(task.recipe_for_data("stl10").is_none());
        let err = task.recipe(Some("imagenet")).unwrap_err().to_string();
        assert!(
            err.contains("imagenet") && err.contains("cifar10-cpu"),
            "{err}"
        );
    }
}

//! The named tasks of `selfsup train <task>`: each is a default config, built
//! into the binary so it runs from anywhere, and overridable with `--config`.

use anyhow::{bail, Result};

/// A task: its name, what it does, and its default config.
pub struct Task {
    /// Name on the command line, e.g. `vision-mae`.
    pub name: &'static str,
    /// One line for listings.
    pub summary: &'static str,
    /// Where the default config lives in the repository.
    pub config_path: &'static str,
    /// The default config's text.
    pub config_text: &'static str,
}

/// Every task.
pub const TASKS: &[Task] = &[Task {
    name: "vision-mae",
    summary: "MAE (ViT) on bundled MNIST, then k-NN vs random init",
    config_path: "configs/vision/mae-mnist.toml",
    config_text: include_str!("../../../configs/vision/mae-mnist.toml"),
}];

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
    fn every_default_config_parses() {
        for task in TASKS {
            crate::train::parse_config(task.config_text, task.config_path, &[])
                .unwrap_or_else(|e| panic!("{}: {e:#}", task.name));
        }
    }
}

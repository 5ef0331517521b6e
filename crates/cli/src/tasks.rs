//! The tasks of `selfsup train <task>`, from the two registries and the
//! recipe files built into the binary.

use selfsup_train::recipes::{tasks_of, Task};

include!(concat!(env!("OUT_DIR"), "/recipes.rs"));

/// Every task: vision's, then text's.
pub fn all() -> Vec<Task> {
    let mut tasks = tasks_of(&selfsup_vision::registry(), RECIPE_FILES);
    tasks.extend(tasks_of(&selfsup_text::registry(), RECIPE_FILES));
    tasks
}

/// `selfsup tasks`: one line per task with its recipes, default first.
pub fn print() {
    for task in all() {
        let mut recipes: Vec<&str> = task.recipes.iter().map(|r| r.name.as_str()).collect();
        recipes.sort_by_key(|name| *name != task.default_recipe);
        let recipes = if recipes.is_empty() {
            "none".to_string()
        } else {
            recipes.join(", ")
        };
        println!("{:<15} {}  (recipes: {recipes})", task.name, task.summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfsup_text::TextRunConfig;
    use selfsup_vision::VisionRunConfig;

    #[test]
    fn every_task_has_its_default_and_every_recipe_parses_and_names_its_task() {
        let (vision, text) = (selfsup_vision::registry(), selfsup_text::registry());
        let tasks = all();
        assert!(tasks.len() >= 7);
        for task in &tasks {
            task.recipe(None).unwrap_or_else(|e| panic!("{e}"));
            for recipe in &task.recipes {
                let name = match task.modality {
                    "vision" => vision
                        .parse_run::<_>(recipe.text, recipe.path, &[])
                        .map(|c: VisionRunConfig| c.name),
                    _ => text
                        .parse_run::<_>(recipe.text, recipe.path, &[])
                        .map(|c: TextRunConfig| c.name),
                };
                let name = name.unwrap_or_else(|e| panic!("{}: {e}", recipe.path));
                assert_eq!(name, task.name, "{}", recipe.path);
            }
        }
    }

    #[test]
    fn every_config_file_belongs_to_a_task() {
        let tasks = all();
        for file in RECIPE_FILES {
            let owned = tasks
                .iter()
                .any(|t| t.recipes.iter().any(|r| r.path == file.path));
            assert!(owned, "{} matches no registered method", file.path);
        }
    }
}

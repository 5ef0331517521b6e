//! Builds every recipe file under `configs/` into the binary, so `selfsup`
//! runs from any folder: `configs/<modality>/<method>-<recipe>.toml` becomes
//! recipe `<recipe>` of task `<modality>-<method>` (see selfsup_train::recipes).
//! Adding a recipe is adding a file; no code lists them.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let configs = root.join("configs");
    println!("cargo:rerun-if-changed={}", configs.display());
    let mut files: Vec<PathBuf> = Vec::new();
    if let Ok(modalities) = std::fs::read_dir(&configs) {
        for modality in modalities.flatten() {
            println!("cargo:rerun-if-changed={}", modality.path().display());
            if let Ok(entries) = std::fs::read_dir(modality.path()) {
                files.extend(
                    entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "toml")),
                );
            }
        }
    }
    files.sort();
    let mut out = String::from("/// Every recipe file under `configs/`, built in.\npub const RECIPE_FILES: &[selfsup_train::recipes::RecipeFile] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under the repository root");
        let absolute = file.canonicalize().expect("a readable config file");
        writeln!(
            out,
            "    selfsup_train::recipes::RecipeFile {{ path: {:?}, text: include_str!({:?}) }},",
            relative.to_string_lossy(),
            absolute.to_string_lossy()
        )
        .expect("writing to a string");
    }
    out.push_str("];\n");
    let target =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("recipes.rs");
    std::fs::write(target, out).expect("writing recipes.rs");
}

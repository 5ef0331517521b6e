//! Checkpoints: every tensor of a run (weights, optimizer state, step counters)
//! in one safetensors file, written atomically: temp file, fsync, rename, fsync
//! of the folder. A crash mid-write leaves the previous checkpoint intact, and
//! because the counters live in the same file, weights and step always agree.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Tensor};

/// Writes `tensors` to `<dir>/<name>.safetensors` atomically and returns the path.
pub fn save_atomic(dir: &Path, name: &str, tensors: &[(String, Tensor)]) -> Result<PathBuf> {
    let final_path = dir.join(format!("{name}.safetensors"));
    // tch picks the format from the extension, so the temp name keeps it.
    let tmp_path = dir.join(format!(".{name}.tmp.safetensors"));
    let write = || -> std::io::Result<()> {
        Tensor::write_safetensors(tensors, &tmp_path).map_err(std::io::Error::other)?;
        std::fs::File::open(&tmp_path)?.sync_all()?;
        std::fs::rename(&tmp_path, &final_path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp_path);
        Error::io(&final_path, e)
    })?;
    Ok(final_path)
}

/// Reads every tensor of a checkpoint, sorted by name.
pub fn load(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let mut tensors = Tensor::read_safetensors(path)
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tensors)
}

/// The var store's variables, prefixed (e.g. `model.`), sorted by name.
pub fn named_variables(vs: &VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("{prefix}{n}"), t))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Copies `<prefix><name>` entries into the var store; every variable must be
/// present with its shape, and the error names the first that is not
/// (checked for all before any is copied).
pub fn restore_variables(
    vs: &VarStore,
    prefix: &str,
    saved: &[(String, Tensor)],
    origin: &Path,
) -> Result<()> {
    check_variables(vs, prefix, saved, origin)?;
    for (name, mut var) in vs.variables() {
        let key = format!("{prefix}{name}");
        if let Some((_, t)) = saved.iter().find(|(n, _)| *n == key) {
            tch::no_grad(|| var.copy_(t));
        }
    }
    Ok(())
}

/// Whether every variable of the var store is in `saved` as
/// `<prefix><name>` with its shape; the error names the first that is not.
pub fn check_variables(
    vs: &VarStore,
    prefix: &str,
    saved: &[(String, Tensor)],
    origin: &Path,
) -> Result<()> {
    let mut variables: Vec<_> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in variables {
        let key = format!("{prefix}{name}");
        let found = saved.iter().find(|(n, _)| *n == key).map(|(_, t)| t);
        let problem = match found {
            None => format!("no tensor `{key}`"),
            Some(t) if t.size() != var.size() => format!(
                "`{key}` has shape {:?}, the model {:?}",
                t.size(),
                var.size()
            ),
            Some(_) => continue,
        };
        return Err(Error::io(
            origin,
            std::io::Error::new(std::io::ErrorKind::InvalidData, problem),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn model(seed: i64) -> VarStore {
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "fc", 4, 3, Default::default());
        vs
    }

    #[test]
    fn round_trip_restores_exact_weights() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (model(1), model(2));
        let path = save_atomic(dir.path(), "last", &named_variables(&a, "model.")).unwrap();
        assert!(!dir.path().join(".last.tmp.safetensors").exists());
        restore_variables(&b, "model.", &load(&path).unwrap(), &path).unwrap();
        for (name, t) in a.variables() {
            assert!(t.equal(&b.variables()[&name]), "{name}");
        }
    }

    #[test]
    fn a_failed_write_keeps_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let first = model(1);
        let path = save_atomic(dir.path(), "last", &named_variables(&first, "model.")).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A folder squatting on the temp name makes the write fail part-way.
        std::fs::create_dir(dir.path().join(".last.tmp.safetensors")).unwrap();
        let err =
            save_atomic(dir.path(), "last", &named_variables(&model(2), "model.")).unwrap_err();
        assert!(err.to_string().contains("last.safetensors"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn mismatches_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = save_atomic(dir.path(), "x", &named_variables(&model(1), "model.")).unwrap();
        let saved = load(&path).unwrap();
        let err = restore_variables(&model(1), "other.", &saved, &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("other.fc.") && err.contains("x.safetensors"),
            "{err}"
        );
        let wider = VarStore::new(Device::Cpu);
        let _ = nn::linear(wider.root() / "fc", 5, 3, Default::default());
        let err = restore_variables(&wider, "model.", &saved, &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.fc.weight") && err.contains("[3, 4]"),
            "{err}"
        );
        std::fs::write(dir.path().join("junk.safetensors"), b"junk").unwrap();
        assert!(load(&dir.path().join("junk.safetensors"))
            .unwrap_err()
            .to_string()
            .contains("junk.safetensors"));
    }
}

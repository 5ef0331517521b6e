//! The folder a data command writes into: refused when it already holds
//! files (an earlier split's test mails would otherwise mix with this one's
//! training mails, an earlier run's extra shards be trained on), emptied of
//! the command's own outputs first when the user says `--overwrite`. Files
//! the command would not have written are never removed.

use crate::error::{Error, Result};
use std::path::Path;

/// Makes `out` ready for a command whose outputs are the entries for which
/// `is_output(name)` holds: created when missing; when it has entries,
/// an error unless `overwrite`, and then those outputs are removed and any
/// other entry is an error naming it.
pub fn prepare_output_dir(
    out: &Path,
    overwrite: bool,
    is_output: impl Fn(&str) -> bool,
) -> Result<()> {
    if !out.exists() {
        return std::fs::create_dir_all(out).map_err(|e| Error::io(out, e));
    }
    let mut entries: Vec<_> = std::fs::read_dir(out)
        .map_err(|e| Error::io(out, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(out, e)))
        .collect::<Result<_>>()?;
    entries.sort();
    if entries.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::format(
            out,
            format!(
                "already holds {} entries (e.g. {}); choose an empty --out, or pass --overwrite to replace them",
                entries.len(),
                entries[0].display()
            ),
        ));
    }
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if let Some(foreign) = entries.iter().find(|p| !is_output(&name(p))) {
        return Err(Error::format(
            foreign,
            "was not written by this command; --overwrite removes only its own outputs, so move it or choose another --out",
        ));
    }
    for entry in &entries {
        let removed = match entry.is_dir() && !entry.is_symlink() {
            true => std::fs::remove_dir_all(entry),
            false => std::fs::remove_file(entry),
        };
        removed.map_err(|e| Error::io(entry, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_empty_folder_is_refused_then_emptied_of_outputs_on_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let ours = |name: &str| name == "train" || name.ends_with(".tar");
        prepare_output_dir(&out, false, ours).unwrap();
        assert!(out.is_dir());
        prepare_output_dir(&out, false, ours).unwrap();
        std::fs::create_dir_all(out.join("train/ham")).unwrap();
        std::fs::write(out.join("old.tar"), "x").unwrap();
        let error = prepare_output_dir(&out, false, ours)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("already holds 2 entries") && error.contains("--overwrite"),
            "{error}"
        );
        std::fs::write(out.join("notes.md"), "mine").unwrap();
        let error = prepare_output_dir(&out, true, ours)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("notes.md") && error.contains("was not written"),
            "{error}"
        );
        assert!(
            out.join("old.tar").exists(),
            "nothing removed before every entry was checked"
        );
        std::fs::remove_file(out.join("notes.md")).unwrap();
        prepare_output_dir(&out, true, ours).unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
}

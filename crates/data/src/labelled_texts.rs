//! Labelled texts for fine-tuning and baselines: `root/<class>/<file>`, one
//! document per file, classes in name order. Files are read as UTF-8 with
//! invalid bytes replaced (real mail is not always UTF-8).

use crate::image_folder::class_names;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Documents and their classes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassTexts {
    /// Each document's text.
    pub texts: Vec<String>,
    /// Each document's class, an index into `classes`.
    pub labels: Vec<i64>,
    /// The class (folder) names, sorted.
    pub classes: Vec<String>,
}

/// The files of `dir` (hidden ones aside), sorted.
fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads every file of every class folder under `root`; at least two
/// classes, none empty.
pub fn read_class_folders(root: &Path) -> Result<ClassTexts> {
    let classes = match class_names(root) {
        Err(Error::Format { .. }) => Vec::new(), // no class folder at all
        found => found?,
    };
    if classes.len() < 2 {
        let message = format!(
            "{} class folders; labelled texts are root/<class>/<file>, with two classes or more",
            classes.len()
        );
        return Err(Error::format(root, message));
    }
    let mut out = ClassTexts::default();
    for (label, class) in classes.iter().enumerate() {
        let folder = root.join(class);
        let files = sorted_files(&folder)?;
        if files.is_empty() {
            return Err(Error::format(&folder, "the class folder holds no files"));
        }
        for file in files {
            let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
            out.texts.push(String::from_utf8_lossy(&bytes).into_owned());
            out.labels.push(label as i64);
        }
    }
    out.classes = classes;
    Ok(out)
}

/// The ids of the start of `text`, at most `max_tokens`: only about as many
/// characters as could fill them are encoded, and characters a
/// character-level tokenizer lacks are dropped rather than failing.
pub fn encode_start(tokenizer: &Tokenizer, text: &str, max_tokens: usize) -> Vec<u32> {
    let start: String = text.chars().take(max_tokens.saturating_mul(16)).collect();
    let mut ids = tokenizer.encode(&start).unwrap_or_else(|_| {
        let mut buffer = [0u8; 4];
        start
            .chars()
            .filter_map(|c| tokenizer.encode(c.encode_utf8(&mut buffer)).ok())
            .flatten()
            .collect()
    });
    ids.truncate(max_tokens);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::CharTokenizer;

    #[test]
    fn class_folders_become_labels() {
        let dir = tempfile::tempdir().unwrap();
        for (class, files) in [("spam", vec!["b.txt", "a"]), ("ham", vec!["x.txt"])] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for file in files {
                std::fs::write(dir.path().join(class).join(file), format!("{class} {file}"))
                    .unwrap();
            }
        }
        std::fs::write(dir.path().join("spam/bad.txt"), b"caf\xe9").unwrap();
        let read = read_class_folders(dir.path()).unwrap();
        assert_eq!(read.classes, vec!["ham", "spam"]);
        assert_eq!(read.labels, vec![0, 1, 1, 1]);
        assert_eq!(read.texts[1], "spam a");
        assert_eq!(
            read.texts[3], "caf\u{fffd}",
            "invalid UTF-8 is replaced, not an error"
        );
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let error = read_class_folders(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("empty") && error.contains("no files"),
            "{error}"
        );
        let error = read_class_folders(&dir.path().join("ham"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("two classes"), "{error}");
    }

    #[test]
    fn encoding_keeps_the_start_and_skips_unknown_characters() {
        let tokenizer = Tokenizer::Char(CharTokenizer::fit("abc "));
        assert_eq!(encode_start(&tokenizer, "ab cab", 4).len(), 4);
        let ids = encode_start(&tokenizer, "a\u{1F40B}b", 10);
        assert_eq!(tokenizer.decode(&ids).unwrap(), "ab");
    }
}

//! Plain-text corpora and the character-level tokenizer.

use crate::error::{read_maybe_gz, Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads a UTF-8 text file (gunzipped when it ends in `.gz`); invalid UTF-8 is
/// reported with the file and the byte offset.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read_maybe_gz(path)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::format(
            path,
            format!(
                "not UTF-8: invalid byte at offset {}",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A corpus: one text file, or every `.txt` / `.txt.gz` file of a folder in
/// name order, joined by newlines. A folder without text files is an error.
pub fn read_corpus(path: &Path) -> Result<String> {
    let texts = corpus_files(path)?
        .iter()
        .map(|f| read_text(f))
        .collect::<Result<Vec<_>>>()?;
    Ok(texts.join("\n"))
}

/// The files of a corpus, in the order [`read_corpus`] joins them.
pub fn corpus_files(path: &Path) -> Result<Vec<std::path::PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    let mut files: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.to_string_lossy();
            p.is_file() && (name.ends_with(".txt") || name.ends_with(".txt.gz"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::format(
            path,
            "the folder holds no .txt or .txt.gz files",
        ));
    }
    Ok(files)
}

/// Maps each distinct character of a corpus to an id (sorted by code point, so
/// the same corpus always gives the same vocabulary).
#[derive(Debug, Clone)]
pub struct CharTokenizer {
    chars: Vec<char>,
    ids: BTreeMap<char, u32>,
}

impl CharTokenizer {
    /// The vocabulary of every character in `text`.
    pub fn fit(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        let ids = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        Self { chars, ids }
    }

    /// Every character of the vocabulary in id order; `fit` on this string
    /// gives the same tokenizer back (how a run folder stores it).
    pub fn vocabulary(&self) -> String {
        self.chars.iter().collect()
    }

    /// Number of distinct tokens.
    pub fn vocab_size(&self) -> usize {
        self.chars.len()
    }

    /// Token ids of `text`; a character outside the vocabulary is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        text.chars()
            .map(|c| {
                self.ids.get(&c).copied().ok_or_else(|| {
                    Error::Mismatch(format!("character {c:?} is not in the vocabulary"))
                })
            })
            .collect()
    }

    /// The text of `ids`; ids outside the vocabulary are an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        ids.iter()
            .map(|&i| {
                self.chars.get(i as usize).copied().ok_or_else(|| {
                    Error::Mismatch(format!(
                        "token id {i} is outside the vocabulary of {}",
                        self.chars.len()
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sorted_vocabulary() {
        let tok = CharTokenizer::fit("call me ishmael");
        assert_eq!(tok.vocab_size(), 9);
        let ids = tok.encode("mace").unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "mace");
        assert_eq!(tok.encode(" ").unwrap(), vec![0], "space sorts first");
        assert!(tok.encode("z").unwrap_err().to_string().contains("'z'"));
        assert!(tok.decode(&[99]).is_err());
        assert_eq!(
            CharTokenizer::fit(&tok.vocabulary())
                .encode("mace")
                .unwrap(),
            ids
        );
    }

    #[test]
    fn a_folder_corpus_joins_its_text_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "second").unwrap();
        std::fs::write(dir.path().join("a.txt"), "first").unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
        assert_eq!(read_corpus(dir.path()).unwrap(), "first\nsecond");
        let empty = tempfile::tempdir().unwrap();
        let err = read_corpus(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no .txt"), "{err}");
    }

    #[test]
    fn invalid_utf8_names_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.txt");
        std::fs::write(&path, b"ok \xff no").unwrap();
        let err = read_text(&path).unwrap_err().to_string();
        assert!(err.contains("bad.txt") && err.contains("offset 3"), "{err}");
    }
}

//! Documents cut into sentences, for BERT's sentence-pair tasks (next
//! sentence, sentence order): a folder holds one document per file, a single
//! file is a corpus of documents separated by blank lines. Within a document
//! line breaks are layout, not sentence ends, so whitespace runs become one
//! space before the Unicode sentence boundaries (UAX #29) cut it.

use crate::text::{corpus_files, read_text};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use rayon::prelude::*;
use std::path::Path;
use unicode_segmentation::UnicodeSegmentation;

/// Token ids of each sentence of each document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Documents {
    /// `documents[d][s]`: the ids of sentence `s` of document `d`; every
    /// document has at least one sentence, every sentence one token.
    pub documents: Vec<Vec<Vec<u32>>>,
}

/// The documents' texts at `path`: each `.txt`/`.txt.gz` file of a folder
/// is one document; a file is split at blank lines.
pub fn read_documents(path: &Path) -> Result<Vec<String>> {
    if path.is_dir() {
        return corpus_files(path)?.iter().map(|f| read_text(f)).collect();
    }
    Ok(split_at_blank_lines(&read_text(path)?))
}

/// The paragraphs of `text`: runs of lines between lines that are blank.
pub fn split_at_blank_lines(text: &str) -> Vec<String> {
    let mut documents = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                documents.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        documents.push(current);
    }
    documents
}

/// The sentences of `document`, whitespace runs made single spaces; each
/// keeps its trailing space, so the sentences join back into the text.
pub fn sentences(document: &str) -> Vec<String> {
    let flat = document.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.unicode_sentences()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .collect()
}

impl Documents {
    /// Cuts each text into sentences and tokenises them (in parallel);
    /// empty documents and sentences without tokens are dropped.
    pub fn tokenize(texts: &[String], tokenizer: &Tokenizer) -> Result<Self> {
        let documents = texts
            .par_iter()
            .map(|text| {
                let mut kept = Vec::new();
                for sentence in sentences(text) {
                    let ids = tokenizer.encode(&sentence)?;
                    if !ids.is_empty() {
                        kept.push(ids);
                    }
                }
                Ok(kept)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            documents: documents.into_iter().filter(|d| !d.is_empty()).collect(),
        })
    }

    /// Reads and tokenises the documents at `path` (see [`read_documents`]).
    pub fn read(path: &Path, tokenizer: &Tokenizer) -> Result<Self> {
        let documents = Self::tokenize(&read_documents(path)?, tokenizer)?;
        if documents.len() < 2 {
            let message = "sentence pairs need at least two documents (files of a folder, or \
                           paragraphs of a file separated by blank lines)";
            return Err(Error::format(path, message));
        }
        Ok(documents)
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// True when there is no document.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Tokens in all documents.
    pub fn tokens(&self) -> usize {
        self.documents.iter().flatten().map(Vec::len).sum()
    }

    /// Splits by position: the first documents holding `train_fraction` of
    /// the tokens train, the rest validate (at least one document each when
    /// there are two).
    pub fn split(mut self, train_fraction: f64) -> (Self, Self) {
        let wanted = (self.tokens() as f64 * train_fraction) as usize;
        let mut seen = 0;
        let mut cut = self.documents.len();
        for (index, document) in self.documents.iter().enumerate() {
            if seen >= wanted {
                cut = index;
                break;
            }
            seen += document.iter().map(Vec::len).sum::<usize>();
        }
        if self.len() >= 2 {
            cut = cut.clamp(1, self.len() - 1);
        }
        let validation = self.documents.split_off(cut);
        (
            self,
            Self {
                documents: validation,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::CharTokenizer;

    #[test]
    fn paragraphs_and_sentences_are_cut_where_people_would() {
        let text =
            "CHAPTER 1.\n\nCall me Ishmael. Some years\nago I went to sea.\n  \nIs it? Yes!\n";
        let documents = split_at_blank_lines(text);
        assert_eq!(documents.len(), 3);
        assert_eq!(
            documents[1],
            "Call me Ishmael. Some years\nago I went to sea."
        );
        assert_eq!(
            sentences(&documents[1]),
            vec!["Call me Ishmael. ", "Some years ago I went to sea."]
        );
        assert_eq!(sentences(&documents[2]), vec!["Is it? ", "Yes!"]);
        assert!(sentences(" \n ").is_empty());
    }

    #[test]
    fn tokenised_documents_split_by_tokens() {
        let texts: Vec<String> = (0..10)
            .map(|i| format!("Doc {i} has one. And two."))
            .collect();
        let tokenizer = Tokenizer::Char(CharTokenizer::fit(&texts.concat()));
        let documents = Documents::tokenize(&texts, &tokenizer).unwrap();
        assert_eq!(documents.len(), 10);
        assert_eq!(documents.documents[3].len(), 2);
        assert_eq!(
            tokenizer.decode(&documents.documents[3][0]).unwrap(),
            "Doc 3 has one. "
        );
        let (train, validation) = documents.clone().split(0.8);
        assert_eq!((train.len(), validation.len()), (8, 2));
        let (train, validation) = documents.split(0.999);
        assert_eq!(
            (train.len(), validation.len()),
            (9, 1),
            "one document validates"
        );
    }

    #[test]
    fn a_folder_is_one_document_per_file_and_one_document_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "First mail.\n\nStill the first.").unwrap();
        std::fs::write(dir.path().join("b.txt"), "Second mail.").unwrap();
        let texts = read_documents(dir.path()).unwrap();
        assert_eq!(texts.len(), 2);
        let alphabet = texts.concat() + "Only one paragraph.\nOn two lines.";
        let tokenizer = Tokenizer::Char(CharTokenizer::fit(&alphabet));
        let documents = Documents::read(dir.path(), &tokenizer).unwrap();
        assert_eq!(
            documents.documents[0].len(),
            2,
            "blank lines inside a file do not split it"
        );
        let single = dir.path().join("one.txt");
        std::fs::write(&single, "Only one paragraph.\nOn two lines.").unwrap();
        let error = Documents::read(&single, &tokenizer)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("one.txt") && error.contains("two documents"),
            "{error}"
        );
    }
}

//! Writing token files (the format is in [`crate::token_file`]): token by
//! token through a temporary name and a rename, never holding the corpus;
//! a corpus tokenised one file at a time.

use crate::error::{Error, Result};
use crate::text::{corpus_files, read_text, CharTokenizer};
use crate::tokenizer::Tokenizer;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The file's first bytes.
pub(crate) const MAGIC: &[u8; 8] = b"selfsupT";
/// Magic, bytes per token and vocabulary size.
pub(crate) const HEADER: usize = 16;

/// Writes a token file token by token, never holding the corpus.
pub struct TokenFileWriter {
    out: BufWriter<File>,
    temporary: PathBuf,
    path: PathBuf,
    width: usize,
    vocab_size: u32,
    count: u64,
}

impl TokenFileWriter {
    /// Starts `path` for ids below `vocab_size`.
    pub fn create(path: &Path, vocab_size: u32) -> Result<Self> {
        let file_name = path
            .file_name()
            .ok_or_else(|| Error::format(path, "not a file name"))?;
        let mut temporary = path.to_path_buf();
        temporary.set_file_name(format!(".{}.partial", file_name.to_string_lossy()));
        let file = File::create(&temporary).map_err(|e| Error::io(&temporary, e))?;
        let width = if vocab_size <= 1 << 16 { 2 } else { 4 };
        let mut out = BufWriter::new(file);
        let mut header = MAGIC.to_vec();
        header.extend((width as u32).to_le_bytes());
        header.extend(vocab_size.to_le_bytes());
        out.write_all(&header)
            .map_err(|e| Error::io(&temporary, e))?;
        Ok(Self {
            out,
            temporary,
            path: path.to_path_buf(),
            width,
            vocab_size,
            count: 0,
        })
    }

    /// Appends `tokens`; an id outside the vocabulary is an error.
    pub fn push(&mut self, tokens: &[u32]) -> Result<()> {
        for &token in tokens {
            if token >= self.vocab_size {
                return Err(Error::format(
                    &self.path,
                    format!(
                        "token {token} at position {} is outside the vocabulary of {}",
                        self.count, self.vocab_size
                    ),
                ));
            }
            let written = if self.width == 2 {
                self.out.write_all(&(token as u16).to_le_bytes())
            } else {
                self.out.write_all(&token.to_le_bytes())
            };
            written.map_err(|e| Error::io(&self.temporary, e))?;
            self.count += 1;
        }
        Ok(())
    }

    /// Flushes, syncs and moves the file into place; returns the token count.
    pub fn finish(self) -> Result<u64> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.temporary, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.temporary, e))?;
        std::fs::rename(&self.temporary, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.count)
    }
}

/// Writes `tokens` to `path` in one go.
pub fn write_token_file(path: &Path, tokens: &[u32], vocab_size: u32) -> Result<()> {
    let mut writer = TokenFileWriter::create(path, vocab_size)?;
    writer.push(tokens)?;
    writer.finish().map(|_| ())
}

/// Tokenises a corpus (a file or a folder, see [`crate::text::read_corpus`])
/// into a token file, one file of the corpus at a time, so the corpus never
/// has to fit in memory at once. Files are joined by a newline, as
/// `read_corpus` joins them, so the tokens match tokenising the joined text
/// (for BPE, up to merges across a file boundary, which a newline prevents).
/// Returns the number of tokens.
pub fn tokenize_corpus(corpus: &Path, tokenizer: &Tokenizer, out: &Path) -> Result<u64> {
    let files = corpus_files(corpus)?;
    let mut writer = TokenFileWriter::create(out, tokenizer.vocab_size() as u32)?;
    for (i, file) in files.iter().enumerate() {
        if i > 0 {
            writer.push(&tokenizer.encode("\n")?)?;
        }
        let ids = tokenizer
            .encode(&read_text(file)?)
            .map_err(|e| Error::format(file, e.to_string()))?;
        writer.push(&ids)?;
    }
    writer.finish()
}

/// The character tokenizer of a whole corpus, read one file at a time.
pub fn corpus_characters(corpus: &Path) -> Result<CharTokenizer> {
    let files = corpus_files(corpus)?;
    let mut seen = std::collections::BTreeSet::new();
    if files.len() > 1 {
        seen.insert('\n');
    }
    for file in &files {
        seen.extend(read_text(file)?.chars());
    }
    Ok(CharTokenizer::fit(&seen.into_iter().collect::<String>()))
}

/// Where the tokenizer of token file `path` is written: `<path>.toml`.
pub fn tokenizer_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".toml");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_file::{TokenFile, Tokens};

    #[test]
    fn streaming_writes_match_one_shot_writes() {
        let dir = tempfile::tempdir().unwrap();
        let tokens: Vec<u32> = (0..10_000).map(|i| (i * 37) % 1000).collect();
        let path = dir.path().join("streamed.tokens");
        let mut writer = TokenFileWriter::create(&path, 1000).unwrap();
        assert!(!path.exists(), "nothing under the final name until finish");
        for chunk in tokens.chunks(333) {
            writer.push(chunk).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), 10_000);
        let whole = dir.path().join("whole.tokens");
        write_token_file(&whole, &tokens, 1000).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&whole).unwrap()
        );
    }
    #[test]
    fn a_folder_corpus_tokenizes_like_its_joined_text() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("books");
        std::fs::create_dir(&corpus).unwrap();
        std::fs::write(corpus.join("a.txt"), "call me ishmael.").unwrap();
        std::fs::write(corpus.join("b.txt"), "to be, or not").unwrap();
        let tokenizer = Tokenizer::Char(corpus_characters(&corpus).unwrap());
        let out = dir.path().join("books.tokens");
        let count = tokenize_corpus(&corpus, &tokenizer, &out).unwrap();
        let joined = crate::text::read_corpus(&corpus).unwrap();
        assert_eq!(count as usize, joined.chars().count());
        let file = TokenFile::open(&out).unwrap();
        assert_eq!(file.vocab_size() as usize, tokenizer.vocab_size());
        let ids = file.to_vec(0..file.len()).unwrap();
        assert_eq!(tokenizer.decode(&ids).unwrap(), joined);
        assert_eq!(tokenizer_path(&out), dir.path().join("books.tokens.toml"));
    }
}

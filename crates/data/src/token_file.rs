//! Token files: a tokenised corpus on disk, read window by window with
//! positional reads (`pread`, through the page cache) so a corpus larger
//! than memory trains without being loaded. Not a memory map: a file
//! truncated while a map of it is read kills the process with SIGBUS,
//! where a short read is an error naming the file. Every id is checked
//! against the header's vocabulary once, when the file is opened, so no id
//! past the model's embedding reaches it mid-run. Layout, little-endian:
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `selfsupT` |
//! | 4 | bytes per token, 2 (u16, vocabularies up to 65,536) or 4 (u32) |
//! | 4 | vocabulary size |
//! | rest | the tokens |
//!
//! Written by [`crate::token_writer`] (re-exported here) through a
//! temporary file and a rename, so a reader never sees a half-written file
//! under the final name.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::token_writer::{
    corpus_characters, tokenize_corpus, tokenizer_path, write_token_file, TokenFileWriter,
};
use crate::token_writer::{HEADER, MAGIC};

/// A sequence of token ids, in memory or on disk.
pub trait Tokens: Send + Sync + std::fmt::Debug {
    /// How many tokens.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Tokens `start..start + out.len()` into `out`; an error when a file
    /// under them can no longer be read (truncated while training).
    fn read_into(&self, start: usize, out: &mut [u32]) -> Result<()>;
    /// Tokens `range` as a vector.
    fn to_vec(&self, range: std::ops::Range<usize>) -> Result<Vec<u32>> {
        let mut out = vec![0; range.len()];
        self.read_into(range.start, &mut out)?;
        Ok(out)
    }
}

impl Tokens for [u32] {
    fn len(&self) -> usize {
        <[u32]>::len(self)
    }
    fn read_into(&self, start: usize, out: &mut [u32]) -> Result<()> {
        out.copy_from_slice(&self[start..start + out.len()]);
        Ok(())
    }
}

impl Tokens for Vec<u32> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn read_into(&self, start: usize, out: &mut [u32]) -> Result<()> {
        self.as_slice().read_into(start, out)
    }
}

/// A token file, opened and checked.
#[derive(Debug)]
pub struct TokenFile {
    file: File,
    path: PathBuf,
    width: usize,
    vocab_size: u32,
    len: usize,
}

impl TokenFile {
    /// Opens `path`, checks its header and size, and reads it through once
    /// to check that every id is below the header's vocabulary size (a
    /// sequential read: about a second per gigabyte from the page cache).
    pub fn open(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut header = [0u8; HEADER];
        if file_len < HEADER as u64
            || file.read_exact(&mut header).is_err()
            || &header[..8] != MAGIC
        {
            return Err(Error::format(
                path,
                "not a selfsup token file (no `selfsupT` header; make one with `selfsup data tokenize`)",
            ));
        }
        let field = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
        let (width, vocab_size) = (field(8) as usize, field(12));
        if width != 2 && width != 4 {
            return Err(Error::format(
                path,
                format!("{width} bytes per token; expected 2 or 4"),
            ));
        }
        let body = file_len - HEADER as u64;
        if body % width as u64 != 0 {
            return Err(Error::format(
                path,
                format!("{body} bytes of tokens is not a whole number of {width}-byte tokens (truncated?)"),
            ));
        }
        let tokens = Self {
            len: (body / width as u64) as usize,
            file,
            path: path.to_path_buf(),
            width,
            vocab_size,
        };
        tokens.check_ids()?;
        Ok(tokens)
    }

    /// Every id below the vocabulary size, read in chunks of 1 Mi tokens.
    fn check_ids(&self) -> Result<()> {
        let chunk = 1 << 20;
        let mut ids = vec![0u32; chunk.min(self.len)];
        for start in (0..self.len).step_by(chunk) {
            let count = chunk.min(self.len - start);
            self.read_into(start, &mut ids[..count])?;
            if let Some(at) = ids[..count].iter().position(|&id| id >= self.vocab_size) {
                return Err(Error::format(
                    &self.path,
                    format!(
                        "token {} at position {} is outside the vocabulary of {} (written by another tokenizer, or damaged)",
                        ids[at],
                        start + at,
                        self.vocab_size
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The vocabulary size recorded in the header.
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens `range` of this file, as its own [`Tokens`] (no copy).
    pub fn span(self: &Arc<Self>, range: std::ops::Range<usize>) -> TokenSpan {
        assert!(range.end <= self.len, "span past the end of the file");
        TokenSpan {
            file: Arc::clone(self),
            range,
        }
    }
}

impl Tokens for TokenFile {
    fn len(&self) -> usize {
        self.len
    }

    fn read_into(&self, start: usize, out: &mut [u32]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let end = start + out.len();
        if end > self.len {
            let problem = format!("tokens {start}..{end} asked of {}", self.len);
            return Err(Error::format(&self.path, problem));
        }
        // Through a stack buffer: no allocation per window on the data path.
        let mut buffer = [0u8; 4096];
        let per_read = buffer.len() / self.width;
        for (chunk, ids) in out.chunks_mut(per_read).enumerate() {
            let first = start + chunk * per_read;
            let bytes = &mut buffer[..ids.len() * self.width];
            let offset = (HEADER + first * self.width) as u64;
            self.file.read_exact_at(bytes, offset).map_err(|e| {
                let problem = format!(
                    "cannot read tokens {start}..{end} ({e}): the file is shorter than when it was opened (truncated while training?)"
                );
                Error::format(&self.path, problem)
            })?;
            for (id, b) in ids.iter_mut().zip(bytes.chunks_exact(self.width)) {
                *id = match b {
                    [a, b] => u16::from_le_bytes([*a, *b]) as u32,
                    [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
                    _ => unreachable!("the width is checked to be 2 or 4 on open"),
                };
            }
        }
        Ok(())
    }
}

/// A contiguous part of a [`TokenFile`] (the training or validation share).
#[derive(Debug, Clone)]
pub struct TokenSpan {
    file: Arc<TokenFile>,
    range: std::ops::Range<usize>,
}

impl Tokens for TokenSpan {
    fn len(&self) -> usize {
        self.range.len()
    }

    fn read_into(&self, start: usize, out: &mut [u32]) -> Result<()> {
        assert!(start + out.len() <= self.range.len(), "read past the span");
        self.file.read_into(self.range.start + start, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_u16_and_u32_files() {
        let dir = tempfile::tempdir().unwrap();
        for (vocab, tokens) in [
            (300u32, vec![0u32, 299, 7, 65]),
            (70_000, vec![69_999, 0, 65_536]),
        ] {
            let path = dir.path().join(format!("{vocab}.tokens"));
            write_token_file(&path, &tokens, vocab).unwrap();
            let expected_width = if vocab <= 65_536 { 2 } else { 4 };
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                (16 + tokens.len() * expected_width) as u64
            );
            let file = Arc::new(TokenFile::open(&path).unwrap());
            assert_eq!((file.len(), file.vocab_size()), (tokens.len(), vocab));
            assert_eq!(file.to_vec(0..tokens.len()).unwrap(), tokens);
            assert_eq!(file.span(1..3).to_vec(0..2).unwrap(), tokens[1..3]);
        }
    }

    #[test]
    fn bad_files_and_ids_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.tokens");
        std::fs::write(&path, b"hello world, not tokens").unwrap();
        let error = TokenFile::open(&path).unwrap_err().to_string();
        assert!(
            error.contains("bad.tokens") && error.contains("header"),
            "{error}"
        );

        write_token_file(&path, &[1, 2, 3], 10).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let error = TokenFile::open(&path).unwrap_err().to_string();
        assert!(error.contains("truncated"), "{error}");

        let error = write_token_file(&path, &[1, 12], 10)
            .unwrap_err()
            .to_string();
        assert!(error.contains("token 12 at position 1"), "{error}");

        let missing = TokenFile::open(&dir.path().join("none.tokens")).unwrap_err();
        assert!(missing.to_string().contains("none.tokens"));
    }

    /// A file whose header says 10 tokens but whose body holds an id of
    /// 4000 (written by another tokenizer, or crafted) is refused when it
    /// is opened, not when the id reaches the embedding mid-run.
    #[test]
    fn ids_past_the_vocabulary_are_refused_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.tokens");
        write_token_file(&path, &[1, 2, 3, 4], 10).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 4..HEADER + 6].copy_from_slice(&4000u16.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let error = TokenFile::open(&path).unwrap_err().to_string();
        assert!(
            error.contains("ids.tokens") && error.contains("token 4000 at position 2"),
            "{error}"
        );
    }

    /// Truncating the file while it is read is an error naming it (with a
    /// memory map, the next read of a lost page killed the process with
    /// SIGBUS).
    #[test]
    fn a_file_truncated_while_open_is_an_error_not_a_signal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrinking.tokens");
        let tokens: Vec<u32> = (0..100_000).map(|i| i % 300).collect();
        write_token_file(&path, &tokens, 300).unwrap();
        let file = Arc::new(TokenFile::open(&path).unwrap());
        let span = file.span(0..100_000);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1000)
            .unwrap();
        assert_eq!(span.to_vec(0..100).unwrap(), tokens[..100]);
        let error = span.to_vec(90_000..90_100).unwrap_err().to_string();
        assert!(
            error.contains("shrinking.tokens") && error.contains("truncated"),
            "{error}"
        );
    }
}

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
//! Written through a temporary file and a rename, so a reader never sees a
//! half-written file under the final name.

use crate::error::{Error, Result};
use crate::text::{corpus_files, read_text, CharTokenizer};
use crate::tokenizer::Tokenizer;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"selfsupT";
const HEADER: usize = 16;

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
        let mut bytes = vec![0u8; out.len() * self.width];
        let offset = (HEADER + start * self.width) as u64;
        self.file.read_exact_at(&mut bytes, offset).map_err(|e| {
            let problem = format!(
                "cannot read tokens {start}..{end} ({e}): the file is shorter than when it was opened (truncated while training?)"
            );
            Error::format(&self.path, problem)
        })?;
        if self.width == 2 {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = u16::from_le_bytes([b[0], b[1]]) as u32;
            }
        } else {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
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

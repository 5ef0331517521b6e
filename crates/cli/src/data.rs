//! `selfsup data`: fetch the standard data sets into the cache (or install
//! them from a local copy), list what is there, and turn a text corpus into
//! a memory-mappable token file.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use selfsup_data::bpe_train::BpeTrainer;
use selfsup_data::download::{self, Catalogued, Source, CATALOGUE};
use selfsup_data::hf_tokenizer::HfTokenizer;
use selfsup_data::text::{corpus_files, read_text};
use selfsup_data::token_file::{corpus_characters, tokenize_corpus, tokenizer_path};
use selfsup_data::tokenizer::{SavedTokenizer, Tokenizer};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// What `selfsup data` does.
#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Downloads a data set into the cache (`$SELFSUP_DATA`, else
    /// `~/.cache/selfsup`), checks its MD5 and unpacks it.
    Fetch {
        /// mnist, fashion-mnist, cifar10, cifar100 or stl10.
        name: String,
        /// Install from a local copy instead: the archive, or a folder
        /// holding the set's files (offline machines).
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// The data sets that can be fetched, and which are in the cache.
    List,
    /// Splits a `.tar.gz` of `<top>/<class>/<message>` e-mails (e.g. the
    /// SpamAssassin corpus) into `<out>/train/<class>/`, `<out>/test/<class>/`
    /// (a stratified fifth) and `<out>/pretrain/` (the training messages,
    /// unlabelled), keeping each message's subject and body.
    Mails {
        /// The archive.
        archive: PathBuf,
        /// Where the three folders go (an empty or new folder).
        #[arg(long)]
        out: PathBuf,
        /// Replace the train/test/pretrain folders an earlier run left in `--out`.
        #[arg(long)]
        overwrite: bool,
    },
    /// Writes an ImageFolder (`<folder>/<class>/<image>`) as WebDataset
    /// shards: `<out>/shard-000000.tar`, … of `--shard-size` images each
    /// (`<key>.jpg|png` with `<key>.cls`) and `<out>/classes.txt`; train on
    /// them with `--data webdataset`.
    Shard {
        /// The ImageFolder (one split, e.g. `imagenet/train`).
        folder: PathBuf,
        /// Where the shards go (e.g. `shards/train`).
        #[arg(long)]
        out: PathBuf,
        /// Images per shard.
        #[arg(long, default_value_t = 1000)]
        shard_size: usize,
        /// Replace the shards an earlier run left in `--out`.
        #[arg(long)]
        overwrite: bool,
    },
    /// Tokenises a text file or folder into a token file (u16 or u32 ids)
    /// that training memory-maps; the tokenizer is saved as `<out>.toml`.
    Tokenize {
        /// The corpus: a text file (`.txt`, `.gz`) or a folder of them.
        corpus: PathBuf,
        /// The token file to write (`.tokens`).
        #[arg(long)]
        out: PathBuf,
        /// A folder holding a byte-level BPE's `encoder.json` and
        /// `vocab.bpe` (GPT-2's, or one from `selfsup data train-bpe`);
        /// without it (and without --tokenizer), one token per character
        /// of the corpus.
        #[arg(long, conflicts_with = "tokenizer")]
        bpe: Option<PathBuf>,
        /// A Hugging Face `tokenizer.json` (BPE, WordPiece or Unigram).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
    },
    /// Trains a byte-level BPE vocabulary (GPT-2's pre-tokenisation and byte
    /// alphabet) on a corpus; writes `encoder.json` and `vocab.bpe`, or with
    /// `--hugging-face` a `tokenizer.json`.
    TrainBpe {
        /// The corpus: a text file (`.txt`, `.gz`) or a folder of them.
        corpus: PathBuf,
        /// The folder to write the vocabulary into.
        #[arg(long)]
        out: PathBuf,
        /// Tokens in all, with the 256 byte symbols and `<|endoftext|>`.
        #[arg(long, default_value_t = 8192)]
        vocab_size: usize,
        /// Pairs seen fewer times are not merged.
        #[arg(long, default_value_t = 2)]
        min_frequency: u64,
        /// Train with the Hugging Face `tokenizers` library and write
        /// `<out>/tokenizer.json`, which Python pipelines load as well.
        #[arg(long)]
        hugging_face: bool,
    },
}

/// Runs `selfsup data`.
pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Fetch { name, from } => {
            let set = download::lookup(&name)?;
            let folder = fetch(set, from.as_deref())?;
            println!("{name}: {}", folder.display());
            println!(
                "train on it with: selfsup train <task> --data {} --data-dir {}",
                set.format,
                folder.display()
            );
            Ok(())
        }
        DataCommand::Mails {
            archive,
            out,
            overwrite,
        } => run_mails(&archive, &out, overwrite),
        DataCommand::Shard {
            folder,
            out,
            shard_size,
            overwrite,
        } => run_shard(&folder, &out, shard_size, overwrite),
        DataCommand::List => {
            list();
            Ok(())
        }
        DataCommand::Tokenize {
            corpus,
            out,
            bpe,
            tokenizer,
        } => tokenize(&corpus, &out, bpe.as_deref(), tokenizer.as_deref()),
        DataCommand::TrainBpe {
            corpus,
            out,
            vocab_size,
            min_frequency,
            hugging_face,
        } => {
            let texts = corpus_files(&corpus)?
                .iter()
                .map(|file| read_text(file))
                .collect::<selfsup_data::Result<Vec<String>>>()?;
            if hugging_face {
                let lines = texts.iter().flat_map(|text| text.split('\n'));
                let mut trained =
                    HfTokenizer::train_byte_level_bpe(lines, vocab_size, min_frequency)?;
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                let file = out.join("tokenizer.json");
                trained.save(&file)?;
                println!(
                    "{}: {} tokens; use it with --tokenizer {0} or data.tokenizer = \"huggingface\", data.tokenizer_files = {0:?}",
                    file.display(),
                    trained.vocab_size()
                );
                return Ok(());
            }
            let trainer = BpeTrainer {
                vocab_size,
                min_frequency,
                special: vec!["<|endoftext|>".to_string()],
            };
            let bpe = trainer.train(texts.iter().map(String::as_str))?;
            bpe.write(&out)?;
            println!(
                "{}: {} tokens ({} merges); use it with --bpe {0} or data.tokenizer = \"gpt2\", data.tokenizer_files = {0:?}",
                out.display(),
                bpe.tokens.len(),
                bpe.merges.len()
            );
            Ok(())
        }
    }
}

/// Installs `set` in the cache unless it is there, with a progress bar
/// while downloading; returns the folder its reader reads.
pub fn fetch(set: &Catalogued<'_>, from: Option<&Path>) -> Result<PathBuf> {
    let root = download::data_root();
    let source = match from {
        Some(path) => Source::Local(path),
        None => Source::Internet,
    };
    if !download::is_installed(set, &root) {
        match from {
            Some(path) => eprintln!("installing {} from {}", set.name, path.display()),
            None => eprintln!("downloading {} into {}", set.name, root.display()),
        }
    }
    let bar = ProgressBar::hidden();
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("a valid template"),
    );
    let mut progress = |name: &str, done: u64, total: Option<u64>| {
        if done == 0 {
            bar.set_message(name.to_string());
            bar.set_length(total.unwrap_or(0));
        }
        bar.set_position(done);
    };
    let installed = download::ensure(set, &root, source, &mut progress)
        .with_context(|| format!("fetching {} into {}", set.name, root.display()))?;
    bar.finish_and_clear();
    for (file, check) in &installed.checks {
        eprintln!("  {file}: matches {check}");
    }
    Ok(installed.folder)
}

/// Prints the cache folder and each set's state.
fn list() {
    let root = download::data_root();
    println!("cache: {}", root.display());
    for set in CATALOGUE {
        let state = if download::is_installed(set, &root) {
            download::installed_folder(set, &root).display().to_string()
        } else {
            "not fetched".to_string()
        };
        println!("  {:<14} {state}", set.name);
    }
}

fn run_shard(folder: &Path, out: &Path, shard_size: usize, overwrite: bool) -> Result<()> {
    let index = selfsup_data::streaming::ImageIndex::image_folder(folder)?;
    let shards = selfsup_data::webdataset::write_shards(&index, out, shard_size, overwrite)?;
    println!(
        "{} images of {} classes in {} shards under {}",
        index.len(),
        index.classes.len(),
        shards.len(),
        out.display()
    );
    Ok(())
}

fn tokenize(corpus: &Path, out: &Path, bpe: Option<&Path>, json: Option<&Path>) -> Result<()> {
    let tokenizer = match (bpe, json) {
        (Some(dir), _) => SavedTokenizer {
            gpt2_files: Some(dir.to_path_buf()),
            ..Default::default()
        }
        .load()?,
        (None, Some(file)) => Tokenizer::HuggingFace(Box::new(HfTokenizer::load(file)?)),
        (None, None) => Tokenizer::Char(corpus_characters(corpus)?),
    };
    let count = tokenize_corpus(corpus, &tokenizer, out)?;
    let saved = SavedTokenizer::of(&tokenizer, bpe)?;
    saved.write(&tokenizer_path(out))?;
    println!(
        "{}: {count} tokens ({} kinds), tokenizer in {}",
        out.display(),
        tokenizer.vocab_size(),
        tokenizer_path(out).display()
    );
    Ok(())
}

/// Runs `selfsup data mails`.
fn run_mails(archive: &Path, out: &Path, overwrite: bool) -> Result<()> {
    let corpus = selfsup_data::mail::prepare_mail_corpus(archive, out, 0.2, overwrite)?;
    for (class, train, test) in &corpus.classes {
        println!("{class}: {train} train, {test} test");
    }
    println!(
        "labelled:  {} and {}",
        corpus.train.display(),
        corpus.test.display()
    );
    println!(
        "pretrain:  {} (training messages only, one document each)",
        corpus.pretrain.display()
    );
    Ok(())
}

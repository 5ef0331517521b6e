//! WebDataset shards: `.tar` files whose members are `<key>.jpg|jpeg|png`
//! with `<key>.cls` (the label as text), the format large-scale training
//! reads sequentially. [`write_shards`] makes them from an ImageFolder;
//! [`index_shards`] indexes them (each image's shard, offset and size, read
//! once from the tar headers) into the same [`ImageIndex`] a streamed
//! ImageFolder uses; [`shard_order`] is an epoch's order that reads shard
//! after shard (shards shuffled per epoch, then a seeded shuffle buffer), as
//! WebDataset's loader does, while every batch stays a function of (seed,
//! epoch, indices), so resume is exact.

use crate::error::{Error, Result};
use crate::images::UNLABELED;
use crate::output_dir::prepare_output_dir;
use crate::sampler::mix;
use crate::streaming::{ImageIndex, IndexedImage, OnCorrupt, MAX_IMAGE_FILE_BYTES};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

/// The class names, one per line, next to the shards.
pub const CLASSES_FILE: &str = "classes.txt";

/// Writes `index`'s images into `out/shard-000000.tar`, … of `shard_size`
/// images each (their original bytes, key = position in the index) with
/// their labels, and `classes.txt`; each file is written under a temporary
/// name and renamed when complete. An `out` that holds files is refused
/// unless `overwrite`, which first removes earlier shards (see
/// [`prepare_output_dir`]). Returns the shards.
pub fn write_shards(
    index: &ImageIndex,
    out: &Path,
    shard_size: usize,
    overwrite: bool,
) -> Result<Vec<PathBuf>> {
    if shard_size == 0 {
        return Err(Error::Mismatch("--shard-size must be at least 1".into()));
    }
    let is_output =
        |name: &str| name == CLASSES_FILE || name.ends_with(".tar") || name.ends_with(".partial");
    prepare_output_dir(out, overwrite, is_output)?;
    let mut shards = Vec::new();
    for (s, chunk) in index.files.chunks(shard_size).enumerate() {
        let path = out.join(format!("shard-{s:06}.tar"));
        let partial = out.join(format!(".shard-{s:06}.tar.partial"));
        let file = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        let mut tar = tar::Builder::new(BufWriter::new(file));
        for (i, image) in chunk.iter().enumerate() {
            let key = format!("{:09}", s * shard_size + i);
            let ext = extension(&image.path);
            let mut bytes = Vec::new();
            File::open(&image.path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| Error::io(&image.path, e))?;
            append(&mut tar, &format!("{key}.{ext}"), &bytes, &partial)?;
            let label = image.label.to_string();
            append(&mut tar, &format!("{key}.cls"), label.as_bytes(), &partial)?;
        }
        tar.into_inner()
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(|e| Error::io(&partial, e))?;
        std::fs::rename(&partial, &path).map_err(|e| Error::io(&path, e))?;
        shards.push(path);
    }
    let classes = out.join(CLASSES_FILE);
    let partial = out.join(format!(".{CLASSES_FILE}.partial"));
    std::fs::write(&partial, index.classes.join("\n") + "\n")
        .map_err(|e| Error::io(&partial, e))?;
    std::fs::rename(&partial, &classes).map_err(|e| Error::io(&classes, e))?;
    Ok(shards)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("jpg")
        .to_ascii_lowercase()
}

fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    shard: &Path,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
        .map_err(|e| Error::io(shard, e))
}

/// The longest `.cls` member: a class number and a newline.
const MAX_LABEL_BYTES: u64 = 32;

/// Indexes every `*.tar` shard in `dir` (sorted by name): each `<key>.<image
/// extension>` member with the label of its `<key>.cls` (unlabelled without
/// one). Class names come from `classes.txt` when present. A member the
/// reader refuses (a sparse member, a size over [`MAX_IMAGE_FILE_BYTES`] or past
/// the shard's end, a label that is not a class number) is an error naming
/// the shard and member, or, with `on_corrupt` = skip, left out with a warning.
pub fn index_shards(dir: &Path, on_corrupt: OnCorrupt) -> Result<ImageIndex> {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(Error::format(dir, "no .tar shards"));
    }
    let mut files = Vec::new();
    for shard in &shards {
        files.extend(index_shard(shard, on_corrupt)?);
    }
    let classes: Vec<String> = match std::fs::read_to_string(dir.join(CLASSES_FILE)) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => {
            let count = files.iter().map(|f| f.label + 1).max().unwrap_or(0).max(0);
            (0..count).map(|c| c.to_string()).collect()
        }
    };
    if let Some(bad) = files.iter().find(|f| f.label >= classes.len() as i64) {
        let message = format!("label {} but {} classes", bad.label, classes.len());
        return Err(Error::format(&bad.path, message));
    }
    Ok(ImageIndex::new(files, classes))
}

/// What a shard holds under one key.
struct Sample {
    /// Position of the key's first member.
    order: usize,
    /// The image's content: byte offset and size.
    image: Option<(u64, u64)>,
    /// From `<key>.cls`.
    label: i64,
    /// Why one of its members was refused (the sample is then bad).
    refused: Option<String>,
}

/// The images of one shard, in member order.
fn index_shard(shard: &Path, on_corrupt: OnCorrupt) -> Result<Vec<IndexedImage>> {
    let bad = |e: std::io::Error| Error::format(shard, format!("not a readable tar shard ({e})"));
    let file = File::open(shard).map_err(|e| Error::io(shard, e))?;
    let shard_len = file.metadata().map_err(|e| Error::io(shard, e))?.len();
    let mut archive = tar::Archive::new(file);
    let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some((key, ext)) = name.split_once('.') else {
            continue;
        };
        let order = samples.len();
        let sample = samples.entry(key.to_string()).or_insert(Sample {
            order,
            image: None,
            label: UNLABELED,
            refused: None,
        });
        let outcome = match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" | "png" => {
                image_member(&entry, shard_len).map(|at| sample.image = Some(at))
            }
            "cls" => label_member(&mut entry).map(|label| sample.label = label),
            _ => Ok(()),
        };
        if let Err(problem) = outcome {
            sample
                .refused
                .get_or_insert(format!("member {name}: {problem}"));
        }
    }
    let mut ordered: Vec<Sample> = samples.into_values().collect();
    ordered.sort_by_key(|s| s.order);
    let mut images = Vec::with_capacity(ordered.len());
    for sample in ordered {
        if let Some(problem) = sample.refused {
            match on_corrupt {
                OnCorrupt::Fail => return Err(Error::format(shard, problem)),
                OnCorrupt::Skip => {
                    tracing::warn!(shard = %shard.display(), %problem, "skipping a sample");
                    continue;
                }
            }
        }
        if let Some((offset, bytes)) = sample.image {
            images.push(IndexedImage {
                path: shard.to_path_buf(),
                label: sample.label,
                bytes,
                offset: Some(offset),
            });
        }
    }
    Ok(images)
}

/// An image member's (offset, size), refused when it is sparse, larger than
/// [`MAX_IMAGE_FILE_BYTES`] or runs past the shard's `shard_len` bytes.
fn image_member<R: Read>(
    entry: &tar::Entry<R>,
    shard_len: u64,
) -> std::result::Result<(u64, u64), String> {
    let (offset, size) = (entry.raw_file_position(), entry.size());
    if entry.header().entry_type().is_gnu_sparse() {
        return Err(format!(
            "a sparse member (declaring {size} bytes) is not an image file"
        ));
    }
    if size > MAX_IMAGE_FILE_BYTES {
        return Err(format!(
            "declares {size} bytes, over the limit of {MAX_IMAGE_FILE_BYTES}"
        ));
    }
    if offset.saturating_add(size) > shard_len {
        return Err(format!(
            "declares {size} bytes at byte {offset}, past the shard's end ({shard_len} bytes)"
        ));
    }
    Ok((offset, size))
}

/// A `.cls` member's class number (at most [`MAX_LABEL_BYTES`] read).
fn label_member<R: Read>(entry: &mut tar::Entry<R>) -> std::result::Result<i64, String> {
    if entry.size() > MAX_LABEL_BYTES {
        return Err(format!(
            "{} bytes is too long for a class number",
            entry.size()
        ));
    }
    let mut text = String::new();
    entry
        .take(MAX_LABEL_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("unreadable ({e})"))?;
    match text.trim().parse::<i64>() {
        Ok(label) if label >= 0 => Ok(label),
        _ => Err(format!(
            "{:?} is not a class number (0, 1, 2, ...)",
            text.trim()
        )),
    }
}

/// An epoch's order over `index` (as positions) that reads shard after
/// shard: the shards in a shuffled order, their images through a shuffle
/// buffer of `buffer` (each next image a random one of the buffer's), all
/// seeded by `(seed, epoch)`.
pub fn shard_order(index: &ImageIndex, seed: u64, epoch: u64, buffer: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, epoch));
    let mut shards: Vec<Vec<usize>> = Vec::new();
    for (i, file) in index.files.iter().enumerate() {
        match shards.last_mut() {
            Some(last) if index.files[last[0]].path == file.path => last.push(i),
            _ => shards.push(vec![i]),
        }
    }
    shards.shuffle(&mut rng);
    let (mut order, mut held) = (Vec::with_capacity(index.len()), Vec::new());
    for i in shards.into_iter().flatten() {
        held.push(i);
        if held.len() >= buffer.max(1) {
            order.push(held.swap_remove(rng.gen_range(0..held.len())));
        }
    }
    while !held.is_empty() {
        order.push(held.swap_remove(rng.gen_range(0..held.len())));
    }
    order
}

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
use crate::sampler::mix;
use crate::streaming::{ImageIndex, IndexedImage};
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
/// name and renamed when complete. Returns the shards.
pub fn write_shards(index: &ImageIndex, out: &Path, shard_size: usize) -> Result<Vec<PathBuf>> {
    if shard_size == 0 {
        return Err(Error::Mismatch("--shard-size must be at least 1".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
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

/// Indexes every `*.tar` shard in `dir` (sorted by name): each `<key>.<image
/// extension>` member with the label of its `<key>.cls` (unlabelled without
/// one). Class names come from `classes.txt` when present.
pub fn index_shards(dir: &Path) -> Result<ImageIndex> {
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
        files.extend(index_shard(shard)?);
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
    Ok(ImageIndex { files, classes })
}

/// What a shard holds under one key.
struct Sample {
    /// Position of the key's first member.
    order: usize,
    /// The image's content: byte offset and size.
    image: Option<(u64, u64)>,
    /// From `<key>.cls`.
    label: i64,
}

/// The images of one shard, in member order.
fn index_shard(shard: &Path) -> Result<Vec<IndexedImage>> {
    let bad = |e: std::io::Error| Error::format(shard, format!("not a readable tar shard ({e})"));
    let mut archive = tar::Archive::new(File::open(shard).map_err(|e| Error::io(shard, e))?);
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
        });
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" | "png" => {
                sample.image = Some((entry.raw_file_position(), entry.size()))
            }
            "cls" => {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(bad)?;
                sample.label = text.trim().parse().map_err(|_| {
                    Error::format(shard, format!("{name}: {text:?} is not a class number"))
                })?;
            }
            _ => {}
        }
    }
    let mut ordered: Vec<Sample> = samples
        .into_values()
        .filter(|s| s.image.is_some())
        .collect();
    ordered.sort_by_key(|s| s.order);
    Ok(ordered
        .into_iter()
        .filter_map(|sample| {
            let (offset, bytes) = sample.image?;
            Some(IndexedImage {
                path: shard.to_path_buf(),
                label: sample.label,
                bytes,
                offset: Some(offset),
            })
        })
        .collect())
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

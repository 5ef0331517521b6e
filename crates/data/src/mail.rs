//! A labelled mail corpus made ready for the few-label study: from a
//! `.tar.gz` of `<top>/<class>/<message>` raw e-mails (the SpamAssassin
//! public corpus is one), each message's text (subject and body, the
//! routing headers dropped) goes to a stratified train/test split of class
//! folders, and the training messages also go, without their labels, to one
//! flat folder for pretraining. Test messages are never pretrained on.

use crate::labelled_texts::ClassTexts;
use crate::sampler::balanced_subset;
use crate::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Seed of the train/test split.
const SPLIT_SEED: u64 = 2002;

/// The largest message read (SpamAssassin's largest is under 1 MB): a
/// member that decompresses to more is an error, not a memory bomb.
pub const MAX_MESSAGE_BYTES: u64 = 16 << 20;

/// The most message bytes one archive may hold in all (the SpamAssassin
/// corpus is about 40 MB).
pub const MAX_ARCHIVE_TEXT_BYTES: u64 = crate::error::MAX_DECOMPRESSED_BYTES;

/// What [`prepare_mail_corpus`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct MailCorpus {
    /// `<out>/train/<class>/…`: labelled training messages.
    pub train: PathBuf,
    /// `<out>/test/<class>/…`: held-out messages.
    pub test: PathBuf,
    /// `<out>/pretrain/…`: the training messages, unlabelled, one file each.
    pub pretrain: PathBuf,
    /// The class names with their (train, test) counts.
    pub classes: Vec<(String, usize, usize)>,
}

/// The text of a raw message: its subject, a blank line, then its body;
/// the other headers (routing, ids, dates) are dropped. Text without a
/// header block is kept whole.
pub fn message_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let Some((headers, body)) = raw.split_once("\n\n") else {
        return raw;
    };
    let looks_like_headers = headers
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("From ") || l.contains(':'));
    if !looks_like_headers {
        return raw;
    }
    let subject = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("subject")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    format!("{subject}\n\n{}", body.trim())
}

/// Reads the messages of `archive` (`<top>/<class>/<file>`; other entries
/// are skipped), each through [`message_text`]. Each message is read
/// streaming with at most [`MAX_MESSAGE_BYTES`], the whole archive's with
/// at most [`MAX_ARCHIVE_TEXT_BYTES`]; a path with `..` or a root is refused.
pub fn read_mail_archive(archive: &Path) -> Result<(ClassTexts, Vec<String>)> {
    let file = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    let mut messages: Vec<(String, String, String)> = Vec::new();
    let mut total = 0u64;
    for entry in tar.entries().map_err(|e| Error::io(archive, e))? {
        let entry = entry.map_err(|e| Error::io(archive, e))?;
        let path = entry
            .path()
            .map_err(|e| Error::io(archive, e))?
            .into_owned();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let Some(parts) = message_path(archive, &path)? else {
            continue;
        };
        let bytes = read_message(archive, &path, entry)?;
        total += bytes.len() as u64;
        if total > MAX_ARCHIVE_TEXT_BYTES {
            let problem = format!("its messages exceed {MAX_ARCHIVE_TEXT_BYTES} bytes in all");
            return Err(Error::format(archive, problem));
        }
        let text = message_text(&String::from_utf8_lossy(&bytes));
        messages.push((parts[1].clone(), parts[2].clone(), text));
    }
    messages.sort();
    let mut classes: Vec<String> = messages.iter().map(|m| m.0.clone()).collect();
    classes.dedup();
    if classes.len() < 2 {
        return Err(Error::format(
            archive,
            "needs <top>/<class>/<message> entries of two classes or more",
        ));
    }
    let mut texts = ClassTexts {
        classes: classes.clone(),
        ..Default::default()
    };
    let mut names = Vec::new();
    for (class, name, text) in messages {
        texts
            .labels
            .push(classes.iter().position(|c| *c == class).unwrap_or(0) as i64);
        texts.texts.push(text);
        names.push(name);
    }
    Ok((texts, names))
}

/// `<top>/<class>/<file>` as its three names; `None` for other depths; an
/// error for a component that is not a plain name (`..`, a root), which
/// would place a file outside the output folder.
fn message_path(archive: &Path, path: &Path) -> Result<Option<Vec<String>>> {
    use std::path::Component;
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        let problem = format!(
            "member {} is not a relative path of plain names",
            path.display()
        );
        return Err(Error::format(archive, problem));
    }
    let parts: Vec<String> = path
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    Ok((parts.len() == 3).then_some(parts))
}

/// A message's bytes, at most [`MAX_MESSAGE_BYTES`] (read streaming).
fn read_message(archive: &Path, path: &Path, entry: impl Read) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry
        .take(MAX_MESSAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(archive, e))?;
    if bytes.len() as u64 > MAX_MESSAGE_BYTES {
        let problem = format!(
            "member {} decompresses to more than {MAX_MESSAGE_BYTES} bytes, the limit for one message",
            path.display()
        );
        return Err(Error::format(archive, problem));
    }
    Ok(bytes)
}

/// Writes the split of `archive` under `out` (see the module doc), holding
/// out `held_out` of each class. An `out` that holds files is refused
/// unless `overwrite`, which first removes an earlier split's folders.
pub fn prepare_mail_corpus(
    archive: &Path,
    out: &Path,
    held_out: f64,
    overwrite: bool,
) -> Result<MailCorpus> {
    let (texts, names) = read_mail_archive(archive)?;
    let is_output = |name: &str| matches!(name, "train" | "test" | "pretrain");
    crate::output_dir::prepare_output_dir(out, overwrite, is_output)?;
    let test = balanced_subset(&texts.labels, held_out, SPLIT_SEED);
    let mut is_test = vec![false; texts.texts.len()];
    test.iter().for_each(|&i| is_test[i] = true);
    let corpus = MailCorpus {
        train: out.join("train"),
        test: out.join("test"),
        pretrain: out.join("pretrain"),
        classes: Vec::new(),
    };
    let mut counts = vec![(0usize, 0usize); texts.classes.len()];
    for (i, text) in texts.texts.iter().enumerate() {
        let class = &texts.classes[texts.labels[i] as usize];
        let count = &mut counts[texts.labels[i] as usize];
        let split = if is_test[i] {
            &corpus.test
        } else {
            &corpus.train
        };
        write(&split.join(class), &names[i], text)?;
        if is_test[i] {
            count.1 += 1;
        } else {
            count.0 += 1;
            write(&corpus.pretrain, &format!("{class}-{}", names[i]), text)?;
        }
    }
    let classes = texts
        .classes
        .iter()
        .cloned()
        .zip(counts)
        .map(|(c, (a, b))| (c, a, b))
        .collect();
    Ok(MailCorpus { classes, ..corpus })
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = if name.ends_with(".txt") {
        name.to_string()
    } else {
        format!("{name}.txt")
    };
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_keeps_its_subject_and_body() {
        let raw = "From a@b  Mon Jan 1\r\nReceived: from x\r\nSubject: Cheap  offer\r\nTo: you\r\n\r\nBuy now.\r\nReally.\r\n";
        assert_eq!(message_text(raw), "Cheap  offer\n\nBuy now.\nReally.");
        assert_eq!(
            message_text("no headers here\n\nat all"),
            "no headers here\n\nat all"
        );
    }

    #[test]
    fn an_archive_splits_by_class_and_pretraining_sees_no_test_message() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("mail.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&archive).unwrap(),
            Default::default(),
        );
        let mut builder = tar::Builder::new(gz);
        for (class, count) in [("ham", 20), ("spam", 10)] {
            for i in 0..count {
                let text = format!("Subject: {class} {i}\n\nbody {i}\n");
                let mut header = tar::Header::new_gnu();
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                let path = format!("corpus/{class}/{i:03}.txt");
                builder
                    .append_data(&mut header, path, text.as_bytes())
                    .unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap();
        let out = dir.path().join("out");
        let corpus = prepare_mail_corpus(&archive, &out, 0.2, false).unwrap();
        assert_eq!(
            corpus.classes,
            vec![("ham".into(), 16, 4), ("spam".into(), 8, 2)]
        );
        let count = |p: &Path| std::fs::read_dir(p).unwrap().count();
        assert_eq!(count(&corpus.pretrain), 24);
        assert_eq!(count(&corpus.test.join("spam")), 2);
        for entry in std::fs::read_dir(corpus.test.join("ham")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !corpus.pretrain.join(format!("ham-{name}")).exists(),
                "{name} is a test message"
            );
        }
        let text = std::fs::read_to_string(
            corpus
                .train
                .join("spam")
                .read_dir()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap();
        assert!(text.starts_with("spam ") && text.contains("body"), "{text}");
    }

    fn archive_of(path: &Path, members: &[(&str, Vec<u8>)]) {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::best(),
        );
        let mut builder = tar::Builder::new(gz);
        for (name, bytes) in members {
            let mut header = tar::Header::new_gnu();
            // Written raw: `append_data` itself refuses `..`.
            header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, bytes.as_slice()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn a_gzip_bomb_member_is_refused_without_reading_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("bomb.tar.gz");
        let bomb = vec![b'a'; (MAX_MESSAGE_BYTES + 4096) as usize];
        archive_of(
            &archive,
            &[
                ("c/ham/1", b"Subject: x\n\nhi".to_vec()),
                ("c/spam/1", bomb),
            ],
        );
        assert!(std::fs::metadata(&archive).unwrap().len() < 64 << 10);
        let error = read_mail_archive(&archive).unwrap_err().to_string();
        assert!(
            error.contains("bomb.tar.gz") && error.contains("c/spam/1"),
            "{error}"
        );
        assert!(error.contains("limit for one message"), "{error}");
    }

    #[test]
    fn a_member_path_climbing_out_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("climb.tar.gz");
        archive_of(
            &archive,
            &[("c/../../evil", b"x".to_vec()), ("c/ham/1", b"y".to_vec())],
        );
        let error = read_mail_archive(&archive).unwrap_err().to_string();
        assert!(
            error.contains("not a relative path of plain names"),
            "{error}"
        );
    }

    #[test]
    fn a_second_split_into_the_same_folder_needs_overwrite_and_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("mail.tar.gz");
        let members: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| {
                (
                    format!("c/{}/{i}", ["ham", "spam"][i % 2]),
                    format!("m{i}").into_bytes(),
                )
            })
            .collect();
        let refs: Vec<(&str, Vec<u8>)> = members
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        archive_of(&archive, &refs);
        let out = dir.path().join("out");
        prepare_mail_corpus(&archive, &out, 0.2, false).unwrap();
        std::fs::write(out.join("test/ham/stale.txt"), "an earlier test mail").unwrap();
        let error = prepare_mail_corpus(&archive, &out, 0.4, false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--overwrite"), "{error}");
        let corpus = prepare_mail_corpus(&archive, &out, 0.4, true).unwrap();
        assert!(!out.join("test/ham/stale.txt").exists());
        let files = |p: &Path| std::fs::read_dir(p).unwrap().count();
        assert_eq!(
            files(&corpus.train.join("ham")) + files(&corpus.test.join("ham")),
            5
        );
    }
}

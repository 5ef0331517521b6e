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
/// are skipped), each through [`message_text`].
pub fn read_mail_archive(archive: &Path) -> Result<(ClassTexts, Vec<String>)> {
    let file = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    let mut messages: Vec<(String, String, String)> = Vec::new();
    for entry in tar.entries().map_err(|e| Error::io(archive, e))? {
        let mut entry = entry.map_err(|e| Error::io(archive, e))?;
        let path = entry
            .path()
            .map_err(|e| Error::io(archive, e))?
            .into_owned();
        let parts: Vec<String> = path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.len() != 3 || !entry.header().entry_type().is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(archive, e))?;
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

/// Writes the split of `archive` under `out` (see the module doc), holding
/// out `held_out` of each class.
pub fn prepare_mail_corpus(archive: &Path, out: &Path, held_out: f64) -> Result<MailCorpus> {
    let (texts, names) = read_mail_archive(archive)?;
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
        let corpus = prepare_mail_corpus(&archive, &out, 0.2).unwrap();
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
}

//! Fetching data sets: checksums, unpacking, the cache, `--from` copies and
//! HTTP, on small archives built here (tests cannot reach the real addresses)
//! and a local HTTP server.

use selfsup_data::cifar::{read_cifar10, Split};
use selfsup_data::download::{
    data_root_from, ensure, installed_folder, is_installed, lookup, md5_hex, Catalogued,
    RemoteFile, Source, Verified,
};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// A CIFAR-10-shaped `.tar.gz`: `cifar-10-batches-bin/` with one record per
/// batch file, labels 0..6.
fn tiny_cifar10_archive(dir: &Path) -> PathBuf {
    let path = dir.join("cifar-10-binary.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (label, name) in names.iter().enumerate() {
        let mut record = vec![label as u8];
        record.extend((0..3072).map(|i| (i * 7 % 251) as u8));
        let mut header = tar::Header::new_gnu();
        header.set_size(record.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("cifar-10-batches-bin/{name}"),
            record.as_slice(),
        )
        .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

/// The catalogue's CIFAR-10 entry with `md5` and `url` swapped in.
fn cifar10_like<'a>(files: &'a [RemoteFile<'a>]) -> Catalogued<'a> {
    Catalogued {
        files,
        ..*lookup("cifar10").unwrap()
    }
}

fn no_progress() -> impl FnMut(&str, u64, Option<u64>) {
    |_, _, _| {}
}

#[test]
fn a_local_archive_is_checked_unpacked_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tiny_cifar10_archive(dir.path());
    let md5 = md5_hex(&archive).unwrap();
    let files = [RemoteFile {
        md5: &md5,
        ..lookup("cifar10").unwrap().files[0]
    }];
    let set = cifar10_like(&files);
    let root = dir.path().join("cache");
    assert!(!is_installed(&set, &root));
    let installed = ensure(&set, &root, Source::Local(&archive), &mut no_progress()).unwrap();
    let folder = installed.folder;
    assert_eq!(folder, root.join("cifar10/cifar-10-batches-bin"));
    assert_eq!(
        installed.checks,
        vec![(files[0].name.to_string(), Verified::PublishedArchive)]
    );
    assert!(is_installed(&set, &root));
    let train = read_cifar10(&folder, Split::Train).unwrap();
    assert_eq!(train.labels, [0, 1, 2, 3, 4]);
    assert_eq!(read_cifar10(&folder, Split::Test).unwrap().labels, [5]);
    // Installed: a second call does not need the archive any more.
    std::fs::remove_file(&archive).unwrap();
    let again = ensure(&set, &root, Source::Local(&archive), &mut no_progress()).unwrap();
    assert_eq!(again.folder, folder);
    assert!(again.checks.is_empty(), "nothing checked again");
}

#[test]
fn a_wrong_checksum_names_the_file_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tiny_cifar10_archive(dir.path());
    // The real catalogue entry: the tiny archive is not the published one.
    let set = lookup("cifar10").unwrap();
    let root = dir.path().join("cache");
    let error = ensure(set, &root, Source::Local(&archive), &mut no_progress())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cifar-10-binary.tar.gz")
            && error.contains("MD5")
            && error.contains("c32a1d4ab5d03f1284b67883e8d87530"),
        "{error}"
    );
    assert!(!is_installed(set, &root));
    let leftovers: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert!(leftovers.is_empty(), "staging folder left: {leftovers:?}");
}

#[test]
fn a_corrupt_or_wrongly_laid_out_archive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let garbage = dir.path().join("cifar-10-binary.tar.gz");
    std::fs::write(&garbage, b"this is not gzip").unwrap();
    let md5 = md5_hex(&garbage).unwrap();
    let files = [RemoteFile {
        md5: &md5,
        ..lookup("cifar10").unwrap().files[0]
    }];
    let error = ensure(
        &cifar10_like(&files),
        &root,
        Source::Local(&garbage),
        &mut no_progress(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("cifar-10-binary.tar.gz") && error.contains("not a readable .tar.gz"),
        "{error}"
    );

    // A valid archive without the folder the reader expects.
    let archive = tiny_cifar10_archive(dir.path());
    let md5 = md5_hex(&archive).unwrap();
    let set = Catalogued {
        folder: "cifar-100-binary",
        files: &[RemoteFile {
            md5: &md5,
            ..lookup("cifar10").unwrap().files[0]
        }],
        ..*lookup("cifar10").unwrap()
    };
    let error = ensure(&set, &root, Source::Local(&archive), &mut no_progress())
        .unwrap_err()
        .to_string();
    assert!(error.contains("cifar-100-binary"), "{error}");
    assert!(!is_installed(&set, &root));
}

#[test]
fn a_many_file_set_comes_from_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("offline");
    std::fs::create_dir(&from).unwrap();
    let mnist = lookup("mnist").unwrap();
    let mut sums = Vec::new();
    for file in mnist.files {
        let path = from.join(file.name);
        std::fs::write(&path, file.name.as_bytes()).unwrap();
        sums.push(md5_hex(&path).unwrap());
    }
    let files: Vec<RemoteFile> = mnist
        .files
        .iter()
        .zip(&sums)
        .map(|(file, md5)| RemoteFile { md5, ..*file })
        .collect();
    let set = Catalogued {
        files: &files,
        ..*mnist
    };
    let root = dir.path().join("cache");
    // A single file is not enough for a four-file set.
    let one = from.join(mnist.files[0].name);
    let error = ensure(&set, &root, Source::Local(&one), &mut no_progress())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("4 files") && error.contains("t10k-labels"),
        "{error}"
    );
    let folder = ensure(&set, &root, Source::Local(&from), &mut no_progress())
        .unwrap()
        .folder;
    assert_eq!(folder, installed_folder(&set, &root));
    for file in mnist.files {
        assert_eq!(
            std::fs::read(folder.join(file.name)).unwrap(),
            file.name.as_bytes()
        );
    }
    // A missing file is named.
    std::fs::remove_file(&one).unwrap();
    let error = ensure(
        &set,
        &dir.path().join("cache2"),
        Source::Local(&from),
        &mut no_progress(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains(mnist.files[0].name), "{error}");
}

/// Serves `body` with `status` to each of `connections` requests on a local port.
fn serve(status: &'static str, body: Vec<u8>, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    format!("http://{address}/cifar-10-binary.tar.gz")
}

#[test]
fn http_downloads_report_progress_and_land_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tiny_cifar10_archive(dir.path());
    let bytes = std::fs::read(&archive).unwrap();
    let md5 = md5_hex(&archive).unwrap();
    let url = serve("200 OK", bytes.clone(), 1);
    let files = [RemoteFile {
        md5: &md5,
        url: &url,
        ..lookup("cifar10").unwrap().files[0]
    }];
    let set = cifar10_like(&files);
    let root = dir.path().join("cache");
    let mut seen = Vec::new();
    let folder = ensure(
        &set,
        &root,
        Source::Internet,
        &mut |name: &str, done: u64, total: Option<u64>| seen.push((name.to_string(), done, total)),
    )
    .unwrap()
    .folder;
    assert_eq!(read_cifar10(&folder, Split::Train).unwrap().len(), 5);
    let total = Some(bytes.len() as u64);
    assert_eq!(
        seen.first().unwrap(),
        &(files[0].name.to_string(), 0, total)
    );
    assert_eq!(seen.last().unwrap().1, bytes.len() as u64);
    assert!(
        !root.join("downloads").join(files[0].name).exists(),
        "the archive is removed once unpacked"
    );
    // The server is gone: a second call is served by the cache.
    ensure(&set, &root, Source::Internet, &mut no_progress()).unwrap();
}

#[test]
fn http_errors_name_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve("404 Not Found", b"no".to_vec(), 1);
    let files = [RemoteFile {
        url: &url,
        ..lookup("cifar10").unwrap().files[0]
    }];
    let error = ensure(
        &cifar10_like(&files),
        &dir.path().join("cache"),
        Source::Internet,
        &mut no_progress(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains(&url) && error.contains("404"), "{error}");
}

#[test]
fn the_cache_is_selfsup_data_else_home() {
    assert_eq!(
        data_root_from(Some("/data".into()), Some("/home/u".into())),
        PathBuf::from("/data")
    );
    assert_eq!(
        data_root_from(None, Some("/home/u".into())),
        PathBuf::from("/home/u/.cache/selfsup")
    );
    assert_eq!(
        data_root_from(Some("".into()), Some("/home/u".into())),
        PathBuf::from("/home/u/.cache/selfsup")
    );
}

#[test]
fn unknown_names_list_the_catalogue() {
    let error = lookup("imagenet").unwrap_err().to_string();
    assert!(
        error.contains("imagenet") && error.contains("cifar100") && error.contains("stl10"),
        "{error}"
    );
}

/// Gzips `content` into `path` at `level` (a "distribution's" recompression).
fn gzip(path: &Path, content: &[u8], level: u32) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::new(level),
    );
    gz.write_all(content).unwrap();
    gz.finish().unwrap();
}

#[test]
fn a_recompressed_copy_passes_on_its_decompressed_content() {
    let dir = tempfile::tempdir().unwrap();
    let (published, repacked) = (dir.path().join("published"), dir.path().join("repacked"));
    std::fs::create_dir(&published).unwrap();
    std::fs::create_dir(&repacked).unwrap();
    let mnist = lookup("mnist").unwrap();
    // The "published" archives and the content MD5s the catalogue would hold.
    let mut sums = Vec::new();
    for file in mnist.files {
        let content: Vec<u8> = file.name.bytes().cycle().take(5000).collect();
        gzip(&published.join(file.name), &content, 1);
        gzip(&repacked.join(file.name), &content, 9);
        let content_path = dir.path().join("content");
        std::fs::write(&content_path, &content).unwrap();
        sums.push((
            md5_hex(&published.join(file.name)).unwrap(),
            md5_hex(&content_path).unwrap(),
        ));
    }
    let files: Vec<RemoteFile> = mnist
        .files
        .iter()
        .zip(&sums)
        .map(|(file, (md5, content))| RemoteFile {
            md5,
            content_md5: Some(content),
            ..*file
        })
        .collect();
    let set = Catalogued {
        files: &files,
        ..*mnist
    };
    let repacked_md5 = md5_hex(&repacked.join(mnist.files[0].name)).unwrap();
    assert_ne!(
        &repacked_md5, &sums[0].0,
        "recompression changes the archive"
    );
    // The published copy passes the first check, the recompressed one the second.
    let exact = ensure(
        &set,
        &dir.path().join("a"),
        Source::Local(&published),
        &mut no_progress(),
    );
    assert!(exact
        .unwrap()
        .checks
        .iter()
        .all(|(_, c)| *c == Verified::PublishedArchive));
    let repacked_install = ensure(
        &set,
        &dir.path().join("b"),
        Source::Local(&repacked),
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!(repacked_install.checks.len(), 4);
    assert!(repacked_install
        .checks
        .iter()
        .all(|(_, c)| *c == Verified::DecompressedContent));
    // Other content under a recompressed archive is refused, naming both checks.
    gzip(&repacked.join(mnist.files[2].name), b"other images", 9);
    let error = ensure(
        &set,
        &dir.path().join("c"),
        Source::Local(&repacked),
        &mut no_progress(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(mnist.files[2].name)
            && error.contains("published archive")
            && error.contains("decompressed"),
        "{error}"
    );
    assert!(!is_installed(&set, &dir.path().join("c")));
}

#[test]
fn the_catalogue_knows_the_content_of_both_mnist_sets() {
    for name in ["mnist", "fashion-mnist"] {
        let set = lookup(name).unwrap();
        for file in set.files {
            let content = file.content_md5.unwrap_or_default();
            assert!(
                content.len() == 32 && content != file.md5,
                "{name} {}",
                file.name
            );
        }
    }
}

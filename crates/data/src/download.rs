//! The standard data sets, fetched once into a cache: each file comes from
//! its official address (or from a local copy, for offline machines), its
//! MD5 is checked against the published one, archives are unpacked, and the
//! set is moved into place only when all of it is there. A run that dies
//! half-way leaves a `.partial` folder that the next attempt replaces, never
//! a set that looks installed but is not.
//!
//! Archive checksums are the ones torchvision checks for the same files;
//! for the gzipped IDX sets the published MD5s of the uncompressed files
//! are kept too, so a recompressed local copy is accepted (`checksum.rs`).

pub use crate::checksum::{md5_hex, verify_md5, Verified};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// One file of a data set.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile<'a> {
    /// File name, in the download folder and in a `--from` folder.
    pub name: &'a str,
    /// Where it is published.
    pub url: &'a str,
    /// Its published MD5, lowercase hex.
    pub md5: &'a str,
    /// The published MD5 of a gzipped file's decompressed content, which
    /// accepts a recompressed copy of the same data (`--from`).
    pub content_md5: Option<&'a str>,
    /// A `.tar.gz` to unpack (else the file is kept as it is).
    pub unpack: bool,
}

/// A data set that can be fetched.
#[derive(Debug, Clone, Copy)]
pub struct Catalogued<'a> {
    /// Its name (`cifar10`), also its folder in the cache.
    pub name: &'a str,
    /// The reader that reads it (`data.dataset`: `mnist`, `cifar10`, ...).
    pub format: &'a str,
    /// The folder the reader is pointed at, relative to the set's folder
    /// (`cifar-10-batches-bin`, or empty for the set's folder itself).
    pub folder: &'a str,
    /// Its files.
    pub files: &'a [RemoteFile<'a>],
}

/// IDX files published under one base address (kept gzipped: the reader
/// reads `.gz` directly), each with its archive's MD5 and its decompressed
/// content's.
macro_rules! idx_files {
    ($base:expr, $($name:literal => $md5:literal, $content:literal),+ $(,)?) => {
        &[$(RemoteFile {
            name: $name,
            url: concat!($base, $name),
            md5: $md5,
            content_md5: Some($content),
            unpack: false,
        }),+]
    };
}

/// Every data set `selfsup data fetch` knows.
pub const CATALOGUE: &[Catalogued<'static>] = &[
    Catalogued {
        name: "mnist",
        format: "mnist",
        folder: "",
        files: idx_files!("https://ossci-datasets.s3.amazonaws.com/mnist/",
            "train-images-idx3-ubyte.gz" => "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte.gz" => "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte.gz" => "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte.gz" => "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637",
        ),
    },
    Catalogued {
        name: "fashion-mnist",
        format: "mnist",
        folder: "",
        files: idx_files!("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "train-images-idx3-ubyte.gz" => "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte.gz" => "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte.gz" => "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte.gz" => "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965",
        ),
    },
    Catalogued {
        name: "cifar10",
        format: "cifar10",
        folder: "cifar-10-batches-bin",
        files: &[RemoteFile {
            name: "cifar-10-binary.tar.gz",
            url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            md5: "c32a1d4ab5d03f1284b67883e8d87530",
            content_md5: None,
            unpack: true,
        }],
    },
    Catalogued {
        name: "cifar100",
        format: "cifar100",
        folder: "cifar-100-binary",
        files: &[RemoteFile {
            name: "cifar-100-binary.tar.gz",
            url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            md5: "03b5dce01913d631647c71ecec9e9cb8",
            content_md5: None,
            unpack: true,
        }],
    },
    Catalogued {
        name: "stl10",
        format: "stl10",
        folder: "stl10_binary",
        files: &[RemoteFile {
            name: "stl10_binary.tar.gz",
            url: "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
            md5: "91f7769df0f17e558f3565bffb0c7dfb",
            content_md5: None,
            unpack: true,
        }],
    },
];

/// The catalogue entry called `name`; the error lists the known names.
pub fn lookup(name: &str) -> Result<&'static Catalogued<'static>> {
    CATALOGUE
        .iter()
        .find(|set| set.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = CATALOGUE.iter().map(|set| set.name).collect();
            Error::Mismatch(format!(
                "no data set called {name:?} to fetch; known: {}",
                known.join(", ")
            ))
        })
}

/// Where fetched sets live: `$SELFSUP_DATA`, else `~/.cache/selfsup`.
pub fn data_root() -> PathBuf {
    data_root_from(std::env::var_os("SELFSUP_DATA"), std::env::var_os("HOME"))
}

/// [`data_root`] from the two variables' values (testable without touching
/// the process environment).
pub fn data_root_from(selfsup_data: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match (selfsup_data, home) {
        (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".cache").join("selfsup"),
        _ => PathBuf::from(".cache").join("selfsup"),
    }
}

/// Where a set's files come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Each file's official address.
    Internet,
    /// A local copy: the archive itself for a one-file set, or a folder
    /// holding the files under their names.
    Local(&'a Path),
}

/// Progress of one file: its name, bytes done, bytes in all when known.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, Option<u64>);

/// The folder the set's reader reads, once installed under `root`.
pub fn installed_folder(set: &Catalogued<'_>, root: &Path) -> PathBuf {
    root.join(set.name).join(set.folder)
}

const COMPLETE: &str = ".complete";

/// Whether the set is fully installed under `root`.
pub fn is_installed(set: &Catalogued<'_>, root: &Path) -> bool {
    root.join(set.name).join(COMPLETE).is_file()
}

/// An installed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The folder to point its reader at.
    pub folder: PathBuf,
    /// Each file and the check it passed; empty when the set was there already.
    pub checks: Vec<(String, Verified)>,
}

/// Installs `set` under `root` unless it is there already.
pub fn ensure(
    set: &Catalogued<'_>,
    root: &Path,
    source: Source<'_>,
    progress: Progress<'_>,
) -> Result<Installed> {
    if is_installed(set, root) {
        return Ok(Installed {
            folder: installed_folder(set, root),
            checks: Vec::new(),
        });
    }
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let staging = root.join(format!(".{}.partial-{}", set.name, std::process::id()));
    remove_if_present(&staging)?;
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let checks = match install_into(set, root, &staging, source, progress) {
        Ok(checks) => checks,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    let target = root.join(set.name);
    remove_if_present(&target)?;
    std::fs::rename(&staging, &target).map_err(|e| Error::io(&target, e))?;
    Ok(Installed {
        folder: installed_folder(set, root),
        checks,
    })
}

fn install_into(
    set: &Catalogued<'_>,
    root: &Path,
    staging: &Path,
    source: Source<'_>,
    progress: Progress<'_>,
) -> Result<Vec<(String, Verified)>> {
    let (mut downloaded, mut checks) = (Vec::new(), Vec::new());
    for file in set.files {
        let path = match source {
            Source::Local(from) => local_copy(set, file, from)?,
            Source::Internet => {
                let path = download(file, &root.join("downloads"), progress)?;
                downloaded.push(path.clone());
                path
            }
        };
        let verified = crate::checksum::verify(&path, file.md5, file.content_md5)?;
        checks.push((file.name.to_string(), verified));
        if file.unpack {
            unpack_tar_gz(&path, staging)?;
        } else {
            let kept = staging.join(file.name);
            std::fs::copy(&path, &kept).map_err(|e| Error::io(&kept, e))?;
        }
    }
    let folder = staging.join(set.folder);
    if !folder.is_dir() {
        return Err(Error::Mismatch(format!(
            "the {} files hold no folder {:?}: not the archive the catalogue describes",
            set.name, set.folder
        )));
    }
    let marker = staging.join(COMPLETE);
    std::fs::write(&marker, b"").map_err(|e| Error::io(&marker, e))?;
    // Installed copies make the downloads redundant.
    for path in downloaded {
        let _ = std::fs::remove_file(path);
    }
    Ok(checks)
}

/// The file `file` of a `--from` source: the archive itself for a one-file
/// set, else `<from>/<name>`.
fn local_copy(set: &Catalogued<'_>, file: &RemoteFile<'_>, from: &Path) -> Result<PathBuf> {
    let path = if from.is_dir() {
        from.join(file.name)
    } else if set.files.len() == 1 {
        from.to_path_buf()
    } else {
        let names: Vec<&str> = set.files.iter().map(|f| f.name).collect();
        return Err(Error::format(
            from,
            format!(
                "{} has {} files, so --from must be a folder holding {}",
                set.name,
                names.len(),
                names.join(", ")
            ),
        ));
    };
    if !path.is_file() {
        return Err(Error::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    Ok(path)
}

/// Downloads `file` into `folder` (through a `.part` file), unless a copy
/// with the right checksum is there from an earlier, interrupted install.
pub fn download(file: &RemoteFile<'_>, folder: &Path, progress: Progress<'_>) -> Result<PathBuf> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
    let path = folder.join(file.name);
    if path.is_file() && verify_md5(&path, file.md5).is_ok() {
        return Ok(path);
    }
    let fail = |problem: String| Error::Download {
        url: file.url.to_string(),
        problem,
    };
    let response = ureq::get(file.url)
        .call()
        .map_err(|e| fail(e.to_string()))?;
    let total = response
        .header("Content-Length")
        .and_then(|length| length.parse::<u64>().ok());
    let mut body = response.into_reader();
    let part = folder.join(format!("{}.part", file.name));
    let mut out = File::create(&part).map_err(|e| Error::io(&part, e))?;
    let mut buffer = vec![0u8; 1 << 16];
    let mut done = 0u64;
    progress(file.name, 0, total);
    loop {
        let n = body
            .read(&mut buffer)
            .map_err(|e| fail(format!("{e} after {done} bytes")))?;
        if n == 0 {
            break;
        }
        out.write_all(&buffer[..n])
            .map_err(|e| Error::io(&part, e))?;
        done += n as u64;
        progress(file.name, done, total);
    }
    out.sync_all().map_err(|e| Error::io(&part, e))?;
    if let Some(total) = total.filter(|&total| total != done) {
        return Err(fail(format!(
            "the connection closed after {done} of {total} bytes"
        )));
    }
    std::fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Unpacks a `.tar.gz` into `into`. Entries that would land outside `into`
/// (absolute paths, `..`) are refused by the `tar` crate.
pub fn unpack_tar_gz(archive: &Path, into: &Path) -> Result<()> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let decoder = flate2::read::GzDecoder::new(BufReader::new(file));
    tar::Archive::new(decoder)
        .unpack(into)
        .map_err(|e| Error::format(archive, format!("not a readable .tar.gz ({e})")))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

//! `cargo xtask setup`: provisions libtorch 2.11.0 from the PyPI wheels.
//!
//! PyTorch's own libtorch zip is not reachable from many machines, but the wheel
//! registry is, through the ordinary `pip` client. The torch wheel carries the
//! same shared libraries and headers as the libtorch zip; we unpack only what
//! `torch-sys` links against (the CPU library and its two CUDA runtime
//! dependencies, which `libtorch_cpu.so` needs at load time even on CPU).
//!
//! Layout: downloads and the unpacked folder are cached per user under
//! `$SELFSUP_CACHE` (else `$XDG_CACHE_HOME/selfsup`, else `~/.cache/selfsup`),
//! and the clone's gitignored `libtorch/` is hard-linked (or copied) from there,
//! so a second clone on the same machine costs neither a download nor disk.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libtorch version `tch = "=0.24.0"` is built against.
pub const TORCH_VERSION: &str = "2.11.0";

/// Wheels to download, pinned; pip needs all three platform tags to find the
/// nvidia runtime wheels.
const WHEELS: [&str; 3] = [
    "torch==2.11.0",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cupti==13.0.85",
];

/// Files taken from the wheels: (prefix inside a wheel, destination under libtorch/).
/// A prefix ending in `/` takes the whole folder.
const MEMBERS: [(&str, &str); 6] = [
    ("torch/include/", "include/"),
    ("torch/lib/libc10.so", "lib/libc10.so"),
    ("torch/lib/libtorch_cpu.so", "lib/libtorch_cpu.so"),
    ("torch/lib/libgomp.so.1", "lib/libgomp.so.1"),
    ("nvidia/cu13/lib/libcudart.so.13", "lib/libcudart.so.13"),
    ("nvidia/cu13/lib/libcupti.so.13", "lib/libcupti.so.13"),
];

/// Where libtorch will be found by the build, and whether we manage it.
#[derive(Debug, PartialEq, Eq)]
pub enum Provision {
    /// The user points `LIBTORCH` elsewhere or uses `LIBTORCH_USE_PYTORCH`: leave it alone.
    External(String),
    /// Our project-local `libtorch/` folder.
    Local(PathBuf),
}

/// Decides who owns libtorch. Cargo's `[env]` sets `LIBTORCH` to the project's
/// folder for every process it runs, so only a different value is the user's own.
pub fn decide(root: &Path, libtorch_env: Option<&str>, use_pytorch: bool) -> Provision {
    let local = root.join("libtorch");
    if use_pytorch {
        return Provision::External("LIBTORCH_USE_PYTORCH=1".into());
    }
    match libtorch_env {
        Some(value) if Path::new(value) != local => Provision::External(value.to_string()),
        _ => Provision::Local(local),
    }
}

/// Makes sure libtorch is ready for `cargo build`; idempotent and quiet when it is.
pub fn ensure(root: &Path) -> Result<()> {
    let env = std::env::var("LIBTORCH").ok();
    let use_pytorch = std::env::var_os("LIBTORCH_USE_PYTORCH").is_some();
    match decide(root, env.as_deref(), use_pytorch) {
        Provision::External(what) => {
            eprintln!("xtask: using your libtorch ({what}); not provisioning one");
            Ok(())
        }
        Provision::Local(dir) => {
            if !is_complete(&dir) {
                let cached = cache_dir()?.join(format!("libtorch-{TORCH_VERSION}-cpu"));
                if !is_complete(&cached) {
                    let wheels = download_wheels(&cache_dir()?.join("wheels"))?;
                    unpack(&wheels, &cached)?;
                }
                link_tree(&cached, &dir)?;
                eprintln!("xtask: libtorch {TORCH_VERSION} ready in {}", dir.display());
            }
            write_cargo_config(root, &dir)
        }
    }
}

/// A folder is complete once `build-version` exists: it is written last.
fn is_complete(dir: &Path) -> bool {
    fs::read_to_string(dir.join("build-version")).is_ok_and(|v| v.trim() == TORCH_VERSION)
        && dir.join("lib/libtorch_cpu.so").exists()
}

fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SELFSUP_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("selfsup"));
    }
    let home = std::env::var_os("HOME").context("neither SELFSUP_CACHE nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/selfsup"))
}

/// Checks that python3 and pip exist, with one clear line when they do not.
fn check_pip() -> Result<()> {
    let ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "python3 with pip is needed to fetch libtorch: install it (e.g. `apt-get install -y python3-pip`), \
             or set LIBTORCH to an existing libtorch {TORCH_VERSION} (or LIBTORCH_USE_PYTORCH=1 with torch installed)"
        );
    }
    Ok(())
}

/// Downloads the pinned wheels into `dir` (pip skips files already there).
fn download_wheels(dir: &Path) -> Result<Vec<PathBuf>> {
    check_pip()?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!(
        "xtask: downloading torch {TORCH_VERSION} wheels with pip (~540 MB, once per machine)"
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--python-version", "3.11"])
        .args(["--platform", "manylinux_2_28_x86_64"])
        .args(["--platform", "manylinux_2_25_x86_64"])
        .args(["--platform", "manylinux_2_17_x86_64"])
        .arg("-d")
        .arg(dir)
        .args(WHEELS)
        .status()
        .context("running python3 -m pip download")?;
    if !status.success() {
        bail!(
            "pip could not download {} into {}: check the network or pip's proxy settings; \
             or point LIBTORCH at an existing libtorch {TORCH_VERSION} (or set LIBTORCH_USE_PYTORCH=1 \
             in a Python environment with torch {TORCH_VERSION})",
            WHEELS.join(" "),
            dir.display()
        );
    }
    let mut wheels = Vec::new();
    for prefix in ["torch-", "nvidia_cuda_runtime-", "nvidia_cuda_cupti-"] {
        let found = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.starts_with(prefix) && name.ends_with(".whl")
            })
            .with_context(|| format!("no {prefix}*.whl in {} after pip download", dir.display()))?;
        wheels.push(found);
    }
    Ok(wheels)
}

/// Unpacks the members we need from the wheels into `dest`, atomically: into a
/// sibling temp folder first, renamed into place when complete.
fn unpack(wheels: &[PathBuf], dest: &Path) -> Result<()> {
    let tmp = dest.with_file_name(format!(
        "{}.partial",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("libtorch")
    ));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(tmp.join("lib"))?;
    // Python's zipfile is already a prerequisite (pip); it reads the members we name.
    let script = r#"
import sys, zipfile, shutil, os
dest = sys.argv[1]
members = [m.split('=', 1) for m in sys.argv[2].split(';')]
for wheel in sys.argv[3:]:
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith('/'):
                continue
            for prefix, target in members:
                if prefix.endswith('/') and name.startswith(prefix):
                    out = os.path.join(dest, target + name[len(prefix):])
                elif name == prefix:
                    out = os.path.join(dest, target)
                else:
                    continue
                if True:
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    with z.open(name) as src, open(out, 'wb') as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
"#;
    let members: Vec<String> = MEMBERS.iter().map(|(p, d)| format!("{p}={d}")).collect();
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&tmp)
        .arg(members.join(";"))
        .args(wheels)
        .status()
        .context("running python3 to unpack the wheels")?;
    if !status.success() {
        bail!(
            "unpacking the torch wheels failed; delete {} and retry",
            tmp.display()
        );
    }
    for (_, target) in MEMBERS {
        if !tmp.join(target).exists() {
            bail!("the wheels did not contain {target}; delete the cached wheels and retry");
        }
    }
    // torch-sys links `-ltorch`; the real libtorch.so needs libtorch_cuda.so.
    std::os::unix::fs::symlink("libtorch_cpu.so", tmp.join("lib/libtorch.so"))?;
    fs::write(tmp.join("build-version"), format!("{TORCH_VERSION}\n"))?;
    if dest.exists() {
        fs::remove_dir_all(dest)?;
    }
    fs::rename(&tmp, dest)?;
    Ok(())
}

/// Mirrors `from` into `to` with hard links (copies across file systems).
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        fs::remove_dir_all(to).with_context(|| format!("removing stale {}", to.display()))?;
    }
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            link_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

/// The rpath lets binaries, tests and doctests find libtorch with no
/// LD_LIBRARY_PATH (cargo ignores that variable in `[env]`).
fn cargo_config_text(lib: &Path) -> String {
    let flag = format!("\"-C\", \"link-arg=-Wl,-rpath,{}\"", lib.display());
    format!(
        "# Written by `cargo xtask setup`; not committed.\n\
         [target.'cfg(all())']\nrustflags = [{flag}]\n\n\
         [build]\nrustdocflags = [{flag}]\n"
    )
}

fn write_cargo_config(root: &Path, libtorch: &Path) -> Result<()> {
    let path = root.join(".cargo/libtorch.toml");
    let text = cargo_config_text(&libtorch.join("lib"));
    if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_libtorch_is_ours_and_others_are_left_alone() {
        let root = Path::new("/repo");
        let ours = "/repo/libtorch";
        assert_eq!(
            decide(root, Some(ours), false),
            Provision::Local(root.join("libtorch"))
        );
        assert_eq!(
            decide(root, None, false),
            Provision::Local(root.join("libtorch"))
        );
        assert_eq!(
            decide(root, Some("/opt/libtorch"), false),
            Provision::External("/opt/libtorch".into())
        );
        assert!(matches!(decide(root, None, true), Provision::External(_)));
    }

    #[test]
    fn config_sets_rpath_for_builds_and_doctests() {
        let text = cargo_config_text(Path::new("/x/libtorch/lib"));
        let parsed: toml::Table = text.parse().unwrap();
        let flag = toml::Value::from(vec!["-C", "link-arg=-Wl,-rpath,/x/libtorch/lib"]);
        assert_eq!(parsed["target"]["cfg(all())"]["rustflags"], flag);
        assert_eq!(parsed["build"]["rustdocflags"], flag);
    }

    #[test]
    fn incomplete_folders_are_not_mistaken_for_libtorch() {
        let dir = std::env::temp_dir().join(format!("xtask-setup-test-{}", std::process::id()));
        fs::create_dir_all(dir.join("lib")).unwrap();
        assert!(!is_complete(&dir));
        fs::write(dir.join("build-version"), "2.10.0\n").unwrap();
        fs::write(dir.join("lib/libtorch_cpu.so"), "").unwrap();
        assert!(!is_complete(&dir), "wrong version must not count");
        fs::write(dir.join("build-version"), format!("{TORCH_VERSION}\n")).unwrap();
        assert!(is_complete(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! `cargo xtask setup`: provisions libtorch 2.11.0 from the PyPI wheels.
//!
//! PyTorch's own libtorch zip is not reachable from many machines, but the wheel
//! registry is, through the ordinary `pip` client. The torch wheel carries the
//! same shared libraries and headers as the libtorch zip; we unpack only what
//! `torch-sys` links against (the CPU library and its two CUDA runtime
//! dependencies, which `libtorch_cpu.so` needs at load time even on CPU).
//! `setup --cuda` adds libtorch_cuda.so and NVIDIA's libraries and headers
//! (see [`wheels`]); the CUDA build runs on CPU-only machines too.
//!
//! Layout: downloads and the unpacked folder are cached per user under
//! `$SELFSUP_CACHE` (else `$XDG_CACHE_HOME/selfsup`, else `~/.cache/selfsup`),
//! and the clone's gitignored `libtorch/` is hard-linked (or copied) from there,
//! so a second clone on the same machine costs neither a download nor disk.

use crate::wheels::{self, Variant};
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// The libtorch version `tch = "=0.24.0"` is built against.
pub const TORCH_VERSION: &str = "2.11.0";

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

/// Makes sure libtorch is ready for `cargo build`; idempotent and quiet when
/// it is. A CPU request keeps a CUDA folder (it serves both); a CUDA request
/// replaces a CPU one.
pub fn ensure(root: &Path, variant: Variant) -> Result<()> {
    let env = std::env::var("LIBTORCH").ok();
    let use_pytorch = std::env::var_os("LIBTORCH_USE_PYTORCH").is_some();
    match decide(root, env.as_deref(), use_pytorch) {
        Provision::External(what) => {
            eprintln!("xtask: using your libtorch ({what}); not provisioning one");
            Ok(())
        }
        Provision::Local(dir) => {
            if !is_complete(&dir, variant) {
                let name = format!("libtorch-{TORCH_VERSION}-{}", variant.name());
                let cached = cache_dir()?.join(name);
                if !is_complete(&cached, variant) {
                    let wheels_dir = cache_dir()?.join("wheels");
                    let wheels = wheels::download(variant, &wheels_dir, TORCH_VERSION)?;
                    unpack(variant, &wheels, &cached)?;
                }
                link_tree(&cached, &dir)?;
                write_version(&dir, variant)?;
                eprintln!(
                    "xtask: libtorch {TORCH_VERSION} ({}) ready in {}",
                    variant.name(),
                    dir.display()
                );
            }
            write_cargo_config(root, &dir)
        }
    }
}

/// A folder is complete for `variant` once `build-version` names our
/// version (it is written last) and the variant's libraries are there; a
/// CUDA folder also serves a CPU build.
fn is_complete(dir: &Path, variant: Variant) -> bool {
    fs::read_to_string(dir.join("build-version")).is_ok_and(|v| v.trim() == TORCH_VERSION)
        && dir.join(Variant::Cpu.marker()).exists()
        && dir.join(variant.marker()).exists()
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

/// Unpacks the variant from the wheels into `dest`, atomically: into a
/// sibling temp folder first, renamed into place when complete.
fn unpack(variant: Variant, wheels: &[PathBuf], dest: &Path) -> Result<()> {
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
    wheels::unpack(variant, wheels, &tmp)?;
    // torch-sys links `-ltorch`. The CUDA build has the real libtorch.so
    // (which needs libtorch_cuda.so); the CPU build stands libtorch_cpu.so in.
    if !tmp.join("lib/libtorch.so").exists() {
        std::os::unix::fs::symlink("libtorch_cpu.so", tmp.join("lib/libtorch.so"))?;
    }
    write_version(&tmp, variant)?;
    if dest.exists() {
        fs::remove_dir_all(dest)?;
    }
    fs::rename(&tmp, dest)?;
    Ok(())
}

/// `build-variant` (`cpu` or `cuda`), then `build-version`, which marks a
/// folder complete and must hold the bare version (torch-sys checks it).
/// Both are new files, never links: the shim's build script reruns when
/// `build-variant`'s time changes, so a switch of variant relinks.
fn write_version(dir: &Path, variant: Variant) -> Result<()> {
    for (name, text) in [
        ("build-variant", variant.name()),
        ("build-version", TORCH_VERSION),
    ] {
        let path = dir.join(name);
        let _ = fs::remove_file(&path);
        fs::write(&path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
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
        assert!(!is_complete(&dir, Variant::Cpu));
        fs::write(dir.join("build-version"), "2.10.0\n").unwrap();
        fs::write(dir.join("lib/libtorch_cpu.so"), "").unwrap();
        assert!(
            !is_complete(&dir, Variant::Cpu),
            "wrong version must not count"
        );
        write_version(&dir, Variant::Cpu).unwrap();
        let version = fs::read_to_string(dir.join("build-version")).unwrap();
        assert_eq!(version, format!("{TORCH_VERSION}\n"), "torch-sys reads it");
        assert!(is_complete(&dir, Variant::Cpu));
        assert!(
            !is_complete(&dir, Variant::Cuda),
            "a CPU folder is no CUDA build"
        );
        fs::write(dir.join("lib/libtorch_cuda.so"), "").unwrap();
        assert!(is_complete(&dir, Variant::Cuda));
        assert!(
            is_complete(&dir, Variant::Cpu),
            "a CUDA folder serves a CPU build"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}

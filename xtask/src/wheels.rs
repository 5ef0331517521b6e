//! The PyPI wheels libtorch is taken from, and how they are unpacked.
//!
//! The torch wheel is PyTorch's CUDA build: it holds the CPU library (all a
//! CPU build links), the CUDA libraries and the headers. The CUDA libraries
//! need NVIDIA's runtime wheels, pinned here as torch 2.11.0's metadata pins
//! them (`cuda-toolkit==13.0.2` and its extras, cuDNN, cuSPARSELt, NCCL,
//! NVSHMEM), plus the CUDA headers the shim's NCCL backend compiles
//! against; NCCL is taken at or above torch's pin (2.28.9) within NCCL 2,
//! whose ABI is stable, because registries do not all carry that release.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which libtorch a project folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `libtorch_cpu.so` and the two CUDA runtime libraries it loads.
    Cpu,
    /// Also `libtorch_cuda.so`, NCCL, cuDNN, cuBLAS and the rest, and their headers.
    Cuda,
}

/// Wheels both variants need.
const CPU_WHEELS: [&str; 3] = [
    "torch==2.11.0",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cupti==13.0.85",
];

/// The further wheels `libtorch_cuda.so` loads its libraries from.
/// (`nvidia-cuda-crt` and `nvidia-cuda-cccl` are headers only: CUDA's runtime
/// headers include them.)
const CUDA_WHEELS: [&str; 15] = [
    "nvidia-cuda-crt==13.0.88.*",
    "nvidia-cuda-cccl==13.0.85.*",
    "nvidia-cublas==13.1.0.3.*",
    "nvidia-cufft==12.0.0.61.*",
    "nvidia-cufile==1.15.1.6.*",
    "nvidia-curand==10.4.0.35.*",
    "nvidia-cusolver==12.0.4.66.*",
    "nvidia-cusparse==12.6.3.3.*",
    "nvidia-nvjitlink==13.0.88.*",
    "nvidia-cuda-nvrtc==13.0.88.*",
    "nvidia-nvtx==13.0.85.*",
    "nvidia-cudnn-cu13==9.19.0.56",
    "nvidia-cusparselt-cu13==0.8.0",
    "nvidia-nccl-cu13>=2.28.9,<3",
    "nvidia-nvshmem-cu13==3.4.5",
];

/// Files taken from the wheels: (pattern inside a wheel, destination under
/// libtorch/). A pattern ending in `/` takes the whole folder; `*` stands
/// for one path segment (NVIDIA's wheels put each library under its own
/// `nvidia/<name>/`, flattened here into `lib/` and `include/`).
const CPU_MEMBERS: [(&str, &str); 6] = [
    ("torch/include/", "include/"),
    ("torch/lib/libc10.so", "lib/libc10.so"),
    ("torch/lib/libtorch_cpu.so", "lib/libtorch_cpu.so"),
    ("torch/lib/libgomp.so.1", "lib/libgomp.so.1"),
    ("nvidia/cu13/lib/libcudart.so.13", "lib/libcudart.so.13"),
    ("nvidia/cu13/lib/libcupti.so.13", "lib/libcupti.so.13"),
];

const CUDA_MEMBERS: [(&str, &str); 9] = [
    ("torch/lib/libtorch.so", "lib/libtorch.so"),
    ("torch/lib/libtorch_cuda.so", "lib/libtorch_cuda.so"),
    (
        "torch/lib/libtorch_cuda_linalg.so",
        "lib/libtorch_cuda_linalg.so",
    ),
    ("torch/lib/libtorch_nvshmem.so", "lib/libtorch_nvshmem.so"),
    (
        "torch/lib/libtorch_global_deps.so",
        "lib/libtorch_global_deps.so",
    ),
    ("torch/lib/libc10_cuda.so", "lib/libc10_cuda.so"),
    ("torch/lib/libcaffe2_nvrtc.so", "lib/libcaffe2_nvrtc.so"),
    ("nvidia/*/lib/", "lib/"),
    ("nvidia/*/include/", "include/"),
];

impl Variant {
    /// The cache folder's suffix and the word `build-variant` holds.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cpu => "cpu",
            Variant::Cuda => "cuda",
        }
    }

    fn wheels(self) -> Vec<&'static str> {
        let mut wheels = CPU_WHEELS.to_vec();
        if self == Variant::Cuda {
            wheels.extend(CUDA_WHEELS);
        }
        wheels
    }

    fn members(self) -> Vec<(&'static str, &'static str)> {
        let mut members = CPU_MEMBERS.to_vec();
        if self == Variant::Cuda {
            members.extend(CUDA_MEMBERS);
        }
        members
    }

    /// A file whose presence shows a folder holds this variant.
    pub fn marker(self) -> &'static str {
        match self {
            Variant::Cpu => "lib/libtorch_cpu.so",
            Variant::Cuda => "lib/libtorch_cuda.so",
        }
    }
}

/// Checks that python3 and pip exist, with one clear line when they do not.
fn check_pip(version: &str) -> Result<()> {
    let ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "python3 with pip is needed to fetch libtorch: install it (e.g. `apt-get install -y python3-pip`), \
             or set LIBTORCH to an existing libtorch {version} (or LIBTORCH_USE_PYTORCH=1 with torch installed)"
        );
    }
    Ok(())
}

/// Downloads the variant's pinned wheels into `dir` (pip skips files
/// already there) and returns their paths.
pub fn download(variant: Variant, dir: &Path, version: &str) -> Result<Vec<PathBuf>> {
    check_pip(version)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let size = match variant {
        Variant::Cpu => "~540 MB",
        Variant::Cuda => "~3.5 GB",
    };
    eprintln!(
        "xtask: downloading the torch {version} wheels ({}) with pip ({size}, once per machine)",
        variant.name()
    );
    let wheels = variant.wheels();
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--python-version", "3.11"])
        .args(["--platform", "manylinux_2_28_x86_64"])
        .args(["--platform", "manylinux_2_27_x86_64"])
        .args(["--platform", "manylinux_2_25_x86_64"])
        .args(["--platform", "manylinux_2_17_x86_64"])
        .args(["--platform", "manylinux2014_x86_64"])
        .arg("-d")
        .arg(dir)
        .args(&wheels)
        .status()
        .context("running python3 -m pip download")?;
    if !status.success() {
        bail!(
            "pip could not download {} into {}: check the network or pip's proxy settings; \
             or point LIBTORCH at an existing libtorch {version} (or set LIBTORCH_USE_PYTORCH=1 \
             in a Python environment with torch {version})",
            wheels.join(" "),
            dir.display()
        );
    }
    wheels.iter().map(|spec| find_wheel(dir, spec)).collect()
}

/// The downloaded wheel of a requirement like `nvidia-cudnn-cu13==9.19.0.56`
/// (wheel names spell the project with `_`).
fn find_wheel(dir: &Path, spec: &str) -> Result<PathBuf> {
    let project = spec
        .split(['=', '>', '<'])
        .next()
        .unwrap_or(spec)
        .replace('-', "_");
    let prefix = format!("{project}-");
    fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .with_context(|| format!("no {prefix}*.whl in {} after pip download", dir.display()))
}

/// Python's zipfile is already a prerequisite (pip); it reads the members we name.
const UNPACK: &str = r#"
import sys, zipfile, shutil, os, fnmatch
dest = sys.argv[1]
members = [m.split('=', 1) for m in sys.argv[2].split(';')]
def target_of(name):
    for pattern, target in members:
        if pattern.endswith('/'):
            depth = pattern.count('/')
            parts = name.split('/')
            if len(parts) > depth and fnmatch.fnmatchcase('/'.join(parts[:depth]) + '/', pattern):
                return target + '/'.join(parts[depth:])
        elif name == pattern:
            return target
    return None
for wheel in sys.argv[3:]:
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            out = None if name.endswith('/') else target_of(name)
            if out is None:
                continue
            out = os.path.join(dest, out)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
"#;

/// Unpacks the variant's members of `wheels` into the folder `tmp`.
pub fn unpack(variant: Variant, wheels: &[PathBuf], tmp: &Path) -> Result<()> {
    let members: Vec<String> = variant
        .members()
        .iter()
        .map(|(p, d)| format!("{p}={d}"))
        .collect();
    let status = Command::new("python3")
        .arg("-c")
        .arg(UNPACK)
        .arg(tmp)
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
    for (pattern, target) in variant.members() {
        if !pattern.contains('*') && !tmp.join(target).exists() {
            bail!("the wheels did not contain {target}; delete the cached wheels and retry");
        }
    }
    Ok(())
}

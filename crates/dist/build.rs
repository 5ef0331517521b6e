//! Compiles the c10d shim: `csrc/c10d.cpp` includes libtorch's c10d headers, found next to the
//! library folder torch-sys links (`DEP_TCH_LIBTORCH_LIB`, `../include`),
//! and the Gloo headers vendored under `csrc/vendor` (see its README).
//!
//! A CUDA build (`cargo xtask setup --cuda`: `libtorch_cuda.so` next to
//! `libtorch_cpu.so`, NCCL's and CUDA's headers in `include/`) also
//! compiles the shim's NCCL backend and links `libtorch_cuda.so`, whose
//! loading is what makes CUDA available to tch.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)"),
    );
    // `cargo xtask setup` rewrites it when it switches between the CPU and
    // CUDA builds, so the shim follows.
    let variant = lib.join("..").join("build-variant");
    if variant.exists() {
        println!("cargo:rerun-if-changed={}", variant.display());
    }
    let include = lib.join("..").join("include");
    let mut c10d = cc::Build::new();
    c10d.cpp(true)
        .std("c++17")
        .define("USE_C10D_GLOO", None)
        .include(&include)
        .include(
            include
                .join("torch")
                .join("csrc")
                .join("api")
                .join("include"),
        )
        .include("csrc/vendor")
        .file("csrc/c10d.cpp")
        .warnings(false);
    if is_cuda_build(&lib, &include) {
        c10d.define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .define("SELFSUP_NCCL", None);
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
    c10d.compile("selfsup_c10d");
}

/// libtorch's CUDA library, and the NCCL header its c10d headers include.
fn is_cuda_build(lib: &Path, include: &Path) -> bool {
    lib.join("libtorch_cuda.so").exists() && include.join("nccl.h").exists()
}

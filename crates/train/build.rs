//! Compiles the C++ shims. `csrc/autocast.cpp` includes no libtorch header.
//! `csrc/c10d.cpp` includes libtorch's c10d headers, found next to the
//! library folder torch-sys links (`DEP_TCH_LIBTORCH_LIB`, `../include`),
//! and the Gloo headers vendored under `csrc/vendor` (see its README).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("csrc/autocast.cpp")
        .warnings(true)
        .compile("selfsup_autocast");

    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)");
    let include = PathBuf::from(lib).join("..").join("include");
    cc::Build::new()
        .cpp(true)
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
        .warnings(false)
        .compile("selfsup_c10d");
}

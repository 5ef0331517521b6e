//! Compiles the multi-tensor optimizer shim (`csrc/multi_tensor.cpp`)
//! against the headers of the libtorch that torch-sys links: torch-sys
//! passes its library folder on as `DEP_TCH_LIBTORCH_LIB`, and the headers
//! sit next to it (`../include`), in the PyPI wheel as in a libtorch zip.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/multi_tensor.cpp");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)");
    let include = PathBuf::from(lib).join("..").join("include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(&include)
        .file("csrc/multi_tensor.cpp")
        .warnings(false)
        .compile("selfsup_multi_tensor");
}

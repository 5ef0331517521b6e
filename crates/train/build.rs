//! Compiles the autocast shim (`csrc/autocast.cpp`). It includes no libtorch
//! header, so it needs no include path; its symbols resolve against the
//! libtorch that torch-sys links.

fn main() {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("csrc/autocast.cpp")
        .warnings(true)
        .compile("selfsup_autocast");
}

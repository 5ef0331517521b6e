//! Compiles the autocast shim (`csrc/autocast.cpp`, which includes no
//! libtorch header). The c10d shim is `selfsup-dist`'s.

fn main() {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("csrc/autocast.cpp")
        .warnings(true)
        .compile("selfsup_autocast");
}

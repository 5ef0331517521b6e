//! Compiles the JPEG shim (`csrc/jpeg.c`) against the system's libjpeg
//! (libjpeg-turbo on Debian and Ubuntu: `apt-get install libjpeg-dev`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/jpeg.c");
    let found = ["/usr/include", "/usr/local/include"]
        .iter()
        .any(|dir| std::path::Path::new(dir).join("jpeglib.h").exists());
    if !found {
        println!(
            "cargo:warning=jpeglib.h not found: install libjpeg-turbo's headers \
             with `apt-get install -y libjpeg-dev`"
        );
    }
    cc::Build::new()
        .file("csrc/jpeg.c")
        .opt_level(2)
        .compile("selfsup_jpeg");
    // Static where the -dev package ships the archive (Debian and Ubuntu
    // do), so the binary runs on machines without libjpeg installed.
    let lib_dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ];
    match lib_dirs
        .iter()
        .find(|dir| std::path::Path::new(dir).join("libjpeg.a").exists())
    {
        Some(dir) => {
            println!("cargo:rustc-link-search=native={dir}");
            println!("cargo:rustc-link-lib=static=jpeg");
        }
        None => println!("cargo:rustc-link-lib=jpeg"),
    }
}

//! MNIST's IDX files, plain and gzipped (a gzip bomb stops at the cap).
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_data::idx::read_idx;

mod common;

fuzz_target!(|bytes: &[u8]| {
    let dims = bytes.first().map_or(1, |b| b % 4 + 1);
    let (_dir, plain) = common::write("images-idx3-ubyte", bytes);
    common::names_file(read_idx(&plain, dims), &plain);
    let (_dir, gz) = common::write("images-idx3-ubyte.gz", bytes);
    common::names_file(read_idx(&gz, dims), &gz);
});

//! CIFAR-10/100 binary batches and STL-10's image and label files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_data::cifar::{read_cifar10, read_cifar100, Cifar100Labels, Split};
use selfsup_data::stl10::read_stl10;

mod common;

fuzz_target!(|bytes: &[u8]| {
    let (dir, batch) = common::write("test_batch.bin", bytes);
    common::names_file(read_cifar10(dir.path(), Split::Test), &batch);
    std::fs::write(dir.path().join("test.bin"), bytes).unwrap();
    let _ = read_cifar100(dir.path(), Split::Test, Cifar100Labels::Fine);
    let (images, labels) = common::two_parts(bytes);
    std::fs::write(dir.path().join("test_X.bin"), images).unwrap();
    std::fs::write(dir.path().join("test_y.bin"), labels).unwrap();
    let _ = read_stl10(dir.path(), "test");
});

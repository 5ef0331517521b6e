//! Token files: opened (header, size and every id checked), then read whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_data::token_file::{TokenFile, Tokens};

mod common;

fuzz_target!(|bytes: &[u8]| {
    let (_dir, path) = common::write("corpus.tokens", bytes);
    match TokenFile::open(&path) {
        Ok(file) => {
            let ids = file.to_vec(0..file.len()).expect("an opened file reads");
            assert!(ids.iter().all(|&id| id < file.vocab_size()));
        }
        Err(error) => assert!(error.to_string().contains("corpus.tokens"), "{error}"),
    }
});

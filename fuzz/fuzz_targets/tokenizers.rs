//! GPT-2's `encoder.json` + `vocab.bpe` and Hugging Face `tokenizer.json`:
//! loaded (ids bounded by the vocabulary), then used on a short text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_data::bpe::Gpt2Tokenizer;
use selfsup_data::hf_tokenizer::HfTokenizer;

mod common;

fuzz_target!(|bytes: &[u8]| {
    let (encoder, merges) = common::two_parts(bytes);
    let (dir, encoder_path) = common::write("encoder.json", encoder);
    let merges_path = dir.path().join("vocab.bpe");
    std::fs::write(&merges_path, merges).unwrap();
    if let Ok(tokenizer) = Gpt2Tokenizer::load(&encoder_path, &merges_path) {
        let ids = tokenizer.encode("Call me Ishmael. 42 ünïcode");
        assert!(ids.iter().all(|&id| (id as usize) < tokenizer.vocab_size()));
        let _ = tokenizer.decode(&ids);
    }
    let (_dir, json) = common::write("tokenizer.json", bytes);
    if let Ok(tokenizer) = HfTokenizer::load(&json) {
        if let Ok(ids) = tokenizer.encode("Call me Ishmael.") {
            assert!(ids.iter().all(|&id| (id as usize) < tokenizer.vocab_size()));
            let _ = tokenizer.decode(&ids);
        }
    }
});

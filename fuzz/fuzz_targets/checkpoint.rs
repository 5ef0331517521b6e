//! A checkpoint (safetensors) as `--resume` and evaluation read it: loaded,
//! checked against a small model (shapes, counters), restored into it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfsup_train::checkpoint;
use selfsup_train::trainer::{check_resumable, restore_model};
use tch::nn::VarStore;

mod common;

fuzz_target!(|bytes: &[u8]| {
    let (_dir, path) = common::write("last.safetensors", bytes);
    let vs = VarStore::new(tch::Device::Cpu);
    let _ = tch::nn::linear(vs.root() / "layer", 4, 3, Default::default());
    for outcome in [
        checkpoint::load(&path).map(|_| ()),
        check_resumable(&vs, &path),
        restore_model(&vs, &path),
    ] {
        if let Err(error) = outcome {
            assert!(error.to_string().contains("last.safetensors"), "{error}");
        }
    }
});

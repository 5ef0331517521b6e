//! Checkpoints from outside: a real one, truncated or with bytes
//! overwritten, fed to `--resume`'s check and to the loader evaluation
//! uses. Each gives an error naming the file, or loads; never a panic.

use proptest::prelude::*;
use selfsup_train::checkpoint;
use selfsup_train::trainer::{check_resumable, restore_model, MODEL_PREFIX};
use tch::nn::VarStore;
use tch::Tensor;

fn model() -> VarStore {
    let vs = VarStore::new(tch::Device::Cpu);
    let _ = tch::nn::linear(vs.root() / "layer", 4, 3, Default::default());
    vs
}

/// A valid checkpoint's bytes (weights, a step, an optimizer step, a probe).
fn valid_checkpoint(dir: &std::path::Path) -> Vec<u8> {
    let vs = model();
    let mut tensors = checkpoint::named_variables(&vs, MODEL_PREFIX);
    tensors.push(("trainer.step".into(), Tensor::from(12i64)));
    tensors.push(("optim.step".into(), Tensor::from(12i64)));
    tensors.push(("probe.seen".into(), Tensor::from(5i64)));
    let path = checkpoint::save_atomic(dir, "valid", &tensors).unwrap();
    std::fs::read(path).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn damaged_checkpoints_are_errors_naming_the_file(
        cut in 0.0..=1.0f64,
        flips in prop::collection::vec((0.0..=1.0f64, any::<u8>()), 0..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let valid = valid_checkpoint(dir.path());
        let mut bytes = valid[..(valid.len() as f64 * cut) as usize].to_vec();
        for (at, value) in flips {
            if !bytes.is_empty() {
                let i = ((bytes.len() - 1) as f64 * at) as usize;
                bytes[i] = value;
            }
        }
        let path = dir.path().join("last.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let vs = model();
        for outcome in [check_resumable(&vs, &path), restore_model(&vs, &path)] {
            if let Err(error) = outcome {
                prop_assert!(error.to_string().contains("last.safetensors"), "{}", error);
            }
        }
    }
}

//! Our ViT against timm's: the exported weights carry exactly the names and
//! shapes a timm `VisionTransformer` of the same shape has, and loaded with a
//! timm model's weights our encoder computes timm's tokens. The fixture is
//! written by `benches/reference/export_fixtures.py`.

use selfsup_vision::backbones::export::{export_timm, load_timm};
use selfsup_vision::backbones::{VisionTransformer, VitConfig};
use std::collections::BTreeMap;
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn fixture() -> BTreeMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/timm_vit.safetensors"
    );
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

fn timm_weights() -> Vec<(String, Tensor)> {
    fixture()
        .into_iter()
        .filter_map(|(n, t)| n.strip_prefix("weights.").map(|n| (n.to_string(), t)))
        .collect()
}

fn vit(vs: &VarStore) -> VisionTransformer {
    let config = VitConfig {
        image_size: 8,
        patch_size: 4,
        in_channels: 1,
        dim: 16,
        depth: 2,
        heads: 2,
        mlp_ratio: 2.0,
        pool: Default::default(),
    };
    VisionTransformer::new(vs.root() / "encoder", &config, "method.encoder").unwrap()
}

#[test]
fn export_has_timm_names_and_shapes() {
    let vs = VarStore::new(Device::Cpu);
    let model = vit(&vs);
    let ours: Vec<(String, Vec<i64>)> = export_timm(&model, &vs, "encoder.")
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    let theirs: Vec<(String, Vec<i64>)> = timm_weights()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn with_timm_weights_our_encoder_computes_timm_tokens() {
    let vs = VarStore::new(Device::Cpu);
    let mut model = vit(&vs);
    load_timm(&mut model, &vs, "encoder.", &timm_weights()).unwrap();
    let f = fixture();
    let tokens = tch::no_grad(|| model.encode(&model.embed_patches(&f["input"])));
    let error = (&tokens - &f["tokens"]).abs().max().double_value(&[]);
    assert!(error < 1e-5, "max difference from timm: {error}");
}

#[test]
fn loading_names_the_missing_tensor() {
    let vs = VarStore::new(Device::Cpu);
    let mut model = vit(&vs);
    let partial: Vec<(String, Tensor)> = timm_weights()
        .into_iter()
        .filter(|(n, _)| n != "norm.weight")
        .collect();
    let err = load_timm(&mut model, &vs, "encoder.", &partial)
        .unwrap_err()
        .to_string();
    assert!(err.contains("norm.weight"), "{err}");
}

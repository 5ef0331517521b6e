//! SGD (with and without Nesterov) and AdamW against `torch.optim`, LARS
//! against the official MoCo v3 implementation, over 20 steps with a changing
//! learning rate, a decayed weight matrix and undecayed bias / norm weight.
//! Fixtures come from `benches/reference/core_fixtures.py`.

use selfsup_core::optim::{
    AdamW, AdamWConfig, Lars, LarsConfig, Optimizer, ParamGroup, Sgd, SgdConfig,
};
use std::collections::HashMap;
use tch::{Kind, Tensor};

fn fixtures() -> HashMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/optimizers.safetensors"
    );
    Tensor::read_safetensors(path)
        .expect("fixture file")
        .into_iter()
        .collect()
}

fn run(name: &str, make: impl FnOnce(Vec<ParamGroup>) -> Box<dyn Optimizer>) {
    let f = fixtures();
    let param = |k: &str| f[&format!("init.{k}")].copy().set_requires_grad(true);
    let (w, b, g) = (param("w"), param("b"), param("g"));
    let group = |names: &[&str], params: Vec<&Tensor>, weight_decay| ParamGroup {
        names: names.iter().map(|s| s.to_string()).collect(),
        params: params.into_iter().map(Tensor::shallow_clone).collect(),
        weight_decay,
        lr_scale: 1.0,
    };
    let mut optimizer = make(vec![
        group(&["w"], vec![&w], 0.1),
        group(&["b", "g"], vec![&b, &g], 0.0),
    ]);
    let lrs: Vec<f64> = Vec::try_from(&f["lrs"]).unwrap();
    for lr in lrs {
        optimizer.zero_grad();
        let out =
            (f["x"].matmul(&w.tr()) + &b).layer_norm([3], Some(&g), None::<&Tensor>, 1e-5, false);
        (out - &f["y"]).square().mean(Kind::Float).backward();
        optimizer.step(lr);
    }
    for (key, got) in [("w", &w), ("b", &b), ("g", &g)] {
        let expected = &f[&format!("{name}.{key}")];
        let error = (got - expected).abs().max().double_value(&[]);
        assert!(
            error < 1e-5,
            "{name}: {key} differs from PyTorch by {error}"
        );
    }
}

#[test]
fn sgd_momentum_matches_torch_optim() {
    run("sgd", |groups| {
        Box::new(Sgd::new(
            groups,
            SgdConfig {
                momentum: 0.9,
                nesterov: false,
            },
        ))
    });
}

#[test]
fn sgd_nesterov_matches_torch_optim() {
    run("sgd_nesterov", |groups| {
        Box::new(Sgd::new(
            groups,
            SgdConfig {
                momentum: 0.9,
                nesterov: true,
            },
        ))
    });
}

#[test]
fn adamw_matches_torch_optim() {
    run("adamw", |groups| {
        Box::new(AdamW::new(
            groups,
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
            },
        ))
    });
}

#[test]
fn lars_matches_the_reference_implementation() {
    run("lars", |groups| {
        Box::new(Lars::new(
            groups,
            LarsConfig {
                momentum: 0.9,
                trust_coefficient: 0.001,
            },
        ))
    });
}

#[test]
fn optimizer_state_round_trips_through_safetensors() {
    // Run LARS a few steps, save its state to a file, restore into a fresh
    // optimizer and check both take the identical next step.
    let f = fixtures();
    let make = |w: &Tensor| {
        let group = ParamGroup {
            names: vec!["w".into()],
            params: vec![w.shallow_clone()],
            weight_decay: 0.1,
            lr_scale: 1.0,
        };
        Lars::new(vec![group], LarsConfig::default())
    };
    let loss = |w: &Tensor| f["x"].matmul(&w.tr()).square().mean(Kind::Float);
    let w = f["init.w"].copy().set_requires_grad(true);
    let mut optimizer = make(&w);
    for _ in 0..3 {
        optimizer.zero_grad();
        loss(&w).backward();
        optimizer.step(0.1);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.safetensors");
    Tensor::write_safetensors(&optimizer.state(), &path).unwrap();
    let w2 = w.detach().copy().set_requires_grad(true);
    let mut restored = make(&w2);
    restored
        .load_state(&Tensor::read_safetensors(&path).unwrap())
        .unwrap();
    for (param, opt) in [
        (&w, &mut optimizer as &mut dyn Optimizer),
        (&w2, &mut restored as &mut dyn Optimizer),
    ] {
        opt.zero_grad();
        loss(param).backward();
        opt.step(0.1);
    }
    assert!(w.equal(&w2));
}

//! Criterion benchmarks of every loss, forward + backward, at the sizes SSL
//! recipes use (batch 256–4096, dimension 128–2048). Run with
//! `cargo bench -p selfsup-core`; `cargo xtask bench core` compares the same
//! computations with PyTorch eager.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{criterion_group, criterion_main, Criterion};
use selfsup_core::losses;
use tch::{Device, Kind, Tensor};

fn leaf(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu)).set_requires_grad(true)
}

fn forward_backward(
    c: &mut Criterion,
    name: &str,
    inputs: Vec<Tensor>,
    loss: impl Fn(&[Tensor]) -> Tensor,
) {
    c.bench_function(name, |b| {
        b.iter(|| {
            for x in &inputs {
                let mut x = x.shallow_clone();
                x.zero_grad();
            }
            loss(&inputs).backward();
        })
    });
}

fn losses(c: &mut Criterion) {
    tch::manual_seed(0);
    forward_backward(c, "nt_xent b256x2 d128", vec![leaf(&[512, 128])], |x| {
        losses::nt_xent(&x[0], 2, 0.2, None).unwrap()
    });
    forward_backward(c, "nt_xent b2048x2 d128", vec![leaf(&[4096, 128])], |x| {
        losses::nt_xent(&x[0], 2, 0.2, None).unwrap()
    });
    let queue = Tensor::randn([65536, 128], (Kind::Float, Device::Cpu));
    let queue = &queue / queue.norm_scalaropt_dim(2, [1], true);
    forward_backward(
        c,
        "moco_infonce b256 d128 q65536",
        vec![leaf(&[256, 128]), leaf(&[256, 128])],
        |x| losses::moco_infonce(&x[0], &x[1], &queue, 0.2).unwrap(),
    );
    forward_backward(
        c,
        "moco_v3 b4096 d256",
        vec![leaf(&[4096, 256]), leaf(&[4096, 256])],
        |x| losses::moco_v3(&x[0], &x[1], 0, 0.2).unwrap(),
    );
    forward_backward(
        c,
        "negative_cosine b4096 d256",
        vec![leaf(&[4096, 256]), leaf(&[4096, 256])],
        |x| losses::negative_cosine(&x[0], &x[1]).unwrap(),
    );
    forward_backward(
        c,
        "barlow_twins b256 d2048",
        vec![leaf(&[256, 2048]), leaf(&[256, 2048])],
        |x| losses::barlow_twins(&x[0], &x[1], 0.0051).unwrap(),
    );
    forward_backward(
        c,
        "vicreg b256 d2048",
        vec![leaf(&[256, 2048]), leaf(&[256, 2048])],
        |x| losses::vicreg(&x[0], &x[1], Default::default()).unwrap(),
    );
    let center = Tensor::zeros([1, 4096], (Kind::Float, Device::Cpu));
    forward_backward(
        c,
        "dino b64x6 k4096",
        vec![leaf(&[384, 4096]), leaf(&[128, 4096])],
        |x| losses::dino_loss(&x[0], &x[1], &center, 6, 0.1, 0.04).unwrap(),
    );
    let mask = Tensor::rand([256, 64], (Kind::Float, Device::Cpu))
        .lt(0.75)
        .to_kind(Kind::Float);
    forward_backward(
        c,
        "mae b256 l64 p48",
        vec![leaf(&[256, 64, 48]), leaf(&[256, 64, 48])],
        |x| losses::mae_loss(&x[0], &x[1].detach(), &mask, true).unwrap(),
    );
    let logits = leaf(&[32, 256, 512]);
    let labels = Tensor::randint(512, [32, 256], (Kind::Int64, Device::Cpu));
    forward_backward(c, "next_token b32 t256 v512", vec![logits], |x| {
        losses::next_token(&x[0], &labels).unwrap()
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = losses
}
criterion_main!(benches);

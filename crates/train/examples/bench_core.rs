//! `cargo run --release -p selfsup-train --example bench_core -- --threads 2`:
//! times each loss (forward + backward) at realistic
//! sizes and each optimizer's step on a ResNet-18 parameter set, printing
//! `name<TAB>median milliseconds` lines. `benches/reference/bench_core.py`
//! times the same computations in PyTorch eager; `cargo xtask bench core` runs
//! both and prints the ratios.

use selfsup_core::losses;
use selfsup_core::optim::{AdamW, Lars, Optimizer, ParamGroup, Sgd, SgdConfig};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// ResNet-18's 62 parameter shapes (torchvision order), 11.7 M parameters.
const RESNET18: &[&[i64]] = &[
    &[64, 3, 7, 7],
    &[64],
    &[64],
    &[64, 64, 3, 3],
    &[64],
    &[64],
    &[64, 64, 3, 3],
    &[64],
    &[64],
    &[64, 64, 3, 3],
    &[64],
    &[64],
    &[64, 64, 3, 3],
    &[64],
    &[64],
    &[128, 64, 3, 3],
    &[128],
    &[128],
    &[128, 128, 3, 3],
    &[128],
    &[128],
    &[128, 64, 1, 1],
    &[128],
    &[128],
    &[128, 128, 3, 3],
    &[128],
    &[128],
    &[128, 128, 3, 3],
    &[128],
    &[128],
    &[256, 128, 3, 3],
    &[256],
    &[256],
    &[256, 256, 3, 3],
    &[256],
    &[256],
    &[256, 128, 1, 1],
    &[256],
    &[256],
    &[256, 256, 3, 3],
    &[256],
    &[256],
    &[256, 256, 3, 3],
    &[256],
    &[256],
    &[512, 256, 3, 3],
    &[512],
    &[512],
    &[512, 512, 3, 3],
    &[512],
    &[512],
    &[512, 256, 1, 1],
    &[512],
    &[512],
    &[512, 512, 3, 3],
    &[512],
    &[512],
    &[512, 512, 3, 3],
    &[512],
    &[512],
    &[1000, 512],
    &[1000],
];

/// Median wall time of `f` in milliseconds, after warm-up runs.
fn median_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn leaf(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu)).set_requires_grad(true)
}

/// Times `loss` forward + backward.
fn loss_case(name: &str, repeats: usize, inputs: &[Tensor], loss: impl Fn(&[Tensor]) -> Tensor) {
    let ms = median_ms(repeats, || {
        for x in inputs {
            let mut x = x.shallow_clone();
            x.zero_grad();
        }
        loss(inputs).backward();
    });
    println!("{name}\t{ms:.4}");
}

fn resnet18_groups() -> Vec<ParamGroup> {
    let group = |weight_decay| ParamGroup {
        names: Vec::new(),
        params: Vec::new(),
        weight_decay,
        lr_scale: 1.0,
    };
    // Weights are decayed, biases and norm parameters not, as in training.
    let (mut decay, mut no_decay) = (group(5e-4), group(0.0));
    for (i, shape) in RESNET18.iter().enumerate() {
        let param = Tensor::randn(*shape, (Kind::Float, Device::Cpu)).set_requires_grad(true);
        // A gradient to apply: set once, reused every step.
        (&param * 1.0).sum(Kind::Float).backward();
        let target = if shape.len() > 1 {
            &mut decay
        } else {
            &mut no_decay
        };
        target.names.push(format!("p{i}"));
        target.params.push(param);
    }
    vec![decay, no_decay]
}

fn optimizer_case(name: &str, mut optimizer: Box<dyn Optimizer>) {
    let ms = median_ms(20, || optimizer.step(1e-3));
    println!("{name}\t{ms:.4}");
}

/// `--threads N` (default 2) from the command line.
fn threads() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}

/// Runs every case with `--threads` intra-op threads.
fn main() {
    // As the `selfsup` binary does: keep freed tensor memory mapped.
    selfsup_train::allocator::keep_tensor_memory();
    tch::set_num_threads(threads());
    tch::manual_seed(0);
    losses();
    optimizers();
}

/// Each loss's forward and backward at realistic sizes.
fn losses() {
    let r = 20;
    loss_case("nt_xent b256x2 d128", r, &[leaf(&[512, 128])], |x| {
        losses::nt_xent(&x[0], 2, 0.2, None).unwrap()
    });
    loss_case("nt_xent b1024x2 d128", r, &[leaf(&[2048, 128])], |x| {
        losses::nt_xent(&x[0], 2, 0.2, None).unwrap()
    });
    let queue = Tensor::randn([16384, 128], (Kind::Float, Device::Cpu));
    let queue = &queue / queue.norm_scalaropt_dim(2, [1], true);
    loss_case(
        "moco_infonce b256 d128 q16384",
        r,
        &[leaf(&[256, 128]), leaf(&[256, 128])],
        |x| losses::moco_infonce(&x[0], &x[1], &queue, 0.2).unwrap(),
    );
    loss_case(
        "moco_v3 b1024 d256",
        r,
        &[leaf(&[1024, 256]), leaf(&[1024, 256])],
        |x| {
            losses::moco_v3(&x[0], &x[1], 0, 0.2).unwrap()
                + losses::moco_v3(&x[1], &x[0], 0, 0.2).unwrap()
        },
    );
    loss_case(
        "negative_cosine b4096 d256",
        r,
        &[leaf(&[4096, 256]), leaf(&[4096, 256])],
        |x| losses::negative_cosine(&x[0], &x[1]).unwrap(),
    );
    loss_case(
        "barlow_twins b256 d2048",
        r,
        &[leaf(&[256, 2048]), leaf(&[256, 2048])],
        |x| losses::barlow_twins(&x[0], &x[1], 0.0051).unwrap(),
    );
    loss_case(
        "vicreg b256 d2048",
        r,
        &[leaf(&[256, 2048]), leaf(&[256, 2048])],
        |x| losses::vicreg(&x[0], &x[1], Default::default()).unwrap(),
    );
    let center = Tensor::zeros([1, 4096], (Kind::Float, Device::Cpu));
    loss_case(
        "dino b64x6 k4096",
        r,
        &[leaf(&[384, 4096]), leaf(&[128, 4096])],
        |x| losses::dino_loss(&x[0], &x[1], &center, 6, 0.1, 0.04).unwrap(),
    );
    let mask = Tensor::rand([256, 64], (Kind::Float, Device::Cpu))
        .lt(0.75)
        .to_kind(Kind::Float);
    loss_case(
        "mae b256 l64 p48",
        r,
        &[leaf(&[256, 64, 48]), leaf(&[256, 64, 48])],
        |x| losses::mae_loss(&x[0], &x[1].detach(), &mask, true).unwrap(),
    );
}

/// Each optimizer's step on ResNet-18's parameters.
fn optimizers() {
    optimizer_case(
        "sgd step resnet18",
        Box::new(Sgd::new(
            resnet18_groups(),
            SgdConfig {
                momentum: 0.9,
                nesterov: false,
            },
        )),
    );
    optimizer_case(
        "adamw step resnet18",
        Box::new(AdamW::new(resnet18_groups(), Default::default())),
    );
    optimizer_case(
        "lars step resnet18",
        Box::new(Lars::new(resnet18_groups(), Default::default())),
    );
}

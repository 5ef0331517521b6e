//! Every loss against PyTorch: the value (fp32 relative tolerance 1e-5) and the
//! gradient of each input the loss trains. Fixtures come from
//! `benches/reference/core_fixtures.py` (PyTorch, float64 reference).

use selfsup_core::losses::{self, VicRegWeights};
use std::collections::HashMap;
use tch::{Kind, Tensor};

struct Fixture {
    tensors: HashMap<String, Tensor>,
    name: &'static str,
}

impl Fixture {
    fn load(name: &'static str) -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/losses.safetensors"
        );
        let tensors = Tensor::read_safetensors(path)
            .expect("fixture file")
            .into_iter()
            .collect();
        Self { tensors, name }
    }

    /// A float input as a leaf that records gradients.
    fn input(&self, key: &str) -> Tensor {
        let t = &self.tensors[&format!("{}.input.{key}", self.name)];
        if t.is_floating_point() {
            t.to_kind(Kind::Float).set_requires_grad(true)
        } else {
            t.shallow_clone()
        }
    }

    fn check(&self, loss: &Tensor, inputs: &[(&str, &Tensor)]) {
        let expected = self.tensors[&format!("{}.loss", self.name)].double_value(&[0]);
        let got = loss.double_value(&[]);
        assert!(
            (got - expected).abs() <= 1e-5 * expected.abs().max(1e-3),
            "{}: loss {got} vs PyTorch {expected}",
            self.name
        );
        loss.backward();
        for (key, input) in inputs {
            let expected = &self.tensors[&format!("{}.grad.{key}", self.name)];
            let got = input.grad();
            let scale = expected.abs().max().double_value(&[]);
            let error = (&got - expected).abs().max().double_value(&[]);
            assert!(
                error <= 1e-5 * scale.max(1e-3),
                "{}: grad of {key} differs by {error} (scale {scale})",
                self.name
            );
        }
    }
}

#[test]
fn nt_xent_two_views() {
    let f = Fixture::load("nt_xent_2");
    let z = f.input("z");
    f.check(&losses::nt_xent(&z, 2, 0.2, None).unwrap(), &[("z", &z)]);
}

#[test]
fn nt_xent_three_views() {
    let f = Fixture::load("nt_xent_3");
    let z = f.input("z");
    f.check(&losses::nt_xent(&z, 3, 0.5, None).unwrap(), &[("z", &z)]);
}

/// Every rank's block of a global batch, stacked rank-major as an
/// all_gather returns them: rank r holds samples r·b..(r+1)·b of each view.
fn as_gathered(z: &tch::Tensor, n_views: i64, world: i64) -> tch::Tensor {
    let (rows, dim) = (z.size()[0], z.size()[1]);
    let b = rows / n_views / world;
    z.view([n_views, world, b, dim])
        .transpose(0, 1)
        .reshape([rows, dim])
}

/// Data-parallel SimCLR: the mean of the ranks' losses over gathered
/// embeddings is the global batch's NT-Xent, value and gradient.
#[test]
fn nt_xent_gathered_over_ranks_is_the_global_batch_s() {
    for (name, n_views, temperature) in [("nt_xent_2", 2, 0.2), ("nt_xent_3", 3, 0.5)] {
        let f = Fixture::load(name);
        let mut z = f.input("z");
        let world = 2;
        let gathered = as_gathered(&z, n_views, world);
        let per_rank: Vec<tch::Tensor> = (0..world)
            .map(|rank| {
                losses::nt_xent_gathered(&gathered, n_views, world, rank, temperature).unwrap()
            })
            .collect();
        let mean = tch::Tensor::stack(&per_rank, 0).mean(tch::Kind::Float);
        f.check(&mean, &[("z", &z)]);
        let alone = losses::nt_xent_gathered(&z, n_views, 1, 0, temperature).unwrap();
        z.zero_grad();
        f.check(&alone, &[("z", &z)]);
    }
}

#[test]
fn nt_xent_with_extra_negatives() {
    let f = Fixture::load("nt_xent_neg");
    let (z, negatives) = (f.input("z"), f.input("negatives"));
    f.check(
        &losses::nt_xent(&z, 2, 0.1, Some(&negatives)).unwrap(),
        &[("z", &z), ("negatives", &negatives)],
    );
}

#[test]
fn moco_v2_infonce() {
    let f = Fixture::load("moco_infonce");
    let (q, k, queue) = (f.input("q"), f.input("k"), f.input("queue"));
    f.check(
        &losses::moco_infonce(&q, &k, &queue.detach(), 0.2).unwrap(),
        &[("q", &q), ("k", &k)],
    );
}

#[test]
fn moco_v3_contrastive() {
    let f = Fixture::load("moco_v3");
    let (q, k) = (f.input("q"), f.input("k"));
    f.check(
        &losses::moco_v3(&q, &k, 0, 0.2).unwrap(),
        &[("q", &q), ("k", &k)],
    );
}

/// Data-parallel MoCo v3: each rank's queries against every rank's keys,
/// its positives at its offset; the mean over ranks is the global loss.
#[test]
fn moco_v3_over_ranks_is_the_global_batch_s() {
    let f = Fixture::load("moco_v3");
    let (q, k) = (f.input("q"), f.input("k"));
    let (world, batch) = (2, q.size()[0] / 2);
    let per_rank: Vec<tch::Tensor> = (0..world)
        .map(|rank| {
            let mine = q.narrow(0, rank * batch, batch);
            losses::moco_v3(&mine, &k, rank * batch, 0.2).unwrap()
        })
        .collect();
    f.check(
        &tch::Tensor::stack(&per_rank, 0).mean(tch::Kind::Float),
        &[("q", &q), ("k", &k)],
    );
}

#[test]
fn negative_cosine() {
    let f = Fixture::load("negative_cosine");
    let (p, z) = (f.input("p"), f.input("z"));
    let loss = losses::negative_cosine(&p, &z).unwrap();
    f.check(&loss, &[("p", &p)]);
    assert!(!z.grad().defined(), "targets are detached");
}

#[test]
fn barlow_twins() {
    let f = Fixture::load("barlow_twins");
    let (z1, z2) = (f.input("z1"), f.input("z2"));
    f.check(
        &losses::barlow_twins(&z1, &z2, 0.0051).unwrap(),
        &[("z1", &z1), ("z2", &z2)],
    );
}

#[test]
fn vicreg() {
    let f = Fixture::load("vicreg");
    let (z1, z2) = (f.input("z1"), f.input("z2"));
    f.check(
        &losses::vicreg(&z1, &z2, VicRegWeights::default()).unwrap(),
        &[("z1", &z1), ("z2", &z2)],
    );
}

#[test]
fn dino() {
    let f = Fixture::load("dino");
    let (student, teacher, center) = (f.input("student"), f.input("teacher"), f.input("center"));
    f.check(
        &losses::dino_loss(&student, &teacher, &center.detach(), 4, 0.1, 0.04).unwrap(),
        &[("student", &student)],
    );
}

#[test]
fn mae_with_normalised_pixels() {
    let f = Fixture::load("mae");
    let (pred, target, mask) = (f.input("pred"), f.input("target"), f.input("mask"));
    f.check(
        &losses::mae_loss(&pred, &target.detach(), &mask.detach(), true).unwrap(),
        &[("pred", &pred)],
    );
}

#[test]
fn rotation_prediction() {
    let f = Fixture::load("rotation");
    let (logits, labels) = (f.input("logits"), f.input("labels"));
    f.check(
        &losses::rotation_prediction(&logits, &labels).unwrap(),
        &[("logits", &logits)],
    );
}

#[test]
fn masked_lm_ignores_unselected_tokens() {
    let f = Fixture::load("masked_lm");
    let (logits, labels) = (f.input("logits"), f.input("labels"));
    f.check(
        &losses::masked_lm(&logits, &labels).unwrap(),
        &[("logits", &logits)],
    );
}

#[test]
fn next_token() {
    let f = Fixture::load("next_token");
    let (logits, labels) = (f.input("logits"), f.input("labels"));
    f.check(
        &losses::next_token(&logits, &labels).unwrap(),
        &[("logits", &logits)],
    );
}

#[test]
fn swav_matches_the_official_loop() {
    let f = Fixture::load("swav");
    let scores = f.input("scores");
    let batch = scores.size()[0] / 3;
    // Codes per global crop, as SwAV computes them.
    let codes: Vec<Tensor> = (0..2)
        .map(|i| losses::sinkhorn(&scores.narrow(0, i * batch, batch), 0.05, 3))
        .collect();
    let expected_codes = &f.tensors["swav.codes"];
    let error = (&codes[0] - expected_codes).abs().max().double_value(&[]);
    assert!(error < 1e-5, "sinkhorn codes differ by {error}");
    let loss = losses::swav_loss(&scores, &Tensor::cat(&codes, 0), 3, 0.1).unwrap();
    f.check(&loss, &[("scores", &scores)]);
}

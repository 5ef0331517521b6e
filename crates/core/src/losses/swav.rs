//! SwAV's swapped prediction (Caron et al., 2020, "Unsupervised Learning of
//! Visual Features by Contrasting Cluster Assignments"): each global crop's
//! scores against the prototypes are turned into balanced soft codes by
//! Sinkhorn-Knopp, and every other crop predicts those codes.

use crate::across_ranks::{AcrossRanks, OneProcess};
use crate::error::{check_shape, Result};
use tch::{Kind, Tensor};

/// Sinkhorn-Knopp equipartition of `scores` on one process; see
/// [`sinkhorn_across`].
///
/// # Shapes
/// - `scores`: `[batch, prototypes]`; returns `[batch, prototypes]`.
pub fn sinkhorn(scores: &Tensor, epsilon: f64, iterations: usize) -> Tensor {
    sinkhorn_across(scores, epsilon, iterations, &OneProcess)
        .expect("one process reduces nothing, so nothing fails")
}

/// Sinkhorn-Knopp equipartition of the global batch's `scores` (the
/// official code's `distributed_sinkhorn`): `Q = exp(scores / ε)ᵀ`, then
/// `iterations` rounds of normalising the prototypes' rows to `1/K` (their
/// sums taken over every rank's samples) and each sample's column to
/// `1/B` (`B` the global batch); the codes are `B·Q`ᵀ, each row summing
/// to one. Each rank passes its own rows and gets its own codes, equal to
/// the rows one process holding the whole batch would get. No gradient
/// flows through it.
///
/// # Shapes
/// - `scores`: `[batch, prototypes]` (this rank's); returns the same.
pub fn sinkhorn_across(
    scores: &Tensor,
    epsilon: f64,
    iterations: usize,
    ranks: &dyn AcrossRanks,
) -> Result<Tensor> {
    tch::no_grad(|| {
        let scores = scores.detach().to_kind(Kind::Double);
        // Subtracting the global maximum changes nothing after
        // normalisation and keeps exp() finite for small ε.
        let mut max = scores.max();
        ranks.max_(&mut max)?;
        let stable = &scores - max;
        let mut q = (stable / epsilon).exp().tr(); // [K, B]
        let k = q.size()[0] as f64;
        let b = (q.size()[1] * ranks.world()) as f64;
        let mut total = q.sum(Kind::Double);
        ranks.sum_(&mut total)?;
        q = &q / total;
        for _ in 0..iterations {
            let mut rows = q.sum_dim_intlist(1, true, Kind::Double);
            ranks.sum_(&mut rows)?;
            q = &q / rows / k;
            q = &q / q.sum_dim_intlist(0, true, Kind::Double) / b;
        }
        Ok((q * b).tr().to_kind(Kind::Float))
    })
}

/// The swapped prediction loss: for each global crop `i`, the cross-entropy
/// between its codes and the softmax (temperature `τ`) of every other
/// crop's scores, averaged over those crops, then over the global crops.
///
/// # Shapes
/// - `scores`: `[n_crops * batch, prototypes]`, crop-major, global crops first;
/// - `codes`: `[n_global * batch, prototypes]` (from [`sinkhorn`], no gradient);
/// - returns a scalar.
pub fn swav_loss(
    scores: &Tensor,
    codes: &Tensor,
    n_crops: i64,
    temperature: f64,
) -> Result<Tensor> {
    check_shape(
        scores.dim() == 2 && n_crops >= 2 && scores.size()[0] % n_crops == 0,
        "swav_loss: scores",
        &format!("[{n_crops} * batch, prototypes]"),
        scores,
    )?;
    let (batch, prototypes) = (scores.size()[0] / n_crops, scores.size()[1]);
    check_shape(
        codes.dim() == 2 && codes.size()[1] == prototypes && codes.size()[0] % batch == 0,
        "swav_loss: codes",
        &format!("[n_global * {batch}, {prototypes}]"),
        codes,
    )?;
    let n_global = codes.size()[0] / batch;
    let log_p = (scores / temperature)
        .log_softmax(-1, Kind::Float)
        .chunk(n_crops, 0);
    let codes = codes.detach().chunk(n_global, 0);
    let mut total = Tensor::zeros([], (Kind::Float, scores.device()));
    for (i, q) in codes.iter().enumerate() {
        let mut crop_sum = Tensor::zeros([], (Kind::Float, scores.device()));
        for (v, p) in log_p.iter().enumerate() {
            if v != i {
                crop_sum += -(q * p)
                    .sum_dim_intlist(1, false, Kind::Float)
                    .mean(Kind::Float);
            }
        }
        total += crop_sum / (n_crops - 1) as f64;
    }
    Ok(total / n_global as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn sinkhorn_codes_are_distributions_with_balanced_prototypes() {
        // Cosine scores, as SwAV's (unit embeddings against unit prototypes).
        // Scrambled but fixed values, not libtorch's global generator, which
        // the other tests of this binary draw from in parallel.
        let scrambled = |rows: i64, offset: f64| {
            let t = (Tensor::arange(rows * 16, (Kind::Float, Device::Cpu)) + offset) * 12.9898;
            (t.sin() * 43_758.545).sin().view([rows, 16])
        };
        let unit = |t: Tensor| &t / t.norm_scalaropt_dim(2, [1], true);
        let z = unit(scrambled(64, 0.0));
        let prototypes = unit(scrambled(8, 5000.0));
        let scores = z.matmul(&prototypes.tr());
        for iterations in [3, 30] {
            let codes = sinkhorn(&scores, 0.05, iterations);
            assert_eq!(codes.size(), vec![64, 8]);
            let rows = codes.sum_dim_intlist(1, false, Kind::Float);
            let ones = Tensor::ones([64], (Kind::Float, Device::Cpu));
            assert!(
                rows.allclose(&ones, 1e-4, 1e-4, false),
                "each sample's code sums to 1"
            );
            // Each prototype gets about batch / K = 8 of the mass; exactly so
            // as the iterations converge.
            let columns = codes.sum_dim_intlist(0, false, Kind::Float);
            let spread = (columns - 8.0).abs().max().double_value(&[]);
            let tolerance = if iterations == 3 { 3.0 } else { 0.05 };
            assert!(spread < tolerance, "{iterations} iterations: {spread}");
        }
        // A tiny ε does not overflow.
        assert!(sinkhorn(&scores, 0.01, 3).isfinite().all().int64_value(&[]) == 1);
    }

    #[test]
    fn swav_loss_is_smaller_when_crops_predict_the_codes() {
        tch::manual_seed(0);
        let base = Tensor::randn([4, 6], (Kind::Float, Device::Cpu));
        let agreeing = Tensor::cat(&[&base, &base, &base], 0); // 3 crops that agree
        let codes = sinkhorn(&Tensor::cat(&[&base, &base], 0), 0.05, 3);
        let good = swav_loss(&agreeing, &codes, 3, 0.1)
            .unwrap()
            .double_value(&[]);
        let shuffled = Tensor::cat(&[&base, &base.flip([0]), &base.roll([1], [0])], 0);
        let bad = swav_loss(&shuffled, &codes, 3, 0.1)
            .unwrap()
            .double_value(&[]);
        assert!(good < bad, "{good} vs {bad}");
        let error = swav_loss(&agreeing, &codes.narrow(1, 0, 5), 3, 0.1)
            .unwrap_err()
            .to_string();
        assert!(error.contains("swav_loss: codes"), "{error}");
    }
}

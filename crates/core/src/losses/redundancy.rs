//! Non-contrastive losses on two views: negative cosine (BYOL, SimSiam), Barlow
//! Twins and VICReg.

use crate::error::{check_shape, Result};
use tch::{Kind, Tensor};

fn check_pair(a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    check_shape(a.dim() == 2, &format!("{what}: first"), "[batch, dim]", a)?;
    check_shape(
        b.size() == a.size(),
        &format!("{what}: second"),
        &format!("{:?} (as the first)", a.size()),
        b,
    )
}

/// Mean negative cosine similarity between predictions and (detached) targets,
/// SimSiam's `D(p, z)` (Chen & He, 2021). BYOL's loss (Grill et al., 2020) is
/// `2 + 2 · negative_cosine(p, z)`.
///
/// # Shapes
/// - `predictions`, `targets`: `[batch, dim]`; returns a scalar.
///
/// Written as `(p · ẑ) / ‖p‖` with the unit target `ẑ` made without autograd:
/// the target gets no gradient, so normalising it need not be recorded, and
/// the backward pass is a few element-wise kernels instead of the two-sided
/// graph of `cosine_similarity`: 1.73x PyTorch eager at batch 4096, dim 256
/// on 2 cores (`cargo xtask bench core`, docs/benchmarks.md). Norms are
/// clamped at 1e-8, as `cosine_similarity` clamps them.
pub fn negative_cosine(predictions: &Tensor, targets: &Tensor) -> Result<Tensor> {
    check_pair(predictions, targets, "negative_cosine")?;
    let unit_targets = tch::no_grad(|| targets / row_norms(targets).clamp_min(1e-8));
    let dots = (predictions * unit_targets).sum_dim_intlist(1, false, Kind::Float);
    let similarity = dots / row_norms(predictions).squeeze_dim(1).clamp_min(1e-8);
    Ok(-similarity.mean(Kind::Float))
}

/// Euclidean norm of each row, `[batch, 1]`.
fn row_norms(x: &Tensor) -> Tensor {
    x.norm_scalaropt_dim(2.0, [1], true)
}

/// Barlow Twins (Zbontar et al., 2021): each embedding dimension is
/// standardised over the batch (biased variance, as batch norm in training),
/// the cross-correlation `C = z1ᵀ z2 / batch` is pushed to the identity:
/// `Σ (1 − C_ii)² + λ Σ_{i≠j} C_ij²`. The paper uses λ = 0.0051.
///
/// # Shapes
/// - `z1`, `z2`: `[batch, dim]`; returns a scalar.
pub fn barlow_twins(z1: &Tensor, z2: &Tensor, lambda: f64) -> Result<Tensor> {
    let terms = barlow_twins_terms(z1, z2)?;
    Ok(terms.on_diagonal + terms.off_diagonal * lambda)
}

/// The two sums of Barlow Twins, unweighted, for logging.
#[derive(Debug)]
pub struct BarlowTerms {
    /// `Σ (1 − C_ii)²`: how far each dimension is from agreeing across views.
    pub on_diagonal: Tensor,
    /// `Σ_{i≠j} C_ij²`: how much different dimensions are correlated.
    pub off_diagonal: Tensor,
}

/// The terms [`barlow_twins`] weighs (same shapes).
pub fn barlow_twins_terms(z1: &Tensor, z2: &Tensor) -> Result<BarlowTerms> {
    check_pair(z1, z2, "barlow_twins")?;
    let batch = z1.size()[0] as f64;
    let standardise = |z: &Tensor| {
        let mean = z.mean_dim(0, true, Kind::Float);
        let var = z.var_dim(0, false, true);
        (z - mean) / (var + 1e-5).sqrt()
    };
    let c = standardise(z1).tr().matmul(&standardise(z2)) / batch; // [dim, dim]
    let diagonal = c.diagonal(0, 0, 1);
    let on_diagonal = (diagonal.g_sub_scalar(1.0)).square().sum(Kind::Float);
    let off_diagonal = c.square().sum(Kind::Float) - diagonal.square().sum(Kind::Float);
    Ok(BarlowTerms {
        on_diagonal,
        off_diagonal,
    })
}

/// Weights of the three VICReg terms; the paper's defaults are 25, 25, 1.
#[derive(Debug, Clone, Copy)]
pub struct VicRegWeights {
    /// Invariance (mean squared error between the views).
    pub invariance: f64,
    /// Variance (hinge on each dimension's standard deviation).
    pub variance: f64,
    /// Covariance (off-diagonal covariance squared).
    pub covariance: f64,
}

impl Default for VicRegWeights {
    fn default() -> Self {
        Self {
            invariance: 25.0,
            variance: 25.0,
            covariance: 1.0,
        }
    }
}

/// VICReg (Bardes, Ponce & LeCun, 2022): invariance `MSE(z1, z2)`, variance
/// `mean(relu(1 − sqrt(var + 1e-4)))` per view averaged over the two views,
/// covariance `Σ_{i≠j} Cov_ij² / dim` summed over the views (unbiased estimates,
/// as the official code). Returns the weighted sum.
///
/// # Shapes
/// - `z1`, `z2`: `[batch, dim]`; returns a scalar.
pub fn vicreg(z1: &Tensor, z2: &Tensor, weights: VicRegWeights) -> Result<Tensor> {
    let terms = vicreg_terms(z1, z2)?;
    Ok(terms.invariance * weights.invariance
        + terms.variance * weights.variance
        + terms.covariance * weights.covariance)
}

/// The three VICReg terms, unweighted, for logging.
#[derive(Debug)]
pub struct VicRegTerms {
    /// Mean squared error between the views.
    pub invariance: Tensor,
    /// The standard-deviation hinge, averaged over the two views.
    pub variance: Tensor,
    /// Off-diagonal covariance squared over `dim`, summed over the two views.
    pub covariance: Tensor,
}

/// The terms [`vicreg`] weighs (same shapes).
pub fn vicreg_terms(z1: &Tensor, z2: &Tensor) -> Result<VicRegTerms> {
    check_pair(z1, z2, "vicreg")?;
    let (batch, dim) = (z1.size()[0] as f64, z1.size()[1] as f64);
    let invariance = z1.mse_loss(z2, tch::Reduction::Mean);
    let variance = |z: &Tensor| {
        (z.var_dim(0, true, false) + 1e-4)
            .sqrt()
            .neg()
            .g_add_scalar(1.0)
            .relu()
            .mean(Kind::Float)
    };
    let covariance = |z: &Tensor| {
        let centred = z - z.mean_dim(0, true, Kind::Float);
        let cov = centred.tr().matmul(&centred) / (batch - 1.0);
        (cov.square().sum(Kind::Float) - cov.diagonal(0, 0, 1).square().sum(Kind::Float)) / dim
    };
    Ok(VicRegTerms {
        invariance,
        variance: (variance(z1) + variance(z2)) / 2.0,
        covariance: covariance(z1) + covariance(z2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn barlow_twins_is_zero_for_an_identity_cross_correlation() {
        // Orthogonal, standardised columns: ±1 patterns of a Hadamard matrix.
        let h = Tensor::from_slice(&[
            1f32, 1., 1., 1., 1., -1., 1., -1., 1., 1., -1., -1., 1., -1., -1., 1.,
        ])
        .view([4, 4]);
        let z = h.narrow(1, 1, 3); // zero-mean, unit-variance, uncorrelated columns
        let loss = barlow_twins(&z, &z, 0.005).unwrap().double_value(&[]);
        assert!(loss.abs() < 1e-4, "{loss}");
    }

    #[test]
    fn negative_cosine_is_minus_one_for_parallel_vectors() {
        let p = Tensor::randn([5, 8], (Kind::Float, Device::Cpu));
        let loss = negative_cosine(&p, &(&p * 3.0)).unwrap().double_value(&[]);
        assert!((loss + 1.0).abs() < 1e-6);
    }

    #[test]
    fn vicreg_pair_must_match() {
        let a = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
        let err = vicreg(&a, &b, Default::default()).unwrap_err().to_string();
        assert!(
            err.contains("vicreg: second") && err.contains("[4, 2]"),
            "{err}"
        );
    }
}

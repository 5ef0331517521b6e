//! Diagnostics a method logs next to its loss (they never enter the loss).

use tch::{Kind, Tensor};

/// The collapse monitor of SimSiam (Chen & He, 2021, section 4.1): the
/// standard deviation over the batch of the L2-normalised embeddings,
/// averaged over dimensions, as a 0-dim tensor (no gradient, no host sync).
/// A collapsed encoder that maps every image to one point gives 0; healthy
/// embeddings spread over the sphere give about `1 / √dim`.
///
/// # Shapes
/// `embeddings`: `[batch, dim]`.
pub fn embedding_std(embeddings: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let z = embeddings.detach().to_kind(Kind::Float);
        let normalised = &z / z.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
        normalised.std_dim(0, true, false).mean(Kind::Float)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn collapse_reads_zero_and_spread_reads_one_over_root_dim() {
        tch::manual_seed(0);
        let collapsed = Tensor::ones([64, 16], (Kind::Float, Device::Cpu));
        assert!(embedding_std(&collapsed).double_value(&[]) < 1e-6);
        let spread = Tensor::randn([4096, 16], (Kind::Float, Device::Cpu));
        let std = embedding_std(&spread).double_value(&[]);
        assert!((std - 0.25).abs() < 0.01, "{std}");
        assert!(embedding_std(&spread).size().is_empty(), "a 0-dim tensor");
    }
}

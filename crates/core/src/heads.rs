//! Projection and prediction heads: MLPs with batch norm (SimCLR's 2-layer
//! projector, MoCo v3's 3-layer projector ending in an affine-free batch norm,
//! the BYOL / MoCo v3 predictor) and DINO's head with a weight-normalised last layer.

use crate::blocks::{batch_norm_config, normal_linear};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// An MLP `Linear → BN → ReLU → … → Linear [→ BN(affine = false)]`.
///
/// Hidden linears are bias-free (the batch norm that follows has its own
/// shift), as in the MoCo v3 and BYOL code.
#[derive(Debug)]
pub struct Mlp {
    hidden: Vec<(nn::Linear, Option<nn::BatchNorm>)>,
    last: nn::Linear,
    last_norm: Option<nn::BatchNorm>,
}

impl Mlp {
    /// `dims` = `[input, hidden…, output]` (at least two entries); `last_norm`
    /// adds MoCo v3's final affine-free batch norm. Layer names: `layers.<i>.linear`,
    /// `layers.<i>.norm`, `last`, `last_norm`.
    pub fn new(path: nn::Path, dims: &[i64], last_norm: bool) -> Self {
        Self::build(path, dims, true, last_norm)
    }

    /// An MLP without batch norm, `Linear → ReLU → … → Linear`, every linear
    /// with a bias: MoCo v2's projector. Names as [`Mlp::new`].
    pub fn without_norm(path: nn::Path, dims: &[i64]) -> Self {
        Self::build(path, dims, false, false)
    }

    /// Hidden layers with batch norm (and bias-free linears, the norm having
    /// its own shift) or without (linears with biases).
    fn build(path: nn::Path, dims: &[i64], hidden_norm: bool, last_norm: bool) -> Self {
        assert!(
            dims.len() >= 2,
            "an MLP needs at least input and output sizes"
        );
        let hidden_linear = nn::LinearConfig {
            bias: !hidden_norm,
            ..Default::default()
        };
        let hidden = dims
            .windows(2)
            .take(dims.len() - 2)
            .enumerate()
            .map(|(i, w)| {
                let layer = &path / "layers" / i;
                let linear = nn::linear(&layer / "linear", w[0], w[1], hidden_linear);
                let norm = hidden_norm
                    .then(|| nn::batch_norm1d(&layer / "norm", w[1], batch_norm_config()));
                (linear, norm)
            })
            .collect();
        let (input, output) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let last_config = nn::LinearConfig {
            bias: !last_norm,
            ..Default::default()
        };
        let last = nn::linear(&path / "last", input, output, last_config);
        let affine_free = nn::BatchNormConfig {
            affine: false,
            ..Default::default()
        };
        let last_norm =
            last_norm.then(|| nn::batch_norm1d(&path / "last_norm", output, affine_free));
        Self {
            hidden,
            last,
            last_norm,
        }
    }

    /// SimCLR's projector: `input → hidden → output` (2 layers).
    pub fn simclr_projector(path: nn::Path, input: i64, hidden: i64, output: i64) -> Self {
        Self::new(path, &[input, hidden, output], false)
    }

    /// MoCo v3's projector: 3 layers ending in an affine-free batch norm.
    pub fn mocov3_projector(path: nn::Path, input: i64, hidden: i64, output: i64) -> Self {
        Self::new(path, &[input, hidden, hidden, output], true)
    }

    /// The BYOL (`last_norm = false`) or MoCo v3 (`true`) predictor: 2 layers.
    pub fn predictor(path: nn::Path, dim: i64, hidden: i64, last_norm: bool) -> Self {
        Self::new(path, &[dim, hidden, dim], last_norm)
    }
}

impl ModuleT for Mlp {
    /// `[batch, input]` → `[batch, output]`; batch statistics when `train`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (linear, norm) in &self.hidden {
            x = linear.forward(&x);
            if let Some(norm) = norm {
                x = crate::sync_bn::batch_norm(norm, &x, train);
            }
            x = x.relu();
        }
        let x = self.last.forward(&x);
        match &self.last_norm {
            Some(norm) => crate::sync_bn::batch_norm(norm, &x, train),
            None => x,
        }
    }
}

/// DINO's head: a 3-layer GELU MLP to a bottleneck, L2 normalisation, then a
/// weight-normalised linear layer to `out_dim` prototypes whose norms are fixed
/// at 1 when `norm_last_layer` (the paper's default for stability).
#[derive(Debug)]
pub struct DinoHead {
    layers: Vec<nn::Linear>,
    /// Direction of each prototype, `[out_dim, bottleneck]`.
    last_direction: Tensor,
    /// Norm of each prototype, `[out_dim, 1]`; frozen at 1 when `norm_last_layer`.
    last_norm: Tensor,
}

impl DinoHead {
    /// `input → hidden → hidden → bottleneck → out_dim`.
    pub fn new(
        path: nn::Path,
        input: i64,
        hidden: i64,
        bottleneck: i64,
        out_dim: i64,
        norm_last_layer: bool,
    ) -> Self {
        let dims = [input, hidden, hidden, bottleneck];
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| normal_linear(&path / "mlp" / i, w[0], w[1]))
            .collect();
        let last_direction = path.var(
            "last_layer_v",
            &[out_dim, bottleneck],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        let mut last_norm = path.var("last_layer_g", &[out_dim, 1], nn::Init::Const(1.0));
        if norm_last_layer {
            last_norm = last_norm.set_requires_grad(false);
        }
        Self {
            layers,
            last_direction,
            last_norm,
        }
    }
}

impl DinoHead {
    /// Drops the gradients of the weight-normalised last layer: DINO keeps
    /// it fixed for the first epoch, which stabilises the start of training.
    pub fn freeze_last_layer_step(&self) {
        for tensor in [&self.last_direction, &self.last_norm] {
            let mut grad = tensor.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
    }
}

impl Module for DinoHead {
    /// `[batch, input]` → `[batch, out_dim]` logits.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut x = xs.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x);
            if i + 1 < self.layers.len() {
                x = x.gelu("none");
            }
        }
        let x = &x / x.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12);
        let direction = &self.last_direction / self.last_direction.norm_scalaropt_dim(2, [1], true);
        x.matmul(&(direction * &self.last_norm).tr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn mocov3_projector_ends_in_affine_free_batch_norm() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = Mlp::mocov3_projector(vs.root(), 8, 16, 4);
        let y = head.forward_t(&Tensor::randn([32, 8], (Kind::Float, Device::Cpu)), true);
        assert_eq!(y.size(), vec![32, 4]);
        // Batch-normalised output: each feature has zero mean over the batch.
        assert!(
            y.mean_dim(0, false, Kind::Float)
                .abs()
                .max()
                .double_value(&[])
                < 1e-5
        );
        let names = vs.variables();
        assert!(!names.contains_key("last_norm.weight") && !names.contains_key("last.bias"));
        assert!(
            names.contains_key("layers.1.norm.weight")
                && !names.contains_key("layers.0.linear.bias")
        );
    }

    #[test]
    fn simclr_projector_shapes_and_eval_mode() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = Mlp::simclr_projector(vs.root(), 8, 16, 4);
        let x = Tensor::randn([5, 8], (Kind::Float, Device::Cpu));
        assert_eq!(head.forward_t(&x, false).size(), vec![5, 4]);
        assert!(vs.variables().contains_key("last.bias"));
    }

    #[test]
    fn mlp_without_norm_is_linear_relu_linear() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = Mlp::without_norm(vs.root(), &[3, 5, 2]);
        let names = vs.variables();
        assert_eq!(
            names.len(),
            4,
            "two weights and two biases, no norm: {names:?}"
        );
        let x = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
        let (w0, b0) = (
            &names["layers.0.linear.weight"],
            &names["layers.0.linear.bias"],
        );
        let (w1, b1) = (&names["last.weight"], &names["last.bias"]);
        let expected = (x.matmul(&w0.tr()) + b0).relu().matmul(&w1.tr()) + b1;
        let got = head.forward_t(&x, true);
        assert!(got.allclose(&expected, 1e-6, 1e-6, false));
    }

    #[test]
    fn dino_prototypes_have_unit_norm_and_bounded_logits() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = DinoHead::new(vs.root(), 8, 32, 16, 64, true);
        let logits = head.forward(&Tensor::randn([4, 8], (Kind::Float, Device::Cpu)));
        assert_eq!(logits.size(), vec![4, 64]);
        // Unit-norm features times unit-norm prototypes: cosine similarities.
        assert!(logits.abs().max().double_value(&[]) <= 1.0 + 1e-5);
        assert!(!vs.variables()["last_layer_g"].requires_grad());
    }
}

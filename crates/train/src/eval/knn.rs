//! Weighted k-nearest-neighbour classification on frozen features (Wu et al.,
//! 2018, "Unsupervised Feature Learning via Non-Parametric Instance
//! Discrimination"), the protocol of InstDisc, MoCo and lightly's benchmarks:
//! cosine similarity, the k most similar training samples vote for their class
//! with weight `exp(similarity / temperature)`.

use tch::{Kind, Tensor};

/// Top-1 accuracy (0–1) of the weighted k-NN vote.
///
/// # Shapes
/// - `train_features`: `[N, D]`, `train_labels`: `[N]` int64;
/// - `test_features`: `[M, D]`, `test_labels`: `[M]` int64.
///
/// Test samples are processed in chunks so the `[chunk, N]` similarity matrix
/// stays small.
pub fn knn_top1(
    train_features: &Tensor,
    train_labels: &Tensor,
    test_features: &Tensor,
    test_labels: &Tensor,
    num_classes: i64,
    k: i64,
    temperature: f64,
) -> f64 {
    tch::no_grad(|| {
        let train = normalize(train_features);
        let test = normalize(test_features);
        let k = k.min(train.size()[0]);
        let mut correct = 0i64;
        let chunk = 256;
        let total = test.size()[0];
        for start in (0..total).step_by(chunk) {
            let len = chunk.min((total - start) as usize) as i64;
            let query = test.narrow(0, start, len);
            let similarity = query.matmul(&train.tr()); // [len, N]
            let (top_sim, top_idx) = similarity.topk(k, 1, true, true); // [len, k]
            let neighbour_labels = train_labels
                .index_select(0, &top_idx.flatten(0, -1))
                .view([len, k]);
            let weights = (top_sim / temperature).exp();
            let votes = Tensor::zeros([len, num_classes], (Kind::Float, train.device()))
                .scatter_add(1, &neighbour_labels, &weights);
            let predicted = votes.argmax(1, false);
            let truth = test_labels.narrow(0, start, len).to_device(train.device());
            correct += predicted
                .eq_tensor(&truth)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
        correct as f64 / total as f64
    })
}

fn normalize(x: &Tensor) -> Tensor {
    let x = x.to_kind(Kind::Float);
    &x / x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn separable_clusters_are_classified_perfectly() {
        tch::manual_seed(0);
        // Three classes around orthogonal directions, with small noise.
        let centers = Tensor::eye(3, (Kind::Float, Device::Cpu)) * 5.0;
        let labels = Tensor::arange(3, (Kind::Int64, Device::Cpu)).repeat([20]);
        let make = |labels: &Tensor| {
            centers.index_select(0, labels)
                + Tensor::randn([labels.size()[0], 3], (Kind::Float, Device::Cpu)) * 0.3
        };
        let (train, test) = (make(&labels), make(&labels));
        assert_eq!(knn_top1(&train, &labels, &test, &labels, 3, 10, 0.1), 1.0);
    }

    #[test]
    fn weights_favour_the_closest_neighbours() {
        // One very close sample of class 1 outvotes two far samples of class 0
        // at a low temperature, and loses at a high one.
        let train = Tensor::from_slice(&[1.0f32, 0.05, 0.0, 1.0, 0.0, 1.0]).view([3, 2]);
        let train_labels = Tensor::from_slice(&[1i64, 0, 0]);
        let test = Tensor::from_slice(&[1.0f32, 0.1]).view([1, 2]);
        let test_labels = Tensor::from_slice(&[1i64]);
        assert_eq!(
            knn_top1(&train, &train_labels, &test, &test_labels, 2, 3, 0.05),
            1.0
        );
        assert_eq!(
            knn_top1(&train, &train_labels, &test, &test_labels, 2, 3, 100.0),
            0.0
        );
    }
}

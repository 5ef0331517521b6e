//! Contrastive losses: NT-Xent (SimCLR), MoCo v2's InfoNCE against a queue of
//! negatives, and MoCo v3's symmetric loss.

use crate::error::{check_shape, Result};
use tch::{Kind, Tensor};

fn l2_normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12)
}

fn check_matrix(x: &Tensor, what: &str) -> Result<()> {
    check_shape(x.dim() == 2, what, "[batch, dim]", x)
}

/// NT-Xent, the normalised-temperature cross-entropy of SimCLR (Chen et al.,
/// 2020), for any number of views.
///
/// Embeddings are L2-normalised; every embedding is an anchor whose positives
/// are the other views of the same sample and whose negatives are all other
/// embeddings (plus `extra_negatives`, if given). Each (anchor, positive) pair
/// contributes `-log softmax` over everything but the anchor itself; the loss is
/// the mean over pairs. With two views this is exactly SimCLR's loss.
///
/// # Shapes
/// - `embeddings`: `[n_views * batch, dim]`, view-major (all of view 0, then view 1, …);
/// - `extra_negatives`: `[negatives, dim]`;
/// - returns a scalar.
pub fn nt_xent(
    embeddings: &Tensor,
    n_views: i64,
    temperature: f64,
    extra_negatives: Option<&Tensor>,
) -> Result<Tensor> {
    check_matrix(embeddings, "nt_xent: embeddings")?;
    let (rows, dim) = (embeddings.size()[0], embeddings.size()[1]);
    check_shape(
        n_views >= 2 && rows % n_views == 0,
        "nt_xent: embeddings",
        &format!("[n_views ({n_views}) * batch, dim]"),
        embeddings,
    )?;
    let batch = rows / n_views;
    let z = l2_normalize(embeddings);
    // Dividing the [rows, dim] side by τ is cheaper than the [rows, rows] product.
    let mut logits = (&z / temperature).matmul(&z.tr()); // [rows, rows]
    let _ = logits.fill_diagonal_(f64::NEG_INFINITY, false); // an anchor is not its own candidate
    let device = z.device();
    if let Some(negatives) = extra_negatives {
        check_shape(
            negatives.dim() == 2 && negatives.size()[1] == dim,
            "nt_xent: extra_negatives",
            &format!("[negatives, {dim}]"),
            negatives,
        )?;
        logits = Tensor::cat(
            &[
                logits,
                (&z / temperature).matmul(&l2_normalize(negatives).tr()),
            ],
            1,
        );
    } else if n_views == 2 {
        // One positive per anchor: plain cross-entropy with the other view's index.
        let targets = (Tensor::arange(rows, (Kind::Int64, device)) + batch).remainder(rows);
        return Ok(logits.cross_entropy_for_logits(&targets));
    }
    let log_prob = logits.log_softmax(1, Kind::Float);
    // Anchor i's positives are the same sample in the other views: i + k·batch (mod rows).
    let anchors = Tensor::arange(rows, (Kind::Int64, device)).unsqueeze(1);
    let offsets = Tensor::arange_start(1, n_views, (Kind::Int64, device)).unsqueeze(0) * batch;
    let positives = (anchors + offsets).remainder(rows); // [rows, n_views - 1]
    Ok(-log_prob.gather(1, &positives, false).mean(Kind::Float))
}

/// NT-Xent of one rank's anchors against every rank's embeddings: SimCLR
/// with gathered negatives under data parallelism (Chen et al., 2020, train
/// on 128 TPU cores this way).
///
/// `gathered` is every rank's view-major `[n_views * batch, dim]` block,
/// stacked in rank order (what an all_gather returns). The loss is
/// [`nt_xent`]'s over the global batch (`world * batch` samples, each rank's
/// block in rank order), restricted to this rank's anchors: the mean of
/// the `world` ranks' values is exactly `nt_xent` of the global batch, and
/// with a differentiable gather so is the averaged gradient.
///
/// # Shapes
/// - `gathered`: `[world * n_views * batch, dim]`; returns a scalar.
pub fn nt_xent_gathered(
    gathered: &Tensor,
    n_views: i64,
    world: i64,
    rank: i64,
    temperature: f64,
) -> Result<Tensor> {
    check_matrix(gathered, "nt_xent_gathered: embeddings")?;
    let (rows, dim) = (gathered.size()[0], gathered.size()[1]);
    check_shape(
        n_views >= 2 && world >= 1 && (0..world).contains(&rank) && rows % (world * n_views) == 0,
        "nt_xent_gathered: embeddings",
        &format!("[world ({world}) * n_views ({n_views}) * batch, dim] with rank {rank} < world"),
        gathered,
    )?;
    let batch = rows / (world * n_views);
    let global_batch = world * batch;
    let device = gathered.device();
    // View-major over the global batch, as one process holding it would see it.
    let z = l2_normalize(
        &gathered
            .view([world, n_views, batch, dim])
            .transpose(0, 1)
            .reshape([rows, dim]),
    );
    // This rank's anchors: sample i of view v sits at v·global_batch + rank·batch + i.
    let own = (Tensor::arange(n_views, (Kind::Int64, device)) * global_batch).unsqueeze(1)
        + Tensor::arange(batch, (Kind::Int64, device)).unsqueeze(0)
        + rank * batch; // [n_views, batch]
    let anchors_index = own.reshape([-1]);
    let anchors = z.index_select(0, &anchors_index);
    let logits = (&anchors / temperature).matmul(&z.tr()).scatter_value(
        1,
        &anchors_index.unsqueeze(1),
        f64::NEG_INFINITY,
    ); // not its own candidate
       // Anchor (v, i)'s positives: the same sample in views v + 1, …, v + n_views - 1.
    let positives = Tensor::stack(
        &(1..n_views)
            .map(|k| own.roll([-k], [0]).reshape([-1]))
            .collect::<Vec<_>>(),
        1,
    ); // [n_views * batch, n_views - 1]
    let log_prob = logits.log_softmax(1, Kind::Float);
    Ok(-log_prob.gather(1, &positives, false).mean(Kind::Float))
}

/// MoCo v2's InfoNCE (He et al., 2020; Chen et al., 2020): each query's positive
/// is its key, its negatives the queue. Queries and keys are L2-normalised here;
/// the queue is expected normalised already (as [`NegativeQueue`] stores it).
///
/// # Shapes
/// - `queries`, `keys`: `[batch, dim]`; `queue`: `[size, dim]`; returns a scalar.
///
/// [`NegativeQueue`]: crate::queue::NegativeQueue
pub fn moco_infonce(
    queries: &Tensor,
    keys: &Tensor,
    queue: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    check_matrix(queries, "moco_infonce: queries")?;
    check_shape(
        keys.size() == queries.size(),
        "moco_infonce: keys",
        &format!("{:?} (as queries)", queries.size()),
        keys,
    )?;
    check_shape(
        queue.dim() == 2 && queue.size()[1] == queries.size()[1],
        "moco_infonce: queue",
        &format!("[size, {}]", queries.size()[1]),
        queue,
    )?;
    // Scaling the [batch, dim] queries by 1/τ spares a pass over the [batch, 1 + size] logits.
    let (q, k) = (l2_normalize(queries) / temperature, l2_normalize(keys));
    let positive = (&q * &k).sum_dim_intlist(1, true, Kind::Float); // [batch, 1]
    let negatives = q.matmul(&queue.tr()); // [batch, size]
    let logits = Tensor::cat(&[positive, negatives], 1);
    let targets = Tensor::zeros([q.size()[0]], (Kind::Int64, q.device()));
    Ok(logits.cross_entropy_for_logits(&targets))
}

/// MoCo v3's contrastive loss (Chen, Xie & He, 2021) for one direction: the
/// keys of the batch are the negatives, the loss is scaled by `2 τ` as in the
/// paper's code. The symmetric loss is `moco_v3(q1, k2, 0, τ) + moco_v3(q2, k1, 0, τ)`.
/// Under data parallelism `keys` holds every rank's keys and query i's
/// positive is key `offset + i` (`offset` = rank × batch), as the paper's
/// code gathers them.
///
/// # Shapes
/// - `queries`: `[batch, dim]`; `keys`: `[keys, dim]` with `offset + batch <= keys`; returns a scalar.
pub fn moco_v3(queries: &Tensor, keys: &Tensor, offset: i64, temperature: f64) -> Result<Tensor> {
    check_matrix(queries, "moco_v3: queries")?;
    let (batch, dim) = (queries.size()[0], queries.size()[1]);
    check_shape(
        keys.dim() == 2 && keys.size()[1] == dim && offset >= 0 && offset + batch <= keys.size()[0],
        "moco_v3: keys",
        &format!(
            "[at least {} (offset {offset} + batch {batch}), {dim}]",
            offset + batch
        ),
        keys,
    )?;
    let logits = (l2_normalize(queries) / temperature).matmul(&l2_normalize(keys).tr());
    let targets = Tensor::arange_start(offset, offset + batch, (Kind::Int64, queries.device()));
    Ok(logits.cross_entropy_for_logits(&targets) * (2.0 * temperature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn nt_xent_is_lowest_when_views_agree() {
        tch::manual_seed(0);
        let view = Tensor::randn([16, 32], (Kind::Float, Device::Cpu));
        let agree = Tensor::cat(&[&view, &view], 0);
        let disagree = Tensor::cat(
            &[&view, &Tensor::randn([16, 32], (Kind::Float, Device::Cpu))],
            0,
        );
        let a = nt_xent(&agree, 2, 0.1, None).unwrap().double_value(&[]);
        let d = nt_xent(&disagree, 2, 0.1, None).unwrap().double_value(&[]);
        assert!(a < d, "{a} vs {d}");
    }

    #[test]
    fn bad_shapes_are_reported() {
        let x = Tensor::zeros([6, 4], (Kind::Float, Device::Cpu));
        assert!(nt_xent(&x, 4, 0.1, None)
            .unwrap_err()
            .to_string()
            .contains("n_views (4)"));
        let err = moco_v3(&x, &x.narrow(0, 0, 5), 0, 0.2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("at least 6") && err.contains("[5, 4]"),
            "{err}"
        );
        let queue = Tensor::zeros([8, 3], (Kind::Float, Device::Cpu));
        assert!(moco_infonce(&x, &x, &queue, 0.2)
            .unwrap_err()
            .to_string()
            .contains("[size, 4]"));
    }
}

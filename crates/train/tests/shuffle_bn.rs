//! MoCo's shuffling batch norm over two ranks: each rank's encoder call sees
//! a random half of the global batch, and every row's output comes back to
//! the rank and position of its input.

mod ranks;

use ranks::{as_ranks, join};
use selfsup_train::distributed::shuffle_bn::shuffled_across_ranks;
use tch::{Kind, Tensor};

/// Rank r's 8 rows of 2, every value distinct across ranks.
fn rows(rank: usize) -> Tensor {
    let start = 16 * rank as i64;
    Tensor::arange_start(start, start + 16, (Kind::Float, tch::Device::Cpu)).reshape([8, 2])
}

#[test]
fn shuffled_encoding_mixes_the_ranks_and_restores_the_order() {
    if as_ranks(
        "shuffled_encoding_mixes_the_ranks_and_restores_the_order",
        2,
        &[],
    ) {
        return;
    }
    let group = join();
    let rank = group.rank();
    tch::manual_seed(3);
    let mine = rows(rank);

    // A row-wise encoder: the shuffle is undone exactly.
    let row_wise = shuffled_across_ranks(&group, &mine, |x| x * 2.0 + 1.0).unwrap();
    assert!(
        row_wise.equal(&(&mine * 2.0 + 1.0)),
        "rank {rank}: {row_wise}"
    );

    // A batch-statistics encoder (centring, as batch norm does): each row
    // comes back centred by the mean of the sub-batch it was encoded in.
    let mut seen = None;
    let centred = shuffled_across_ranks(&group, &mine, |x| {
        seen = Some(x.copy());
        x - x.mean_dim(0, true, Kind::Float)
    })
    .unwrap();
    let seen = seen.expect("the encoder ran");
    let own = seen.lt(16.0).select(1, 0).sum(Kind::Int64).int64_value(&[]);
    assert!(
        (1..8).contains(&own),
        "rank {rank} encoded {own} of its sub-batch's 8 rows from rank 0: not mixed"
    );
    let everyone_seen = group.all_gather(&seen).unwrap();
    let firsts = Vec::<f32>::try_from(everyone_seen.select(1, 0)).unwrap();
    for i in 0..8 {
        let row = mine.get(i);
        let first = row.double_value(&[0]) as f32;
        let at = firsts
            .iter()
            .position(|&v| v == first)
            .expect("every row encoded");
        let batch = everyone_seen.narrow(0, (at as i64 / 8) * 8, 8);
        let expected = &row - batch.mean_dim(0, false, Kind::Float);
        assert!(
            centred.get(i).allclose(&expected, 1e-6, 1e-6, false),
            "rank {rank}, row {i}: {} against {expected}",
            centred.get(i)
        );
    }
}

//! Fixed 2-D sine-cosine position embeddings (MAE, MoCo v3): half of the
//! channels encode the column, half the row, each as `[sin(p·ω), cos(p·ω)]`
//! with `ω_i = 1 / 10000^(i / (D/4))`.

use tch::{Device, Kind, Tensor};

/// `[grid * grid, dim]` embeddings for a square grid of patches, row-major;
/// `dim` must be divisible by 4.
pub fn sincos_2d(dim: i64, grid: i64, device: Device) -> Tensor {
    assert!(
        dim % 4 == 0,
        "sin-cos position embedding needs dim divisible by 4, got {dim}"
    );
    let coords = Tensor::arange(grid, (Kind::Double, device));
    let rows = coords.repeat_interleave_self_int(grid, None, None); // row of each patch
    let cols = coords.repeat([grid]); // column of each patch
                                      // The reference code embeds the column first, then the row.
    Tensor::cat(&[sincos_1d(dim / 2, &cols), sincos_1d(dim / 2, &rows)], 1).to_kind(Kind::Float)
}

/// Bicubic interpolation of a square grid of position embeddings,
/// `[1, grid · grid, dim]`, to `rows × columns` patches (DINO's
/// `interpolate_pos_encoding`, align-corners off): `[1, rows · columns, dim]`.
pub fn interpolate_grid(positions: &Tensor, grid: i64, rows: i64, columns: i64) -> Tensor {
    let dim = positions.size()[2];
    positions
        .reshape([1, grid, grid, dim])
        .permute([0, 3, 1, 2])
        .upsample_bicubic2d([rows, columns], false, None, None)
        .permute([0, 2, 3, 1])
        .reshape([1, rows * columns, dim])
}

fn sincos_1d(dim: i64, positions: &Tensor) -> Tensor {
    let omega = Tensor::arange(dim / 2, (Kind::Double, positions.device())) / (dim as f64 / 2.0);
    let omega = Tensor::from(1.0f64).to_device(positions.device())
        / Tensor::from(10_000.0f64)
            .to_device(positions.device())
            .pow(&omega);
    let angles = positions.unsqueeze(1) * omega.unsqueeze(0); // [positions, dim/2]
    Tensor::cat(&[angles.sin(), angles.cos()], 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_formula() {
        let emb = sincos_2d(8, 3, Device::Cpu);
        assert_eq!(emb.size(), vec![9, 8]);
        // Patch 5 sits at row 1, column 2; ω = [1, 0.01] for a quarter-width of 2.
        let expected = [
            2f64.sin(),
            0.02f64.sin(),
            2f64.cos(),
            0.02f64.cos(),
            1f64.sin(),
            0.01f64.sin(),
            1f64.cos(),
            0.01f64.cos(),
        ];
        let got: Vec<f32> = Vec::try_from(emb.get(5)).unwrap();
        for (g, e) in got.iter().zip(expected) {
            assert!((*g as f64 - e).abs() < 1e-6, "{got:?}");
        }
        // Patch 0 is at the origin: all sines 0, all cosines 1.
        let origin: Vec<f32> = Vec::try_from(emb.get(0)).unwrap();
        assert_eq!(origin, vec![0., 0., 1., 1., 0., 0., 1., 1.]);
    }

    #[test]
    fn interpolation_keeps_the_same_grid_and_resizes_others() {
        let grid = sincos_2d(8, 4, Device::Cpu).unsqueeze(0);
        let same = interpolate_grid(&grid, 4, 4, 4);
        assert!(same.allclose(&grid, 1e-5, 1e-6, false));
        let smaller = interpolate_grid(&grid, 4, 2, 2);
        assert_eq!(smaller.size(), vec![1, 4, 8]);
        // A 1x1 grid is the average-like middle value: finite and bounded.
        let one = interpolate_grid(&grid, 4, 1, 1);
        assert!(one.abs().max().double_value(&[]) <= 1.5);
    }
}

//! PNG grids of images, for pictures a person looks at (e.g. MAE reconstructions).

use crate::{Error, Result};
use std::path::Path;
use tch::{Kind, Tensor};

/// One row of a grid: `[n, C, H, W]` float images in `[0, 1]`, C = 1 or 3.
#[derive(Debug)]
pub struct PictureRow {
    /// The images of the row.
    pub images: Tensor,
}

/// White gap between cells, in pixels.
const GAP: i64 = 2;

/// Writes rows of equally-shaped images as one PNG, each image scaled up
/// `scale` times (nearest neighbour) with white gaps between cells.
pub fn write_png_grid(rows: &[PictureRow], scale: i64, path: &Path) -> Result<()> {
    let canvas = canvas(rows, scale);
    let (height, width, channels) = canvas.size3().expect("[H, W, C]");
    let bytes: Vec<u8> =
        Vec::try_from((canvas * 255.0).round().to_kind(Kind::Uint8).flatten(0, -1))
            .expect("u8 tensor");
    let error = |message: String| Error::Picture {
        path: path.to_path_buf(),
        message,
    };
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        other => return Err(error(format!("{other} channels; need 1 or 3"))),
    };
    let file = std::fs::File::create(path).map_err(|e| error(e.to_string()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| error(e.to_string()))?;
    writer
        .write_image_data(&bytes)
        .map_err(|e| error(e.to_string()))
}

/// `[H_total, W_total, C]` in `[0, 1]`. Padding `1 - x` with zeros and flipping
/// back makes the gaps white.
fn canvas(rows: &[PictureRow], scale: i64) -> Tensor {
    let lines: Vec<Tensor> = rows
        .iter()
        .map(|row| {
            let x = row
                .images
                .detach()
                .to_device(tch::Device::Cpu)
                .to_kind(Kind::Float)
                .clamp(0.0, 1.0);
            let x = x
                .repeat_interleave_self_int(scale, 2, None)
                .repeat_interleave_self_int(scale, 3, None);
            let inverted = (-x + 1.0).constant_pad_nd([GAP, 0, GAP, 0]); // gap left of and above each cell
            let (n, c, h, w) = inverted.size4().expect("[n, C, H, W]");
            inverted.permute([1, 2, 0, 3]).reshape([c, h, n * w]) // the images side by side
        })
        .collect();
    let inverted = Tensor::cat(&lines, 1).constant_pad_nd([0, GAP, 0, GAP]); // [C, H, W]
    (-inverted + 1.0).permute([1, 2, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_land_in_place_with_white_gaps() {
        // Two rows of one 1x1 image each: black, then mid-grey; scale 2.
        let rows = [
            PictureRow {
                images: Tensor::zeros([1, 1, 1, 1], tch::kind::FLOAT_CPU),
            },
            PictureRow {
                images: Tensor::full([1, 1, 1, 1], 0.5, tch::kind::FLOAT_CPU),
            },
        ];
        let c = canvas(&rows, 2);
        assert_eq!(c.size(), vec![2 * (2 + GAP) + GAP, 2 + 2 * GAP, 1]);
        let at = |y: i64, x: i64| c.double_value(&[y, x, 0]);
        assert_eq!(at(0, 0), 1.0, "gap is white");
        assert_eq!(at(GAP, GAP), 0.0, "first cell");
        assert_eq!(at(GAP + 1, GAP + 1), 0.0);
        assert_eq!(at(2 * GAP + 2, GAP), 0.5, "second row");
    }

    #[test]
    fn four_channel_images_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [PictureRow {
            images: Tensor::zeros([1, 4, 2, 2], tch::kind::FLOAT_CPU),
        }];
        let err = write_png_grid(&rows, 1, &dir.path().join("x.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.png") && err.contains("4 channels"), "{err}");
    }
}

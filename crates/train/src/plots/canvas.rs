//! A minimal RGB raster for line plots: axes, tick labels, polylines, a title.

use super::font::glyph;
use crate::error::{Error, Result};
use std::path::Path;

/// Image width in pixels.
pub const WIDTH: usize = 720;
/// Image height in pixels.
pub const HEIGHT: usize = 420;
const LEFT: usize = 90;
const RIGHT: usize = 24;
const TOP: usize = 44;
const BOTTOM: usize = 56;
const TEXT_SCALE: usize = 2;
const COLOURS: [[u8; 3]; 4] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [148, 103, 189],
];

/// One curve: `(x, y)` points in order.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self {
            pixels: vec![255; WIDTH * HEIGHT * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, colour: [u8; 3]) {
        if (0..WIDTH as i64).contains(&x) && (0..HEIGHT as i64).contains(&y) {
            let i = (y as usize * WIDTH + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&colour);
        }
    }

    /// A line two pixels wide (Bresenham).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), colour: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, colour);
            self.set(x, y + 1, colour);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, text: &str, x: i64, y: i64, colour: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let left = x + (i * 6 * TEXT_SCALE) as i64;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for (sx, sy) in
                            (0..TEXT_SCALE).flat_map(|a| (0..TEXT_SCALE).map(move |b| (a, b)))
                        {
                            self.set(
                                left + (col * TEXT_SCALE + sx) as i64,
                                y + (row * TEXT_SCALE + sy) as i64,
                                colour,
                            );
                        }
                    }
                }
            }
        }
    }
}

fn text_width(text: &str) -> i64 {
    (text.chars().count() * 6 * TEXT_SCALE) as i64
}

/// Short tick labels: 3 significant digits, scientific for tiny or huge values.
fn format_tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        return format!("{v:.0}");
    }
    if v.abs() < 1e-2 || v.abs() >= 1e5 {
        format!("{v:.2e}")
    } else {
        let digits = (2 - v.abs().max(1e-12).log10().floor() as i32).clamp(0, 4) as usize;
        format!("{v:.digits$}")
    }
}

/// Draws `series` (x = `x_label`) under `title` and writes the PNG.
pub fn line_plot(title: &str, x_label: &str, series: &[Series], path: &Path) -> Result<()> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x_min, x_max, y_min, y_max) = (x_min.min(x), x_max.max(x), y_min.min(y), y_max.max(y));
    }
    if x_min > x_max {
        (x_min, x_max, y_min, y_max) = (0.0, 1.0, 0.0, 1.0);
    }
    if x_max == x_min {
        x_max = x_min + 1.0;
    }
    if y_max == y_min {
        (y_min, y_max) = (y_min - 0.5, y_max + 0.5);
    }
    let (plot_w, plot_h) = (
        (WIDTH - LEFT - RIGHT) as f64,
        (HEIGHT - TOP - BOTTOM) as f64,
    );
    let to_pixel = |(x, y): (f64, f64)| {
        let px = LEFT as f64 + (x - x_min) / (x_max - x_min) * plot_w;
        let py = (HEIGHT - BOTTOM) as f64 - (y - y_min) / (y_max - y_min) * plot_h;
        (px.round() as i64, py.round() as i64)
    };
    let mut canvas = Canvas::new();
    let (black, grey) = ([0, 0, 0], [200, 200, 200]);
    for i in 0..=4 {
        let y = y_min + (y_max - y_min) * i as f64 / 4.0;
        let (_, py) = to_pixel((x_min, y));
        canvas.line((LEFT as i64, py), ((WIDTH - RIGHT) as i64, py), grey);
        let label = format_tick(y);
        canvas.text(&label, LEFT as i64 - 8 - text_width(&label), py - 7, black);
    }
    let (left, right, bottom) = (
        LEFT as i64,
        (WIDTH - RIGHT) as i64,
        (HEIGHT - BOTTOM) as i64,
    );
    canvas.line((left, TOP as i64), (left, bottom), black);
    canvas.line((left, bottom), (right, bottom), black);
    for x in [x_min, (x_min + x_max) / 2.0, x_max] {
        let (px, _) = to_pixel((x, y_min));
        let label = format_tick(x);
        let x = (px - text_width(&label) / 2).clamp(0, WIDTH as i64 - text_width(&label));
        canvas.text(&label, x, bottom + 8, black);
    }
    canvas.text(x_label, right - text_width(x_label), bottom + 28, black);
    canvas.text(title, left, 12, black);
    for (index, s) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let finite: Vec<(i64, i64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(to_pixel)
            .collect();
        for pair in finite.windows(2) {
            canvas.line(pair[0], pair[1], colour);
        }
        if series.len() > 1 {
            let y = TOP as i64 + 4 + 20 * index as i64;
            canvas.line((right - 190, y + 7), (right - 170, y + 7), colour);
            canvas.text(&s.label, right - 164, y, colour);
        }
    }
    write_png(&canvas.pixels, path)
}

fn write_png(pixels: &[u8], path: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path, e);
    let file = std::fs::File::create(path).map_err(io)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), WIDTH as u32, HEIGHT as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| io(std::io::Error::other(e)))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| io(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(format_tick(0.25), "0.250");
        assert_eq!(format_tick(123.4), "123");
        assert_eq!(format_tick(36.0), "36");
        assert_eq!(format_tick(0.0015), "1.50e-3");
        assert_eq!(format_tick(0.0), "0");
    }

    #[test]
    fn a_falling_curve_is_drawn_from_top_left_to_bottom_right() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let series = [Series {
            label: "loss".into(),
            points: vec![(0.0, 1.0), (10.0, 0.0)],
        }];
        line_plot("loss", "step", &series, &path).unwrap();
        let mut reader = png::Decoder::new(std::fs::File::open(&path).unwrap())
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut pixels).unwrap();
        let at = |x: usize, y: usize| &pixels[(y * WIDTH + x) * 3..(y * WIDTH + x) * 3 + 3];
        assert_eq!(at(LEFT, TOP), COLOURS[0], "curve starts at the top left");
        assert_eq!(
            at(WIDTH - RIGHT, HEIGHT - BOTTOM),
            COLOURS[0],
            "and ends at the bottom right"
        );
        assert_eq!(
            at(WIDTH - RIGHT - 1, TOP + 10),
            [255, 255, 255],
            "nothing above the curve's end"
        );
    }
}

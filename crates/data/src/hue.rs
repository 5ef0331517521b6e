//! The hue rotation of colour jitter, as torchvision computes it (RGB → HSV,
//! rotate, back), in its own file because it is the costliest colour op and
//! is written to vectorise.

use ndarray::{Array3, ArrayView3};

/// Rotates every pixel's hue by `factor` turns (in `[-0.5, 0.5]`).
pub fn adjust_hue(image: ArrayView3<u8>, factor: f64) -> Array3<u8> {
    assert!(
        (-0.5..=0.5).contains(&factor),
        "hue factor {factor} is outside [-0.5, 0.5]"
    );
    let shift = factor as f32;
    let image = image.as_standard_layout();
    let source = image.as_slice().expect("standard layout");
    let mut out = vec![0u8; source.len()];
    for (dst, src) in out
        .chunks_mut(3 * HUE_BLOCK)
        .zip(source.chunks(3 * HUE_BLOCK))
    {
        shift_hue_block(dst, src, shift);
    }
    Array3::from_shape_vec(image.dim(), out).expect("same shape")
}

/// Pixels the hue rotation takes at a time, split into one plane per
/// channel: over planes the branch-free [`shift_hue`] vectorises, over
/// interleaved pixels it does not (the per-pixel version was about a sixth
/// of the two-view pipeline's profile).
const HUE_BLOCK: usize = 64;

/// `x as u8` for `x` in `[0, 256)`, in float operations and a bit cast
/// only, so that it vectorises: adding 2^23 rounds to an integer held in the
/// low mantissa bits; one step down where that rounded up gives the floor.
#[inline(always)]
fn truncate_to_byte(x: f32) -> u8 {
    const TWO_TO_23: f32 = 8_388_608.0;
    let rounded = (x + TWO_TO_23) - TWO_TO_23;
    let floor = if rounded > x { rounded - 1.0 } else { rounded };
    ((floor + TWO_TO_23).to_bits() & 0xFF) as u8
}

/// [`shift_hue`] over up to [`HUE_BLOCK`] interleaved RGB pixels.
fn shift_hue_block(dst: &mut [u8], src: &[u8], shift: f32) {
    let mut planes = [[0f32; HUE_BLOCK]; 3];
    for (i, pixel) in src.chunks_exact(3).enumerate() {
        for (plane, &value) in planes.iter_mut().zip(pixel) {
            plane[i] = value as f32 / 255.0;
        }
    }
    let mut shifted = [[0u8; HUE_BLOCK]; 3];
    for i in 0..HUE_BLOCK {
        let rgb = shift_hue(planes[0][i], planes[1][i], planes[2][i], shift);
        for (plane, channel) in shifted.iter_mut().zip(rgb) {
            // torchvision's float → uint8 conversion: × (255 + 1 − 1e-3), truncated.
            plane[i] = truncate_to_byte(channel * 255.999);
        }
    }
    for (i, pixel) in dst.chunks_exact_mut(3).enumerate() {
        for (value, plane) in pixel.iter_mut().zip(&shifted) {
            *value = plane[i];
        }
    }
}

/// Shifts the hue of one pixel (RGB in `[0, 1]`) by `shift` turns, as
/// torchvision's `_rgb2hsv`, a hue rotation and `_hsv2rgb`. Written without
/// branches or library calls (every `if` is a select, a count of
/// comparisons stands in for `floor` and a subtraction for `fmod` where the
/// range allows it); each value is the same IEEE operations in the same
/// order as torchvision's formulas, hence the same result (checked on all
/// 2^24 colours).
#[inline(always)]
fn shift_hue(r: f32, g: f32, b: f32, shift: f32) -> [f32; 3] {
    // RGB → HSV. The inputs are finite and non-negative, so plain
    // comparisons give `max` / `min` and `clamp` exactly.
    let larger = |a: f32, b: f32| if a > b { a } else { b };
    let smaller = |a: f32, b: f32| if a < b { a } else { b };
    let unit = |x: f32| smaller(larger(x, 0.0), 1.0);
    let (max, min) = (larger(larger(r, g), b), smaller(smaller(r, g), b));
    let equal = max == min;
    let chroma = max - min;
    let saturation = chroma / if equal { 1.0 } else { max };
    let divisor = if equal { 1.0 } else { chroma };
    let (rc, gc, bc) = (
        (max - r) / divisor,
        (max - g) / divisor,
        (max - b) / divisor,
    );
    let from_g = if max == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    let hue = if max == r { bc - gc } else { from_g };
    // `(hue / 6 + 1) % 1`: the sum lies in (5/6, 11/6].
    let turns = hue / 6.0 + 1.0;
    let h = if turns >= 1.0 { turns - 1.0 } else { turns };
    // The rotation, `(h + shift).rem_euclid(1)` for a sum in (-0.5, 1.5).
    let turned = h + shift;
    let below = if turned < 0.0 { turned + 1.0 } else { turned };
    let h = if turned >= 1.0 { turned - 1.0 } else { below };
    // HSV → RGB, with `h` in [0, 1).
    let (s, v) = (saturation, max);
    // `floor(h · 6)` by counting the integers it has reached: comparisons
    // vectorise, a float → integer conversion (saturating in Rust) does not.
    let sixths = h * 6.0;
    let sector = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        .map(|k| if sixths >= k { 1.0 } else { 0.0 })
        .iter()
        .sum::<f32>();
    let f = sixths - sector;
    let p = unit(v * (1.0 - s));
    let q = unit(v * (1.0 - s * f));
    let t = unit(v * (1.0 - s * (1.0 - f)));
    // Sector 6 (h·6 rounding up to 6) is sector 0, as `rem_euclid(6)`.
    let sector = if sector >= 6.0 { 0.0 } else { sector };
    let pick = |values: [f32; 6]| {
        let out = if sector == 4.0 { values[4] } else { values[5] };
        let out = if sector == 3.0 { values[3] } else { out };
        let out = if sector == 2.0 { values[2] } else { out };
        let out = if sector == 1.0 { values[1] } else { out };
        if sector == 0.0 {
            values[0]
        } else {
            out
        }
    };
    [
        pick([v, q, p, p, t, v]),
        pick([t, v, v, q, p, p]),
        pick([p, p, t, v, v, q]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_truncation_matches_the_cast() {
        // Every integer, the values just below and above it, and fractions.
        for k in 0..256u32 {
            let k = k as f32;
            let next_down = f32::from_bits((k + 1.0).to_bits() - 1);
            for x in [k, k + 0.25, k + 0.5, k + 0.75, k + 0.999, next_down] {
                if x < 256.0 {
                    assert_eq!(truncate_to_byte(x), x as u8, "{x}");
                }
            }
        }
    }

    #[test]
    fn blocked_hue_rotation_equals_the_per_pixel_formula() {
        // A quarter of a million colours (every red and green, blue in steps
        // of 64 plus a varying offset), in a shape that leaves a partial block.
        let colours: Vec<u8> = (0..1usize << 18)
            .flat_map(|i| {
                [
                    (i >> 10) as u8,
                    (i >> 2) as u8,
                    ((i & 3) * 64 + i % 61) as u8,
                ]
            })
            .collect();
        let image = Array3::from_shape_vec((1, 1 << 18, 3), colours).unwrap();
        let odd = image.slice(ndarray::s![.., ..1001, ..]);
        for (shift, image) in [(0.1, image.view()), (-0.37, image.view()), (0.5, odd)] {
            let mut per_pixel = image.to_owned();
            for mut pixel in per_pixel.lanes_mut(ndarray::Axis(2)) {
                let [r, g, b] = [0, 1, 2].map(|c| pixel[c] as f32 / 255.0);
                let shifted = shift_hue(r, g, b, shift as f32);
                for c in 0..3 {
                    pixel[c] = (shifted[c] * 255.999) as u8;
                }
            }
            assert_eq!(adjust_hue(image, shift), per_pixel, "shift {shift}");
        }
    }
}

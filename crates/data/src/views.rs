//! Random views for SSL: the random side of torchvision's transforms
//! (RandomResizedCrop's sampling, ColorJitter in random order, random
//! grayscale, blur, solarize and flip) composed into per-method recipes, and
//! multi-view batches built in parallel. Each view's randomness comes from an
//! RNG seeded by `(seed, epoch, sample index, view)`, so a batch does not
//! depend on the number of threads or on the order they run in.

use crate::augment;
use crate::images::ImageDataset;
use crate::sampler::mix;
use ndarray::{Array3, Array4, ArrayView3, Axis, CowArray, Ix3};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::convert::Infallible;

/// ColorJitter strengths, as torchvision: factors drawn from
/// `[max(0, 1 − s), 1 + s]` for brightness, contrast and saturation, and the
/// hue shift from `[−hue, hue]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// Brightness strength.
    pub brightness: f64,
    /// Contrast strength.
    pub contrast: f64,
    /// Saturation strength.
    pub saturation: f64,
    /// Hue strength (at most 0.5).
    pub hue: f64,
}

/// One view's augmentation recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRecipe {
    /// Output side in pixels.
    pub size: usize,
    /// RandomResizedCrop's area fraction range.
    pub scale: (f64, f64),
    /// RandomResizedCrop's aspect-ratio range.
    pub ratio: (f64, f64),
    /// Colour jitter and its probability.
    pub jitter: Option<(ColorJitter, f64)>,
    /// Probability of converting to grayscale.
    pub grayscale_p: f64,
    /// Gaussian blur: probability, kernel size, sigma range.
    pub blur: Option<(f64, usize, (f64, f64))>,
    /// Probability of solarising at 128.
    pub solarize_p: f64,
    /// Probability of a horizontal flip.
    pub flip_p: f64,
}

impl ViewRecipe {
    /// SimCLR's CIFAR recipe (as solo-learn): RandomResizedCrop(32, 0.08–1),
    /// ColorJitter(0.4, 0.4, 0.2, 0.1) with p 0.8, grayscale p 0.2, flip p 0.5, no blur.
    pub fn simclr_cifar() -> Self {
        Self {
            size: 32,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            jitter: Some((
                ColorJitter {
                    brightness: 0.4,
                    contrast: 0.4,
                    saturation: 0.2,
                    hue: 0.1,
                },
                0.8,
            )),
            grayscale_p: 0.2,
            blur: None,
            solarize_p: 0.0,
            flip_p: 0.5,
        }
    }

    /// DINO's multi-crop: two global views (area 0.4–1; the first always
    /// blurred, the second blurred with p 0.1 and solarised with p 0.2) and
    /// `locals` local views (area 0.05–0.4, blurred with p 0.5), all with
    /// SimCLR's colour jitter and grayscale. Blur sigma is 0.1–2 as in DINO,
    /// with an odd kernel of about a tenth of the view's side.
    pub fn multi_crop(global: usize, local: usize, locals: usize) -> Vec<ViewRecipe> {
        let kernel = |size: usize| (size / 10) | 1;
        let with = |size: usize, scale: (f64, f64), blur_p: f64, solarize_p: f64| Self {
            size,
            scale,
            blur: Some((blur_p, kernel(size), (0.1, 2.0))),
            solarize_p,
            ..Self::simclr_cifar()
        };
        let mut recipes = vec![
            with(global, (0.4, 1.0), 1.0, 0.0),
            with(global, (0.4, 1.0), 0.1, 0.2),
        ];
        recipes.extend(std::iter::repeat_n(
            with(local, (0.05, 0.4), 0.5, 0.0),
            locals,
        ));
        recipes
    }

    /// One random view of `image` `[H, W, 3]`.
    pub fn apply(&self, image: ArrayView3<u8>, rng: &mut impl Rng) -> Array3<u8> {
        let crop = self.crop_box((image.dim().0, image.dim().1), rng);
        self.finish(image, crop, rng)
    }

    /// The first draw of a view: RandomResizedCrop's box `(top, left,
    /// height, width)` in an image of `(height, width)`.
    pub fn crop_box(&self, (height, width): (usize, usize), rng: &mut impl Rng) -> CropBox {
        random_resized_crop_box(height, width, self.scale, self.ratio, rng)
    }

    /// The rest of a view after [`Self::crop_box`]: resize the box of `image`,
    /// then [`Self::finish_crop`].
    pub fn finish(&self, image: ArrayView3<u8>, crop: CropBox, rng: &mut impl Rng) -> Array3<u8> {
        let (top, left, height, width) = crop;
        let view = augment::resized_crop(image, top, left, height, width, self.size, self.size);
        self.finish_crop(view, rng)
    }

    /// The colour, blur, solarize and flip draws, from the `rng` that drew
    /// the crop box, on the resized crop `view`. (A streamed JPEG decoded
    /// at a reduced DCT scale resizes its box itself, then comes here.)
    pub fn finish_crop(&self, mut view: Array3<u8>, rng: &mut impl Rng) -> Array3<u8> {
        if let Some((jitter, p)) = self.jitter {
            if rng.gen_bool(p) {
                view = color_jitter(view.view(), &jitter, rng);
            }
        }
        if self.grayscale_p > 0.0 && rng.gen_bool(self.grayscale_p) {
            view = augment::grayscale(view.view());
        }
        if let Some((p, kernel, (low, high))) = self.blur {
            if rng.gen_bool(p) {
                view = augment::gaussian_blur(view.view(), kernel, rng.gen_range(low..=high));
            }
        }
        if self.solarize_p > 0.0 && rng.gen_bool(self.solarize_p) {
            view = augment::solarize(view.view(), 128);
        }
        if self.flip_p > 0.0 && rng.gen_bool(self.flip_p) {
            view = augment::hflip(view.view());
        }
        view
    }
}

/// A crop box `(top, left, height, width)` in pixels.
pub type CropBox = (usize, usize, usize, usize);

/// RandomResizedCrop's box `(top, left, height, width)`: up to 10 tries of an
/// area fraction from `scale` and a log-uniform aspect ratio from `ratio`,
/// else a centre crop with the ratio clamped into range (torchvision's algorithm).
pub fn random_resized_crop_box(
    height: usize,
    width: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut impl Rng,
) -> CropBox {
    let area = (height * width) as f64;
    let (log_low, log_high) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.gen_range(scale.0..=scale.1);
        let aspect = rng.gen_range(log_low..=log_high).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            return (
                rng.gen_range(0..=height - h),
                rng.gen_range(0..=width - w),
                h,
                w,
            );
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (h, w) = if in_ratio < ratio.0 {
        (
            ((width as f64 / ratio.0).round() as usize).min(height),
            width,
        )
    } else if in_ratio > ratio.1 {
        (
            height,
            ((height as f64 * ratio.1).round() as usize).min(width),
        )
    } else {
        (height, width)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

/// Brightness, contrast, saturation and hue with random factors, in a random order.
pub fn color_jitter(image: ArrayView3<u8>, jitter: &ColorJitter, rng: &mut impl Rng) -> Array3<u8> {
    let factor = |strength: f64, rng: &mut dyn rand::RngCore| {
        if strength > 0.0 {
            rng.gen_range((1.0 - strength).max(0.0)..=1.0 + strength)
        } else {
            1.0
        }
    };
    let mut order = [0usize, 1, 2, 3];
    order.shuffle(rng);
    let (b, c, s) = (
        factor(jitter.brightness, rng),
        factor(jitter.contrast, rng),
        factor(jitter.saturation, rng),
    );
    let h = if jitter.hue > 0.0 {
        rng.gen_range(-jitter.hue..=jitter.hue)
    } else {
        0.0
    };
    let mut out = image.to_owned();
    for op in order {
        out = match op {
            0 if jitter.brightness > 0.0 => augment::adjust_brightness(out.view(), b),
            1 if jitter.contrast > 0.0 => augment::adjust_contrast(out.view(), c),
            2 if jitter.saturation > 0.0 => augment::adjust_saturation(out.view(), s),
            3 if jitter.hue > 0.0 => augment::adjust_hue(out.view(), h),
            _ => out,
        };
    }
    out
}

/// One `[batch, size, size, 3]` array per recipe: view `v` of sample `i` is
/// drawn with the RNG of `(seed, epoch, i, v)`, in parallel over samples.
pub fn make_views(
    data: &ImageDataset,
    indices: &[usize],
    recipes: &[ViewRecipe],
    seed: u64,
    epoch: u64,
) -> Vec<Array4<u8>> {
    let image = |_: usize, index: usize| -> Result<CowArray<'_, u8, Ix3>, Infallible> {
        Ok(data.images.index_axis(Axis(0), index).into())
    };
    match views_of(indices, recipes, seed, epoch, image) {
        Ok(views) => views,
        Err(never) => match never {},
    }
}

/// As [`make_views`] for images that `image(position in indices, index)`
/// produces (decoded from disk, of any size: the crops are drawn in each
/// image's own coordinates); the first error stops the batch.
pub fn views_of<'a, E: Send>(
    indices: &[usize],
    recipes: &[ViewRecipe],
    seed: u64,
    epoch: u64,
    image: impl Fn(usize, usize) -> Result<CowArray<'a, u8, Ix3>, E> + Sync,
) -> Result<Vec<Array4<u8>>, E> {
    let views: Vec<Vec<Array3<u8>>> = indices
        .par_iter()
        .enumerate()
        .map(|(position, &index)| {
            let image = image(position, index)?;
            Ok(recipes
                .iter()
                .enumerate()
                .map(|(v, recipe)| recipe.apply(image.view(), &mut view_rng(seed, epoch, index, v)))
                .collect())
        })
        .collect::<Result<_, E>>()?;
    Ok(stack_views(&views, recipes.len()))
}

/// The RNG of view `v` of sample `index` in `epoch`.
pub fn view_rng(seed: u64, epoch: u64, index: usize, v: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(mix(seed, epoch), (index as u64) << 8 | v as u64))
}

/// Per-sample views (`views[sample][recipe]`) as one batch per recipe.
pub fn stack_views(views: &[Vec<Array3<u8>>], recipes: usize) -> Vec<Array4<u8>> {
    (0..recipes)
        .map(|v| {
            let stacked: Vec<ArrayView3<u8>> =
                views.iter().map(|sample| sample[v].view()).collect();
            ndarray::stack(Axis(0), &stacked).expect("views of one recipe share a shape")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cifar_like(n: usize) -> ImageDataset {
        let images = Array4::from_shape_fn((n, 32, 32, 3), |(i, y, x, c)| {
            ((i * 31 + y * 7 + x * 3 + c * 50) % 256) as u8
        });
        ImageDataset::new(images, vec![0; n], 1).unwrap()
    }

    #[test]
    fn batches_do_not_depend_on_the_thread_count() {
        let data = cifar_like(16);
        let recipes = [ViewRecipe::simclr_cifar(), ViewRecipe::simclr_cifar()];
        let indices: Vec<usize> = (0..16).rev().collect();
        let with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| make_views(&data, &indices, &recipes, 7, 3))
        };
        let (one, two) = (with(1), with(2));
        assert_eq!(one, two);
        assert_eq!(one[0].shape(), &[16, 32, 32, 3]);
        assert_ne!(one[0], one[1], "the two views differ");
        assert_ne!(
            one,
            make_views(&data, &indices, &recipes, 7, 4),
            "epochs differ"
        );
    }

    #[test]
    fn multi_crop_gives_global_then_local_batches() {
        let data = cifar_like(6);
        let recipes = ViewRecipe::multi_crop(32, 16, 4);
        let indices: Vec<usize> = (0..6).collect();
        let views = make_views(&data, &indices, &recipes, 1, 0);
        let shapes: Vec<&[usize]> = views.iter().map(|v| v.shape()).collect();
        assert_eq!(
            shapes,
            [
                &[6, 32, 32, 3][..],
                &[6, 32, 32, 3],
                &[6, 16, 16, 3],
                &[6, 16, 16, 3],
                &[6, 16, 16, 3],
                &[6, 16, 16, 3]
            ]
        );
        assert_eq!(recipes[0].blur, Some((1.0, 3, (0.1, 2.0))));
        assert_eq!(
            (recipes[1].solarize_p, recipes[2].scale),
            (0.2, (0.05, 0.4))
        );
        assert_ne!(views[2], views[3], "local views differ");
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| make_views(&data, &indices, &recipes, 1, 0));
        assert_eq!(views, one_thread);
    }

    #[test]
    fn crop_boxes_respect_scale_and_ratio() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..2000 {
            let (top, left, h, w) =
                random_resized_crop_box(32, 48, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut rng);
            assert!(top + h <= 32 && left + w <= 48 && h > 0 && w > 0);
        }
        // A ratio the image cannot hold falls back to a centre crop.
        assert_eq!(
            random_resized_crop_box(10, 100, (0.99, 1.0), (1.0, 1.0), &mut rng),
            (0, 45, 10, 10)
        );
    }

    #[test]
    fn probabilities_hold_in_large_samples() {
        let data = cifar_like(1);
        let recipe = ViewRecipe {
            scale: (1.0, 1.0),
            ratio: (1.0, 1.0),
            jitter: None,
            flip_p: 0.0,
            ..ViewRecipe::simclr_cifar()
        };
        let image = data.images.index_axis(Axis(0), 0);
        let grey = (0..2000).filter(|&s| {
            let view = recipe.apply(image, &mut ChaCha8Rng::seed_from_u64(s));
            view.lanes(Axis(2))
                .into_iter()
                .all(|p| p[0] == p[1] && p[1] == p[2])
        });
        let rate = grey.count() as f64 / 2000.0;
        assert!((0.17..0.23).contains(&rate), "grayscale rate {rate}");
    }
}

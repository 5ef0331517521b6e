//! `[[data.views]]`: each method's augmentation recipe, written in its config
//! the way papers state it. Several entries give asymmetric views (BYOL's two
//! recipes) or multi-crop (DINO / SwAV: 2 global + N local crops).

use selfsup_data::views::{ColorJitter, ViewRecipe};
use selfsup_train::check;
use selfsup_train::Result;
use serde::{Deserialize, Serialize};

/// `count` views drawn with one recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// How many views of each image this recipe makes.
    #[serde(default = "one")]
    pub count: usize,
    /// Output side in pixels (RandomResizedCrop's size).
    pub size: usize,
    /// RandomResizedCrop's area range (torchvision's default 0.08–1).
    #[serde(default = "default_scale")]
    pub scale: [f64; 2],
    /// RandomResizedCrop's aspect-ratio range (default 3/4–4/3).
    #[serde(default = "default_ratio")]
    pub ratio: [f64; 2],
    /// ColorJitter, applied with probability `p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<JitterConfig>,
    /// RandomGrayscale's probability.
    #[serde(default)]
    pub grayscale_p: f64,
    /// GaussianBlur, applied with probability `p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blur: Option<BlurConfig>,
    /// RandomSolarize's probability (threshold 128).
    #[serde(default)]
    pub solarize_p: f64,
    /// RandomHorizontalFlip's probability.
    #[serde(default = "half")]
    pub flip_p: f64,
}

/// ColorJitter strengths and the probability of jittering at all.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitterConfig {
    /// Brightness strength.
    pub brightness: f64,
    /// Contrast strength.
    pub contrast: f64,
    /// Saturation strength.
    pub saturation: f64,
    /// Hue strength (at most 0.5).
    pub hue: f64,
    /// Probability of applying the jitter.
    pub p: f64,
}

/// GaussianBlur's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlurConfig {
    /// Probability of blurring.
    pub p: f64,
    /// Odd kernel side in pixels.
    pub kernel: usize,
    /// Sigma range.
    pub sigma: [f64; 2],
}

fn one() -> usize {
    1
}
fn half() -> f64 {
    0.5
}
fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

/// The largest view side: beyond any recipe, small enough to refuse typos.
const MAX_SIDE: usize = 4096;

impl ViewConfig {
    /// Checks every value that does not depend on the images; `at` names the
    /// entry in errors (`data.views[0]`).
    pub fn validate(&self, at: &str) -> Result<()> {
        let key = |field: &str| format!("{at}.{field}");
        if self.count == 0 || self.count > 64 {
            return Err(check::invalid(
                &key("count"),
                format!("{} must be 1 to 64", self.count),
            ));
        }
        if self.size == 0 || self.size > MAX_SIDE {
            return Err(check::invalid(
                &key("size"),
                format!("{} must be 1 to {MAX_SIDE} pixels", self.size),
            ));
        }
        let [low, high] = self.scale;
        if !(0.0 < low && low <= high && high <= 1.0) {
            return Err(check::invalid(
                &key("scale"),
                format!("{:?} is not 0 < low <= high <= 1", self.scale),
            ));
        }
        let [low, high] = self.ratio;
        if !(0.0 < low && low <= high && high.is_finite()) {
            return Err(check::invalid(
                &key("ratio"),
                format!("{:?} is not 0 < low <= high", self.ratio),
            ));
        }
        check::probability(&key("grayscale_p"), self.grayscale_p)?;
        check::probability(&key("solarize_p"), self.solarize_p)?;
        check::probability(&key("flip_p"), self.flip_p)?;
        if let Some(j) = self.jitter {
            let strengths = [
                ("brightness", j.brightness),
                ("contrast", j.contrast),
                ("saturation", j.saturation),
            ];
            for (field, strength) in strengths {
                check::non_negative(&key(&format!("jitter.{field}")), strength)?;
            }
            if !(0.0..=0.5).contains(&j.hue) {
                return Err(check::invalid(
                    &key("jitter.hue"),
                    format!("{} must be in [0, 0.5]", j.hue),
                ));
            }
            check::probability(&key("jitter.p"), j.p)?;
        }
        if let Some(b) = self.blur {
            if b.kernel % 2 == 0 || b.kernel > 255 {
                return Err(check::invalid(
                    &key("blur.kernel"),
                    format!("{} must be odd and at most 255", b.kernel),
                ));
            }
            if !(0.0 < b.sigma[0] && b.sigma[0] <= b.sigma[1] && b.sigma[1].is_finite()) {
                return Err(check::invalid(
                    &key("blur.sigma"),
                    format!("{:?} is not 0 < low <= high", b.sigma),
                ));
            }
            check::probability(&key("blur.p"), b.p)?;
        }
        Ok(())
    }

    /// The data crate's recipe for images of `channels` channels, after
    /// checking every value; `at` names the entry in errors (`data.views[0]`).
    pub fn recipe(&self, at: &str, channels: usize) -> Result<ViewRecipe> {
        self.validate(at)?;
        let colour = self.jitter.is_some() || self.grayscale_p > 0.0;
        if colour && channels != 3 {
            let message =
                format!("colour jitter and grayscale need RGB images, not {channels} channel(s)");
            return Err(check::invalid(&format!("{at}.jitter"), message));
        }
        let jitter = self.jitter.map(|j| {
            let strengths = ColorJitter {
                brightness: j.brightness,
                contrast: j.contrast,
                saturation: j.saturation,
                hue: j.hue,
            };
            (strengths, j.p)
        });
        let blur = self.blur.map(|b| (b.p, b.kernel, (b.sigma[0], b.sigma[1])));
        Ok(ViewRecipe {
            size: self.size,
            scale: (self.scale[0], self.scale[1]),
            ratio: (self.ratio[0], self.ratio[1]),
            jitter,
            grayscale_p: self.grayscale_p,
            blur,
            solarize_p: self.solarize_p,
            flip_p: self.flip_p,
        })
    }
}

/// One recipe per view, in order: each entry repeated `count` times.
pub fn recipes(views: &[ViewConfig], channels: usize) -> Result<Vec<ViewRecipe>> {
    let mut out = Vec::new();
    for (i, view) in views.iter().enumerate() {
        let recipe = view.recipe(&format!("data.views[{i}]"), channels)?;
        out.extend(std::iter::repeat_n(recipe, view.count));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<ViewConfig> {
        #[derive(Deserialize)]
        struct Wrapper {
            views: Vec<ViewConfig>,
        }
        toml::from_str::<Wrapper>(text).unwrap().views
    }

    #[test]
    fn simclr_entry_gives_the_simclr_recipe_twice() {
        let views = parse(
            r#"
            [[views]]
            count = 2
            size = 32
            jitter = { brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1, p = 0.8 }
            grayscale_p = 0.2
            "#,
        );
        let recipes = recipes(&views, 3).unwrap();
        assert_eq!(recipes, vec![ViewRecipe::simclr_cifar(); 2]);
    }

    #[test]
    fn multi_crop_lists_global_then_local_views() {
        let views = parse(
            r#"
            [[views]]
            count = 2
            size = 32
            scale = [0.4, 1.0]
            [[views]]
            count = 4
            size = 16
            scale = [0.05, 0.4]
            "#,
        );
        let sizes: Vec<usize> = recipes(&views, 1).unwrap().iter().map(|r| r.size).collect();
        assert_eq!(sizes, [32, 32, 16, 16, 16, 16]);
    }

    #[test]
    fn bad_values_name_the_entry_and_field() {
        let mut views = parse("[[views]]\nsize = 32\n[[views]]\nsize = 16\nscale = [0.5, 0.2]\n");
        let error = recipes(&views, 3).unwrap_err().to_string();
        assert!(error.contains("data.views[1].scale"), "{error}");
        views[1].scale = [0.2, 0.5];
        views[1].flip_p = 1.5;
        let error = recipes(&views, 3).unwrap_err().to_string();
        assert!(
            error.contains("data.views[1].flip_p") && error.contains("1.5"),
            "{error}"
        );
        views[1].flip_p = 0.5;
        views[0].grayscale_p = 0.2;
        let error = recipes(&views, 1).unwrap_err().to_string();
        assert!(
            error.contains("data.views[0].jitter") && error.contains("RGB"),
            "{error}"
        );
        let unknown = toml::from_str::<ViewConfig>("size = 8\nflip = 0.5\n")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("flip"), "{unknown}");
    }
}

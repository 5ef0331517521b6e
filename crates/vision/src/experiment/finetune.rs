//! `selfsup finetune` for vision runs: an ImageFolder of labelled images
//! (`root/<class>/*.jpg|png`), resized to what the run trained on and made
//! grey for a one-channel model, a stratified held-out fifth (or a separate
//! test folder), a class-balanced share of the rest's labels; the run's
//! encoder and the same one from random init, each fine-tuned whole with a
//! linear head by the runner every modality shares.

use super::loaded::LoadedRun;
use crate::data::{DatasetKind, LabelledImages, Normalizer, SplitImages};
use crate::registry::VisionRegistry;
use crate::Result;
use ndarray::s;
use selfsup_data::image_folder::{class_names, read_image_folder};
use selfsup_data::ImageDataset;
use selfsup_train::eval::few_labels::{
    fine_tune_both, FewLabelRequest, FewLabelSplit, FewLabels, Tunable,
};
use selfsup_train::eval::LabelledData;
use std::path::{Path, PathBuf};

/// What it measured.
#[derive(Debug, Clone)]
pub struct ImageFinetuneReport {
    /// The run folder.
    pub run: PathBuf,
    /// The class names.
    pub classes: Vec<String>,
    /// `(height, width, channels)` the images were given as.
    pub image_shape: (usize, usize, usize),
    /// Share, counts, pretrained and random-init top-1.
    pub scores: FewLabels,
}

/// Fine-tunes the vision run at `request.run` on the labelled images.
pub fn finetune_images(
    registry: &VisionRegistry,
    request: &FewLabelRequest<'_>,
) -> Result<ImageFinetuneReport> {
    request.validate()?;
    let loaded = LoadedRun::open(registry, request.run, &[])?;
    let device = loaded.device()?;
    let data_config = &loaded.config.data;
    let (mean, std) = data_config.mean_std();
    // What the encoder saw: the resize, else the crops, else the set's own size.
    let size = match (data_config.resize, data_config.views.first()) {
        (Some([h, w]), _) => (h, w),
        (None, Some(view)) => (view.size as u32, view.size as u32),
        (None, None) => {
            let side = match data_config.dataset {
                DatasetKind::Mnist => 28,
                DatasetKind::Cifar10 | DatasetKind::Cifar100 => 32,
                DatasetKind::Stl10 => 96,
                DatasetKind::ImageFolder | DatasetKind::WebDataset => 224,
            };
            (side, side)
        }
    };
    let read = |root: &Path| -> Result<ImageDataset> {
        let images = read_image_folder(root, Some(size), data_config.max_image_pixels)?;
        Ok(match mean.len() {
            1 => grey(images)?,
            _ => images,
        })
    };
    let classes = class_names(request.data)?;
    let train_images = SplitImages::Memory(read(request.data)?);
    let test_images = request.test.map(read).transpose()?.map(SplitImages::Memory);
    if let Some(test) = request.test {
        if class_names(test)? != classes {
            let message = "the test folder's classes differ from the training folder's";
            return Err(selfsup_train::check::invalid("--test", message).into());
        }
    }
    let normalizer = Normalizer::new(&mean, &std, device);
    let train = LabelledImages {
        images: &train_images,
        normalizer: &normalizer,
    };
    let test = test_images.as_ref().map(|images| LabelledImages {
        images,
        normalizer: &normalizer,
    });
    let test_data = test.as_ref().map(|t| t as &dyn LabelledData);
    let split = FewLabelSplit::new(&train, test_data, request);
    let channels = Some(mean.len() as i64);
    let (trained_vs, trained) = loaded.build(device, channels, false)?;
    let (random_vs, random) = loaded.build(device, channels, true)?;
    let scores = fine_tune_both(
        Tunable {
            backbone: trained.backbone(),
            vs: &trained_vs,
        },
        Tunable {
            backbone: random.backbone(),
            vs: &random_vs,
        },
        &split,
        request,
    )?;
    Ok(ImageFinetuneReport {
        run: request.run.to_path_buf(),
        classes,
        image_shape: {
            let (height, width) = train_images.size();
            (height, width, train_images.channels())
        },
        scores,
    })
}

/// One grey channel (ITU-R 601 luma) of RGB images, for one-channel models.
fn grey(images: ImageDataset) -> Result<ImageDataset> {
    let mut out = images.images.slice(s![.., .., .., 0..1]).to_owned();
    for (i, image) in images.images.outer_iter().enumerate() {
        for ((y, x), grey) in out.slice_mut(s![i, .., .., 0]).indexed_iter_mut() {
            let [r, g, b] = [0, 1, 2].map(|c| f32::from(image[[y, x, c]]));
            *grey = (0.299 * r + 0.587 * g + 0.114 * b).round().min(255.0) as u8;
        }
    }
    Ok(ImageDataset::new(out, images.labels, images.num_classes)?)
}

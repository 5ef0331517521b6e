//! ImageFolder: the ImageNet-style layout `root/<class>/<image>`, classes
//! numbered in sorted name order (as torchvision does), JPEG and PNG files
//! decoded in parallel to RGB. Without a resize every image must share one
//! size; with one, each is resized on load (bilinear) so a folder of mixed
//! sizes becomes one `u8` array.

use crate::decode::{decode_file, rgb_image};
use crate::error::{Error, Result};
use crate::images::ImageDataset;
use ndarray::Array4;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The class names of an ImageFolder, in label order.
pub fn class_names(root: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::format(
            root,
            "no class folders: expected root/<class>/<image files>",
        ));
    }
    Ok(names)
}

fn is_image(path: &Path) -> bool {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(extension.as_deref(), Some("jpg" | "jpeg" | "png"))
}

/// Image files and their labels.
pub type LabelledFiles = Vec<(PathBuf, i64)>;

/// The image files under `root` with their labels (class folders in sorted
/// order, files sorted within each), and the class names; nothing decoded.
pub fn list_image_folder(root: &Path) -> Result<(Vec<String>, LabelledFiles)> {
    let classes = class_names(root)?;
    let mut files: LabelledFiles = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        let mut in_class: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_image(p))
            .collect();
        in_class.sort();
        files.extend(in_class.into_iter().map(|p| (p, label as i64)));
    }
    if files.is_empty() {
        return Err(Error::format(
            root,
            "no .jpg, .jpeg or .png files in any class folder",
        ));
    }
    Ok((classes, files))
}

/// Reads every image under `root`; `resize` = `Some((height, width))` resizes each.
/// An image declaring more than `max_pixels` is an error naming it.
pub fn read_image_folder(
    root: &Path,
    resize: Option<(u32, u32)>,
    max_pixels: u64,
) -> Result<ImageDataset> {
    let (classes, files) = list_image_folder(root)?;
    if let Some((h, w)) = resize {
        let bytes = (files.len() as u64).saturating_mul(h as u64 * w as u64 * 3);
        let what = format!("{} images resized to {h}x{w}", files.len());
        crate::memory::ensure_fits(root, &what, bytes)?;
    }
    let decoded: Vec<image::RgbImage> = files
        .par_iter()
        .map(|(path, _)| {
            let image = rgb_image(decode_file(path, max_pixels)?);
            Ok(match resize {
                Some((h, w)) => {
                    image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle)
                }
                None => image,
            })
        })
        .collect::<Result<_>>()?;
    let (width, height) = decoded[0].dimensions();
    if let Some((i, other)) = decoded
        .iter()
        .enumerate()
        .find(|(_, im)| im.dimensions() != (width, height))
    {
        let (w, h) = other.dimensions();
        let problem = format!(
            "is {w}x{h} but {} is {width}x{height}; pass a resize to load mixed sizes",
            files[0].0.display()
        );
        return Err(Error::format(&files[i].0, problem));
    }
    let mut pixels = Vec::with_capacity(decoded.len() * (width * height * 3) as usize);
    for image in &decoded {
        pixels.extend_from_slice(image.as_raw());
    }
    let array = Array4::from_shape_vec((decoded.len(), height as usize, width as usize, 3), pixels)
        .expect("sizes were checked");
    ImageDataset::new(
        array,
        files.into_iter().map(|(_, l)| l).collect(),
        classes.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DEFAULT_MAX_PIXELS;

    fn write_png(path: &Path, colour: [u8; 3], size: u32) {
        image::RgbImage::from_pixel(size, size, image::Rgb(colour))
            .save(path)
            .unwrap();
    }

    #[test]
    fn classes_in_sorted_order_and_pixels_exact_for_png() {
        let root = tempfile::tempdir().unwrap();
        for (class, colour) in [("dog", [10, 20, 30]), ("cat", [200, 100, 50])] {
            std::fs::create_dir(root.path().join(class)).unwrap();
            write_png(&root.path().join(class).join("a.png"), colour, 4);
            write_png(&root.path().join(class).join("b.PNG"), colour, 4);
        }
        std::fs::write(root.path().join("cat").join("notes.txt"), "not an image").unwrap();
        let set = read_image_folder(root.path(), None, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(class_names(root.path()).unwrap(), vec!["cat", "dog"]);
        assert_eq!(set.labels, vec![0, 0, 1, 1]);
        assert_eq!(set.images.shape(), &[4, 4, 4, 3]);
        assert_eq!(
            [set.images[[0, 1, 2, 0]], set.images[[2, 3, 3, 2]]],
            [200, 30]
        );
    }

    #[test]
    fn jpeg_decodes_close_to_its_colour_and_resize_unifies_sizes() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("only")).unwrap();
        image::RgbImage::from_pixel(16, 16, image::Rgb([120, 60, 180]))
            .save(root.path().join("only/big.jpg"))
            .unwrap();
        write_png(&root.path().join("only/small.png"), [0, 0, 0], 8);
        let err = read_image_folder(root.path(), None, DEFAULT_MAX_PIXELS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is 8x8") && err.contains("big.jpg"), "{err}");
        let set = read_image_folder(root.path(), Some((8, 8)), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(set.images.shape(), &[2, 8, 8, 3]);
        let red = set.images[[0, 4, 4, 0]] as i32;
        assert!((red - 120).abs() <= 3, "JPEG red channel {red}");
    }

    #[test]
    fn bad_folders_and_files_are_named() {
        let root = tempfile::tempdir().unwrap();
        let err = read_image_folder(root.path(), None, DEFAULT_MAX_PIXELS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no class folders"), "{err}");
        std::fs::create_dir(root.path().join("empty")).unwrap();
        let err = read_image_folder(root.path(), None, DEFAULT_MAX_PIXELS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no .jpg"), "{err}");
        std::fs::write(
            root.path().join("empty/broken.jpg"),
            b"\xff\xd8 not really a jpeg",
        )
        .unwrap();
        let err = read_image_folder(root.path(), None, DEFAULT_MAX_PIXELS)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("broken.jpg") && err.contains("cannot decode"),
            "{err}"
        );
        let err = read_image_folder(&root.path().join("missing"), None, DEFAULT_MAX_PIXELS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }
}

//! The IDX format of MNIST and Fashion-MNIST (raw or `.gz`): a 4-byte magic
//! number (two zero bytes, a type code, the number of dimensions), the
//! dimensions as big-endian u32, then the data. Only unsigned bytes (type 0x08)
//! occur in these data sets.

use crate::error::{read_maybe_gz, Error, Result};
use crate::images::ImageDataset;
use ndarray::Array4;
use std::path::Path;

/// An IDX array of unsigned bytes: its dimensions and its data.
#[derive(Debug)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Parses an IDX file of unsigned bytes with `expected_dims` dimensions.
pub fn read_idx(path: &Path, expected_dims: u8) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    parse_idx(&bytes, expected_dims).map_err(|problem| Error::format(path, problem))
}

fn parse_idx(bytes: &[u8], expected_dims: u8) -> std::result::Result<IdxArray, String> {
    let expected_magic = 0x0800 | expected_dims as u32;
    if bytes.len() < 4 {
        return Err(format!(
            "file is {} bytes, too short for an IDX header",
            bytes.len()
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        return Err(format!(
            "bad magic number {magic:#010x}, expected {expected_magic:#010x}"
        ));
    }
    let header = 4 + 4 * expected_dims as usize;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} bytes, need {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let actual_len = bytes.len() - header;
    let Some(expected_len) = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        return Err(format!(
            "dimensions {dims:?} describe more bytes than a file can hold; the file has {actual_len}"
        ));
    };
    if actual_len != expected_len {
        return Err(format!(
            "dimensions {dims:?} need {expected_len} data bytes, the file has {actual_len}"
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an MNIST-style pair of image and label files into a dataset of
/// single-channel images with 10 classes.
pub fn read_mnist(images_path: &Path, labels_path: &Path) -> Result<ImageDataset> {
    let images = read_idx(images_path, 3)?;
    let labels = read_idx(labels_path, 1)?;
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        return Err(Error::Mismatch(format!(
            "{} holds {n} images but {} holds {} labels",
            images_path.display(),
            labels_path.display(),
            labels.dims[0]
        )));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(Error::format(
            labels_path,
            format!("label {bad} is outside 0..=9"),
        ));
    }
    let array = Array4::from_shape_vec((n, h, w, 1), images.data).expect("sizes were checked");
    ImageDataset::new(array, labels.data.iter().map(|&l| l as i64).collect(), 10)
}

/// Writes an IDX file of unsigned bytes (used to build test fixtures).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_raw_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 2).map(|i| i as u8).collect();
        let images = write(dir.path(), "img", &encode_idx(&[2, 3, 2], &pixels));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&encode_idx(&[2], &[7, 3])).unwrap();
        let labels = write(dir.path(), "lbl.gz", &gz.finish().unwrap());
        let set = read_mnist(&images, &labels).unwrap();
        assert_eq!(set.images.shape(), &[2, 3, 2, 1]);
        assert_eq!(set.labels, vec![7, 3]);
        assert_eq!(set.images[[1, 2, 1, 0]], 11);
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let labels = write(dir.path(), "labels", &encode_idx(&[1], &[0]));
        let cases = [
            (
                "wrong-magic",
                encode_idx(&[1, 2], &[0, 0]),
                "bad magic number",
            ),
            (
                "truncated",
                encode_idx(&[2, 2, 2], &[0; 5]),
                "need 8 data bytes, the file has 5",
            ),
            ("tiny", vec![0, 0], "too short"),
        ];
        for (name, bytes, problem) in cases {
            let path = write(dir.path(), name, &bytes);
            let err = read_mnist(&path, &labels).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(problem), "{err}");
        }
        let not_gzip = write(dir.path(), "corrupt.gz", b"not gzip at all");
        let err = read_mnist(&not_gzip, &labels).unwrap_err().to_string();
        assert!(err.contains("corrupt.gz") && err.contains("gzip"), "{err}");
        let missing = dir.path().join("missing.gz");
        let err = read_mnist(&missing, &labels).unwrap_err().to_string();
        assert!(err.contains("missing.gz"), "{err}");
    }

    #[test]
    fn label_count_must_match_image_count() {
        let dir = tempfile::tempdir().unwrap();
        let images = write(dir.path(), "img", &encode_idx(&[2, 1, 1], &[0, 0]));
        let labels = write(dir.path(), "lbl", &encode_idx(&[3], &[0, 1, 2]));
        let err = read_mnist(&images, &labels).unwrap_err().to_string();
        assert!(
            err.contains("2 images") && err.contains("3 labels"),
            "{err}"
        );
        let labels = write(dir.path(), "lbl", &encode_idx(&[2], &[0, 12]));
        let err = read_mnist(&images, &labels).unwrap_err().to_string();
        assert!(err.contains("label 12"), "{err}");
    }
}

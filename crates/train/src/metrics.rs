//! `metrics.csv`: one row per logged step and per evaluation, flushed as written
//! so a killed run keeps its history.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends rows of `step,epoch,kind,name,value`.
#[derive(Debug)]
pub struct MetricsCsv {
    path: PathBuf,
    /// `None` on ranks other than 0, which write nothing.
    file: Option<std::fs::File>,
}

impl MetricsCsv {
    /// Creates the file with its header (or appends when it exists, for resumed runs).
    pub fn open(path: &Path) -> Result<Self> {
        let exists = path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        if !exists {
            writeln!(file, "step,epoch,kind,name,value").map_err(|e| Error::io(path, e))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
        })
    }

    /// The file at `path` on rank 0 (see [`MetricsCsv::open`]); on other
    /// ranks of a data-parallel run, a sink that writes nothing.
    pub fn open_on_primary(path: &Path) -> Result<Self> {
        if crate::distributed::is_primary() {
            Self::open(path)
        } else {
            Ok(Self {
                path: path.to_path_buf(),
                file: None,
            })
        }
    }

    /// Writes one value; `kind` is `train` or `eval`.
    pub fn write(
        &mut self,
        step: usize,
        epoch: usize,
        kind: &str,
        name: &str,
        value: f64,
    ) -> Result<()> {
        match &mut self.file {
            Some(file) => writeln!(file, "{step},{epoch},{kind},{name},{value}")
                .map_err(|e| Error::io(&self.path, e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_once_then_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        MetricsCsv::open(&path)
            .unwrap()
            .write(1, 0, "train", "loss", 0.5)
            .unwrap();
        MetricsCsv::open(&path)
            .unwrap()
            .write(2, 0, "train", "loss", 0.25)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "step,epoch,kind,name,value\n1,0,train,loss,0.5\n2,0,train,loss,0.25\n"
        );
    }
}

//! PNG line plots of a run's curves (loss, learning rate, evaluation metrics),
//! written at the end of a run from `metrics.csv`.

mod canvas;
mod font;

pub use canvas::{line_plot, Series};

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reads `metrics.csv` and writes one PNG per `(kind, name)` curve with at
/// least two points (e.g. `train_loss.png`, `train_lr.png`); returns the files.
pub fn plot_metrics(metrics_csv: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(metrics_csv).map_err(|e| Error::io(metrics_csv, e))?;
    let mut curves: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if let [step, _epoch, kind, name, value] = fields[..] {
            if let (Ok(step), Ok(value)) = (step.parse::<f64>(), value.parse::<f64>()) {
                curves
                    .entry(format!("{kind}_{name}"))
                    .or_default()
                    .push((step, value));
            }
        }
    }
    let mut written = Vec::new();
    for (name, points) in curves.into_iter().filter(|(_, p)| p.len() >= 2) {
        let path = out_dir.join(format!("{name}.png"));
        let title = name.replace('_', " ");
        line_plot(
            &title,
            "step",
            &[Series {
                label: title.clone(),
                points,
            }],
            &path,
        )?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_png_per_curve_with_two_or_more_points() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("metrics.csv");
        std::fs::write(&csv, "step,epoch,kind,name,value\n1,0,train,loss,2.0\n2,0,train,loss,1.5\n3,0,train,loss,1.2\n3,1,eval,knn_top1,0.5\n").unwrap();
        let files = plot_metrics(&csv, dir.path()).unwrap();
        assert_eq!(files, vec![dir.path().join("train_loss.png")]);
        let decoder = png::Decoder::new(std::fs::File::open(&files[0]).unwrap());
        let reader = decoder.read_info().unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            (canvas::WIDTH as u32, canvas::HEIGHT as u32)
        );
    }
}

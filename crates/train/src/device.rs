//! `trainer.device`: where a run computes.

use crate::check::invalid;
use crate::error::Result;
use tch::Device;

/// Parses `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| {
                invalid(
                    "trainer.device",
                    format!("unknown device `{other}`: use auto, cpu, cuda or cuda:N"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("cuda:1").unwrap(), Device::Cuda(1));
        let error = parse_device("tpu").unwrap_err().to_string();
        assert!(
            error.contains("trainer.device") && error.contains("tpu"),
            "{error}"
        );
    }
}

//! `trainer.device`: where a run computes.

use crate::check::invalid;
use crate::error::Result;
use tch::Device;

/// Parses `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`. In a
/// data-parallel run, `auto` and `cuda` mean this rank's GPU (`LOCAL_RANK`),
/// as torchrun's convention is.
pub fn parse_device(spec: &str) -> Result<Device> {
    let own_gpu = Device::Cuda(crate::distributed::local_rank());
    match spec {
        "auto" if tch::Cuda::is_available() => Ok(own_gpu),
        "auto" => Ok(Device::Cpu),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(own_gpu),
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

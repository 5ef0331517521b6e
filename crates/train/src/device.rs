//! `trainer.device`: where a run computes.

use crate::check::invalid;
use crate::error::Result;
use tch::Device;

/// Parses `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`. In a
/// data-parallel run, `auto` and `cuda` mean this rank's GPU (`LOCAL_RANK`),
/// as torchrun's convention is.
///
/// A CUDA device this machine does not have (no CUDA build, no GPU, or
/// `cuda:7` on a machine with two) is an error naming `trainer.device`,
/// not a libtorch failure in the middle of building the model.
pub fn parse_device(spec: &str) -> Result<Device> {
    let device = parse_spec(spec)?;
    if let Device::Cuda(index) = device {
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count()
        } else {
            0
        };
        if index as i64 >= count {
            let have = match count {
                0 => "this machine has no CUDA device (or this build has no CUDA)".to_string(),
                n => format!("this machine has {n} (cuda:0 to cuda:{})", n - 1),
            };
            return Err(invalid(
                "trainer.device",
                format!("`{spec}` asks for GPU {index} but {have}"),
            ));
        }
    }
    Ok(device)
}

/// The device `spec` names, whether or not it exists here.
fn parse_spec(spec: &str) -> Result<Device> {
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
        assert_eq!(parse_spec("cuda:1").unwrap(), Device::Cuda(1));
        let error = parse_device("tpu").unwrap_err().to_string();
        assert!(
            error.contains("trainer.device") && error.contains("tpu"),
            "{error}"
        );
    }

    #[test]
    fn a_gpu_this_machine_lacks_is_a_config_error() {
        let count = match tch::Cuda::is_available() {
            true => tch::Cuda::device_count(),
            false => 0,
        };
        let error = parse_device(&format!("cuda:{count}"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("config trainer.device"), "{error}");
        assert!(error.contains(&format!("asks for GPU {count}")), "{error}");
    }
}

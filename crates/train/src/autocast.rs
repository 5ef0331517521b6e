//! Mixed precision: libtorch's autocast with a chosen dtype (bf16 on CUDA or
//! CPU). Weights stay fp32 (the optimizer updates fp32 master weights);
//! inside the region matmuls and convolutions run in bf16 while reductions,
//! softmax and losses stay fp32, by libtorch's own per-op lists.
//!
//! tch 0.24 can only switch CUDA autocast on with its default fp16, so a small
//! C++ shim (`csrc/autocast.cpp`) sets the device and dtype.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

/// Arithmetic precision of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in fp32.
    #[default]
    Fp32,
    /// Autocast to bfloat16 with fp32 master weights.
    Bf16,
}

#[allow(unsafe_code)]
mod ffi {
    extern "C" {
        pub fn selfsup_autocast_enter(
            device_type: i8,
            dtype: i8,
            prev_enabled: *mut bool,
            prev_dtype: *mut i8,
        ) -> bool;
        pub fn selfsup_autocast_exit(device_type: i8, prev_enabled: bool, prev_dtype: i8);
        pub fn selfsup_autocast_is_enabled(device_type: i8) -> bool;
    }
}

/// c10::DeviceType codes.
fn device_type(device: Device) -> Result<i8> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => Err(Error::Config {
            origin: "trainer.precision".into(),
            message: format!("autocast is not supported on {other:?}"),
        }),
    }
}

/// c10::ScalarType codes of the dtypes autocast can cast to.
fn scalar_type(kind: Kind) -> i8 {
    match kind {
        Kind::Half => 5,
        Kind::BFloat16 => 15,
        other => panic!("autocast casts to half or bfloat16, not {other:?}"),
    }
}

/// An active autocast region; leaving scope restores the previous setting.
#[derive(Debug)]
pub struct AutocastGuard {
    device_type: i8,
    prev_enabled: bool,
    prev_dtype: i8,
}

impl AutocastGuard {
    /// Turns autocast on for `device` with `kind` (`Kind::BFloat16` or
    /// `Kind::Half`) until the guard drops.
    pub fn enter(device: Device, kind: Kind) -> Result<Self> {
        let device_type = device_type(device)?;
        let (mut prev_enabled, mut prev_dtype) = (false, 0i8);
        // SAFETY: the shim only reads and writes libtorch's thread-local
        // autocast state; the out-pointers are valid locals.
        #[allow(unsafe_code)]
        let entered = unsafe {
            ffi::selfsup_autocast_enter(
                device_type,
                scalar_type(kind),
                &mut prev_enabled,
                &mut prev_dtype,
            )
        };
        if !entered {
            return Err(Error::Config {
                origin: "trainer.precision".into(),
                message: format!("libtorch refused autocast to {kind:?} on {device:?}"),
            });
        }
        Ok(Self {
            device_type,
            prev_enabled,
            prev_dtype,
        })
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: restores the state saved by `enter` on this thread.
        #[allow(unsafe_code)]
        unsafe {
            ffi::selfsup_autocast_exit(self.device_type, self.prev_enabled, self.prev_dtype)
        };
    }
}

/// Whether autocast is on for `device` on this thread.
pub fn is_enabled(device: Device) -> bool {
    let Ok(device_type) = device_type(device) else {
        return false;
    };
    // SAFETY: a read of libtorch's thread-local autocast flag.
    #[allow(unsafe_code)]
    unsafe {
        ffi::selfsup_autocast_is_enabled(device_type)
    }
}

/// Runs `f` with the forward pass at `precision` on `device`.
pub fn with_precision<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> Result<T> {
    match precision {
        Precision::Fp32 => Ok(f()),
        Precision::Bf16 => {
            let _guard = AutocastGuard::enter(device, Kind::BFloat16)?;
            Ok(f())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};
    use tch::Tensor;

    #[test]
    fn bf16_region_casts_matmuls_and_restores_fp32_after() {
        let vs = nn::VarStore::new(Device::Cpu);
        let linear = nn::linear(vs.root(), 8, 4, Default::default());
        let x = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
        assert!(!is_enabled(Device::Cpu));
        let inside = with_precision(Precision::Bf16, Device::Cpu, || {
            assert!(is_enabled(Device::Cpu));
            linear.forward(&x)
        })
        .unwrap();
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert!(!is_enabled(Device::Cpu));
        assert_eq!(linear.forward(&x).kind(), Kind::Float);
        assert_eq!(linear.ws.kind(), Kind::Float, "master weights stay fp32");
        // bf16 keeps about 3 significant digits.
        let diff = (inside.to_kind(Kind::Float) - linear.forward(&x))
            .abs()
            .max();
        assert!(diff.double_value(&[]) < 0.05, "{diff}");
    }

    #[test]
    fn nested_regions_restore_the_outer_setting() {
        let outer = AutocastGuard::enter(Device::Cpu, Kind::BFloat16).unwrap();
        {
            let _inner = AutocastGuard::enter(Device::Cpu, Kind::Half).unwrap();
            let y = Tensor::ones([2, 2], (Kind::Float, Device::Cpu))
                .matmul(&Tensor::ones([2, 2], (Kind::Float, Device::Cpu)));
            assert_eq!(y.kind(), Kind::Half);
        }
        let y = Tensor::ones([2, 2], (Kind::Float, Device::Cpu))
            .matmul(&Tensor::ones([2, 2], (Kind::Float, Device::Cpu)));
        assert_eq!(y.kind(), Kind::BFloat16);
        drop(outer);
        assert!(!is_enabled(Device::Cpu));
    }

    #[test]
    fn gradients_reach_fp32_weights_through_a_bf16_forward() {
        let vs = nn::VarStore::new(Device::Cpu);
        let linear = nn::linear(vs.root(), 8, 1, Default::default());
        let x = Tensor::randn([16, 8], (Kind::Float, Device::Cpu));
        let loss = with_precision(Precision::Bf16, Device::Cpu, || {
            linear.forward(&x).square().mean(Kind::Float)
        })
        .unwrap();
        loss.backward();
        assert_eq!(linear.ws.grad().kind(), Kind::Float);
        let expected = {
            let y = x.matmul(&linear.ws.tr()) + &linear.bs.as_ref().unwrap().detach();
            (y * 2.0 / 16.0).tr().matmul(&x)
        };
        let diff = (linear.ws.grad() - expected.detach())
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 0.05, "{diff}");
    }
}

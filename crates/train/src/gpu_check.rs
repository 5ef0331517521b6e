//! `selfsup gpu-check`: what a CUDA build can do on this machine, one line
//! per capability, each tried for real rather than read from a flag: CUDA
//! and cuDNN found, a bfloat16 autocast matmul on the GPU, and a one-GPU
//! NCCL process group that reduces and gathers (with gradient) a CUDA
//! tensor. `cargo xtask gpu-check` prints these next to the throughput
//! measurements.

use crate::autocast::AutocastGuard;
use crate::distributed::{ProcessGroup, ReduceOp, Store};
use crate::error::Error;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

/// What a check showed, or why it failed.
pub type Outcome = std::result::Result<String, String>;

/// One capability and what trying it showed.
#[derive(Debug)]
pub struct Row {
    /// What was tried.
    pub check: &'static str,
    /// What it showed, or why it failed.
    pub outcome: Outcome,
}

/// Tries each capability in turn; a later one is skipped (an error row)
/// when CUDA is not there.
pub fn run() -> Vec<Row> {
    let cuda = cuda_found();
    let have_cuda = cuda.is_ok();
    let mut rows = vec![Row {
        check: "CUDA found",
        outcome: cuda,
    }];
    let gated = |f: fn() -> Outcome| {
        if have_cuda {
            f()
        } else {
            Err("skipped: no CUDA".into())
        }
    };
    rows.push(Row {
        check: "cuDNN",
        outcome: gated(cudnn),
    });
    rows.push(Row {
        check: "bf16 autocast on CUDA",
        outcome: gated(bf16_autocast),
    });
    rows.push(Row {
        check: "one-GPU NCCL process group",
        outcome: gated(nccl_group),
    });
    rows
}

fn cuda_found() -> Outcome {
    if !tch::Cuda::is_available() {
        let why = if ProcessGroup::nccl_built() {
            "this CUDA build sees no GPU (driver or CUDA_VISIBLE_DEVICES)"
        } else {
            "a CPU build: run `cargo xtask setup --cuda` and build again"
        };
        return Err(why.into());
    }
    Ok(format!("{} device(s)", tch::Cuda::device_count()))
}

fn cudnn() -> Outcome {
    if tch::Cuda::cudnn_is_available() {
        Ok("available".into())
    } else {
        Err("libtorch reports no cuDNN".into())
    }
}

/// A matmul under bf16 autocast runs in bf16 and stays within bf16's
/// precision of the fp32 product.
fn bf16_autocast() -> Outcome {
    let device = Device::Cuda(0);
    tch::manual_seed(0);
    let a = Tensor::randn([256, 256], (Kind::Float, device));
    let b = Tensor::randn([256, 256], (Kind::Float, device));
    let exact = a.matmul(&b);
    let cast = {
        let _guard = AutocastGuard::enter(device, Kind::BFloat16).map_err(|e| e.to_string())?;
        a.matmul(&b)
    };
    if cast.kind() != Kind::BFloat16 {
        return Err(format!("the matmul ran in {:?}, not bf16", cast.kind()));
    }
    let error = (cast.to_kind(Kind::Float) - &exact)
        .abs()
        .max()
        .double_value(&[])
        / exact.abs().max().double_value(&[]);
    if error > 2e-2 {
        return Err(format!(
            "bf16 matmul off by {error:.1e} of the fp32 product's range"
        ));
    }
    Ok(format!("matmul in bf16, {error:.1e} of fp32's range off"))
}

/// A world of one over NCCL: all_reduce, all_gather and the gather's
/// gradient on a CUDA tensor.
fn nccl_group() -> Outcome {
    nccl_round_trip().map_err(|e: Error| e.to_string())
}

fn nccl_round_trip() -> crate::error::Result<String> {
    if !ProcessGroup::nccl_built() {
        return Err(Error::distributed("this build has no NCCL backend"));
    }
    let timeout = Duration::from_secs(60);
    let store = Store::serve("127.0.0.1", 0, 1, timeout)?;
    let group = ProcessGroup::with_backends(store, "selfsup/gpu-check", 0, 1, true, timeout)?;
    let device = Device::Cuda(0);
    let mut x = Tensor::arange(8, (Kind::Float, device));
    let expected = x.copy();
    group.all_reduce_(&mut x, ReduceOp::Sum)?;
    let gathered = group.all_gather(&x)?;
    let input = Tensor::ones([4, 2], (Kind::Float, device)).set_requires_grad(true);
    let with_grad = group.all_gather_with_grad(&input)?;
    (with_grad * 3.0).sum(Kind::Float).backward();
    let ok = x.device() == device
        && x.equal(&expected)
        && gathered.equal(&expected)
        && input
            .grad()
            .equal(&Tensor::full([4, 2], 3.0, (Kind::Float, device)));
    if !ok {
        return Err(Error::distributed("NCCL returned wrong values"));
    }
    Ok("all_reduce, all_gather and its gradient on cuda:0".into())
}

//! libtorch's multi-tensor kernels, through a small C++ shim
//! (`csrc/multi_tensor.cpp`) because tch 0.24 binds no op that takes a list
//! of tensors and returns nothing: the fused AdamW update
//! (`torch.optim.AdamW(fused=True)`) and gradient-norm clipping as
//! `torch.nn.utils.clip_grad_norm_` does it (`_foreach_norm`,
//! `_foreach_mul_`). A small transformer has ~50 parameter tensors; one
//! call instead of ten kernels each is what makes its update cheap.

use std::os::raw::c_char;
use tch::Tensor;

mod ffi {
    use std::os::raw::c_char;
    use torch_sys::C_tensor;

    #[allow(unsafe_code)]
    extern "C" {
        pub fn selfsup_fused_adamw(
            params: *const *const C_tensor,
            exp_avgs: *const *const C_tensor,
            exp_avg_sqs: *const *const C_tensor,
            count: i64,
            hyper: *const super::AdamWStep,
            error: *mut c_char,
            error_len: usize,
        ) -> bool;

        pub fn selfsup_clip_grad_norm(
            params: *const *const C_tensor,
            count: i64,
            max_norm: f64,
            error: *mut c_char,
            error_len: usize,
        ) -> bool;
    }
}

/// Hyper-parameters of one fused AdamW call (one parameter group), laid
/// out as the shim's `AdamWStep`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    /// Steps taken including this one (1 for the first update).
    pub step: f64,
    /// This group's learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// This group's decoupled weight decay.
    pub weight_decay: f64,
    /// Added to the denominator.
    pub eps: f64,
}

fn handles(tensors: &[Tensor]) -> Vec<*const torch_sys::C_tensor> {
    tensors.iter().map(Tensor::as_ptr).collect()
}

/// Panics with libtorch's message: the shim only fails on a broken
/// invariant (state shaped unlike its parameter), never on user input.
fn expect_ok(ok: bool, error: &[c_char], what: &str) {
    if !ok {
        let bytes: Vec<u8> = error
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        panic!("{what} failed: {}", String::from_utf8_lossy(&bytes));
    }
}

/// One AdamW update of `params` (those with a gradient) and their moments,
/// in place, as `torch.optim.AdamW(fused=True)`.
pub fn fused_adamw(params: &[Tensor], exp_avgs: &[Tensor], exp_avg_sqs: &[Tensor], h: AdamWStep) {
    assert!(
        params.len() == exp_avgs.len() && params.len() == exp_avg_sqs.len(),
        "one first and one second moment per parameter"
    );
    let (p, m, v) = (handles(params), handles(exp_avgs), handles(exp_avg_sqs));
    let mut error = [0 as c_char; 512];
    // SAFETY: every pointer is a live tch tensor handle borrowed for the
    // call; the shim copies the handles it keeps and writes at most
    // `error.len()` bytes into `error`.
    #[allow(unsafe_code)]
    let ok = unsafe {
        ffi::selfsup_fused_adamw(
            p.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            p.len() as i64,
            &h,
            error.as_mut_ptr(),
            error.len(),
        )
    };
    expect_ok(ok, &error, "fused AdamW");
}

/// Scales the gradients of `params` so their global L2 norm is at most
/// `max_norm`; the scale stays on the device (no host sync).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) {
    let p = handles(params);
    let mut error = [0 as c_char; 512];
    // SAFETY: as in `fused_adamw`.
    #[allow(unsafe_code)]
    let ok = unsafe {
        ffi::selfsup_clip_grad_norm(
            p.as_ptr(),
            p.len() as i64,
            max_norm,
            error.as_mut_ptr(),
            error.len(),
        )
    };
    expect_ok(ok, &error, "gradient clipping");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn with_grad(values: &[f32], grad: &[f32]) -> Tensor {
        let x = Tensor::from_slice(values).set_requires_grad(true);
        (&x * Tensor::from_slice(grad)).sum(Kind::Float).backward();
        x
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::try_from(&t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn clipping_scales_to_the_global_norm_and_skips_missing_gradients() {
        // Norms 5 and 12: global 13, so max_norm 6.5 halves every gradient.
        let a = with_grad(&[1.0, 1.0], &[3.0, 4.0]);
        let b = with_grad(&[1.0, 1.0, 1.0], &[0.0, 0.0, 12.0]);
        let unused = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let params = [a.shallow_clone(), unused.shallow_clone(), b.shallow_clone()];
        clip_grad_norm(&params, 6.5);
        let (ga, gb) = (values(&a.grad()), values(&b.grad()));
        assert!(
            (ga[0] - 1.5).abs() < 1e-5 && (ga[1] - 2.0).abs() < 1e-5,
            "{ga:?}"
        );
        assert!((gb[2] - 6.0).abs() < 1e-5, "{gb:?}");
        assert!(!unused.grad().defined());
        // Below the threshold nothing changes, up to the largest double.
        clip_grad_norm(&params, 100.0);
        clip_grad_norm(&params, f64::MAX);
        assert!((values(&a.grad())[0] - 1.5).abs() < 1e-6);
    }

    #[test]
    fn fused_adamw_skips_parameters_without_a_gradient() {
        let x = with_grad(&[1.0, -1.0], &[2.0, -2.0]);
        let idle = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let params = [x.shallow_clone(), idle.shallow_clone()];
        let zeros = || [x.zeros_like(), idle.zeros_like()];
        let (m, v) = (zeros(), zeros());
        let h = AdamWStep {
            step: 1.0,
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 0.5,
            eps: 1e-8,
        };
        fused_adamw(&params, &m, &v, h);
        // First step: decay by (1 − 0.05), then lr·sign(grad).
        let got = values(&x.detach());
        assert!(
            (got[0] - 0.85).abs() < 1e-5 && (got[1] + 0.85).abs() < 1e-5,
            "{got:?}"
        );
        assert_eq!(values(&idle.detach()), vec![1.0, 1.0]);
        assert_eq!(values(&m[1]), vec![0.0, 0.0]);
    }
}

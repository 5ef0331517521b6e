//! Keeps large tensor buffers in the process between steps.
//!
//! libtorch allocates CPU tensors with glibc's malloc. By default glibc serves
//! blocks above its (dynamic) mmap threshold with fresh `mmap`s and trims freed
//! memory back to the system, so a training loop that frees and re-allocates
//! the same 10–100 MB activations every step page-faults them in again each
//! time. Measured on the MoCo v2 loss (`cargo xtask bench core`): 34–43 ms per
//! step with glibc's defaults, 23–31 ms with these settings, against 26–32 ms
//! for PyTorch. PyTorch's CUDA allocator caches for the same reason.

/// Raises glibc's mmap and trim thresholds (256 MB and 512 MB) so freed tensor
/// memory is reused instead of returned and faulted in again. No effect off glibc.
pub fn keep_tensor_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called once at
    // start-up, before any other thread exists, with valid parameter codes.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

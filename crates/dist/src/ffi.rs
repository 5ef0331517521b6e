//! The C entry points of `csrc/c10d.cpp`.

#![allow(unsafe_code)]

use std::os::raw::c_char;
use torch_sys::C_tensor;

/// Opaque `SelfsupStore`.
#[repr(C)]
pub struct RawStore {
    _private: [u8; 0],
}

/// Opaque `SelfsupGroup`.
#[repr(C)]
pub struct RawGroup {
    _private: [u8; 0],
}

extern "C" {
    pub fn selfsup_store_open(
        host: *const c_char,
        port: u16,
        serve: bool,
        listen_fd: i32,
        world: i32,
        timeout_ms: i64,
        error: *mut c_char,
        error_len: usize,
    ) -> *mut RawStore;
    pub fn selfsup_store_open_file(
        path: *const c_char,
        world: i32,
        timeout_ms: i64,
        error: *mut c_char,
        error_len: usize,
    ) -> *mut RawStore;
    pub fn selfsup_store_port(store: *const RawStore) -> u16;
    pub fn selfsup_store_free(store: *mut RawStore);
    pub fn selfsup_group_new(
        store: *const RawStore,
        prefix: *const c_char,
        name: *const c_char,
        rank: i32,
        world: i32,
        nccl: bool,
        loopback: bool,
        timeout_ms: i64,
        error: *mut c_char,
        error_len: usize,
    ) -> *mut RawGroup;
    pub fn selfsup_has_nccl() -> bool;
    pub fn selfsup_group_free(group: *mut RawGroup);
    pub fn selfsup_group_all_reduce(
        group: *mut RawGroup,
        tensor: *mut C_tensor,
        op: i32,
        error: *mut c_char,
        error_len: usize,
    ) -> bool;
    pub fn selfsup_group_all_gather(
        group: *mut RawGroup,
        output: *mut C_tensor,
        input: *mut C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> bool;
    pub fn selfsup_group_broadcast(
        group: *mut RawGroup,
        tensor: *mut C_tensor,
        root: i32,
        error: *mut c_char,
        error_len: usize,
    ) -> bool;
    pub fn selfsup_group_barrier(
        group: *mut RawGroup,
        error: *mut c_char,
        error_len: usize,
    ) -> bool;
    pub fn selfsup_all_gather_with_grad(
        group: *mut RawGroup,
        input: *const C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> *mut C_tensor;
}

//! The rendezvous store every rank of a run meets at: a file on one
//! machine, or libtorch's `TCPStore` served on one bound address.

#![allow(unsafe_code)]

use super::ffi;
use super::group::{c_string, message, millis, ERROR_LEN};
use crate::error::{Error, Result};
use std::os::raw::c_char;
use std::ptr::NonNull;
use std::time::Duration;

/// A c10d store: a `FileStore` shared by the ranks of one machine, or a
/// `TCPStore` that rank 0 (or a launcher) serves and every other
/// process connects to.
pub struct Store {
    pub(super) raw: NonNull<ffi::RawStore>,
    /// Every rank reaches it on this machine (a file, or a loopback
    /// address), so Gloo listens on loopback too.
    pub(super) loopback: bool,
}

// SAFETY: c10d stores are thread-safe in libtorch; the handle is only freed on drop.
unsafe impl Send for Store {}
unsafe impl Sync for Store {}

impl Store {
    /// Serves a store on `host:port` (port 0 picks a free one) for `world`
    /// ranks, listening on `host`'s address only: the socket is bound here
    /// and handed to libtorch, whose server, given a port alone, would
    /// listen on every interface.
    pub fn serve(host: &str, port: u16, world: usize, timeout: Duration) -> Result<Store> {
        use std::os::fd::IntoRawFd;
        let listener = std::net::TcpListener::bind((host, port)).map_err(|e| {
            Error::distributed(format!(
                "cannot serve the rendezvous store at {host}:{port}: {e}"
            ))
        })?;
        Self::open(host, port, Some(listener.into_raw_fd()), world, timeout)
    }

    /// Connects to the store at `host:port`, retrying until `timeout`.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Store> {
        Self::open(host, port, None, 0, timeout)
    }

    /// Opens the store kept in the file at `path`, shared by the `world`
    /// ranks of one machine: it opens no port (libtorch's TCPStore server
    /// listens on every interface, whatever host it is given), so a
    /// single-node run is not reachable from the network.
    pub fn file(path: &std::path::Path, world: usize, timeout: Duration) -> Result<Store> {
        let text = path.to_string_lossy();
        let c_path = c_string("store file", &text)?;
        let world = i32::try_from(world).map_err(|_| Error::distributed("world size too large"))?;
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: the strings and the buffer outlive the call; the shim
        // writes at most `error.len()` bytes.
        let raw = unsafe {
            ffi::selfsup_store_open_file(
                c_path.as_ptr(),
                world,
                millis(timeout),
                error.as_mut_ptr(),
                error.len(),
            )
        };
        NonNull::new(raw)
            .map(|raw| Store {
                raw,
                loopback: true,
            })
            .ok_or_else(|| {
                Error::distributed(format!(
                    "cannot open the rendezvous store file {text}: {}",
                    message(&error)
                ))
            })
    }

    /// `listen_fd`: serve on this bound socket (ownership passes to the
    /// store); `None`: connect.
    fn open(
        host: &str,
        port: u16,
        listen_fd: Option<i32>,
        world: usize,
        timeout: Duration,
    ) -> Result<Store> {
        let serve = listen_fd.is_some();
        let c_host = c_string("host", host)?;
        let world = i32::try_from(world).map_err(|_| Error::distributed("world size too large"))?;
        let mut error = [0 as c_char; ERROR_LEN];
        // SAFETY: the strings and the buffer outlive the call; the shim
        // writes at most `error.len()` bytes.
        let raw = unsafe {
            ffi::selfsup_store_open(
                c_host.as_ptr(),
                port,
                serve,
                listen_fd.unwrap_or(-1),
                world,
                millis(timeout),
                error.as_mut_ptr(),
                error.len(),
            )
        };
        let role = if serve { "serve" } else { "reach" };
        let loopback = is_loopback_host(host);
        NonNull::new(raw)
            .map(|raw| Store { raw, loopback })
            .ok_or_else(|| {
                Error::distributed(format!(
                    "cannot {role} the rendezvous store at {host}:{port}: {}",
                    message(&error)
                ))
            })
    }

    /// The port the store listens on (the chosen one when opened with port
    /// 0; 0 for a file store).
    pub fn port(&self) -> u16 {
        // SAFETY: `raw` is live until drop.
        unsafe { ffi::selfsup_store_port(self.raw.as_ptr()) }
    }
}

/// Whether `host` names this machine's loopback (127.0.0.0/8, ::1,
/// `localhost`): then every rank runs here.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: allocated by `selfsup_store_open`, freed once.
        unsafe { ffi::selfsup_store_free(self.raw.as_ptr()) }
    }
}

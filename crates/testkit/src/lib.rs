//! Test helpers shared by the iopoll, tcp, tls and end-to-end test suites:
//! watching threads park, bounded waits, process resource counts, socket
//! knobs, deterministic data, certificates, and peer processes. Not part of reseau; a dev-dependency only.
//!
//! Watching threads park and counting descriptors, threads and memory read
//! `/proc`, so those helpers exist on Linux only, and the tests that use
//! them are `#[cfg(target_os = "linux")]`; the rest builds everywhere.

#![allow(clippy::missing_panics_doc)]

pub mod certs;
pub mod child;
mod data;
mod process;
#[cfg(target_os = "linux")]
pub mod race;
mod sockets;
pub mod socks5;
pub mod task;
mod threads;
#[cfg(feature = "tls")]
pub mod tls_peer;

use std::time::{Duration, Instant};

pub use data::{read_line, stream_bytes};
#[cfg(target_os = "linux")]
pub use process::{Exhausted, count_fds, count_threads, rss};
pub use process::{raise_fd_limit, scratch_dir};
pub use sockets::{getsockopt_int, linger0, raises_sigpipe, setsockopt, small_rcvbuf, small_sndbuf};
pub use threads::{Worker, bounded, settles, within};
#[cfg(target_os = "linux")]
pub use threads::{any_parked, gettid, spawn_parked, spawn_tracked, until_parked};

/// How long a test waits for something that should happen promptly before
/// calling it a hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A deadline [`PATIENCE`] from now.
pub fn soon() -> Instant {
    Instant::now() + PATIENCE
}

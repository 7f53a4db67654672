//! Test helpers shared by the iopoll, tcp and tls test suites (Linux):
//! watching threads park, bounded waits, process resource counts, socket
//! knobs, deterministic data. Not part of reseau; a dev-dependency only.

#![allow(clippy::missing_panics_doc)]

pub mod certs;
mod data;
mod process;
pub mod race;
mod sockets;
pub mod socks5;
mod threads;

use std::time::Duration;

pub use data::stream_bytes;
pub use process::{Exhausted, count_fds, count_threads, raise_fd_limit, rss};
pub use sockets::{getsockopt_int, linger0, raises_sigpipe, setsockopt, small_rcvbuf, small_sndbuf};
pub use threads::{Worker, any_parked, bounded, gettid, settles, spawn_parked, spawn_tracked, until_parked, within};

/// How long a test waits for something that should happen promptly before
/// calling it a hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

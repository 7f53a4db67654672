//! The reseau reactor.
//!
//! `iopoll` is the bottom layer of reseau, in the place Go's runtime
//! netpoller and `internal/poll` hold: it tells a thread (or a task) when a
//! nonblocking descriptor is ready, when its deadline has passed, or that it
//! has been closed. `tcp` and `tls` are built on it.
//!
//! - [`Runtime`]: a mio poller plus a hierarchical timing wheel, driven by a
//!   background thread ([`Runtime::global`], [`Runtime::spawn`]) or by the
//!   owner's event loop ([`Runtime::new`], [`Runtime::turn`]).
//! - [`PollFd`]: one descriptor's deadlines and waiters (Go's `pollDesc`).
//!   Blocking waits park the calling thread directly on the fd; `Waker`-based
//!   waits go through the reactor.
//! - [`Timer`]: a callback armed in the wheel.
//! - [`park`]: the one way anything waits, on an OS thread or in a green
//!   thread, and the trait a green-thread runtime implements to plug in.
//! - [`sync`]: a mutex, a condition variable and Go's channel, waiting
//!   through `park`.
//! - [`DeadlineExceeded`] and [`Closed`]: how a wait fails.
//!
//! Deadlines are absolute [`std::time::Instant`]s (`CLOCK_MONOTONIC`); see
//! `docs/architecture.md` for the design and its measured costs.

/// reseau's one OS dispatch, for the OS seams of its crates (`sys` in
/// iopoll and in tcp): declares `mod os` from the `linux.rs` beside the
/// invoking file on Linux, and from its `bsd.rs` on the kqueue systems
/// (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly). A system in neither
/// list fails to build where the seam names `os`. Not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! os_module {
    () => {
        #[cfg(target_os = "linux")]
        #[path = "linux.rs"]
        mod os;
        #[cfg(any(
            target_vendor = "apple",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly"
        ))]
        #[path = "bsd.rs"]
        mod os;
    };
}

mod clock;
mod deadline;
mod error;
pub mod park;
mod poll_fd;
mod primitive;
mod runtime;
mod signal;
mod spin;
pub mod sync;
mod sys;
mod timer;
mod wheel;

pub use error::{Closed, DeadlineExceeded, Expired, IsTimeout, ReactorShutdown};
pub use poll_fd::PollFd;
pub use runtime::Runtime;
pub use timer::Timer;

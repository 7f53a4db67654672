//! macOS, iOS, FreeBSD, NetBSD, OpenBSD and DragonFly: the POSIX wait of
//! `sys/mod.rs` as it is (`poll` on the socket and a per-thread pipe).
//!
//! A per-thread kqueue could wait with nanosecond timeouts and wake through
//! `EVFILT_USER`, but every wait would register the socket and, unless the
//! socket fired, remove it again: two `kevent` calls where `poll` makes one
//! syscall. `poll` is also the path CI runs on Linux (the `portable-wait`
//! feature). The reactor thread itself uses kqueue, through mio.
//!
//! Preemptions: FreeBSD and OpenBSD count them per thread
//! (`RUSAGE_THREAD`); macOS, NetBSD and DragonFly do not, and the spinner
//! falls back to its portable check (see `spin`).

pub(crate) use super::{PipeWake as WakeFd, poll_wait as wait};

/// `POLLIN` covers a peer's end of stream; there is no `POLLRDHUP`.
pub(crate) const READ_EVENTS: libc::c_short = libc::POLLIN;

/// The calling thread's involuntary context switches so far, where the
/// system counts them per thread.
pub(crate) fn preemptions() -> Option<u64> {
    #[cfg(any(target_os = "freebsd", target_os = "openbsd"))]
    return super::thread_nivcsw(libc::RUSAGE_THREAD);
    #[cfg(not(any(target_os = "freebsd", target_os = "openbsd")))]
    return None;
}

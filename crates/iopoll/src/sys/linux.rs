//! Linux: a blocking wait is `ppoll` (nanosecond timeouts) on the socket
//! and the thread's eventfd, and the spinner counts preemptions with
//! `getrusage(RUSAGE_THREAD)`.
//!
//! The `portable-wait` feature swaps all three for the POSIX code of
//! `sys/mod.rs` (`poll`, a pipe, no per-thread rusage): what macOS runs, so
//! that CI runs it too (`make test-portable`).

#[cfg(not(feature = "portable-wait"))]
pub(crate) use self::native::{READ_EVENTS, WakeFd, preemptions, wait};
#[cfg(feature = "portable-wait")]
pub(crate) use self::portable::{READ_EVENTS, preemptions};
#[cfg(feature = "portable-wait")]
pub(crate) use super::{PipeWake as WakeFd, poll_wait as wait};

#[cfg(feature = "portable-wait")]
mod portable {
    /// `POLLIN` alone, as on macOS.
    pub(crate) const READ_EVENTS: libc::c_short = libc::POLLIN;

    /// None, as on macOS: the spinner falls back to its portable check.
    pub(crate) fn preemptions() -> Option<u64> {
        None
    }
}

#[cfg(not(feature = "portable-wait"))]
mod native {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    use crate::sys::{Interest, Woken, thread_nivcsw, wait_with};

    /// `POLLRDHUP` too: a peer's half-close wakes a reader.
    pub(crate) const READ_EVENTS: libc::c_short = libc::POLLIN | libc::POLLRDHUP;

    /// The calling thread's involuntary context switches so far.
    pub(crate) fn preemptions() -> Option<u64> {
        thread_nivcsw(libc::RUSAGE_THREAD)
    }

    /// A thread's wake-up line: a nonblocking, close-on-exec eventfd.
    #[derive(Debug)]
    pub(crate) struct WakeFd {
        fd: OwnedFd,
    }

    impl WakeFd {
        pub(crate) fn new() -> io::Result<WakeFd> {
            // SAFETY: plain syscall with constant flags; no pointers involved.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            Ok(WakeFd { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
        }

        /// Add one to the counter, making the eventfd readable.
        pub(crate) fn notify(&self) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an fd we own. A failure
            // can only be EAGAIN on counter overflow, when it is readable anyway.
            unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
        }

        /// Reset the counter to zero.
        pub(crate) fn clear(&self) {
            let mut count: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from an fd we own; EAGAIN
            // (already zero) is the only expected failure and means there is
            // nothing to clear.
            unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut count).cast(), 8) };
        }

        /// The descriptor a wait watches.
        pub(crate) fn fd(&self) -> &OwnedFd {
            &self.fd
        }
    }

    /// Block until `io`'s fd has its interest, `signal` is readable, or
    /// `timeout` (`None`: forever) passes; see `sys::wait_with`.
    pub(crate) fn wait(
        io: Option<(RawFd, Interest)>,
        signal: Option<&OwnedFd>,
        timeout: Option<Duration>,
    ) -> io::Result<Woken> {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        wait_with(io, signal, |fds, n| {
            // SAFETY: `fds` holds at least `n` entries and `ts` outlives the
            // call; a null sigmask keeps the thread's signal mask.
            unsafe { libc::ppoll(fds, n, ts_ptr, std::ptr::null()) }
        })
    }
}

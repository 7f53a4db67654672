//! The OS seam of the reactor: the few syscalls it makes itself.
//!
//! mio covers epoll and kqueue for the reactor thread. What is here is the
//! direct wait of a blocking caller (its socket plus its thread's wake-up
//! descriptor, with the deadline as the timeout), that wake-up descriptor,
//! and the preemption count the spinner reads (see `spin`).
//!
//! This file is the shared POSIX part: `poll(2)` on the socket and on a
//! per-thread pipe, which macOS and the BSDs use as it is. `linux.rs` swaps
//! in `ppoll` (nanosecond timeouts) and an eventfd, unless the
//! `portable-wait` feature asks for this POSIX path, which is how CI runs
//! the code macOS runs. `bsd.rs` picks the preemption count per system.
//! Nothing above this module names an OS.
//!
//! Every OS module provides the same items: `WakeFd` (`new`, `notify`,
//! `clear`, `fd`), `wait`, `READ_EVENTS` and `preemptions`. The types
//! they speak (`Interest`, `Woken`) are defined here, so the seam depends
//! on nothing above it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

// The one OS-specific module, `os`: `linux.rs`, or `bsd.rs` for the
// kqueue systems (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly), by the
// dispatch iopoll's `os_module!` writes once for both crates' seams.
crate::os_module!();

pub(crate) use os::{WakeFd, preemptions, wait};

/// Why a wait returned: what `wait` tells the waiter (`park`) above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The descriptor may be ready: retry the syscall.
    Ready,
    /// The waiter's wake-up descriptor was signalled (its `Waker` was
    /// woken), or the wait ended early.
    Signalled,
    /// The deadline passed.
    Elapsed,
}

/// Which readiness a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable: data, end of stream, an error, or a pending connection.
    Readable,
    /// Writable: room in the send buffer, a finished connect, or an error.
    Writable,
}

/// Whether `fd` has `interest` right now (or is in error), without waiting.
pub(crate) fn is_ready(fd: RawFd, interest: Interest) -> bool {
    let mut pfd = libc::pollfd { fd, events: events(interest), revents: 0 };
    // SAFETY: one valid pollfd on the stack; zero timeout.
    unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
}

/// The `poll` events that stand for `interest` on this system.
fn events(interest: Interest) -> libc::c_short {
    match interest {
        Interest::Readable => os::READ_EVENTS,
        Interest::Writable => libc::POLLOUT,
    }
}

/// The calling thread's involuntary context switches so far, from
/// `getrusage(who)`. `who` must be a per-thread selector.
#[allow(dead_code)] // not every configuration has a per-thread rusage
fn thread_nivcsw(who: libc::c_int) -> Option<u64> {
    // SAFETY: rusage is plain old data; getrusage fills it for this thread.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage to write into.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    (rc == 0).then(|| u64::try_from(ru.ru_nivcsw).unwrap_or(0))
}

/// The wake-up line of one thread: a nonblocking pipe whose read end a
/// wait watches, written to wake it.
#[derive(Debug)]
pub(crate) struct PipeWake {
    read: OwnedFd,
    write: OwnedFd,
}

#[allow(dead_code)] // Linux builds it only with the `portable-wait` feature
impl PipeWake {
    /// Both ends nonblocking and close-on-exec. `pipe2` would set the flags
    /// atomically, but macOS has no `pipe2`, and this is the code it runs:
    /// as std does there, another thread's fork-and-exec between the two
    /// calls can inherit the pipe.
    pub(crate) fn new() -> io::Result<PipeWake> {
        let mut fds = [-1 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe succeeded: both descriptors are new and owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            set_nonblocking_cloexec(fd.as_raw_fd())?;
        }
        Ok(PipeWake { read, write })
    }

    /// Make the read end readable. A full pipe (`EAGAIN`) is readable
    /// already, so a failed write loses nothing.
    pub(crate) fn notify(&self) {
        let byte = 1u8;
        // SAFETY: writes one byte from a live u8 to a descriptor we own.
        unsafe { libc::write(self.write.as_raw_fd(), (&raw const byte).cast(), 1) };
    }

    /// Drain the pipe, so the next wait sleeps until the next `notify`.
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads at most `buf.len()` bytes into `buf`, from a
            // nonblocking descriptor we own.
            let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // Empty (`EAGAIN`), or the last bytes were read: done.
            if n < buf.len() as libc::ssize_t {
                return;
            }
        }
    }

    /// The descriptor a wait watches.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.read
    }
}

/// `O_NONBLOCK` and `FD_CLOEXEC` on `fd`, for systems (or calls) that cannot
/// set them at creation.
fn set_nonblocking_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns; plain integer flags.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd_fl = libc::fcntl(fd, libc::F_GETFD);
        if fd_fl < 0 || libc::fcntl(fd, libc::F_SETFD, fd_fl | libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The POSIX wait: `poll` on `io` and `signal` for up to `timeout`, whose
/// milliseconds are rounded up (a wait never ends before its deadline; it
/// may end up to a millisecond after, as a wheel tick does). Longer than
/// `poll` can wait (24 days) reads as `Elapsed` early: callers re-check
/// their deadline and wait again.
#[allow(dead_code)] // Linux runs it only with the `portable-wait` feature
pub(crate) fn poll_wait(
    io: Option<(RawFd, Interest)>,
    signal: Option<&OwnedFd>,
    timeout: Option<Duration>,
) -> io::Result<Woken> {
    let ms = timeout.map_or(-1, |t| {
        let ms = t.as_nanos().div_ceil(1_000_000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    });
    wait_with(io, signal, |fds, n| {
        // SAFETY: `fds` is live for the call and holds at least `n` entries.
        unsafe { libc::poll(fds, n, ms) }
    })
}

/// The body every wait shares: `io` and `signal` as pollfds, handed to
/// `poll` (which may be `poll` or `ppoll`), and its answer read back.
/// A signal interrupting the wait reads as `Elapsed`. With neither an fd
/// nor a signal, this sleeps for the timeout.
fn wait_with(
    io: Option<(RawFd, Interest)>,
    signal: Option<&OwnedFd>,
    poll: impl FnOnce(*mut libc::pollfd, libc::nfds_t) -> libc::c_int,
) -> io::Result<Woken> {
    // A negative fd is ignored by poll: it stands for "no signal".
    let sig = libc::pollfd { fd: signal.map_or(-1, |s| s.as_raw_fd()), events: libc::POLLIN, revents: 0 };
    let mut fds = match io {
        Some((fd, interest)) => [libc::pollfd { fd, events: events(interest), revents: 0 }, sig],
        None => [sig, sig],
    };
    let n_fds = if io.is_some() { 2 } else { 1 };
    if poll(fds.as_mut_ptr(), n_fds) < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted { Ok(Woken::Elapsed) } else { Err(err) };
    }
    if io.is_none() {
        return Ok(if fds[0].revents != 0 { Woken::Signalled } else { Woken::Elapsed });
    }
    if fds[0].revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(if fds[0].revents != 0 {
        Woken::Ready
    } else if fds[1].revents != 0 {
        Woken::Signalled
    } else {
        Woken::Elapsed
    })
}

/// The POSIX path is what macOS and the BSDs run: tested here on every
/// build, whichever wait this build uses.
#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_notified_pipe_wakes_the_wait_until_cleared() {
        let wake = PipeWake::new().unwrap();
        assert_eq!(poll_wait(None, Some(wake.fd()), Some(Duration::ZERO)).unwrap(), Woken::Elapsed);
        wake.notify();
        assert_eq!(poll_wait(None, Some(wake.fd()), None).unwrap(), Woken::Signalled);
        assert_eq!(poll_wait(None, Some(wake.fd()), None).unwrap(), Woken::Signalled, "stays until cleared");
        wake.clear();
        assert_eq!(poll_wait(None, Some(wake.fd()), Some(Duration::ZERO)).unwrap(), Woken::Elapsed);
    }

    #[test]
    fn notifying_a_full_pipe_neither_blocks_nor_needs_more_than_one_clear() {
        let wake = PipeWake::new().unwrap();
        // Far more than any pipe's capacity (16-64 KiB).
        for _ in 0..200_000 {
            wake.notify();
        }
        wake.clear();
        assert_eq!(poll_wait(None, Some(wake.fd()), Some(Duration::ZERO)).unwrap(), Woken::Elapsed);
        wake.notify();
        assert_eq!(poll_wait(None, Some(wake.fd()), None).unwrap(), Woken::Signalled);
    }

    #[test]
    fn the_pipe_is_nonblocking_and_close_on_exec() {
        let wake = PipeWake::new().unwrap();
        for fd in [wake.read.as_raw_fd(), wake.write.as_raw_fd()] {
            // SAFETY: fcntl queries on descriptors `wake` owns.
            let (fl, fd_fl) = unsafe { (libc::fcntl(fd, libc::F_GETFL), libc::fcntl(fd, libc::F_GETFD)) };
            assert_ne!(fl & libc::O_NONBLOCK, 0);
            assert_ne!(fd_fl & libc::FD_CLOEXEC, 0);
        }
    }

    #[test]
    fn readiness_beats_the_signal_and_the_timeout() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let wake = PipeWake::new().unwrap();
        let io = Some((a.as_raw_fd(), Interest::Readable));
        assert_eq!(poll_wait(io, Some(wake.fd()), Some(Duration::ZERO)).unwrap(), Woken::Elapsed);
        assert_eq!(poll_wait(Some((a.as_raw_fd(), Interest::Writable)), None, None).unwrap(), Woken::Ready);
        wake.notify();
        assert_eq!(poll_wait(io, Some(wake.fd()), None).unwrap(), Woken::Signalled);
        b.write_all(b"x").unwrap();
        assert_eq!(poll_wait(io, Some(wake.fd()), None).unwrap(), Woken::Ready);
        assert!(is_ready(a.as_raw_fd(), Interest::Readable));
    }

    #[test]
    fn end_of_stream_is_readable() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert_eq!(poll_wait(Some((a.as_raw_fd(), Interest::Readable)), None, None).unwrap(), Woken::Ready);
        assert_eq!(wait(Some((a.as_raw_fd(), Interest::Readable)), None, None).unwrap(), Woken::Ready);
    }

    #[test]
    fn a_closed_descriptor_is_an_error_not_a_hang() {
        // A number no test can have open (a closed one could be reused at
        // once by a test running in parallel).
        let fd = libc::c_int::MAX;
        let err = poll_wait(Some((fd, Interest::Readable)), None, Some(Duration::from_secs(5))).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn a_sub_millisecond_timeout_never_ends_early() {
        for micros in [1, 250, 999, 1_001] {
            let t = Duration::from_micros(micros);
            let start = Instant::now();
            assert_eq!(poll_wait(None, None, Some(t)).unwrap(), Woken::Elapsed);
            assert!(start.elapsed() >= t, "{micros} µs");
        }
    }
}

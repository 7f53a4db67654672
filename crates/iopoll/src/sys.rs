//! The OS seam: the few syscalls the reactor makes itself. mio covers
//! epoll/kqueue; what is here is the direct wait of a blocking caller
//! (`ppoll` on its socket plus its thread's eventfd) and that eventfd.
//!
//! Linux only for now; another OS slots in behind these three functions.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::park::Woken;

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

/// How many times the calling thread has been preempted so far.
pub(crate) fn involuntary_switches() -> libc::c_long {
    // SAFETY: rusage is plain old data; getrusage fills it for this thread.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage to write into.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru.ru_nivcsw
}

/// A nonblocking, close-on-exec eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant flags; no pointers involved.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Add one to an eventfd's counter, making it readable.
pub(crate) fn eventfd_notify(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an fd we own. A failure can
    // only be EAGAIN on counter overflow, when it is readable anyway.
    unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
}

/// Reset an eventfd's counter to zero.
pub(crate) fn eventfd_clear(fd: &OwnedFd) {
    let mut count: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64 from an fd we own; EAGAIN (already
    // zero) is the only expected failure and means there is nothing to clear.
    unsafe { libc::read(fd.as_raw_fd(), (&raw mut count).cast(), 8) };
}

/// Block until `io`'s fd has its interest, `signal` is readable, or
/// `timeout` (`None`: forever) passes. Nanosecond timeouts: `ppoll`, not
/// `poll`. A signal interrupting the wait reads as `Elapsed`. With neither
/// an fd nor a signal, this sleeps for `timeout`.
pub(crate) fn wait(
    io: Option<(RawFd, Interest)>,
    signal: Option<&OwnedFd>,
    timeout: Option<Duration>,
) -> io::Result<Woken> {
    // A negative fd is ignored by poll: it stands for "no signal".
    let sig = libc::pollfd { fd: signal.map_or(-1, |s| s.as_raw_fd()), events: libc::POLLIN, revents: 0 };
    let mut fds = match io {
        Some((fd, interest)) => [libc::pollfd { fd, events: events(interest), revents: 0 }, sig],
        None => [sig, sig],
    };
    let n_fds = if io.is_some() { 2 } else { 1 };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` and `ts` outlive the call and `n_fds` <= fds.len(); a
    // null sigmask keeps the thread's signal mask.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), n_fds, ts_ptr, std::ptr::null()) };
    if n < 0 {
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

fn events(interest: Interest) -> libc::c_short {
    match interest {
        Interest::Readable => libc::POLLIN | libc::POLLRDHUP,
        Interest::Writable => libc::POLLOUT,
    }
}

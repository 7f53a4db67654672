//! Socket options the tests set and read directly, and SIGPIPE detection.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Set a socket option, asserting that it took.
pub fn setsockopt<T>(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int, value: T) {
    // SAFETY: `value` lives across the call and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Read an integer socket option.
pub fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live and sized for an int option.
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(v) }
}

/// Make closing `s` send RST instead of FIN (SO_LINGER on, timeout 0).
pub fn linger0(s: &impl AsRawFd) {
    setsockopt(s, libc::SOL_SOCKET, libc::SO_LINGER, libc::linger { l_onoff: 1, l_linger: 0 });
}

/// Shrink the kernel send buffer, so a writer nobody reads from blocks
/// after a few KiB.
pub fn small_sndbuf(s: &impl AsRawFd) {
    setsockopt(s, libc::SOL_SOCKET, libc::SO_SNDBUF, 4096 as libc::c_int);
}

/// Shrink the kernel receive buffer (set on a listener, accepted sockets
/// inherit it).
pub fn small_rcvbuf(s: &impl AsRawFd) {
    setsockopt(s, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096 as libc::c_int);
}

/// Run `f` with SIGPIPE blocked on this thread and report whether one was
/// raised meanwhile (it stays pending, where it can be seen, and is then
/// consumed), whatever the process-wide disposition.
pub fn raises_sigpipe<T>(f: impl FnOnce() -> T) -> (T, bool) {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` and `old` are valid sigsets; the mask change is local to
    // this thread and undone below.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old), 0);
    }
    let r = f();
    // SAFETY: a valid sigset to fill in.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `pending` is a valid sigset.
    let raised = unsafe {
        libc::sigpending(&mut pending);
        libc::sigismember(&pending, libc::SIGPIPE) == 1
    };
    if raised {
        let mut sig: libc::c_int = 0;
        // SAFETY: consumes the pending SIGPIPE before it is unblocked (it is
        // pending, so this returns at once); `set` holds only SIGPIPE.
        unsafe { libc::sigwait(&set, &mut sig) };
    }
    // SAFETY: restores this thread's previous mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    (r, raised)
}

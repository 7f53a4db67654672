//! Helpers shared by the tcp integration tests. Each test file uses a
//! different subset.
#![allow(dead_code, unused_imports)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use tcp::{Closed, Conn, DeadlineExceeded, Listener};

pub use testkit::{PATIENCE, getsockopt_int, raise_fd_limit, stream_bytes, within};
// Watching threads park and counting descriptors read `/proc`.
#[cfg(target_os = "linux")]
pub use testkit::{count_fds, gettid, spawn_parked, spawn_tracked, until_parked};

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub fn listener() -> Listener {
    Listener::bind(loopback()).unwrap()
}

/// A connected pair through `l`: (client, server).
pub fn pair_on(l: &Listener) -> (Conn, Conn) {
    let client = tcp::connect_addr(l.local_addr().unwrap()).unwrap();
    let server = l.accept().unwrap();
    assert_eq!(client.local_addr().unwrap(), server.remote_addr().unwrap());
    (client, server)
}

/// A connected pair on a fresh loopback listener: (client, server).
pub fn pair() -> (Conn, Conn) {
    pair_on(&listener())
}

pub fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && DeadlineExceeded::is(e)
}

#[track_caller]
pub fn assert_timeout(e: &io::Error) {
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "expected a deadline error, got {e:?}");
    assert!(DeadlineExceeded::is(e), "TimedOut without DeadlineExceeded inside: {e:?}");
    assert_eq!(e.to_string(), "i/o timeout");
}

#[track_caller]
pub fn assert_closed(e: &io::Error) {
    assert!(Closed::is(e), "expected Closed, got {e:?}");
    assert_ne!(e.kind(), io::ErrorKind::TimedOut, "Closed must not look like a timeout: {e:?}");
    assert!(!DeadlineExceeded::is(e));
    assert_eq!(e.to_string(), "use of closed network connection");
}

#[track_caller]
pub fn assert_timeout_result<T: std::fmt::Debug>(r: io::Result<T>) {
    match r {
        Ok(v) => panic!("expected a deadline error, got Ok({v:?})"),
        Err(e) => assert_timeout(&e),
    }
}

#[track_caller]
pub fn assert_closed_result<T: std::fmt::Debug>(r: io::Result<T>) {
    match r {
        Ok(v) => panic!("expected Closed, got Ok({v:?})"),
        Err(e) => assert_closed(&e),
    }
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: `value` lives across the call and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Shrink the kernel send buffer, so a writer that nobody reads from
/// blocks after a few KiB instead of a few MiB.
pub fn small_sndbuf(c: &impl AsRawFd) {
    setsockopt_int(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
}

pub fn small_rcvbuf(c: &impl AsRawFd) {
    setsockopt_int(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
}

/// Wait (without consuming anything) until `fd` is readable.
pub fn raw_wait_readable(fd: &impl AsRawFd) {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, PATIENCE.as_millis() as libc::c_int) };
    assert_eq!(n, 1, "fd {} not readable in time", fd.as_raw_fd());
}

/// Write until the socket's buffers are full: keep writing under a short
/// write deadline until it expires, then clear the deadline again. Returns
/// how many bytes went out.
pub fn fill_send_buffer(c: &Conn) -> usize {
    let chunk = [0x5au8; 16 * 1024];
    let mut total = 0;
    let mut w = c;
    loop {
        c.set_write_deadline(Some(Instant::now() + Duration::from_millis(20))).unwrap();
        let err = loop {
            match io::Write::write(&mut w, &chunk) {
                Ok(n) => total += n,
                Err(e) => break e,
            }
        };
        assert_timeout(&err);
        // Timed out and not writable: a blocking write would park now.
        if !poll_writable_now(c) {
            break;
        }
    }
    c.set_write_deadline(None).unwrap();
    total
}

/// Whether `fd` is writable right now (zero-timeout poll).
pub fn poll_writable_now(fd: &impl AsRawFd) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1
}

/// Close `c` from another thread, failing instead of hanging if the close
/// does not return (it waits for calls in flight, so a waiter that is never
/// woken would block it forever).
pub fn close_soon(c: &std::sync::Arc<Conn>) {
    let c = c.clone();
    within(PATIENCE, "Conn::close with a waiter parked", move || c.close().unwrap());
}

/// [`close_soon`] for a listener.
pub fn close_listener_soon(l: &std::sync::Arc<Listener>) {
    let l = l.clone();
    within(PATIENCE, "Listener::close with accept parked", move || l.close().unwrap());
}

//! Helpers shared by the tcp integration tests. Each test file uses a
//! different subset.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tcp::{Closed, Conn, DeadlineExceeded, Listener};

/// How long a test waits for something that should happen promptly before
/// it declares a hang. Generous: CI machines are small and loaded.
pub const PATIENCE: Duration = Duration::from_secs(10);

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

pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Block until thread `tid` sits in `ppoll`: parked in a wait, not merely
/// on its way there. Bounded by [`PATIENCE`].
pub fn until_parked(tid: i32) {
    let path = format!("/proc/self/task/{tid}/syscall");
    let deadline = Instant::now() + PATIENCE;
    let ppoll = libc::SYS_ppoll.to_string();
    loop {
        let s = std::fs::read_to_string(&path).unwrap_or_default();
        if s.split_whitespace().next() == Some(ppoll.as_str()) {
            return;
        }
        assert!(Instant::now() < deadline, "thread {tid} never parked ({s:?})");
        thread::yield_now();
    }
}

/// Spawn `f` on a new thread and return its tid and a channel that receives
/// what it returns (with the instant it returned).
pub fn spawn_tracked<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (i32, mpsc::Receiver<(T, Instant)>) {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let r = f();
        let _ = tx.send((r, Instant::now()));
    });
    (tid_rx.recv().unwrap(), rx)
}

/// [`spawn_tracked`], then wait until the thread is parked in `ppoll`.
pub fn spawn_parked<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<(T, Instant)> {
    let (tid, rx) = spawn_tracked(f);
    until_parked(tid);
    rx
}

/// Run `f` on its own thread and fail (instead of hanging) if it takes
/// longer than `limit`. A panic in `f` is propagated.
pub fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            h.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!(),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?} (hang)"),
    }
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

pub fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live and sized for an int option.
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(v) }
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

/// Deterministic pseudo-random bytes: byte `i` of stream `seed` depends
/// only on `(seed, i)`, so writer and reader agree whatever the chunking.
pub fn stream_bytes(seed: u64, offset: u64, out: &mut [u8]) {
    let mut i = 0usize;
    let mut pos = offset;
    while i < out.len() {
        let block = splitmix64(seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(out.len() - i);
        out[i..i + n].copy_from_slice(&block[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Raise the soft open-file limit to `want` (or the hard limit, if lower):
/// harmless to other tests, and keeps tests that hold hundreds of sockets
/// from failing on hosts with a 1024 default.
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let target = (want as libc::rlim_t).min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the
        // hard one needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

/// How many descriptors this process has open.
pub fn count_fds() -> usize {
    // The directory handle itself shows up in the listing; don't count it.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
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

//! Connected pairs on loopback, and driving a connection into the state a
//! test needs: its send buffer full, its peer's data waiting, closed while
//! someone waits on it.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use tcp::{Conn, Listener};
use testkit::{PATIENCE, within};

use super::addrs::loopback;

/// A listener on any free port of `127.0.0.1`.
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

/// Accept one connection on `l`, failing instead of hanging if none comes
/// within [`PATIENCE`] (the deadline stays set on `l`).
pub fn accept(l: &Listener) -> Conn {
    l.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    l.accept().expect("accept")
}

/// Bytes written on `client` arrive on `server`, and back.
pub fn assert_carries(client: &mut Conn, server: &mut (impl Read + Write)) {
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").unwrap();
    client.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}

/// Wait (without consuming anything) until `fd` is readable.
pub fn raw_wait_readable(fd: &impl AsRawFd) {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, PATIENCE.as_millis() as libc::c_int) };
    assert_eq!(n, 1, "fd {} not readable in time", fd.as_raw_fd());
}

/// Whether `fd` is writable right now (zero-timeout poll).
pub fn poll_writable_now(fd: &impl AsRawFd) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1
}

/// Fill `c`'s send buffer (and the peer's receive buffer) without waiting
/// and without touching `c`'s deadlines: nonblocking sends until the kernel
/// says no, and is still saying no, so a blocking write would park now.
pub fn fill_send_buffer(c: &Conn) {
    let chunk = [0x5au8; 64 * 1024];
    loop {
        loop {
            // SAFETY: sends from a live buffer on a socket `c` keeps open;
            // MSG_DONTWAIT never blocks, MSG_NOSIGNAL never raises SIGPIPE.
            let n = unsafe {
                libc::send(c.as_raw_fd(), chunk.as_ptr().cast(), chunk.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "filling the send buffer: {e}");
                break;
            }
        }
        if !poll_writable_now(c) {
            return;
        }
    }
}

/// Close `c` from another thread, failing instead of hanging if the close
/// does not return (it waits for calls in flight, so a waiter that is never
/// woken would block it forever).
pub fn close_soon(c: &Arc<Conn>) {
    let c = c.clone();
    within(PATIENCE, "Conn::close with a waiter parked", move || c.close().unwrap());
}

/// [`close_soon`] for a listener.
pub fn close_listener_soon(l: &Arc<Listener>) {
    let l = l.clone();
    within(PATIENCE, "Listener::close with accept parked", move || l.close().unwrap());
}

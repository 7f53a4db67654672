//! Unix domain stream sockets, with the contract of [`tcp::Conn`](crate::Conn)
//! and [`tcp::Listener`](crate::Listener): blocking calls under absolute
//! per-direction deadlines that other threads may move, `close` from any
//! thread waking every blocked call with [`Closed`](crate::Closed), green
//! threads, `poll_*` methods for `Waker`s, one reader and one writer at
//! once.
//!
//! On top of that: [`Conn::pair`], the peer's credentials
//! ([`Conn::peer_cred`]), and passing descriptors between processes
//! ([`Conn::send_with_fds`], [`Conn::recv_with_fds`]).
//!
//! Addresses are std's [`std::os::unix::net::SocketAddr`]: a path, an
//! abstract name on Linux (made with
//! `std::os::linux::net::SocketAddrExt::from_abstract_name`, bound with
//! [`Listener::bind_addr`] and reached with [`connect_addr`]), or unnamed
//! (the usual client side).
//!
//! A listener bound to a path removes the socket file when it closes, as
//! Go's does. Binding where a file already exists fails with the OS's
//! `AddrInUse` error: a server that knows no other instance is running
//! removes a stale file first.
//!
//! ```no_run
//! use std::io::{Read, Write};
//!
//! let path = std::env::temp_dir().join("example.sock");
//! // A file left by a server that died: nobody listens there any more.
//! match std::fs::remove_file(&path) {
//!     Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
//!     _ => {}
//! }
//! let listener = tcp::unix::listen(&path)?;
//! std::thread::spawn(move || {
//!     for conn in listener.incoming() {
//!         let mut conn = conn.unwrap();
//!         let mut buf = [0; 512];
//!         while let Ok(n @ 1..) = conn.read(&mut buf) {
//!             conn.write_all(&buf[..n]).unwrap();
//!         }
//!     }
//! });
//! let mut c = tcp::unix::connect(&path)?;
//! c.write_all(b"hello")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod conn;
mod listener;

use std::io;
use std::path::Path;

pub use conn::Conn;
pub use listener::Listener;

/// Connect to the socket at `path`, waiting on the global runtime.
///
/// Fails with the OS's error: `NotFound` when there is no such file,
/// `ConnectionRefused` when nobody listens there (a stale file), and on
/// Linux `WouldBlock` when the listener's queue is full (as in Go).
pub fn connect(path: impl AsRef<Path>) -> io::Result<Conn> {
    connect_addr(&std::os::unix::net::SocketAddr::from_pathname(path)?)
}

/// Connect to `addr`: a path, or on Linux an abstract name.
pub fn connect_addr(addr: &std::os::unix::net::SocketAddr) -> io::Result<Conn> {
    Conn::connect(addr)
}

/// Listen at `path`, which must not exist yet: the same as
/// [`Listener::bind`].
pub fn listen(path: impl AsRef<Path>) -> io::Result<Listener> {
    Listener::bind(path)
}

/// Who is at the other end of a connection, as the kernel recorded it
/// when the connection was made ([`Conn::peer_cred`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The peer's process id: on Linux only (`SO_PEERCRED`); `None` on
    /// macOS and the BSDs, whose `getpeereid` gives none.
    pub pid: Option<i32>,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

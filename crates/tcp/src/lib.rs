//! TCP on the reseau reactor.
//!
//! Sockets are nonblocking and owned by the reactor; the API blocks the
//! calling thread (like `std::net`) with Go's deadline model on top:
//!
//! - [`Conn`] reads and writes with `std::io::{Read, Write}`, from one
//!   reader and one writer thread at once, under absolute read and write
//!   deadlines that other threads may move while a call is blocked.
//! - [`Listener`] accepts, under an accept deadline.
//! - [`connect`], [`listen()`], [`Dialer`] and [`ListenConfig`] take
//!   `"host:port"` strings: names go through a [`resolve::Resolver`], and
//!   dual-stack names are dialed with happy eyeballs.
//!
//! - [`unix`]: Unix domain sockets with the same contract, plus peer
//!   credentials and passing descriptors.
//! - [`Connection`]: the trait `Conn`, `unix::Conn` and `tls::Conn` share,
//!   for code over `Box<dyn Connection>`; [`Addr`] is either address kind.
//! - [`ListenConfig::reuse_port`], [`ListenConfig::control`],
//!   [`Dialer::control`] and [`KeepAliveConfig`]: socket control, as Go's.
//!
//! - [`Dialer::connect_async`]: the dial as a future that never blocks
//!   the thread polling it, on any executor. Features `tokio` and
//!   `futures-io` (off by default) add those crates' `AsyncRead` +
//!   `AsyncWrite` for [`Conn`], [`unix::Conn`] and their `&Conn`; shutdown
//!   is `close_write`. Their wakers come from reseau's reactor.
//!
//! Closing a connection or listener from any thread wakes every call
//! blocked on it with [`Closed`]; a passed deadline fails calls with
//! [`std::io::ErrorKind::TimedOut`] carrying [`DeadlineExceeded`].
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::time::{Duration, Instant};
//!
//! let listener = tcp::listen("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! std::thread::spawn(move || {
//!     for conn in listener.incoming() {
//!         let mut conn = conn.unwrap();
//!         let mut buf = [0; 512];
//!         // An idle timeout: each read must come within 10 s of the last.
//!         loop {
//!             conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(10))).unwrap();
//!             match conn.read(&mut buf) {
//!                 Ok(0) | Err(_) => break,
//!                 Ok(n) => conn.write_all(&buf[..n]).unwrap(),
//!             }
//!         }
//!     }
//! });
//! let mut c = tcp::connect_addr(addr)?;
//! c.write_all(b"hello")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// `OpError` keeps Go's `net.OpError` fields public and by value (`op`,
// `net`, `addr`, `err`, ...), so results carry a large `OpError` by value.
#![allow(clippy::result_large_err)]

mod addr;
mod async_io;
mod conn;
mod connection;
mod dial;
mod error;
mod fd;
mod listen_config;
mod listener;
mod refcount;
pub mod resolve;
mod sockopts;
pub mod socks5;
mod sys;
pub mod unix;

use std::net::SocketAddr;

pub use addr::{Network, join_host_port, split_host_port};
pub use conn::Conn;
pub use connection::{Addr, Connection};
pub use dial::{DEFAULT_FALLBACK_DELAY, Dialer};
pub use error::{AddressError, Error, LookupError, OpError};
pub use iopoll::{Closed, DeadlineExceeded, Expired, IsTimeout, Runtime};
pub use listen_config::ListenConfig;
pub use listener::Listener;
pub use sockopts::KeepAliveConfig;

/// Resolve `address` (`"host:port"`) and connect with the default
/// [`Dialer`].
pub fn connect(address: &str) -> Result<Conn, OpError> {
    Dialer::new().connect(address)
}

/// Connect to `addr` with the default [`Dialer`].
pub fn connect_addr(addr: SocketAddr) -> Result<Conn, OpError> {
    Dialer::new().connect_addr(addr)
}

/// Listen on `address` (`"host:port"`; `""` host: every interface, port 0:
/// any free port) with the default [`ListenConfig`].
pub fn listen(address: &str) -> Result<Listener, OpError> {
    ListenConfig::new().listen(address)
}

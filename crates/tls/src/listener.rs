//! `Listener`: accepts TCP connections and wraps them as TLS servers.
//!
//! # Locks
//! `config` (a `parking_lot` mutex) is held only to clone or replace the
//! `Config`, never across an accept, a handshake or a user callback.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use parking_lot::Mutex;

use crate::config::Config;
use crate::conn::Conn;
use crate::error::Error;

/// A TLS listener. `accept` returns connections whose handshake runs on
/// first use (or on [`Conn::handshake`]), so a slow client never holds up
/// the accept loop.
///
/// ```no_run
/// use std::io::{Read, Write};
/// let config = tls::Config::builder().cert_file("cert.pem").key_file("key.pem").build()?;
/// let listener = tls::listen("127.0.0.1:8443", &config)?;
/// loop {
///     let mut conn = listener.accept()?;
///     std::thread::spawn(move || {
///         let mut buf = [0; 1024];
///         while let Ok(n) = conn.read(&mut buf) {
///             if n == 0 || conn.write_all(&buf[..n]).is_err() { break }
///         }
///     });
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Listener {
    tcp: tcp::Listener,
    /// The config for connections accepted from now on.
    config: Mutex<Config>,
}

impl Listener {
    /// Check the server configuration, then listen on `addr`.
    pub fn bind(addr: SocketAddr, config: &Config) -> Result<Listener, Error> {
        config.server_ctx().map_err(Error::Config)?;
        let tcp = tcp::Listener::bind(addr).map_err(Error::Io)?;
        Ok(Listener { tcp, config: Mutex::new(config.clone()) })
    }

    /// Serve TLS on an existing TCP listener.
    pub fn from_tcp(l: tcp::Listener, config: &Config) -> Result<Listener, Error> {
        config.server_ctx().map_err(Error::Config)?;
        Ok(Listener { tcp: l, config: Mutex::new(config.clone()) })
    }

    /// Serve connections accepted from now on with `config` (Go's
    /// `GetConfigForClient` for the common case): new certificates, trust,
    /// ALPN or versions, without closing the listening socket. Connections
    /// already accepted keep the config they were accepted with. `config`
    /// is checked as a server config first; an unusable one is an
    /// `Error::Config` and the listener keeps its current config.
    pub fn set_config(&self, config: &Config) -> Result<(), Error> {
        config.server_ctx().map_err(Error::Config)?;
        let old = std::mem::replace(&mut *self.config.lock(), config.clone());
        // The old config (perhaps its last reference) goes outside the lock.
        drop(old);
        Ok(())
    }

    /// The config for the next connection accepted.
    fn config(&self) -> Config {
        self.config.lock().clone()
    }

    /// Accept one connection (the handshake is left for its first use).
    /// An accept deadline or a close surfaces as `Error::Io`.
    pub fn accept(&self) -> Result<Conn, Error> {
        let tcp = self.tcp.accept().map_err(Error::Io)?;
        Conn::new_server(tcp, &self.config())
    }

    /// The `Waker` form of [`accept`](Listener::accept), for a listener made
    /// in a runtime that an event loop drives (see
    /// `tcp::Listener::from_std_in`). The handshake is left for the
    /// connection's first use, or [`Conn::poll_handshake`].
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Conn, Error>> {
        match self.tcp.poll_accept(cx) {
            Poll::Ready(Ok(tcp)) => Poll::Ready(Conn::new_server(tcp, &self.config())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Io(e))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Set the accept deadline.
    pub fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.tcp.set_deadline(d)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Alias of [`local_addr`](Listener::local_addr).
    pub fn addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Stop listening; a blocked `accept` fails with `Closed`.
    pub fn close(&self) -> io::Result<()> {
        self.tcp.close()
    }

    /// Whether [`close`](Listener::close) has not been called.
    pub fn is_open(&self) -> bool {
        self.tcp.is_open()
    }

    /// The TCP listener underneath.
    pub fn net_listener(&self) -> &tcp::Listener {
        &self.tcp
    }

    /// Accept connections in a loop, as [`tcp::Listener::incoming`] does;
    /// the iterator ends once the listener is closed. Each connection's
    /// handshake is left for its first use.
    pub fn incoming(&self) -> impl Iterator<Item = Result<Conn, Error>> + '_ {
        std::iter::from_fn(move || match self.accept() {
            Err(Error::Io(e)) if tcp::Closed::is(&e) => None,
            other => Some(other),
        })
    }
}

/// `tls::Listener(127.0.0.1:5000, active)`, or `closed`.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.local_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
        write!(f, "tls::Listener({addr}, {})", if self.is_open() { "active" } else { "closed" })
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener").field("tcp", &self.tcp).finish_non_exhaustive()
    }
}

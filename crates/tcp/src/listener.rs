//! `Listener`: a listening TCP socket with a blocking `accept`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Instant;

use iopoll::{Closed, Runtime};

use crate::conn::Conn;
use crate::fd::NetFd;
use crate::sockopts::{Control, KeepAliveConfig};
use crate::sys;

/// A listening TCP socket.
///
/// `accept` blocks until a connection arrives, the accept deadline passes,
/// or the listener is closed (from any thread).
///
/// ```
/// use std::io::{Read, Write};
/// let listener = tcp::Listener::bind("127.0.0.1:0".parse()?)?;
/// let addr = listener.local_addr()?;
/// let client = std::thread::spawn(move || -> std::io::Result<()> {
///     let mut c = tcp::connect_addr(addr)?;
///     c.write_all(b"hi")?;
///     Ok(())
/// });
/// let mut conn = listener.accept()?;
/// let mut buf = [0; 2];
/// conn.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hi");
/// client.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Listener {
    fd: NetFd,
    local: Option<SocketAddr>,
    /// For accepted connections (set on each where they do not inherit it).
    keepalive: KeepAliveConfig,
}

/// How to open a listening socket; `ListenConfig` fills it in.
#[derive(Debug, Clone)]
pub(crate) struct ListenOptions {
    pub(crate) backlog: u32,
    pub(crate) reuseaddr: bool,
    pub(crate) reuse_port: bool,
    pub(crate) keepalive: KeepAliveConfig,
    /// Run after the socket is made and its options set, before `bind`.
    pub(crate) control: Option<Control>,
    /// `Some(true)` for tcp6 (no v4-mapped peers), `Some(false)` for a
    /// dual-stack tcp listener, `None` to leave the system default.
    pub(crate) v6only: Option<bool>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: sys::max_backlog(),
            reuseaddr: true,
            reuse_port: false,
            keepalive: KeepAliveConfig::DEFAULT,
            control: None,
            v6only: Some(false),
        }
    }
}

impl Listener {
    /// Listen on `addr` (port 0 picks a free port) with the system's
    /// maximum backlog (`somaxconn`, as Go) and `SO_REUSEADDR`, waiting on
    /// the global runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        Listener::open(addr, ListenOptions::default(), &Runtime::global())
    }

    pub(crate) fn open(addr: SocketAddr, opts: ListenOptions, rt: &Runtime) -> io::Result<Listener> {
        let fd = sys::stream_socket(&addr)?;
        let raw = fd.as_raw_fd();
        if opts.reuseaddr {
            sys::set_reuseaddr(raw, true)?;
        }
        if opts.reuse_port {
            sys::set_reuseport(raw, true)?;
        }
        if let (SocketAddr::V6(_), Some(v6only)) = (addr, opts.v6only) {
            sys::set_v6only(raw, v6only)?;
        }
        if let Some(control) = &opts.control {
            // SAFETY: `fd` owns the descriptor and outlives the borrow,
            // which ends when `run` returns.
            control.run(unsafe { BorrowedFd::borrow_raw(raw) })?;
        }
        sys::bind(raw, &addr)?;
        sys::listen(raw, opts.backlog)?;
        Listener::adopt(fd, rt, opts.keepalive)
    }

    fn adopt(fd: OwnedFd, rt: &Runtime, keepalive: KeepAliveConfig) -> io::Result<Listener> {
        // Go's defaults for accepted sockets. Where they inherit them from
        // the listening socket (Linux copies socket options on accept), this
        // is the only place they are set; elsewhere `established` sets
        // them again on each connection.
        let raw = fd.as_raw_fd();
        sys::set_nodelay(raw, true)?;
        keepalive.apply(raw)?;
        let local = sys::local_addr(raw).ok();
        Ok(Listener { fd: NetFd::new(fd, rt)?, local, keepalive })
    }

    /// Adopt a std listener: made nonblocking, waited on through the global
    /// runtime.
    pub fn from_std(l: std::net::TcpListener) -> io::Result<Listener> {
        Listener::from_std_in(l, &Runtime::global())
    }

    /// [`from_std`](Listener::from_std) on a runtime of your choice.
    pub fn from_std_in(l: std::net::TcpListener, rt: &Runtime) -> io::Result<Listener> {
        l.set_nonblocking(true)?;
        Listener::adopt(OwnedFd::from(l), rt, KeepAliveConfig::DEFAULT)
    }

    /// Wait for and accept one connection. Accepted connections have
    /// `TCP_NODELAY` on and keepalive as the [`ListenConfig`](crate::ListenConfig)
    /// set it (every 15 s by default), and wait on the listener's runtime. Honours the accept deadline ([`set_deadline`](Listener::set_deadline)).
    ///
    /// A connection the peer aborted before it was accepted is skipped; any
    /// other failure (such as running out of file descriptors) is returned,
    /// never retried in a loop.
    pub fn accept(&self) -> io::Result<Conn> {
        let _op = self.fd.lock_read()?;
        let (fd, peer) = self.fd.read_loop(sys::accept)?;
        self.established(fd, peer)
    }

    /// std's shape: accept one connection and return it with the peer's
    /// address.
    pub fn accept_with_addr(&self) -> io::Result<(Conn, SocketAddr)> {
        let conn = self.accept()?;
        let peer = conn.remote_addr()?;
        Ok((conn, peer))
    }

    /// Wrap an accepted socket, with `TCP_NODELAY` and keepalive: inherited
    /// from the listener where the OS copies them, set here where it does
    /// not. Its local address is the listener's unless that is a wildcard.
    fn established(&self, fd: OwnedFd, peer: SocketAddr) -> io::Result<Conn> {
        let local = self.local.filter(|l| !l.ip().is_unspecified());
        let rt = self.fd.poll_fd().runtime();
        if sys::ACCEPTED_INHERIT_OPTIONS {
            Conn::accepted(fd, rt, local, peer)
        } else {
            Conn::established(fd, rt, local, Some(peer), self.keepalive)
        }
    }

    /// `accept` for executors: take a queued connection, or register the
    /// task's `Waker` with the reactor.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>> {
        self.fd.poll_read_loop(cx, sys::accept).map(|r| r.and_then(|(fd, peer)| self.established(fd, peer)))
    }

    /// Set the accept deadline. `None` clears it; a past instant makes
    /// `accept` fail at once, even with connections queued.
    pub fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.fd.set_read_deadline(d)
    }

    /// The address the listener is bound to (with the real port if it was
    /// bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local.ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "local address unknown"))
    }

    /// Alias of [`local_addr`](Listener::local_addr).
    pub fn addr(&self) -> io::Result<SocketAddr> {
        self.local_addr()
    }

    /// Stop listening and wake a blocked `accept` with
    /// [`Closed`]. Idempotent; dropping closes too.
    pub fn close(&self) -> io::Result<()> {
        self.fd.close();
        Ok(())
    }

    /// Whether [`close`](Listener::close) has not been called.
    pub fn is_open(&self) -> bool {
        self.fd.is_open()
    }

    /// Accepted connections, one per `next`. Ends once the listener is
    /// closed; every other error is yielded and iteration goes on.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<Conn>> + '_ {
        std::iter::from_fn(move || match self.accept() {
            Err(e) if Closed::is(&e) => None,
            other => Some(other),
        })
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Listener");
        // A closed listener's number may belong to another file by now.
        if self.is_open() {
            d.field("fd", &self.fd.raw());
        }
        d.field("addr", &self.local).field("open", &self.is_open()).finish()
    }
}

/// `tcp::Listener(127.0.0.1:5000, active)`, or `closed`.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.local.map_or_else(|| "?".to_string(), |a| a.to_string());
        write!(f, "tcp::Listener({addr}, {})", if self.is_open() { "active" } else { "closed" })
    }
}

//! `unix::Listener`: a listening Unix stream socket with a blocking
//! `accept`.
//!
//! # Locks
//! `unlink` (the path to remove on close) is held only to set the path or
//! take it out, never across a syscall (the file is removed after), and
//! never together with the descriptor's locks (see `fd.rs`).

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};
use std::time::Instant;

use iopoll::{Closed, Runtime};
use parking_lot::Mutex;

use super::Conn;
use crate::fd::NetFd;
use crate::sys;

/// A listening Unix domain stream socket.
///
/// `accept` blocks until a connection arrives, the accept deadline passes,
/// or the listener is closed (from any thread), as
/// [`tcp::Listener`](crate::Listener)'s does.
///
/// A listener made by [`bind`](Listener::bind) or
/// [`bind_addr`](Listener::bind_addr) at a path removes that socket file
/// when it closes (or is dropped), as Go's does; one adopted with
/// [`from_std`](Listener::from_std) leaves it.
///
/// ```
/// use std::io::{Read, Write};
/// let dir = std::env::temp_dir().join(format!("reseau-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("listener.sock");
/// let listener = tcp::unix::Listener::bind(&path)?;
/// let client = std::thread::spawn({
///     let path = path.clone();
///     move || -> std::io::Result<()> { tcp::unix::connect(path)?.write_all(b"hi") }
/// });
/// let mut conn = listener.accept()?;
/// let mut buf = [0; 2];
/// conn.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hi");
/// client.join().unwrap()?;
/// listener.close()?;
/// assert!(!path.exists());
/// # std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Listener {
    fd: NetFd,
    local: Option<SocketAddr>,
    /// The socket file this listener made, removed by the first close.
    unlink: Mutex<Option<PathBuf>>,
}

impl Listener {
    /// Listen at `path`, with the system's maximum backlog, waiting on the
    /// global runtime. The socket file is made here and removed when the
    /// listener closes.
    ///
    /// If a file exists at `path` (such as one left by a server that
    /// died), this fails with the OS's `AddrInUse` error: remove a stale
    /// file first (`std::fs::remove_file`) once you know no other server
    /// uses it. A path too long for a socket address (about 100 bytes) is
    /// an `InvalidInput` error.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Listener> {
        Listener::bind_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Listen at `addr`: a path (see [`bind`](Listener::bind)) or, on
    /// Linux, an abstract name, which has no file and vanishes with the
    /// last socket bound to it.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use std::os::linux::net::SocketAddrExt;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(
    ///     format!("reseau-doc-{}", std::process::id()),
    /// )?;
    /// let listener = tcp::unix::Listener::bind_addr(&addr)?;
    /// let client = tcp::unix::connect_addr(&addr)?;
    /// let server = listener.accept()?;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<Listener> {
        Listener::open(addr, sys::max_backlog(), &Runtime::global())
    }

    pub(crate) fn open(addr: &SocketAddr, backlog: u32, rt: &Runtime) -> io::Result<Listener> {
        let fd = sys::unix_socket()?;
        let raw = fd.as_raw_fd();
        sys::bind_unix(raw, addr)?;
        // From here on the file is ours: remove it if anything fails.
        let made = addr.as_pathname().map(Path::to_path_buf);
        let listening = sys::listen(raw, backlog).and_then(|()| NetFd::new(fd, rt));
        match listening {
            Ok(fd) => {
                let local = sys::unix_local_addr(raw).ok();
                Ok(Listener { fd, local, unlink: Mutex::new(made) })
            }
            Err(e) => {
                if let Some(path) = made {
                    let _ = std::fs::remove_file(path);
                }
                Err(e)
            }
        }
    }

    /// Adopt a std listener: made nonblocking, waited on through the global
    /// runtime. Its socket file is left in place when it closes.
    pub fn from_std(l: std::os::unix::net::UnixListener) -> io::Result<Listener> {
        Listener::from_std_in(l, &Runtime::global())
    }

    /// [`from_std`](Listener::from_std) on a runtime of your choice.
    pub fn from_std_in(l: std::os::unix::net::UnixListener, rt: &Runtime) -> io::Result<Listener> {
        l.set_nonblocking(true)?;
        let local = l.local_addr().ok();
        Ok(Listener { fd: NetFd::new(OwnedFd::from(l), rt)?, local, unlink: Mutex::new(None) })
    }

    /// Wait for and accept one connection, which waits on the listener's
    /// runtime. Honours the accept deadline
    /// ([`set_deadline`](Listener::set_deadline)).
    pub fn accept(&self) -> io::Result<Conn> {
        let _op = self.fd.lock_read()?;
        let fd = self.fd.read_loop(sys::accept_any)?;
        self.accepted(fd)
    }

    fn accepted(&self, fd: OwnedFd) -> io::Result<Conn> {
        Conn::wrap(fd, self.fd.poll_fd().runtime(), self.local.clone(), None)
    }

    /// `accept` for executors: take a queued connection, or register the
    /// task's `Waker` with the reactor.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>> {
        self.fd.poll_read_loop(cx, sys::accept_any).map(|r| r.and_then(|fd| self.accepted(fd)))
    }

    /// Set the accept deadline. `None` clears it; a past instant makes
    /// `accept` fail at once, even with connections queued.
    pub fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.fd.set_read_deadline(d)
    }

    /// The address the listener is bound to (kept after close).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local.clone().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "local address unknown"))
    }

    /// Stop listening, remove the socket file this listener made, and wake
    /// a blocked `accept` with [`Closed`]. Idempotent; dropping closes too.
    pub fn close(&self) -> io::Result<()> {
        // The file goes first: once `close` returns, a new listener may
        // bind the path, and its file must not be removed by this one.
        let made = self.unlink.lock().take();
        if let Some(path) = made {
            let _ = std::fs::remove_file(path);
        }
        self.fd.close();
        // A set_unlink_on_close racing this close must not arm a later one.
        *self.unlink.lock() = None;
        Ok(())
    }

    /// Whether closing removes the socket file, as Go's
    /// `SetUnlinkOnClose`: on by default for a listener that made its file
    /// ([`bind`](Listener::bind)), off for one adopted with
    /// [`from_std`](Listener::from_std). Turn it off in a process that
    /// hands its listening socket to another (see
    /// [`Conn::send_with_fds`]) before it exits, or its exit would remove
    /// the file the other still serves. Turning it on for a listener with
    /// no path (an abstract name, or unnamed) does nothing.
    pub fn set_unlink_on_close(&self, on: bool) {
        let path = self.local.as_ref().and_then(SocketAddr::as_pathname).map(Path::to_path_buf);
        *self.unlink.lock() = if on && self.is_open() { path } else { None };
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

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

/// `unix::Listener(/run/app.sock, active)`, or `closed`.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.local.clone().map_or_else(|| "?".to_string(), |a| crate::Addr::Unix(a).to_string());
        write!(f, "unix::Listener({addr}, {})", if self.is_open() { "active" } else { "closed" })
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("unix::Listener");
        // A closed listener's number may belong to another file by now.
        if self.is_open() {
            d.field("fd", &self.fd.raw());
        }
        d.field("addr", &self.local).field("open", &self.is_open()).finish()
    }
}

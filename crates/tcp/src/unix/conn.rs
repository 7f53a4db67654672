//! `unix::Conn`: a connected Unix stream socket with a blocking facade.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use iopoll::Runtime;

use super::Credentials;
use crate::conn::from_now;
use crate::fd::NetFd;
use crate::sys;

/// A Unix domain stream connection.
///
/// The contract of [`tcp::Conn`](crate::Conn): reads and writes block the
/// calling thread until the socket is ready, the deadline passes, or the
/// connection is closed; `Read` and `Write` are implemented for `&Conn`
/// too, so one thread may read while another writes. Deadlines are
/// absolute and per direction, and moving one reaches a call already
/// blocked. [`close`](Conn::close), from any thread, wakes every blocked
/// call with [`Closed`](crate::Closed).
///
/// ```
/// use std::io::{Read, Write};
/// let (mut a, mut b) = tcp::unix::Conn::pair()?;
/// a.write_all(b"ping")?;
/// let mut buf = [0; 4];
/// b.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// assert_eq!(a.peer_cred()?.uid, b.peer_cred()?.uid);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Conn {
    fd: NetFd,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
}

impl Conn {
    /// Wrap a connected nonblocking socket. Addresses not given are asked
    /// of the kernel now, so they stay known after close.
    pub(crate) fn wrap(
        fd: OwnedFd,
        rt: &Runtime,
        local: Option<SocketAddr>,
        peer: Option<SocketAddr>,
    ) -> io::Result<Conn> {
        let raw = fd.as_raw_fd();
        let local = local.or_else(|| sys::unix_local_addr(raw).ok());
        let peer = peer.or_else(|| sys::unix_peer_addr(raw).ok());
        Ok(Conn { fd: NetFd::new(fd, rt)?, local, peer })
    }

    /// Connect to `addr`, waiting on the global runtime.
    pub(crate) fn connect(addr: &SocketAddr) -> io::Result<Conn> {
        let fd = sys::unix_socket()?;
        let in_progress = match sys::connect_unix(fd.as_raw_fd(), addr) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
            Err(e) => return Err(e),
        };
        let conn = Conn::wrap(fd, &Runtime::global(), None, Some(addr.clone()))?;
        if in_progress {
            // Some systems may finish a Unix connect later, as TCP does:
            // wait for writability, then ask how it went.
            let _op = conn.fd.lock_write()?;
            conn.fd.poll_fd().prepare_write()?;
            conn.fd.poll_fd().wait_writable()?;
            if let Some(e) = sys::take_error(conn.fd.raw())? {
                return Err(e);
            }
        }
        Ok(conn)
    }

    /// Two connected sockets (`socketpair`), waiting on the global runtime:
    /// a channel between threads, or to a child process (pass one end on).
    pub fn pair() -> io::Result<(Conn, Conn)> {
        let (a, b) = sys::socketpair()?;
        let rt = Runtime::global();
        Ok((Conn::wrap(a, &rt, None, None)?, Conn::wrap(b, &rt, None, None)?))
    }

    /// Adopt a connected std socket: it is made nonblocking and waited on
    /// through the global runtime.
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<Conn> {
        Conn::from_std_in(s, &Runtime::global())
    }

    /// [`from_std`](Conn::from_std) on a runtime of your choice.
    pub fn from_std_in(s: std::os::unix::net::UnixStream, rt: &Runtime) -> io::Result<Conn> {
        s.set_nonblocking(true)?;
        let local = s.local_addr().ok();
        let peer = s.peer_addr().ok();
        Conn::wrap(OwnedFd::from(s), rt, local, peer)
    }

    /// Set the read and write deadlines. `None` clears them; an instant at
    /// or before now makes reads and writes fail at once.
    pub fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.fd.set_deadline(d)
    }

    /// Set the read deadline, for future reads and a read already blocked.
    pub fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.fd.set_read_deadline(d)
    }

    /// Set the write deadline, for future writes and a write already blocked.
    pub fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.fd.set_write_deadline(d)
    }

    /// The read deadline becomes now + `d` (saturating); `None` clears it.
    /// One deadline for all later reads, not a budget per call, as
    /// [`tcp::Conn::set_read_timeout`](crate::Conn::set_read_timeout).
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.set_read_deadline(d.map(from_now))
    }

    /// As [`set_read_timeout`](Conn::set_read_timeout), for writes.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.set_write_deadline(d.map(from_now))
    }

    /// As [`set_read_timeout`](Conn::set_read_timeout), for both directions.
    pub fn set_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.set_deadline(d.map(from_now))
    }

    /// The current read deadline.
    pub fn read_deadline(&self) -> Option<Instant> {
        self.fd.poll_fd().read_deadline()
    }

    /// The current write deadline.
    pub fn write_deadline(&self) -> Option<Instant> {
        self.fd.poll_fd().write_deadline()
    }

    /// Shut down the reading side (`shutdown(SHUT_RD)`).
    pub fn close_read(&self) -> io::Result<()> {
        self.fd.shutdown(Shutdown::Read)
    }

    /// Shut down the writing side (`shutdown(SHUT_WR)`): the peer reads EOF
    /// while this side can still read.
    pub fn close_write(&self) -> io::Result<()> {
        self.fd.shutdown(Shutdown::Write)
    }

    /// Close the connection, waking any blocked reader or writer with
    /// [`Closed`](crate::Closed). Idempotent; dropping the `Conn` closes it
    /// too. Returns once the descriptor has been released.
    pub fn close(&self) -> io::Result<()> {
        self.fd.close();
        Ok(())
    }

    /// Whether [`close`](Conn::close) has not been called.
    pub fn is_open(&self) -> bool {
        self.fd.is_open()
    }

    /// This end's address (kept after close): unnamed for a client, the
    /// listener's path or name for an accepted connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local.clone().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "local address unknown"))
    }

    /// The peer's address (kept after close): the listener's path or name
    /// for a client, usually unnamed for an accepted connection.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.peer.clone().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "peer address unknown"))
    }

    /// The peer's process, user and group ids, as the kernel recorded them
    /// when the connection was made (`SO_PEERCRED` on Linux; `getpeereid`
    /// on macOS and the BSDs, without the pid).
    pub fn peer_cred(&self) -> io::Result<Credentials> {
        let (pid, uid, gid) = self.fd.control(sys::peer_cred)?;
        Ok(Credentials { pid, uid, gid })
    }

    /// Send bytes from `data` with the descriptors `fds` attached
    /// (`SCM_RIGHTS`); the peer receives them with
    /// [`recv_with_fds`](Conn::recv_with_fds) as new descriptors of its own
    /// for the same open files or sockets.
    ///
    /// One message: the descriptors travel with the first of the bytes
    /// sent, and a short count (the rest did not fit in the socket buffer)
    /// is for the caller to finish with plain writes. Blocks under the
    /// write deadline and the write lock, like a write. With descriptors,
    /// `data` must not be empty, and at most 253 fit in one message
    /// (Linux's limit): both are `InvalidInput` errors.
    ///
    /// ```no_run
    /// use std::os::fd::AsFd;
    /// // Hand a listening socket to another process (a restart without
    /// // downtime): it accepts on the same queue.
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let to_new_process = tcp::unix::connect("/run/example/handover.sock")?;
    /// to_new_process.send_with_fds(b"L", &[listener.as_fd()])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        let _op = self.fd.lock_write()?;
        self.fd.write_loop(|fd| sys::send_with_fds(fd, data, fds))
    }

    /// Read once into `buf` (at least one byte, or 0 at end of stream),
    /// appending the descriptors that came with those bytes to `fds`. They
    /// are close-on-exec (on Linux from the start, `MSG_CMSG_CLOEXEC`).
    /// Blocks under the read deadline and the read lock, like a read.
    ///
    /// Descriptors arrive with the first byte of the message they were
    /// sent with; a plain read there would have closed them. An empty
    /// `buf` is an `InvalidInput` error. If the sender attached more than
    /// fit in one message (253), the kernel closed the excess: the call
    /// then fails, with the ones that fit in `fds` (the bytes read are
    /// lost to the caller).
    ///
    /// ```no_run
    /// use std::os::fd::OwnedFd;
    /// let from_old_process = tcp::unix::connect("/run/example/handover.sock")?;
    /// let (mut buf, mut fds) = ([0; 1], Vec::<OwnedFd>::new());
    /// from_old_process.recv_with_fds(&mut buf, &mut fds)?;
    /// let listener = tcp::Listener::from_std(std::net::TcpListener::from(fds.remove(0)))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_with_fds(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        if buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "recv_with_fds needs room for at least one byte"));
        }
        let _op = self.fd.lock_read()?;
        self.fd.read_loop(|fd| sys::recv_with_fds(fd, buf, fds))
    }

    /// Run `f` with the socket's descriptor, which stays open while `f`
    /// runs even if another thread closes the connection meanwhile.
    /// `Err` with [`Closed`](crate::Closed) once closed. Do not close the
    /// descriptor, or make it blocking.
    pub fn with_fd<R>(&self, f: impl FnOnce(BorrowedFd<'_>) -> R) -> io::Result<R> {
        self.fd.control(|fd| {
            // SAFETY: `control` holds a reference on the descriptor for the
            // whole call, so it cannot be released (and its number reused)
            // before `f` returns; the borrow does not outlive `f`.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            Ok(f(borrowed))
        })
    }

    /// Read for executors: try once, and if nothing is there register the
    /// task's `Waker` with the reactor. Honours the read deadline.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.fd.poll_read(cx, buf)
    }

    /// Write for executors: as many bytes as fit now, or register the
    /// task's `Waker`. Honours the write deadline.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.fd.poll_write(cx, buf)
    }

    /// The runtime this connection waits on.
    pub fn runtime(&self) -> &Runtime {
        self.fd.poll_fd().runtime()
    }
}

impl Read for &Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }
}

impl Write for &Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

/// `unix::Conn(/run/app.sock => , open)`: local, then peer, each as
/// [`Addr`](crate::Addr) prints it (a path, `@name`, or nothing for an
/// unnamed end).
impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr =
            |a: &Option<SocketAddr>| a.clone().map_or_else(|| "?".to_string(), |a| crate::Addr::Unix(a).to_string());
        let state = if self.is_open() { "open" } else { "closed" };
        write!(f, "unix::Conn({} => {}, {state})", addr(&self.local), addr(&self.peer))
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("unix::Conn");
        // A closed connection's number may belong to another file by now.
        if self.is_open() {
            d.field("fd", &self.fd.raw());
        }
        d.field("local", &self.local).field("peer", &self.peer).field("open", &self.is_open()).finish()
    }
}

//! `Conn`: a connected TCP socket with a blocking facade.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use iopoll::Runtime;

use crate::fd::NetFd;
use crate::sockopts::KeepAliveConfig;
use crate::sys;

/// Go's default keepalive period for dialed and accepted connections.
pub(crate) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// A TCP connection.
///
/// Reads and writes block the calling thread until the socket is ready, the
/// deadline passes, or the connection is closed, and they can run at the
/// same time: `Read` and `Write` are implemented for `&Conn` too, so one
/// thread may read while another writes (further readers or writers queue).
///
/// Deadlines are absolute: set one, and every read (or write) from then on
/// fails with [`io::ErrorKind::TimedOut`] once it passes, including a call
/// already blocked. Push it forward to keep a connection alive.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use std::time::{Duration, Instant};
///
/// let mut conn = tcp::connect("127.0.0.1:7")?;
/// conn.write_all(b"ping")?;
/// conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)))?;
/// let mut buf = [0; 4];
/// conn.read_exact(&mut buf)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Conn {
    fd: NetFd,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
}

impl Conn {
    /// A connection accepted from a listener whose `TCP_NODELAY` and
    /// keepalive it inherited (Linux copies them; elsewhere the listener
    /// calls [`established`](Conn::established) instead).
    pub(crate) fn accepted(
        fd: OwnedFd,
        rt: &Runtime,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> io::Result<Conn> {
        let local = local.or_else(|| sys::local_addr(fd.as_raw_fd()).ok());
        Ok(Conn { fd: NetFd::new(fd, rt)?, local, remote: Some(remote) })
    }

    /// Wrap a connected nonblocking socket, with Go's defaults for dialed
    /// and accepted connections: `TCP_NODELAY` on and keepalive as
    /// configured, every 15 s by default (failures to set them are
    /// ignored, as Go does). Addresses the caller already knows are passed
    /// in, saving syscalls.
    pub(crate) fn established(
        fd: OwnedFd,
        rt: &Runtime,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
        keepalive: KeepAliveConfig,
    ) -> io::Result<Conn> {
        let raw = fd.as_raw_fd();
        let _ = sys::set_nodelay(raw, true);
        let _ = keepalive.apply(raw);
        let local = local.or_else(|| sys::local_addr(raw).ok());
        let remote = remote.or_else(|| sys::peer_addr(raw).ok());
        Ok(Conn { fd: NetFd::new(fd, rt)?, local, remote })
    }

    /// Adopt a connected std socket: it is made nonblocking and waited on
    /// through the global runtime. Its socket options are left as they are.
    pub fn from_std(s: std::net::TcpStream) -> io::Result<Conn> {
        Conn::from_std_in(s, &Runtime::global())
    }

    /// [`from_std`](Conn::from_std) on a runtime of your choice.
    pub fn from_std_in(s: std::net::TcpStream, rt: &Runtime) -> io::Result<Conn> {
        s.set_nonblocking(true)?;
        let local = s.local_addr().ok();
        let remote = s.peer_addr().ok();
        let fd = OwnedFd::from(s);
        Ok(Conn { fd: NetFd::new(fd, rt)?, local, remote })
    }

    /// Give the socket back as a blocking std `TcpStream`. Fails with
    /// [`Closed`](crate::Closed) if the connection was closed.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        // Take a duplicate: the original is released by `close`, which waits
        // for every other user, so no one can be mid-syscall on either.
        let dup = self.fd.control(|fd| {
            // SAFETY: `fd` is open while we hold the reference.
            let b = unsafe { BorrowedFd::borrow_raw(fd) };
            b.try_clone_to_owned()
        })?;
        self.fd.close();
        let s = std::net::TcpStream::from(dup);
        s.set_nonblocking(false)?;
        Ok(s)
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

    /// std's form: the read deadline becomes now + `d` (saturating: a
    /// huge `d` means no deadline in practice, never a panic); `None`
    /// clears it. Unlike std's `set_read_timeout`, this is one deadline for
    /// all later reads, not a budget per call: set it again to extend it.
    /// `Some(Duration::ZERO)` makes reads fail at once.
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

    /// The local address (kept after close).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local.ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "local address unknown"))
    }

    /// The peer's address (kept after close).
    pub fn remote_addr(&self) -> io::Result<SocketAddr> {
        self.remote.ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "remote address unknown"))
    }

    /// The peer's address, by std's name: the same as
    /// [`remote_addr`](Conn::remote_addr).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.remote_addr()
    }

    /// `SO_LINGER`: with `Some(d)`, closing waits up to `d` (whole seconds,
    /// rounded up) for unsent data, and `Some(Duration::ZERO)` resets the
    /// connection instead of closing it gracefully; `None` (the default)
    /// closes in the background.
    pub fn set_linger(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.control(|fd| sys::set_linger(fd, d))
    }

    /// The time-to-live (IPv4) or hop limit (IPv6) of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let v6 = self.local.is_some_and(|a| a.is_ipv6());
        self.fd.control(|fd| sys::set_ttl(fd, v6, ttl))
    }

    /// The time-to-live (IPv4) or hop limit (IPv6) of outgoing packets.
    pub fn ttl(&self) -> io::Result<u32> {
        let v6 = self.local.is_some_and(|a| a.is_ipv6());
        self.fd.control(|fd| sys::ttl(fd, v6))
    }

    /// Ask for a kernel receive buffer of `size` bytes (`SO_RCVBUF`). The
    /// kernel may adjust it (Linux doubles it for bookkeeping, within
    /// `net.core.rmem_max`): [`recv_buffer_size`](Conn::recv_buffer_size)
    /// says what it granted.
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.fd.control(|fd| sys::set_buffer_size(fd, sys::Buffer::Receive, size))
    }

    /// The kernel receive buffer's size, in bytes.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.fd.control(|fd| sys::buffer_size(fd, sys::Buffer::Receive))
    }

    /// Ask for a kernel send buffer of `size` bytes (`SO_SNDBUF`); as with
    /// [`set_recv_buffer_size`](Conn::set_recv_buffer_size), read back what
    /// the kernel granted with [`send_buffer_size`](Conn::send_buffer_size).
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.fd.control(|fd| sys::set_buffer_size(fd, sys::Buffer::Send, size))
    }

    /// The kernel send buffer's size, in bytes.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.fd.control(|fd| sys::buffer_size(fd, sys::Buffer::Send))
    }

    /// Run `f` with the socket's descriptor, which stays open while `f`
    /// runs even if another thread closes the connection meanwhile (the
    /// close then completes once `f` returns), as Go's
    /// `SyscallConn().Control` does. `Err` with [`Closed`](crate::Closed)
    /// once closed. Do not close the descriptor, or make it blocking.
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// let conn = tcp::connect("127.0.0.1:7")?;
    /// let fd_number = conn.with_fd(|fd| fd.as_raw_fd())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_fd<R>(&self, f: impl FnOnce(BorrowedFd<'_>) -> R) -> io::Result<R> {
        self.fd.control(|fd| {
            // SAFETY: `control` holds a reference on the descriptor for the
            // whole call, so it cannot be released (and its number reused)
            // before `f` returns; the borrow does not outlive `f`.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            Ok(f(borrowed))
        })
    }

    /// Turn Nagle's algorithm off (`true`, the default) or on.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.fd.control(|fd| sys::set_nodelay(fd, on))
    }

    /// Keepalive probes every `period` after `period` of idleness, or none.
    /// The kernel counts whole seconds from 1 to 32 767: `period` is rounded
    /// up to a whole second and clamped to that range, so `Some(ZERO)`
    /// means 1 s and anything above about 9 hours means 32 767 s.
    pub fn set_keepalive(&self, period: Option<Duration>) -> io::Result<()> {
        self.fd.control(|fd| sys::set_keepalive(fd, period))
    }

    /// Keepalive as Go 1.23's `KeepAliveConfig`: on or off, and the idle
    /// time, probe interval and probe count, each left to the system when
    /// `None`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let conn = tcp::connect("127.0.0.1:7")?;
    /// conn.set_keepalive_config(tcp::KeepAliveConfig {
    ///     enable: true,
    ///     idle: Some(Duration::from_secs(60)),
    ///     interval: Some(Duration::from_secs(10)),
    ///     count: Some(5),
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_keepalive_config(&self, c: KeepAliveConfig) -> io::Result<()> {
        self.fd.control(|fd| c.apply(fd))
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
        self.fd.read_stream(buf)
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
        self.fd.read_stream(buf)
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

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Conn");
        // A closed connection's number may belong to another file by now.
        if self.is_open() {
            d.field("fd", &self.fd.raw());
        }
        d.field("local", &self.local).field("remote", &self.remote).field("open", &self.is_open()).finish()
    }
}

/// `tcp::Conn(127.0.0.1:5000 => 127.0.0.1:41234, open)`: local, then peer.
impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |a: Option<SocketAddr>| a.map_or_else(|| "?".to_string(), |a| a.to_string());
        let state = if self.is_open() { "open" } else { "closed" };
        write!(f, "tcp::Conn({} => {}, {state})", addr(self.local), addr(self.remote))
    }
}

/// Now + `d`, saturating far in the future rather than overflowing.
pub(crate) fn from_now(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

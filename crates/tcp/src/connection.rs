//! `Connection`: what TCP, TLS and Unix connections have in common, for
//! code that serves them all through `Box<dyn Connection>` (Go's
//! `net.Conn`), and `Addr`, the address of either kind.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// A connection of any kind: [`tcp::Conn`](crate::Conn),
/// [`unix::Conn`](crate::unix::Conn) and `tls::Conn` implement it, with
/// the same deadline and close contract. Object-safe, so protocol code can
/// take a `Box<dyn Connection>` and serve plaintext, TLS and local
/// sockets alike.
///
/// ```
/// use std::io::{Read, Write};
/// use tcp::Connection;
///
/// fn echo_once(mut c: Box<dyn Connection>) -> std::io::Result<()> {
///     let mut buf = [0; 64];
///     let n = c.read(&mut buf)?;
///     c.write_all(&buf[..n])?;
///     c.close()
/// }
///
/// let (a, mut b) = tcp::unix::Conn::pair()?;
/// b.write_all(b"hi")?;
/// echo_once(Box::new(a))?;
/// let mut back = [0; 2];
/// b.read_exact(&mut back)?;
/// assert_eq!(&back, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Connection: io::Read + io::Write + Send + Sync + fmt::Debug {
    /// Set the read and write deadlines (absolute; `None` clears them).
    fn set_deadline(&self, d: Option<Instant>) -> io::Result<()>;
    /// Set the read deadline, for future reads and a read already blocked.
    fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()>;
    /// Set the write deadline, for future writes and a write already
    /// blocked.
    fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()>;
    /// Close, waking every blocked call with [`Closed`](crate::Closed).
    /// Idempotent.
    fn close(&self) -> io::Result<()>;
    /// Whether `close` has not been called.
    fn is_open(&self) -> bool;
    /// This end's address.
    fn local_addr(&self) -> io::Result<Addr>;
    /// The peer's address.
    fn remote_addr(&self) -> io::Result<Addr>;
}

/// The address of a connection's end: an internet socket address, or a
/// Unix socket address. Displayed as Go prints addresses: `127.0.0.1:80`,
/// `[::1]:80`, a socket file's path, `@name` for a Linux abstract name,
/// and nothing for an unnamed Unix socket.
#[derive(Clone, Debug)]
pub enum Addr {
    /// TCP (and TLS over TCP).
    Inet(SocketAddr),
    /// A Unix domain socket.
    Unix(std::os::unix::net::SocketAddr),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(a) => a.fmt(f),
            Addr::Unix(a) => {
                if let Some(path) = a.as_pathname() {
                    path.display().fmt(f)
                } else if let Some(name) = crate::sys::abstract_name(a) {
                    write!(f, "@{}", String::from_utf8_lossy(name))
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::Inet(a)
    }
}

impl From<std::os::unix::net::SocketAddr> for Addr {
    fn from(a: std::os::unix::net::SocketAddr) -> Addr {
        Addr::Unix(a)
    }
}

impl Connection for crate::Conn {
    fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        crate::Conn::set_deadline(self, d)
    }
    fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        crate::Conn::set_read_deadline(self, d)
    }
    fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        crate::Conn::set_write_deadline(self, d)
    }
    fn close(&self) -> io::Result<()> {
        crate::Conn::close(self)
    }
    fn is_open(&self) -> bool {
        crate::Conn::is_open(self)
    }
    fn local_addr(&self) -> io::Result<Addr> {
        crate::Conn::local_addr(self).map(Addr::Inet)
    }
    fn remote_addr(&self) -> io::Result<Addr> {
        crate::Conn::remote_addr(self).map(Addr::Inet)
    }
}

impl Connection for crate::unix::Conn {
    fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        crate::unix::Conn::set_deadline(self, d)
    }
    fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        crate::unix::Conn::set_read_deadline(self, d)
    }
    fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        crate::unix::Conn::set_write_deadline(self, d)
    }
    fn close(&self) -> io::Result<()> {
        crate::unix::Conn::close(self)
    }
    fn is_open(&self) -> bool {
        crate::unix::Conn::is_open(self)
    }
    fn local_addr(&self) -> io::Result<Addr> {
        crate::unix::Conn::local_addr(self).map(Addr::Unix)
    }
    fn remote_addr(&self) -> io::Result<Addr> {
        crate::unix::Conn::peer_addr(self).map(Addr::Unix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_display_as_go_prints_them() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(Addr::from(v4).to_string(), "127.0.0.1:80");
        assert_eq!(Addr::from(v6).to_string(), "[::1]:80");
        let path = std::os::unix::net::SocketAddr::from_pathname("/run/x.sock").unwrap();
        assert_eq!(Addr::from(path).to_string(), "/run/x.sock");
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = std::os::unix::net::SocketAddr::from_abstract_name(b"name").unwrap();
            assert_eq!(Addr::from(name).to_string(), "@name");
        }
        let (a, _b) = crate::unix::Conn::pair().unwrap();
        assert_eq!(Connection::local_addr(&a).unwrap().to_string(), "");
    }

    #[test]
    fn connection_is_object_safe() {
        let (a, _b) = crate::unix::Conn::pair().unwrap();
        let boxed: Box<dyn Connection> = Box::new(a);
        assert!(boxed.is_open());
        boxed.close().unwrap();
        assert!(!boxed.is_open());
    }
}

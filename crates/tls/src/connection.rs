//! `tls::Conn` as a [`tcp::Connection`], so code over `Box<dyn Connection>`
//! serves TLS as it serves plaintext and Unix sockets.

use std::io;
use std::time::Instant;

use tcp::{Addr, Connection};

use crate::Conn;

impl Connection for Conn {
    fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        Conn::set_deadline(self, d)
    }
    fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        Conn::set_read_deadline(self, d)
    }
    fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        Conn::set_write_deadline(self, d)
    }
    /// [`Conn::close`]: close_notify (bounded), then the socket.
    fn close(&self) -> io::Result<()> {
        Conn::close(self)
    }
    fn is_open(&self) -> bool {
        Conn::is_open(self)
    }
    fn local_addr(&self) -> io::Result<Addr> {
        Conn::local_addr(self).map(Addr::Inet)
    }
    fn remote_addr(&self) -> io::Result<Addr> {
        Conn::remote_addr(self).map(Addr::Inet)
    }
}

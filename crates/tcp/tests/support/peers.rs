//! Peers on loopback that do not answer the way a live listener does.
//!
//! - [`BlackHole`]: a listener whose accept queue is full, so the kernel
//!   drops further SYNs and a connect to it hangs.
//! - [`Reserved`]: a port bound but not listening, so a connect to it is
//!   refused at once and nobody else can listen there meanwhile.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Instant;

use testkit::PATIENCE;

use super::addrs::{ms, retry, v4, v6};
use super::sockets;

/// A loopback listener that never accepts, with its accept queue full:
/// the kernel drops every further SYN, so a connect to it hangs until the
/// connecting side gives up.
pub struct BlackHole {
    pub addr: SocketAddr,
    listener: tcp::Listener,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    /// A black hole on `addr` (port 0: any), or `None` if `addr` cannot be
    /// bound. Checked: a connect to it does not complete within 200 ms.
    pub fn bind(addr: SocketAddr) -> Option<BlackHole> {
        let net = if addr.is_ipv4() { tcp::Network::Tcp4 } else { tcp::Network::Tcp6 };
        let listener = tcp::ListenConfig::new().network(net).backlog(0).bind(addr).ok()?;
        let addr = listener.local_addr().unwrap();
        // Backlog 0 holds one connection on Linux; a few more elsewhere.
        // Connect until one hangs; that hanging connect is the check.
        let mut queued = Vec::new();
        loop {
            assert!(queued.len() < 64, "the accept queue of {addr} never filled");
            match TcpStream::connect_timeout(&addr, ms(200)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the accept queue of {addr}: {e}"),
            }
        }
        Some(BlackHole { addr, listener, _queued: queued })
    }

    /// Accept (and close) one queued connection: the queue then has room
    /// for the next SYN, so a connect in progress completes when its SYN
    /// is retransmitted.
    pub fn release_one(&self) {
        self.listener.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
        drop(self.listener.accept().expect("a queued connection"));
    }
}

/// Black holes on `::1` and `127.0.0.1` sharing a port: (IPv6, IPv4).
pub fn black_holes() -> (BlackHole, BlackHole) {
    retry("black holes on both families", || {
        let h6 = BlackHole::bind(v6(Ipv6Addr::LOCALHOST, 0))?;
        let h4 = BlackHole::bind(v4(Ipv4Addr::LOCALHOST, h6.addr.port()))?;
        Some((h6, h4))
    })
}

/// A loopback port that is bound but not listening: connects to it are
/// refused, and no one else can listen on it while this lives (no
/// `SO_REUSEADDR`).
pub struct Reserved {
    pub addr: SocketAddr,
    _fd: OwnedFd,
}

impl Reserved {
    /// Reserve `addr` (port 0: any), or `None` if it is taken.
    pub fn bind(addr: SocketAddr) -> Option<Reserved> {
        let fd = sockets::tcp_socket(&addr);
        sockets::bind(&fd, &addr).ok()?;
        let port = sockets::local_port(&fd);
        Some(Reserved { addr: SocketAddr::new(addr.ip(), port), _fd: fd })
    }
}

//! Linux: sockets are created and accepted nonblocking and close-on-exec
//! in one call, sends pass `MSG_NOSIGNAL`, and accepted sockets inherit the
//! listener's `TCP_NODELAY` and keepalive settings.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{RawAddr, cvt, domain, setsockopt};

/// Linux copies the listener's socket options to an accepted socket.
pub(crate) const ACCEPTED_INHERIT_OPTIONS: bool = true;

/// A send to a dead peer is `EPIPE`, not `SIGPIPE`.
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;

/// The `getaddrinfo` errors that mean the name has no addresses.
pub(crate) const NO_SUCH_HOST: [libc::c_int; 2] = [libc::EAI_NONAME, libc::EAI_NODATA];

/// A new nonblocking, close-on-exec TCP socket for `addr`'s family.
pub(crate) fn stream_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(domain(addr), ty, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Accept one connection: nonblocking and close-on-exec from the start.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut raw = RawAddr::empty();
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `raw` is a writable sockaddr_storage and `len` its size.
    let conn = cvt(unsafe { libc::accept4(fd, raw.as_mut_ptr(), &mut raw.len, flags) })?;
    // SAFETY: accept4 returned a new fd that nobody else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(conn) };
    let peer = raw.to_socket_addr()?;
    Ok((conn, peer))
}

/// How long a connection idles before the first keepalive probe.
pub(crate) fn set_keepalive_idle(fd: RawFd, secs: libc::c_int) -> io::Result<()> {
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)
}

pub(crate) fn sockaddr_in(port_be: u16, addr: libc::in_addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port_be,
        sin_addr: addr,
        sin_zero: [0; 8],
    }
}

pub(crate) fn sockaddr_in6(port_be: u16, flowinfo: u32, addr: libc::in6_addr, scope_id: u32) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: port_be,
        sin6_flowinfo: flowinfo,
        sin6_addr: addr,
        sin6_scope_id: scope_id,
    }
}

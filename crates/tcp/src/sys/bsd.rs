//! macOS, iOS, FreeBSD, NetBSD, OpenBSD and DragonFly.
//!
//! What differs from Linux:
//! - Apple has neither `SOCK_NONBLOCK`/`SOCK_CLOEXEC` nor `accept4`: the
//!   flags are set with `fcntl` after the call (as std does there; another
//!   thread's fork-and-exec in between can inherit the socket). Nor does it
//!   honour `MSG_NOSIGNAL`: each socket gets `SO_NOSIGPIPE` instead.
//! - The keepalive idle time is `TCP_KEEPALIVE` on Apple, `TCP_KEEPIDLE`
//!   elsewhere; OpenBSD has no per-socket knob (the system's applies).
//! - `sockaddr_in`/`sockaddr_in6` carry their length (`sin_len`).
//! - `EAI_NODATA` is gone from FreeBSD and DragonFly.
//! - Whether accepted sockets inherit `TCP_NODELAY` and the keepalive
//!   timers differs between these systems and their versions, so the
//!   listener sets them on every accepted socket.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{RawAddr, cvt, domain, setsockopt};

/// Set explicitly on each accepted socket (see the module documentation).
pub(crate) const ACCEPTED_INHERIT_OPTIONS: bool = false;

/// `SO_NOSIGPIPE` on the socket does it on Apple.
#[cfg(target_vendor = "apple")]
pub(crate) const SEND_FLAGS: libc::c_int = 0;
/// A send to a dead peer is `EPIPE`, not `SIGPIPE`.
#[cfg(not(target_vendor = "apple"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;

/// The `getaddrinfo` errors that mean the name has no addresses.
#[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
pub(crate) const NO_SUCH_HOST: [libc::c_int; 1] = [libc::EAI_NONAME];
/// The `getaddrinfo` errors that mean the name has no addresses.
#[cfg(not(any(target_os = "freebsd", target_os = "dragonfly")))]
pub(crate) const NO_SUCH_HOST: [libc::c_int; 2] = [libc::EAI_NONAME, libc::EAI_NODATA];

/// A new nonblocking, close-on-exec TCP socket for `addr`'s family.
#[cfg(target_vendor = "apple")]
pub(crate) fn stream_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(domain(addr), libc::SOCK_STREAM, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    prepare(&fd)?;
    Ok(fd)
}

/// A new nonblocking, close-on-exec TCP socket for `addr`'s family.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn stream_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(domain(addr), ty, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Accept one connection, nonblocking and close-on-exec.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut raw = RawAddr::empty();
    #[cfg(target_vendor = "apple")]
    // SAFETY: `raw` is a writable sockaddr_storage and `len` its size.
    let conn = cvt(unsafe { libc::accept(fd, raw.as_mut_ptr(), &mut raw.len) })?;
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: `raw` is a writable sockaddr_storage and `len` its size.
    let conn =
        cvt(unsafe { libc::accept4(fd, raw.as_mut_ptr(), &mut raw.len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) })?;
    // SAFETY: accept returned a new fd that nobody else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(conn) };
    #[cfg(target_vendor = "apple")]
    prepare(&conn)?;
    let peer = raw.to_socket_addr()?;
    Ok((conn, peer))
}

/// Apple: nonblocking, close-on-exec and no `SIGPIPE`, after the fact.
#[cfg(target_vendor = "apple")]
fn prepare(fd: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; plain integer flags.
    unsafe {
        let fl = libc::fcntl(raw, libc::F_GETFL);
        if fl < 0 || libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    setsockopt(raw, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1 as libc::c_int)
}

/// How long a connection idles before the first keepalive probe.
pub(crate) fn set_keepalive_idle(fd: RawFd, secs: libc::c_int) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    return setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPALIVE, secs);
    #[cfg(target_os = "openbsd")]
    return {
        let _ = (fd, secs);
        Ok(())
    };
    #[cfg(not(any(target_vendor = "apple", target_os = "openbsd")))]
    return setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs);
}

pub(crate) fn sockaddr_in(port_be: u16, addr: libc::in_addr) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all-zero is valid (and zeroes
    // sin_zero).
    let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
    sin.sin_len = mem::size_of::<libc::sockaddr_in>() as u8;
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = port_be;
    sin.sin_addr = addr;
    sin
}

pub(crate) fn sockaddr_in6(port_be: u16, flowinfo: u32, addr: libc::in6_addr, scope_id: u32) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is valid.
    let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sin6.sin6_len = mem::size_of::<libc::sockaddr_in6>() as u8;
    sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sin6.sin6_port = port_be;
    sin6.sin6_flowinfo = flowinfo;
    sin6.sin6_addr = addr;
    sin6.sin6_scope_id = scope_id;
    sin6
}

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

/// The option that shares a port among listeners, the kernel spreading
/// connections among them.
pub(crate) const REUSEPORT: libc::c_int = libc::SO_REUSEPORT;

/// The `getaddrinfo` errors that mean the name has no addresses.
pub(crate) const NO_SUCH_HOST: [libc::c_int; 2] = [libc::EAI_NONAME, libc::EAI_NODATA];

/// A new nonblocking, close-on-exec stream socket of `domain`.
pub(crate) fn socket(domain: libc::c_int) -> io::Result<OwnedFd> {
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A connected pair of nonblocking, close-on-exec Unix stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as socketpair wants.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair returned two new fds that nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A new nonblocking, close-on-exec TCP socket for `addr`'s family.
pub(crate) fn stream_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    socket(domain(addr))
}

/// Accept one connection into `raw` (the peer's address): nonblocking
/// and close-on-exec from the start.
pub(crate) fn accept_into(fd: RawFd, raw: &mut RawAddr) -> io::Result<OwnedFd> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `raw` is a writable sockaddr_storage and `len` its size.
    let conn = cvt(unsafe { libc::accept4(fd, raw.as_mut_ptr(), &mut raw.len, flags) })?;
    // SAFETY: accept4 returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(conn) })
}

/// `recvmsg` flags for descriptors passed with `SCM_RIGHTS`: they arrive
/// close-on-exec.
pub(crate) const RECV_FD_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;

/// A received descriptor is already close-on-exec (`RECV_FD_FLAGS`).
pub(crate) fn received_fd(_fd: &OwnedFd) -> io::Result<()> {
    Ok(())
}

/// The peer's credentials at connect time (`SO_PEERCRED`): pid, uid, gid.
pub(crate) fn peer_cred(fd: RawFd) -> io::Result<(Option<i32>, u32, u32)> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are live and sized for SO_PEERCRED.
    cvt(unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len) })?;
    Ok((Some(cred.pid), cred.uid, cred.gid))
}

/// An abstract socket name (Linux's namespace without files), if `addr`
/// is one.
pub(crate) fn abstract_name(addr: &std::os::unix::net::SocketAddr) -> Option<&[u8]> {
    std::os::linux::net::SocketAddrExt::as_abstract_name(addr)
}

/// Linux's `sockaddr_un` has no length field.
pub(crate) fn set_sun_len(_sun: &mut libc::sockaddr_un, _len: usize) {}

/// How long a connection idles before the first keepalive probe.
pub(crate) fn set_keepalive_idle(fd: RawFd, secs: libc::c_int) -> io::Result<()> {
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)
}

/// The longest accept queue the system allows, as Go reads it:
/// `net.core.somaxconn` (128 if it cannot be read, and at most 65 535,
/// which older kernels store in 16 bits).
pub(crate) fn max_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&n| n > 0)
        .map_or(libc::SOMAXCONN as u32, |n| n.min(65_535))
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

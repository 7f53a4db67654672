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

/// The option that shares a port among listeners, the kernel spreading
/// connections among them: on FreeBSD that is `SO_REUSEPORT_LB` (its
/// `SO_REUSEPORT` gives every connection to the last listener).
#[cfg(target_os = "freebsd")]
pub(crate) const REUSEPORT: libc::c_int = libc::SO_REUSEPORT_LB;
/// The option that shares a port among listeners.
#[cfg(not(target_os = "freebsd"))]
pub(crate) const REUSEPORT: libc::c_int = libc::SO_REUSEPORT;

/// The `getaddrinfo` errors that mean the name has no addresses.
#[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
pub(crate) const NO_SUCH_HOST: [libc::c_int; 1] = [libc::EAI_NONAME];
/// The `getaddrinfo` errors that mean the name has no addresses.
#[cfg(not(any(target_os = "freebsd", target_os = "dragonfly")))]
pub(crate) const NO_SUCH_HOST: [libc::c_int; 2] = [libc::EAI_NONAME, libc::EAI_NODATA];

/// A new nonblocking, close-on-exec stream socket of `domain`.
#[cfg(target_vendor = "apple")]
pub(crate) fn socket(domain: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    prepare(&fd)?;
    Ok(fd)
}

/// A new nonblocking, close-on-exec stream socket of `domain`.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn socket(domain: libc::c_int) -> io::Result<OwnedFd> {
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A connected pair of nonblocking, close-on-exec Unix stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(target_vendor = "apple")]
    let ty = libc::SOCK_STREAM;
    #[cfg(not(target_vendor = "apple"))]
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as socketpair wants.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair returned two new fds that nobody else owns.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(target_vendor = "apple")]
    {
        prepare(&pair.0)?;
        prepare(&pair.1)?;
    }
    Ok(pair)
}

/// A new nonblocking, close-on-exec TCP socket for `addr`'s family.
pub(crate) fn stream_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    socket(domain(addr))
}

/// Accept one connection into `raw` (the peer's address), nonblocking and
/// close-on-exec.
pub(crate) fn accept_into(fd: RawFd, raw: &mut RawAddr) -> io::Result<OwnedFd> {
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
    Ok(conn)
}

/// `recvmsg` flags for descriptors passed with `SCM_RIGHTS`: Apple has no
/// `MSG_CMSG_CLOEXEC` (`received_fd` sets the flag after the call).
#[cfg(target_vendor = "apple")]
pub(crate) const RECV_FD_FLAGS: libc::c_int = 0;
/// `recvmsg` flags for descriptors passed with `SCM_RIGHTS`: they arrive
/// close-on-exec.
#[cfg(not(target_vendor = "apple"))]
pub(crate) const RECV_FD_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;

/// Make a received descriptor close-on-exec where `RECV_FD_FLAGS` could
/// not (Apple; another thread's fork-and-exec in between can inherit it).
pub(crate) fn received_fd(fd: &OwnedFd) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on a descriptor we own; plain integer flags.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    }
    #[cfg(not(target_vendor = "apple"))]
    let _ = fd;
    Ok(())
}

/// The peer's effective uid and gid at connect time (`getpeereid`); these
/// systems give no pid this way.
pub(crate) fn peer_cred(fd: RawFd) -> io::Result<(Option<i32>, u32, u32)> {
    let mut uid: libc::uid_t = 0;
    let mut gid: libc::gid_t = 0;
    // SAFETY: `uid` and `gid` are live and writable for the call.
    cvt(unsafe { libc::getpeereid(fd, &mut uid, &mut gid) })?;
    Ok((None, uid, gid))
}

/// There are no abstract socket names here.
pub(crate) fn abstract_name(_addr: &std::os::unix::net::SocketAddr) -> Option<&[u8]> {
    None
}

/// `sockaddr_un` carries its length (`sun_len`).
pub(crate) fn set_sun_len(sun: &mut libc::sockaddr_un, len: usize) {
    sun.sun_len = len as u8;
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

/// The accept queue length asked for by default: these kernels lower a
/// longer one to their own limit (`kern.ipc.somaxconn`, or
/// `kern.ipc.soacceptqueue` on FreeBSD), so asking for 4 096 gets the
/// system's maximum up to that.
pub(crate) fn max_backlog() -> u32 {
    4096
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

//! Raw sockets and socket addresses, for what the API under test does not
//! offer: a port bound but not listening, a socket connected by hand.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A new TCP socket of `addr`'s family, close-on-exec (set after the fact:
/// macOS has no SOCK_CLOEXEC), so the peers tests spawn do not inherit it.
pub fn tcp_socket(addr: &SocketAddr) -> OwnedFd {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall with constant arguments.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` was just returned by socket() and is owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on a descriptor we own, with a constant flag.
    assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    fd
}

/// `addr` as the kernel takes it: the storage and the length that counts.
pub fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The port `fd` is bound to.
pub fn local_port(fd: &impl AsRawFd) -> u16 {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes.
    let rc = unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len) };
    assert_eq!(rc, 0, "getsockname: {}", io::Error::last_os_error());
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel filled `storage` with a sockaddr_in for this AF_INET socket.
            let sin = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in>() };
            u16::from_be(sin.sin_port)
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel filled `storage` with a sockaddr_in6 for this AF_INET6 socket.
            let sin6 = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in6>() };
            u16::from_be(sin6.sin6_port)
        }
        family => panic!("getsockname: not an IP socket (family {family})"),
    }
}

/// Bind `fd` to `addr`, or the error the kernel gave.
pub fn bind(fd: &impl AsRawFd, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr of `addr`'s family, valid for `len` bytes.
    let rc = unsafe { libc::bind(fd.as_raw_fd(), (&raw const storage).cast(), len) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Connect `fd` to `addr` (blocking), asserting that it took.
pub fn connect(fd: &impl AsRawFd, addr: &SocketAddr) {
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr of `addr`'s family, valid for `len` bytes.
    let rc = unsafe { libc::connect(fd.as_raw_fd(), (&raw const storage).cast(), len) };
    assert_eq!(rc, 0, "connect: {}", io::Error::last_os_error());
}

//! The OS seam of the tcp crate: socket syscalls and `sockaddr` conversion.
//! Everything above this module speaks `SocketAddr`, `OwnedFd` and
//! `io::Result`. Linux (and other Unix with `accept4`) only for now.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
}

/// A `sockaddr_storage` and the length of the address in it.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn new(addr: &SocketAddr) -> RawAddr {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in.
                unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
                mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in6.
                unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
                mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr { storage, len: len as libc::socklen_t }
    }

    fn empty() -> RawAddr {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        RawAddr { storage: unsafe { mem::zeroed() }, len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&raw mut self.storage).cast()
    }

    fn to_socket_addr(&self) -> io::Result<SocketAddr> {
        match i32::from(self.storage.ss_family) {
            libc::AF_INET if self.len as usize >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // and the length says the kernel wrote all of it.
                let sin = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if self.len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                // An IPv4 peer of a dual-stack socket is an IPv4 address, as
                // Go reports it, not ::ffff:a.b.c.d.
                if let Some(v4) = ip.to_ipv4_mapped() {
                    return Ok(SocketAddr::V4(SocketAddrV4::new(v4, u16::from_be(sin6.sin6_port))));
                }
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not an internet socket address")),
        }
    }
}

/// A new nonblocking, close-on-exec TCP socket for `addr`'s family.
pub(crate) fn stream_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: T) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed with it.
    cvt(unsafe { libc::setsockopt(fd, level, name, (&raw const value).cast(), mem::size_of::<T>() as libc::socklen_t) })
        .map(drop)
}

fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` live across the call; `len` is value's size.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut len) })?;
    Ok(value)
}

/// `SO_LINGER`: on close, wait up to `d` (whole seconds, rounded up) for
/// unsent data; `Some(ZERO)` resets the connection at once; `None`, the
/// default, closes in the background.
pub(crate) fn set_linger(fd: RawFd, d: Option<Duration>) -> io::Result<()> {
    let linger = match d {
        None => libc::linger { l_onoff: 0, l_linger: 0 },
        Some(d) => {
            let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
            libc::linger { l_onoff: 1, l_linger: libc::c_int::try_from(secs).unwrap_or(libc::c_int::MAX) }
        }
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, linger)
}

/// The IP time-to-live (IPv4) or hop limit (IPv6) for outgoing packets.
pub(crate) fn set_ttl(fd: RawFd, v6: bool, ttl: u32) -> io::Result<()> {
    let ttl =
        libc::c_int::try_from(ttl).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ttl out of range"))?;
    if v6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, ttl)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, ttl)
    }
}

pub(crate) fn ttl(fd: RawFd, v6: bool) -> io::Result<u32> {
    let v = if v6 {
        getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)?
    } else {
        getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL)?
    };
    u32::try_from(v).map_err(|_| io::Error::other("negative ttl from the kernel"))
}

pub(crate) fn set_reuseaddr(fd: RawFd, on: bool) -> io::Result<()> {
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, libc::c_int::from(on))
}

pub(crate) fn set_v6only(fd: RawFd, on: bool) -> io::Result<()> {
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, libc::c_int::from(on))
}

pub(crate) fn set_nodelay(fd: RawFd, on: bool) -> io::Result<()> {
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, libc::c_int::from(on))
}

/// Keepalive on with `period` as both the idle time and the probe interval
/// (as Go does), or off for `None`.
pub(crate) fn set_keepalive(fd: RawFd, period: Option<Duration>) -> io::Result<()> {
    let Some(period) = period else {
        return setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0 as libc::c_int);
    };
    // Whole seconds, rounded up, at least one; the kernel caps at 32767.
    let secs = period.as_secs().saturating_add(u64::from(period.subsec_nanos() > 0)).clamp(1, 32_767) as libc::c_int;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1 as libc::c_int)?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs)
}

pub(crate) fn bind(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    let raw = RawAddr::new(addr);
    // SAFETY: `raw` holds a valid sockaddr of length `raw.len`.
    cvt(unsafe { libc::bind(fd, raw.as_ptr(), raw.len) }).map(drop)
}

pub(crate) fn listen(fd: RawFd, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: plain syscall.
    cvt(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// Start a nonblocking connect. `Ok` means connected at once; the usual
/// outcome is an `EINPROGRESS` error.
pub(crate) fn connect(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    let raw = RawAddr::new(addr);
    // SAFETY: `raw` holds a valid sockaddr of length `raw.len`.
    cvt(unsafe { libc::connect(fd, raw.as_ptr(), raw.len) }).map(drop)
}

/// The pending error on a socket (`SO_ERROR`), which also clears it.
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are live and sized for SO_ERROR.
    cvt(unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast(), &mut len) })?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// Accept one connection: nonblocking and close-on-exec from the start.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut raw = RawAddr::empty();
    // SAFETY: `raw` is a writable sockaddr_storage and `len` its size.
    let conn =
        cvt(unsafe { libc::accept4(fd, raw.as_mut_ptr(), &mut raw.len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) })?;
    // SAFETY: accept4 returned a new fd that nobody else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(conn) };
    let peer = raw.to_socket_addr()?;
    Ok((conn, peer))
}

pub(crate) fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: `raw` is a writable sockaddr_storage and `len` its size.
    cvt(unsafe { libc::getsockname(fd, raw.as_mut_ptr(), &mut raw.len) })?;
    raw.to_socket_addr()
}

pub(crate) fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: `raw` is a writable sockaddr_storage and `len` its size.
    cvt(unsafe { libc::getpeername(fd, raw.as_mut_ptr(), &mut raw.len) })?;
    raw.to_socket_addr()
}

pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its whole length.
    cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// Send without ever raising SIGPIPE: a dead peer is an `EPIPE` error.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its whole length.
    cvt_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

pub(crate) fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: plain syscall.
    cvt(unsafe { libc::shutdown(fd, how) }).map(drop)
}

/// The index of network interface `name` (for IPv6 zones), if it exists.
pub(crate) fn interface_index(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string for the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// Why `getaddrinfo` failed.
#[derive(Debug)]
pub(crate) enum LookupFailure {
    /// The name has no addresses.
    NotFound,
    /// Anything else, in the resolver's words.
    Other(String),
}

/// The addresses of `host` from the system resolver (`getaddrinfo`,
/// `AF_UNSPEC`, stream sockets), in its order, duplicates removed, with
/// port 0 and the IPv6 scope ids it gives (link-local answers have one).
/// Blocks for as long as the system resolver takes.
pub(crate) fn getaddrinfo(host: &str) -> Result<Vec<SocketAddr>, LookupFailure> {
    let c_host = std::ffi::CString::new(host).map_err(|_| LookupFailure::NotFound)?;
    // SAFETY: addrinfo is plain old data; all-zero is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and hints; `res` receives a list we free below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return Err(match rc {
            libc::EAI_NONAME | libc::EAI_NODATA => LookupFailure::NotFound,
            libc::EAI_SYSTEM => LookupFailure::Other(io::Error::last_os_error().to_string()),
            _ => {
                // SAFETY: gai_strerror returns a static NUL-terminated string.
                let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(rc)) };
                LookupFailure::Other(msg.to_string_lossy().to_lowercase())
            }
        });
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: `cur` walks the list getaddrinfo returned; it is freed only
        // after the walk.
        let ai = unsafe { &*cur };
        if !ai.ai_addr.is_null() && ai.ai_addrlen as usize <= mem::size_of::<libc::sockaddr_storage>() {
            let mut raw = RawAddr::empty();
            // SAFETY: copies `ai_addrlen` bytes (checked to fit) from the
            // kernel-provided sockaddr into our storage.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    ai.ai_addr.cast::<u8>(),
                    (&raw mut raw.storage).cast::<u8>(),
                    ai.ai_addrlen as usize,
                )
            };
            raw.len = ai.ai_addrlen;
            if let Ok(mut addr) = raw.to_socket_addr() {
                addr.set_port(0);
                if let SocketAddr::V6(v6) = &mut addr {
                    v6.set_flowinfo(0);
                }
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    if out.is_empty() { Err(LookupFailure::NotFound) } else { Ok(out) }
}

// glibc's reentrant services lookup; the libc crate does not bind it.
unsafe extern "C" {
    fn getservbyname_r(
        name: *const libc::c_char,
        proto: *const libc::c_char,
        result_buf: *mut libc::servent,
        buf: *mut libc::c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::servent,
    ) -> libc::c_int;
}

/// The TCP port of `service` in the system's services database.
pub(crate) fn service_port(service: &str) -> Option<u16> {
    let name = std::ffi::CString::new(service).ok()?;
    let proto = c"tcp";
    // SAFETY: servent is plain old data; all-zero is valid.
    let mut ent: libc::servent = unsafe { mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::servent = std::ptr::null_mut();
    // SAFETY: the reentrant variant writes only into `ent` and `buf`, whose
    // sizes are given, and points `result` at `ent` on success.
    let rc =
        unsafe { getservbyname_r(name.as_ptr(), proto.as_ptr(), &mut ent, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(u16::from_be(ent.s_port as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for s in ["127.0.0.1:80", "0.0.0.0:0", "[::1]:443", "[fe80::1%3]:8080", "[2001:db8::5]:65535"] {
            let addr: SocketAddr = s.parse().unwrap();
            let raw = RawAddr::new(&addr);
            assert_eq!(raw.to_socket_addr().unwrap(), addr, "{s}");
        }
    }
}

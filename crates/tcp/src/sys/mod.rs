//! The OS seam of the tcp crate: socket syscalls and `sockaddr` conversion.
//! Everything above this module speaks `SocketAddr`, `OwnedFd` and
//! `io::Result`, and names no OS.
//!
//! This file is the POSIX part every system shares, and `local.rs` its
//! Unix-domain-socket part. What differs lives in `linux.rs` and `bsd.rs`
//! (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly), each providing the
//! same items: how a socket or socket pair is created and accepted
//! nonblocking and close-on-exec (`socket`, `socketpair`, `accept_into`),
//! how a send avoids `SIGPIPE` (`SEND_FLAGS`), how received descriptors
//! become close-on-exec (`RECV_FD_FLAGS`, `received_fd`), the keepalive
//! idle-time option (`set_keepalive_idle`), the port-sharing option
//! (`REUSEPORT`), the default backlog (`max_backlog`), the peer's
//! credentials (`peer_cred`), abstract socket names (`abstract_name`),
//! `sockaddr_in`/`sockaddr_in6`/`sockaddr_un` lengths (`sin_len`,
//! `sun_len` on the BSDs), which `getaddrinfo` errors mean "no such
//! host", and whether accepted sockets inherit the listener's options
//! (`ACCEPTED_INHERIT_OPTIONS`).

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{OwnedFd, RawFd};
use std::time::Duration;

// The one OS-specific module, `os`: `linux.rs`, or `bsd.rs` for the
// kqueue systems (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly), by the
// dispatch iopoll's `os_module!` writes once for both crates' seams.
iopoll::os_module!();

mod local;

pub(crate) use local::{
    bind_unix, connect_unix, peer_cred, recv_with_fds, send_with_fds, socketpair, unix_local_addr, unix_peer_addr,
    unix_socket,
};
pub(crate) use os::{ACCEPTED_INHERIT_OPTIONS, abstract_name, stream_socket};

/// The system's maximum accept queue length, read once.
pub(crate) fn max_backlog() -> u32 {
    static MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAX.get_or_init(os::max_backlog)
}

/// Accept one TCP connection, nonblocking and close-on-exec, with the
/// peer's address.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut raw = RawAddr::empty();
    let conn = os::accept_into(fd, &mut raw)?;
    let peer = raw.to_socket_addr()?;
    Ok((conn, peer))
}

/// Accept one connection, nonblocking and close-on-exec, without its
/// address (Unix sockets: the peer is usually unnamed).
pub(crate) fn accept_any(fd: RawFd) -> io::Result<OwnedFd> {
    os::accept_into(fd, &mut RawAddr::empty())
}

/// Release a descriptor number.
///
/// # Safety
/// `fd` must be open and owned by the caller, and no one may use the
/// number afterwards (it may be reused at once).
pub(crate) unsafe fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and gives it up here.
    unsafe { libc::close(fd) };
}

/// The most one `send` or `recv` moves: macOS fails larger lengths with
/// `EINVAL` (as std notes, `INT_MAX` and up); a short transfer is fine.
const MAX_LEN: usize = libc::c_int::MAX as usize - 1;

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
                let sin =
                    os::sockaddr_in(a.port().to_be(), libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) });
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in.
                unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
                mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = os::sockaddr_in6(
                    a.port().to_be(),
                    a.flowinfo(),
                    libc::in6_addr { s6_addr: a.ip().octets() },
                    a.scope_id(),
                );
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

/// The socket domain for `addr`'s family.
fn domain(addr: &SocketAddr) -> libc::c_int {
    if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 }
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

/// Which kernel buffer `set_buffer_size` and `buffer_size` mean.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Buffer {
    Receive,
    Send,
}

impl Buffer {
    fn option(self) -> libc::c_int {
        match self {
            Buffer::Receive => libc::SO_RCVBUF,
            Buffer::Send => libc::SO_SNDBUF,
        }
    }
}

/// `SO_RCVBUF` / `SO_SNDBUF`. The kernel may round the size, or (Linux)
/// double it for its own bookkeeping: read it back with `buffer_size`.
pub(crate) fn set_buffer_size(fd: RawFd, which: Buffer, size: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(size)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "buffer size out of range"))?;
    setsockopt(fd, libc::SOL_SOCKET, which.option(), size)
}

pub(crate) fn buffer_size(fd: RawFd, which: Buffer) -> io::Result<usize> {
    let v = getsockopt_int(fd, libc::SOL_SOCKET, which.option())?;
    usize::try_from(v).map_err(|_| io::Error::other("negative buffer size from the kernel"))
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
    set_keepalive_config(fd, period.is_some(), period, period, None)
}

/// Keepalive on or off; when on, the idle time, the probe interval and the
/// probe count that are given (`None` leaves the system's).
pub(crate) fn set_keepalive_config(
    fd: RawFd,
    enable: bool,
    idle: Option<Duration>,
    interval: Option<Duration>,
    count: Option<u32>,
) -> io::Result<()> {
    if !enable {
        return setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0 as libc::c_int);
    }
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1 as libc::c_int)?;
    if let Some(idle) = idle {
        os::set_keepalive_idle(fd, keepalive_secs(idle))?;
    }
    if let Some(interval) = interval {
        setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, keepalive_secs(interval))?;
    }
    if let Some(count) = count {
        let count = libc::c_int::try_from(count)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "keepalive count out of range"))?;
        setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, count)?;
    }
    Ok(())
}

/// Whole seconds, rounded up, at least one; the kernel caps at 32767.
fn keepalive_secs(d: Duration) -> libc::c_int {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)).clamp(1, 32_767) as libc::c_int
}

/// Let several sockets bind the same address and port, the kernel
/// spreading incoming connections among them.
pub(crate) fn set_reuseport(fd: RawFd, on: bool) -> io::Result<()> {
    setsockopt(fd, libc::SOL_SOCKET, os::REUSEPORT, libc::c_int::from(on))
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

/// Receive up to `buf.len()` bytes (at most `MAX_LEN` in one call).
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len().min(MAX_LEN);
    // SAFETY: `buf` is writable for at least `len` bytes.
    cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), len, 0) })
}

/// Send (at most `MAX_LEN` bytes in one call) without ever raising
/// SIGPIPE: a dead peer is an `EPIPE` error. Where there is no
/// `MSG_NOSIGNAL` (Apple), the socket has `SO_NOSIGPIPE` from its creation.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len().min(MAX_LEN);
    // SAFETY: `buf` is readable for at least `len` bytes.
    cvt_size(unsafe { libc::send(fd, buf.as_ptr().cast(), len, os::SEND_FLAGS) })
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
            rc if os::NO_SUCH_HOST.contains(&rc) => LookupFailure::NotFound,
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

/// The TCP port of `service` in the system's services database, through
/// `getaddrinfo` (reentrant everywhere, unlike `getservbyname`; glibc's
/// `getservbyname_r` is not on macOS). Numbers are not service names:
/// `getaddrinfo` would take "+80" as port 80, the database does not.
pub(crate) fn service_port(service: &str) -> Option<u16> {
    let unsigned = service.trim_start().trim_start_matches(['+', '-']);
    if unsigned.is_empty() || unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = std::ffi::CString::new(service).ok()?;
    // SAFETY: addrinfo is plain old data; all-zero is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_protocol = libc::IPPROTO_TCP;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: a null host (the loopback address), a valid C string and
    // hints; `res` receives a list we free below.
    let rc = unsafe { libc::getaddrinfo(std::ptr::null(), name.as_ptr(), &hints, &mut res) };
    if rc != 0 {
        return None;
    }
    let mut port = None;
    let mut cur = res;
    while !cur.is_null() && port.is_none() {
        // SAFETY: `cur` walks the list getaddrinfo returned; it is freed
        // only after the walk.
        let ai = unsafe { &*cur };
        if ai.ai_family == libc::AF_INET && !ai.ai_addr.is_null() {
            // SAFETY: an AF_INET entry's address is a sockaddr_in.
            port = Some(u16::from_be(unsafe { (*ai.ai_addr.cast::<libc::sockaddr_in>()).sin_port }));
        }
        cur = ai.ai_next;
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    port
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

    #[test]
    fn service_names_are_looked_up_and_numbers_are_not_names() {
        // Minimal containers may have no services database: only names
        // the database has can be expected, and none of these is one.
        for s in ["", "80", "+80", "-1", " 22", "65536", "no-such-service-zz", "ht\0tp"] {
            assert_eq!(service_port(s), None, "{s:?}");
        }
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(service_port("ssh"), Some(22));
        }
    }
}

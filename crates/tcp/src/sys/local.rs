//! Unix domain sockets (`AF_UNIX`): the part every system shares. Socket
//! creation, accepted sockets, peer credentials, abstract names and the
//! length field of `sockaddr_un` differ, and come from `os`.
//!
//! Addresses are std's `std::os::unix::net::SocketAddr`: std already
//! turns `getsockname`/`getpeername` results into it (unnamed, path and,
//! on Linux, abstract), so this module only builds `sockaddr_un` for
//! `bind` and `connect`.

use std::io;
use std::mem::{self, ManuallyDrop};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixStream};

pub(crate) use super::os::{peer_cred, socketpair};
use super::{MAX_LEN, RawAddr, cvt, cvt_size, os};

/// The most descriptors one message carries (Linux's `SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// Room for one `SCM_RIGHTS` message of `MAX_FDS` descriptors (a header
/// of at most 16 bytes, then 4 bytes each), aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 2048]);

/// A new nonblocking, close-on-exec Unix stream socket.
pub(crate) fn unix_socket() -> io::Result<OwnedFd> {
    os::socket(libc::AF_UNIX)
}

/// `addr` as a `sockaddr_un`: a path (NUL-terminated), or on Linux an
/// abstract name (a leading NUL, then the name's bytes).
fn raw_unix(addr: &UnixAddr) -> io::Result<RawAddr> {
    let (bytes, abstract_name) = if let Some(path) = addr.as_pathname() {
        (path.as_os_str().as_bytes(), false)
    } else if let Some(name) = os::abstract_name(addr) {
        (name, true)
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an unnamed Unix socket address cannot be bound or connected to",
        ));
    };
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let start = usize::from(abstract_name);
    // A path needs its terminating NUL to fit too.
    let room = sun.sun_path.len() - start - usize::from(!abstract_name);
    if bytes.len() > room {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("Unix socket address is {} bytes long; at most {room} fit", bytes.len()),
        ));
    }
    if !abstract_name && bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "Unix socket path contains a NUL byte"));
    }
    for (dst, &b) in sun.sun_path[start..].iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    let len = mem::offset_of!(libc::sockaddr_un, sun_path) + start + bytes.len() + usize::from(!abstract_name);
    os::set_sun_len(&mut sun, len);
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
    unsafe { (&raw mut storage).cast::<libc::sockaddr_un>().write(sun) };
    Ok(RawAddr { storage, len: len as libc::socklen_t })
}

/// Bind `fd` to `addr` (a path makes a socket file there).
pub(crate) fn bind_unix(fd: RawFd, addr: &UnixAddr) -> io::Result<()> {
    let raw = raw_unix(addr)?;
    // SAFETY: `raw` holds a valid sockaddr_un of length `raw.len`.
    cvt(unsafe { libc::bind(fd, raw.as_ptr(), raw.len) }).map(drop)
}

/// Start a nonblocking connect to `addr`. Unix sockets usually connect at
/// once; a full accept queue is `EAGAIN` on Linux, as in Go.
pub(crate) fn connect_unix(fd: RawFd, addr: &UnixAddr) -> io::Result<()> {
    let raw = raw_unix(addr)?;
    // SAFETY: `raw` holds a valid sockaddr_un of length `raw.len`.
    cvt(unsafe { libc::connect(fd, raw.as_ptr(), raw.len) }).map(drop)
}

/// Run `f` on `fd` seen as a std `UnixStream`, which is never closed here.
fn as_std<T>(fd: RawFd, f: impl FnOnce(&UnixStream) -> T) -> T {
    // SAFETY: the caller keeps `fd` open across the call (it holds a
    // reference on it); `ManuallyDrop` keeps std from closing it.
    let s = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(fd) });
    f(&s)
}

/// The socket's own address (`getsockname`).
pub(crate) fn unix_local_addr(fd: RawFd) -> io::Result<UnixAddr> {
    as_std(fd, UnixStream::local_addr)
}

/// The peer's address (`getpeername`).
pub(crate) fn unix_peer_addr(fd: RawFd) -> io::Result<UnixAddr> {
    as_std(fd, UnixStream::peer_addr)
}

/// Send `data` with `fds` attached as `SCM_RIGHTS` (they travel with the
/// first byte sent). Never raises `SIGPIPE`.
pub(crate) fn send_with_fds(fd: RawFd, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    if fds.is_empty() {
        return super::send(fd, data);
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} descriptors in one message; at most {MAX_FDS} fit", fds.len()),
        ));
    }
    if data.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "descriptors must travel with at least one byte"));
    }
    let mut cbuf = CmsgBuf([0; 2048]);
    let payload = (fds.len() * mem::size_of::<libc::c_int>()) as u32;
    let mut iov = libc::iovec { iov_base: data.as_ptr().cast_mut().cast(), iov_len: data.len().min(MAX_LEN) };
    // SAFETY: msghdr is plain old data; all-zero is a valid empty message.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as _;
    // SAFETY: the control buffer is aligned for cmsghdr and larger than
    // CMSG_SPACE(payload) (at most MAX_FDS descriptors), so the header and
    // the descriptors after it are written inside it. sendmsg reads the
    // data through `iov`, which points into `data`, live across the call.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
        let out = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
        for (i, fd) in fds.iter().enumerate() {
            out.add(i).write_unaligned(fd.as_raw_fd());
        }
        cvt_size(libc::sendmsg(fd, &msg, os::SEND_FLAGS))
    }
}

/// Receive into `buf`, appending any descriptors that came with the bytes
/// to `fds` (close-on-exec). Descriptors that did not fit were closed by
/// the kernel: an error then says so, and those that fit are still in
/// `fds`.
pub(crate) fn recv_with_fds(fd: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut cbuf = CmsgBuf([0; 2048]);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len().min(MAX_LEN) };
    // SAFETY: msghdr is plain old data; all-zero is a valid empty message.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len() as _;
    // SAFETY: `iov` points into `buf` and the control buffer into `cbuf`,
    // both writable for the lengths given and live across the call.
    let n = cvt_size(unsafe { libc::recvmsg(fd, &mut msg, os::RECV_FD_FLAGS) })?;
    let first = fds.len();
    // SAFETY: the kernel filled the control buffer with well-formed
    // messages within `msg_controllen`; the CMSG_* walk stays inside it.
    // Every SCM_RIGHTS entry is a new descriptor this process now owns,
    // each taken once.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let header = data as usize - cmsg as usize;
                let count = ((*cmsg).cmsg_len as usize).saturating_sub(header) / mem::size_of::<libc::c_int>();
                for i in 0..count {
                    let raw = data.cast::<libc::c_int>().add(i).read_unaligned();
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    for received in &fds[first..] {
        os::received_fd(received)?;
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other(format!(
            "more descriptors arrived than fit in one message ({MAX_FDS}); the kernel closed the rest"
        )));
    }
    Ok(n)
}

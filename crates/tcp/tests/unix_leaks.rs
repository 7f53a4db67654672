//! No descriptor leaks from Unix sockets and socket control, counted for
//! the whole process: 100 rounds of failures (binding over a stale file, a
//! path too long, nobody listening, a control hook that refuses, bad
//! descriptor-passing input, an expired deadline) and successes (listen,
//! connect, accept, pass a descriptor, close) leave the process with the
//! descriptors it had, and the scratch directory with no socket file.
//!
//! The count must be this scenario's alone, so the binary has a single
//! test. Linux only: descriptors are counted in `/proc`.
#![cfg(target_os = "linux")]

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Instant;

use tcp::unix::{self, Conn};
use tcp::{Dialer, ListenConfig};
use testkit::{count_fds, scratch_dir, settles};

#[test]
fn unix_sockets_and_control_hooks_leak_no_descriptors() {
    let dir = scratch_dir("reseau-unix-leaks");
    // Warm up: the global runtime, this thread's wake-up descriptor.
    round(&dir);
    let before = count_fds();
    for _ in 0..100 {
        round(&dir);
    }
    assert_eq!(settles(before, count_fds), before, "descriptors leaked");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "socket files left behind: {left:?}");
}

fn round(dir: &Path) {
    let path = dir.join("s.sock");

    // A stale file: binding fails, connecting is refused; removed, it binds.
    drop(UnixListener::bind(&path).unwrap());
    assert_eq!(unix::listen(&path).unwrap_err().kind(), io::ErrorKind::AddrInUse);
    assert_eq!(unix::connect(&path).unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(unix::connect(&path).unwrap_err().kind(), io::ErrorKind::NotFound);
    let long = dir.join("x".repeat(120));
    assert_eq!(unix::listen(&long).unwrap_err().kind(), io::ErrorKind::InvalidInput);

    // A full exchange, a descriptor passed, then close.
    let l = unix::listen(&path).unwrap();
    let mut c = unix::connect(&path).unwrap();
    let s = l.accept().unwrap();
    let (x, mut y) = UnixStream::pair().unwrap();
    s.send_with_fds(b"f", &[x.as_fd()]).unwrap();
    drop(x);
    let (mut buf, mut fds) = ([0; 4], Vec::<OwnedFd>::new());
    c.recv_with_fds(&mut buf, &mut fds).unwrap();
    let mut x = UnixStream::from(fds.pop().unwrap());
    x.write_all(b"ok").unwrap();
    y.read_exact(&mut buf[..2]).unwrap();
    // Bad input and an expired deadline.
    assert!(s.send_with_fds(b"", &[y.as_fd()]).is_err());
    assert!(c.recv_with_fds(&mut [], &mut fds).is_err());
    c.set_read_deadline(Some(Instant::now())).unwrap();
    assert!(c.recv_with_fds(&mut buf, &mut fds).is_err());
    assert!(c.read(&mut buf).is_err());
    drop((c, s));
    l.close().unwrap();

    // Pairs, and control hooks that refuse.
    drop(Conn::pair().unwrap());
    let refuse = |_: std::os::fd::BorrowedFd<'_>| Err(io::Error::other("no"));
    assert!(ListenConfig::new().control(refuse).listen("127.0.0.1:0").is_err());
    let tcp_l = ListenConfig::new().reuse_port(true).listen("127.0.0.1:0").unwrap();
    let addr = tcp_l.local_addr().unwrap();
    assert!(Dialer::new().control(refuse).connect_addr(addr).is_err());
    drop(tcp_l);
}

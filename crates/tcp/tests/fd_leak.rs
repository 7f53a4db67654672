//! Descriptor accounting: connect/accept/close cycles leave the fd count
//! where it was, and operations on a closed `Conn` never close a descriptor
//! that has since reused its number. In a file of its own (its own process)
//! so no other test's descriptors are counted; the tests here take a lock so
//! they do not count each other's either.
//!
//! Linux only: descriptors are counted in `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tcp::Listener;

/// This process's descriptors and what they point at.
fn fd_list() -> Vec<(String, String)> {
    let mut v: Vec<_> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), target.to_string_lossy().into_owned()))
        })
        .collect();
    v.sort();
    v
}

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One cycle, in one of several shapes: who closes first, explicit close
/// or drop, a timeout on the way, a close that wakes a parked reader.
fn cycle(l: &Listener, i: usize) {
    let (mut c, mut s) = pair_on(l);
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).unwrap();
    match i % 4 {
        0 => {
            c.close().unwrap();
            assert_eq!(s.read(&mut b).unwrap(), 0);
        }
        1 => {
            drop(s);
            assert_eq!(c.read(&mut b).unwrap(), 0);
        }
        2 => {
            c.set_read_deadline(Some(Instant::now() + Duration::from_millis(1))).unwrap();
            assert_timeout_result(c.read(&mut b));
            s.close().unwrap();
            c.close().unwrap();
        }
        _ => {
            let c = Arc::new(c);
            let c2 = c.clone();
            let rx = spawn_parked(move || (&*c2).read(&mut [0u8; 1]));
            close_soon(&c);
            let (r, _) = rx.recv_timeout(PATIENCE).expect("reader not woken by close");
            assert_closed_result(r);
        }
    }
}

#[test]
fn no_fd_leak_over_300_cycles() {
    let _g = serial();
    let l = listener();
    // Warm up: the global reactor and this thread's wake-up eventfd are
    // created once and kept. Only the shapes without a helper thread: such
    // a thread's eventfd goes when it exits, which may be after `before`.
    for i in 0..3 {
        cycle(&l, i);
    }
    let before = count_fds();
    let before_list = fd_list();
    for i in 0..300 {
        cycle(&l, i);
    }
    // Threads spawned by `cycle` close their eventfd when they exit; give
    // the last one a moment to finish exiting (bounded).
    let deadline = Instant::now() + PATIENCE;
    let mut after = count_fds();
    while after != before && Instant::now() < deadline {
        std::thread::yield_now();
        after = count_fds();
    }
    assert_eq!(after, before, "descriptors open before and after 300 cycles: {before_list:?} then {:?}", fd_list());
}

/// Once a `Conn` is closed its fd number is free for reuse. Every later
/// call on the closed `Conn` must fail with `Closed` without touching that
/// number, so a descriptor that reuses it stays open.
#[test]
fn operations_after_close_leave_a_reused_fd_alone() {
    let _g = serial();
    let (c, _s) = pair();
    let l = listener();
    let (victim_side, peer) = UnixStream::pair().unwrap();
    let conn_fd = c.as_raw_fd();
    let listener_fd = l.as_raw_fd();
    c.close().unwrap();
    l.close().unwrap();
    // Put new descriptors at exactly those numbers (F_DUPFD gives the lowest
    // free number at or above the one asked for; nothing else in this
    // process opens descriptors meanwhile).
    let dup_at = |n: libc::c_int| {
        // SAFETY: duplicates an fd we own; the result is a new fd we own.
        let fd = unsafe { libc::fcntl(victim_side.as_raw_fd(), libc::F_DUPFD_CLOEXEC, n) };
        assert!(fd >= 0);
        assert_eq!(fd, n, "fd {n} was not free after close");
        // SAFETY: `fd` was just returned by fcntl and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let victims = [dup_at(conn_fd), dup_at(listener_fd)];

    let mut r = &c;
    assert_closed_result(r.read(&mut [0u8; 4]));
    assert_closed_result(r.write(b"x"));
    assert_closed_result(c.set_deadline(None));
    assert_closed_result(c.set_read_deadline(None));
    assert_closed_result(c.set_write_deadline(None));
    assert_closed_result(c.close_write());
    assert_closed_result(c.set_nodelay(true));
    c.close().unwrap();
    assert_closed_result(l.accept().map(|c| c.remote_addr()));
    assert_closed_result(l.set_deadline(None));
    l.close().unwrap();
    drop(c);
    drop(l);

    // SAFETY: F_GETFD on a number only reads its flags.
    let dead = victims.iter().map(|v| v.as_raw_fd()).find(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0);
    if let Some(fd) = dead {
        // Closed behind our back: do not let OwnedFd close it again.
        std::mem::forget(victims);
        panic!("an operation on a closed Conn/Listener closed fd {fd}, which had been reused");
    }
    // And they still reach the socket they were made from.
    let mut w = std::fs::File::from(victims.into_iter().next().unwrap());
    w.write_all(b"ok").unwrap();
    let mut b = [0u8; 2];
    (&peer).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
}

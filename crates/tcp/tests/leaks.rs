//! No leaks, counted for the whole process:
//!
//! - descriptor accounting: connect/accept/close cycles leave the fd count
//!   where it was, and operations on a closed `Conn` never close a
//!   descriptor that has since reused its number;
//! - no growth over 10 000 connect/accept/close cycles: the process has the
//!   same descriptors and threads afterwards as after a warm-up, and its
//!   resident memory has not grown by more than a few MiB. The cycles vary:
//!   who closes first, explicit close or drop, a deadline that expires, a
//!   close that wakes a parked reader, a reset; and 100 private runtimes
//!   (`Runtime::spawn`) are started, used and dropped or shut down.
//!
//! The counts must be this scenario's alone, so the binary has a single
//! test that runs the scenarios one after the other.
//!
//! Linux only: descriptors, threads and memory are counted in `/proc`.
#![cfg(target_os = "linux")]

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{assert_closed_result, assert_timeout_result, close_soon, listener, loopback, pair, pair_on};
use tcp::{Dialer, ListenConfig, Listener, Runtime};
use testkit::{
    PATIENCE, Worker, bounded, count_fds, count_threads, gettid, linger0, rss, settles, spawn_parked, until_parked,
};

#[test]
fn no_descriptor_thread_or_memory_leaks() {
    no_fd_leak_over_300_cycles();
    operations_after_close_leave_a_reused_fd_alone();
    no_descriptor_thread_or_memory_growth_over_10000_cycles();
}

/// Park this thread once, for real: its wake-up eventfd, made on its first
/// wait and kept for its life, then exists before anything is counted. (A
/// read with a deadline 1 ms away may expire before it reaches the wait, as
/// it does under valgrind.)
fn park_this_thread_once() {
    let (c, s) = pair();
    let me = gettid();
    let writer = thread::spawn(move || {
        until_parked(me);
        (&s).write_all(b"!").unwrap();
        s
    });
    c.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    (&c).read_exact(&mut [0u8; 1]).unwrap();
    drop(writer.join().unwrap());
}

// ------------------------------------------------- descriptor accounting
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

/// One cycle, in one of several shapes: who closes first, explicit close
/// or drop, a timeout on the way, a close that wakes a parked reader.
fn accounting_cycle(l: &Listener, i: usize) {
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

fn no_fd_leak_over_300_cycles() {
    let l = listener();
    // Warm up: the global reactor and this thread's wake-up eventfd are
    // created once and kept. Only the shapes without a helper thread: such
    // a thread's eventfd goes when it exits, which may be after `before`.
    park_this_thread_once();
    for i in 0..3 {
        accounting_cycle(&l, i);
    }
    let before = count_fds();
    let before_list = fd_list();
    for i in 0..300 {
        accounting_cycle(&l, i);
    }
    // Threads spawned by `accounting_cycle` close their eventfd when they
    // exit; give the last one a moment to finish exiting (bounded).
    let after = settles(before, count_fds);
    assert_eq!(after, before, "descriptors open before and after 300 cycles: {before_list:?} then {:?}", fd_list());
}

/// Once a `Conn` is closed its fd number is free for reuse. Every later
/// call on the closed `Conn` must fail with `Closed` without touching that
/// number, so a descriptor that reuses it stays open.
fn operations_after_close_leave_a_reused_fd_alone() {
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

// ------------------------------------------------------- 10 000 cycles

const CYCLES: usize = 10_000;
const RUNTIMES: usize = 100;
const WARM_UP: usize = 500;
/// Allowed growth of resident memory: allocator caches and the like, far
/// below what a per-connection leak over 10 000 connections would cost.
const RSS_SLACK: usize = 8 << 20;

/// One cycle. Mostly the accepted end closes first, so most TIME_WAIT
/// states hold the listener's port rather than an ephemeral one: 10 000 of
/// those would starve binds to port 0 for a minute, here and in tests
/// running alongside.
fn soak_cycle(l: &Listener, addr: SocketAddr, i: usize, helper: &Worker) {
    let (mut c, mut s) = (tcp::connect_addr(addr).unwrap(), l.accept().unwrap());
    let mut b = [0u8; 4];
    match i % 8 {
        0 | 1 => {
            c.write_all(b"ping").unwrap();
            s.read_exact(&mut b).unwrap();
            drop(s);
            assert_eq!(c.read(&mut b).unwrap(), 0);
        }
        2 => {
            s.write_all(b"pong").unwrap();
            c.read_exact(&mut b).unwrap();
            c.close().unwrap();
            assert_eq!(s.read(&mut b).unwrap(), 0);
        }
        3 => {
            // An expired deadline, and (now and then) one that expires while
            // parked: a timer in the wheel.
            let at = if i % 64 == 3 { Instant::now() + Duration::from_micros(200) } else { Instant::now() };
            c.set_read_deadline(Some(at)).unwrap();
            assert_timeout_result(c.read(&mut b));
            c.set_deadline(None).unwrap();
        }
        4 => {
            // Close wakes a reader parked on the helper thread.
            let s = Arc::new(s);
            let s2 = s.clone();
            let rx = helper.run(move || (&*s2).read(&mut [0u8; 1]));
            until_parked(helper.tid);
            s.close().unwrap();
            assert_closed_result(bounded(&rx, "a reader woken by close"));
            assert_eq!(c.read(&mut b).unwrap(), 0);
        }
        5 => {
            // A reset.
            linger0(&s);
            drop(s);
            let e = c.read(&mut b).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e:?}");
        }
        6 => {
            // Into std and back.
            let std = s.into_std().unwrap();
            let s = tcp::Conn::from_std(std).unwrap();
            (&s).write_all(b"back").unwrap();
            c.read_exact(&mut b).unwrap();
        }
        _ => {
            s.set_nodelay(false).unwrap();
            s.set_keepalive(None).unwrap();
            s.close_write().unwrap();
            assert_eq!(c.read(&mut b).unwrap(), 0);
        }
    }
}

/// A private runtime with a listener and a connection on it, dropped (its
/// thread told to stop) or shut down first.
fn runtime_cycle(i: usize) {
    let rt = Runtime::spawn().unwrap();
    let l = ListenConfig::new().runtime(rt.clone()).bind(loopback()).unwrap();
    let mut c = Dialer::new().runtime(rt.clone()).connect_addr(l.local_addr().unwrap()).unwrap();
    let mut s = l.accept().unwrap();
    c.write_all(b"rt").unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b).unwrap();
    rt.timer_at(Instant::now() + Duration::from_secs(3600), || {}); // armed, never fires
    if i.is_multiple_of(2) {
        rt.shutdown().unwrap();
    }
}

fn no_descriptor_thread_or_memory_growth_over_10000_cycles() {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let helper = Worker::new();
    for i in 0..WARM_UP {
        soak_cycle(&l, addr, i, &helper);
    }
    let (threads0, fds0) = (count_threads(), count_fds());
    for i in 0..4 {
        runtime_cycle(i);
    }
    assert_eq!(settles(threads0, count_threads), threads0, "the warm-up runtimes' threads exit");
    assert_eq!(settles(fds0, count_fds), fds0, "the warm-up runtimes' descriptors are closed");
    let rss0 = rss();
    let start = Instant::now();

    for i in 0..CYCLES {
        soak_cycle(&l, addr, i, &helper);
    }
    let cycles_took = start.elapsed();
    for i in 0..RUNTIMES {
        runtime_cycle(i);
    }

    // Dropped runtimes' threads exit (closing their descriptors) a moment
    // after being told to.
    let threads = settles(threads0, count_threads);
    let fds = settles(fds0, count_fds);
    let rss1 = rss();
    eprintln!(
        "{CYCLES} cycles in {cycles_took:?}; fds {fds0} -> {fds}, threads {threads0} -> {threads}, \
         RSS {} -> {} KiB",
        rss0 >> 10,
        rss1 >> 10
    );
    assert_eq!(fds, fds0, "descriptors leaked");
    assert_eq!(threads, threads0, "threads leaked (a runtime's reactor thread did not exit?)");
    assert!(rss1 < rss0 + RSS_SLACK, "resident memory grew by {} KiB", (rss1 - rss0) >> 10);
}

//! No growth over 10 000 connect/accept/close cycles: the process has the
//! same descriptors and threads afterwards as after a warm-up, and its
//! resident memory has not grown by more than a few MiB. The cycles vary:
//! who closes first, explicit close or drop, a deadline that expires,
//! a close that wakes a parked reader, a reset; and 100 private runtimes
//! (`Runtime::spawn`) are started, used and dropped or shut down.
//!
//! In a file of its own, with a single test, so the counts are this
//! test's alone.
//!
//! Linux only: descriptors, threads and memory are counted in `/proc`.
#![cfg(target_os = "linux")]

mod common;
mod harness;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use harness::{Worker, bounded, count_threads, linger0, rss, settles};
use tcp::{Dialer, ListenConfig, Listener, Runtime};

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
fn cycle(l: &Listener, addr: SocketAddr, i: usize, helper: &Worker) {
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

#[test]
fn no_descriptor_thread_or_memory_growth_over_10000_cycles() {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let helper = Worker::new();
    for i in 0..WARM_UP {
        cycle(&l, addr, i, &helper);
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
        cycle(&l, addr, i, &helper);
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

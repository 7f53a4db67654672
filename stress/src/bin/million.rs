//! `make stress-million`: a million green threads parked at once in one
//! process, on the system's default `vm.max_map_count`, three ways: in
//! `green::sleep`, in an `iopoll::sync` wait, and (as many as the
//! descriptor limit allows) in a read on a socketpair. Each phase checks
//! that every green thread ran to completion, and reports RSS per parked
//! green thread once their stacks are compacted, the kernel memory areas
//! the process holds, and how long it took.
//!
//! Each phase runs in a process of its own (this program again, with
//! `--phase NAME`), so one phase's freed heap does not hide the next one's.
//!
//! Knobs: MILLION_N (default 1 000 000) green threads per phase.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use iopoll::sync::{Condvar, Mutex};

const PHASES: [&str; 3] = ["sleep", "condvar", "socketpair"];

fn main() {
    let n: usize = std::env::var("MILLION_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--phase") {
        let pool = green::Pool::new(0).expect("pool");
        pool.spawn(|| ()).join().expect("warm-up");
        match args[2].as_str() {
            "sleep" => sleeping(&pool, n),
            "condvar" => waiting(&pool, n),
            _ => reading(&pool, n),
        }
        return;
    }
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default();
    println!("vm.max_map_count = {}, {} green threads per phase", maps.trim(), n);
    for phase in PHASES {
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(["--phase", phase])
            .status()
            .expect("a phase's process");
        assert!(status.success(), "phase {phase} failed: {status}");
    }
    println!("PASS");
}

fn sleeping(pool: &green::Pool, n: usize) {
    // 1. Sleeping: each sleeps until a common instant far enough ahead for
    //    every one to be parked and compacted before it comes.
    let ran = Arc::new(AtomicUsize::new(0));
    let before = testkit::rss();
    let start = Instant::now();
    let wake_at = start + Duration::from_secs(5) + Duration::from_micros(20 * n as u64);
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let ran = ran.clone();
            pool.try_spawn(move || {
                green::sleep_until(wake_at);
                ran.fetch_add(1, SeqCst);
            })
            .expect("a stack")
        })
        .collect();
    let spawned = start.elapsed();
    report("green::sleep", pool, n, before, start, wake_at);
    for h in handles {
        h.join().expect("a sleeper");
    }
    assert_eq!(ran.load(SeqCst), n, "sleepers that ran to completion");
    println!(
        "  all {n} woke and finished {:.1} s after the first spawn (spawned in {spawned:.1?})",
        start.elapsed().as_secs_f64()
    );
}

fn waiting(pool: &green::Pool, n: usize) {
    // 2. Waiting on a condition variable, all released by one notify_all.
    let gate = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
    let before = testkit::rss();
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let gate = gate.clone();
            pool.try_spawn(move || {
                let (m, cv) = &*gate;
                let mut g = m.lock();
                g.0 += 1;
                while !g.1 {
                    cv.wait(&mut g);
                }
            })
            .expect("a stack")
        })
        .collect();
    loop {
        if gate.0.lock().0 == n {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    report("iopoll::sync::Condvar", pool, n, before, start, Instant::now() + Duration::from_secs(2));
    {
        let (m, cv) = &*gate;
        m.lock().1 = true;
        cv.notify_all();
    }
    for h in handles {
        h.join().expect("a waiter");
    }
    println!("  all {n} released and finished");
}

fn reading(pool: &green::Pool, n: usize) {
    // 3. Reading a socketpair, as many as the descriptor limit allows.
    let fds = testkit::raise_fd_limit(2 * n as u64 + 1_000) as usize;
    let pairs = n.min(fds.saturating_sub(1_000) / 2);
    let before = testkit::rss();
    let start = Instant::now();
    let mut writers = Vec::with_capacity(pairs);
    let handles: Vec<_> = (0..pairs)
        .map(|_| {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
            writers.push(a);
            b.set_nonblocking(true).expect("nonblocking");
            pool.try_spawn(move || {
                let pfd = iopoll::PollFd::new(&iopoll::Runtime::global(), b.as_raw_fd()).expect("track");
                let mut buf = [0u8; 1];
                loop {
                    match b.read(&mut buf) {
                        Ok(1) => return buf[0],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => pfd.wait_readable().expect("wait"),
                        other => panic!("a socketpair read ended with {other:?}"),
                    }
                }
            })
            .expect("a stack")
        })
        .collect();
    report("a socketpair read", pool, pairs, before, start, Instant::now() + Duration::from_secs(3));
    for w in &mut writers {
        std::io::Write::write_all(w, &[7]).expect("write");
    }
    for h in handles {
        assert_eq!(h.join().expect("a reader"), 7);
    }
    println!("  all {pairs} readers got their byte and finished");
}

/// Wait until `until` (every green thread parked and compacted by then),
/// then print RSS per parked green thread and the areas held.
fn report(what: &str, pool: &green::Pool, n: usize, before: usize, start: Instant, until: Instant) {
    while Instant::now() < until {
        let s = pool.stats();
        if s.compacted >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = pool.stats();
    let areas = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count());
    println!(
        "{what}: {n} parked ({} compacted) after {:.1} s: {:.0} bytes RSS per parked green thread, {areas} areas",
        s.compacted,
        start.elapsed().as_secs_f64(),
        testkit::rss().saturating_sub(before) as f64 / n as f64,
    );
}

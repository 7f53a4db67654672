//! 10 000 connections, client and server ends all green threads on one
//! two-worker pool, echo correctly, and cost the process only a few OS
//! threads. In a file of its own so no other test's threads are counted.
//!
//! Both ends in one process take two descriptors per connection. Where the
//! hard descriptor limit is 20 000 and cannot be raised (this project's
//! machines: no CAP_SYS_RESOURCE even as root), 10 000 connections do not
//! fit beside the process's own few; the test then runs as many as fit,
//! and never fewer than 9 900.
//!
//! Linux only: threads are counted in `/proc`.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use green::Pool;
use iopoll::sync::{Condvar, Mutex};

const CONNS: usize = 10_000;
const AT_LEAST: usize = 9_900;
/// Descriptors the process needs besides two per connection.
const OWN_FDS: u64 = 100;

#[test]
fn ten_thousand_green_connections_echo_on_two_workers() {
    let limit = testkit::raise_fd_limit(2 * CONNS as u64 + OWN_FDS);
    let conns = CONNS.min((limit.saturating_sub(OWN_FDS) / 2) as usize);
    assert!(
        conns >= AT_LEAST,
        "room for only {conns} connections under a descriptor limit of {limit}: raise `ulimit -Hn`"
    );
    let threads_before = testkit::count_threads();
    let pool = Pool::new(2).unwrap();
    let listener = tcp::ListenConfig::new().backlog(4096).listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = Arc::new(listener);

    let l = listener.clone();
    let server = pool.spawn(move || {
        let mut served = 0;
        while let Ok(mut conn) = l.accept() {
            served += 1;
            green::spawn(move || {
                let mut buf = [0; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
        served
    });

    // Every client holds its connection open until all have echoed, so all
    // 10 000 are open at once.
    let echoed = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new((Mutex::new(false), Condvar::new()));
    let peak_threads = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..conns)
        .map(|i| {
            let (echoed, all_in, peak) = (echoed.clone(), all_in.clone(), peak_threads.clone());
            pool.spawn(move || {
                let mut conn = tcp::connect_addr(addr).expect("connect");
                let msg = [(i % 251) as u8; 64];
                conn.write_all(&msg).unwrap();
                let mut back = [0; 64];
                conn.read_exact(&mut back).unwrap();
                assert_eq!(back, msg);
                if echoed.fetch_add(1, SeqCst) + 1 == conns {
                    peak.store(testkit::count_threads(), SeqCst);
                    *all_in.0.lock() = true;
                    all_in.1.notify_all();
                }
                let mut done = all_in.0.lock();
                while !*done {
                    all_in.1.wait(&mut done);
                }
            })
        })
        .collect();
    for c in clients {
        testkit::within(testkit::PATIENCE * 6, "a client to finish", move || c.join()).unwrap();
    }
    assert_eq!(echoed.load(SeqCst), conns);
    // Two workers, the global reactor thread, and slack for a resolver or
    // blocking-pool thread: nothing near one thread per connection.
    let peak = peak_threads.load(SeqCst);
    assert!(peak <= threads_before + 5, "{peak} threads with {CONNS} connections open (had {threads_before})");

    listener.close().unwrap();
    assert_eq!(server.join().unwrap(), conns);
    pool.shutdown();
}

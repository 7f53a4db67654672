//! Helpers for the race, fault, hostile-input and leak tests (each test
//! binary uses a different part), copied in spirit from the tcp tests'
//! `common` module: parking detection, a reusable worker thread, bounded
//! waits, resets, SIGPIPE detection, and this process's descriptor, thread
//! and memory counts.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

use std::io;
use std::thread;
use std::time::Instant;

use crate::support::PATIENCE;
pub use testkit::{Worker, bounded, linger0, raise_fd_limit, raises_sigpipe, settles, small_rcvbuf, small_sndbuf};
// Watching threads park and counting descriptors, threads and memory read
// `/proc`.
#[cfg(target_os = "linux")]
pub use testkit::{any_parked, count_fds, count_threads, gettid, rss, spawn_tracked, until_parked};

/// A ClientHello as our client sends it: dial a plain TCP listener that
/// records the first flight, and give up on the handshake.
pub fn capture_client_hello(cfg: &tls::Config) -> Vec<u8> {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let grab = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        // A record header, then its body.
        let mut hello = vec![0u8; 5];
        s.read_exact(&mut hello).unwrap();
        let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        hello.resize(5 + len, 0);
        s.read_exact(&mut hello[5..]).unwrap();
        hello
    });
    let c = tls::client(tcp::connect_addr(addr).unwrap(), cfg).unwrap();
    c.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    let hs = thread::spawn(move || {
        let _ = c.handshake();
    });
    let hello = grab.join().unwrap();
    hs.join().unwrap();
    assert_eq!(hello[0], 0x16, "a handshake record");
    assert_eq!(hello[5], 0x01, "a ClientHello");
    hello
}

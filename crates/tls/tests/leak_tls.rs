//! No growth over 1 000 TLS connect/handshake/close cycles: after a
//! warm-up, the process keeps the same descriptors and threads and its
//! resident memory grows by no more than a few MiB. The cycles vary:
//! resumed and full handshakes (a fresh client `Config`, so a fresh
//! `SSL_CTX`, every tenth time), TLS 1.2 and 1.3, close_write then close,
//! a handshake that fails verification, connections closed before their
//! handshake (each with a fresh `Config`), and a peer that vanishes
//! without close_notify. The listener switches config (`set_config`) every
//! cycle between a static pair and a `certificate_resolver` whose key
//! carries an OCSP staple and whose config has ticket keys of its own.
//!
//! In a file of its own, with a single test, so the counts are this
//! test's alone.
//!
//! Linux only: descriptors, threads and memory are counted in `/proc`.
#![cfg(target_os = "linux")]
// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Instant;

use support::{
    PATIENCE, client_builder, client_config, count_fds, count_threads, pki, rss, server_config, settles, soon,
};
use tls::Version;

const CYCLES: usize = 1000;
const WARM_UP: usize = 100;
/// Allowed growth of resident memory: allocator and OpenSSL caches, far
/// below what a per-connection leak (an `SSL`, its buffers, a
/// certificate) over 1 000 connections, or a leaked `SSL_CTX` per fresh
/// `Config` (400 of them), would cost.
const RSS_SLACK: usize = 4 << 20;

/// The server: each connection handshakes, echoes what comes until the
/// end of the stream, and is closed; failures are only counted. Each
/// connection done (closed) is reported on `done`.
fn server(l: Arc<tls::Listener>, done: mpsc::Sender<()>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut failed = 0;
        loop {
            let c = match l.accept() {
                Ok(c) => c,
                Err(tls::Error::Io(e)) if tls::Closed::is(&e) => return failed,
                Err(e) => panic!("accept: {e}"),
            };
            c.set_deadline(Some(soon())).unwrap();
            if c.handshake().is_ok() {
                let mut buf = [0u8; 64];
                loop {
                    match (&c).read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if (&c).write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            } else {
                failed += 1;
            }
            drop(c);
            done.send(()).unwrap();
        }
    })
}

/// Wait until the server has closed `n` more connections.
fn server_done(done: &mpsc::Receiver<()>, n: usize) {
    for _ in 0..n {
        done.recv_timeout(PATIENCE).expect("the server is stuck on a connection");
    }
}

fn echo(c: &tls::Conn) {
    (&*c).write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    (&*c).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
}

fn cycle(addr: SocketAddr, i: usize, shared: &tls::Config, untrusting: &tls::Config) {
    match i % 10 {
        0 => {
            // A fresh Config: a new SSL_CTX (CA file loaded again), a full
            // handshake, TLS 1.2 every other time.
            let max = if i.is_multiple_of(20) { Version::Tls12 } else { Version::Tls13 };
            let cfg = client_builder().max_version(max).build().unwrap();
            let c = support::dial(addr, &cfg).unwrap();
            echo(&c);
            c.close_write().unwrap();
            let mut rest = Vec::new();
            (&c).read_to_end(&mut rest).unwrap();
        }
        3 => {
            // Fails verification on the client's side.
            assert!(support::dial(addr, untrusting).is_err());
        }
        5 | 6 | 9 => {
            // A fresh Config (so a fresh SSL_CTX), closed before its
            // handshake.
            let cfg = client_builder().build().unwrap();
            let c = tls::client(tcp::connect_addr(addr).unwrap(), &cfg).unwrap();
            c.close().unwrap();
        }
        7 => {
            // Vanishes without close_notify.
            let c = support::dial(addr, shared).unwrap();
            echo(&c);
            c.net_conn().close().unwrap();
        }
        _ => {
            // Resumed, closed with close_notify.
            let c = support::dial(addr, shared).unwrap();
            echo(&c);
        }
    }
}

#[test]
fn no_descriptor_thread_or_memory_growth_over_1000_tls_cycles() {
    let l = Arc::new(tls::Listener::bind("127.0.0.1:0".parse().unwrap(), &server_config()).unwrap());
    let addr = l.local_addr().unwrap();
    let (done_tx, done) = mpsc::channel();
    let server = server(l.clone(), done_tx);
    let shared = client_config();
    let key = tls::CertifiedKey::from_files(pki().path("server.pem"), pki().path("server.key"))
        .unwrap()
        .with_ocsp_staple(b"a staple: opaque to the TLS layer".to_vec());
    let resolved = support::server_builder()
        .certificate_resolver(move |_| Ok(Some(key.clone())))
        .session_ticket_keys(vec![[3; 32], [4; 32]])
        .build()
        .unwrap();
    let fixed = server_config();
    let switch = |i: usize| l.set_config(if i.is_multiple_of(2) { &resolved } else { &fixed }).unwrap();
    let untrusting = client_builder().ca_file(pki().path("ca2.pem")).build().unwrap();
    for i in 0..WARM_UP {
        switch(i);
        cycle(addr, i, &shared, &untrusting);
    }
    // Every cycle makes one connection: once the server has closed them
    // all, nothing is in flight.
    server_done(&done, WARM_UP);
    let (fds0, threads0, rss0) = (count_fds(), count_threads(), rss());
    let start = Instant::now();
    for i in 0..CYCLES {
        switch(i);
        cycle(addr, i, &shared, &untrusting);
    }
    let took = start.elapsed();
    server_done(&done, CYCLES);
    let fds = settles(fds0, count_fds);
    let threads = settles(threads0, count_threads);
    let rss1 = rss();
    eprintln!(
        "{CYCLES} TLS cycles in {took:?}; fds {fds0} -> {fds}, threads {threads0} -> {threads}, RSS {} -> {} KiB",
        rss0 >> 10,
        rss1 >> 10
    );
    l.close().unwrap();
    let failed = server.join().unwrap();
    assert_eq!(failed, 4 * (WARM_UP + CYCLES) / 10, "the server saw the failed and the unstarted handshakes fail");
    assert_eq!(fds, fds0, "descriptors leaked");
    assert_eq!(threads, threads0, "threads leaked");
    assert!(rss1 < rss0 + RSS_SLACK, "resident memory grew by {} KiB", (rss1 - rss0) >> 10);
}

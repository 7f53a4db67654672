//! Races on one TLS connection: `close` against a read and a write that
//! are blocked (or about to block, or just starting); many threads calling
//! `handshake()` (directly, or through a first read or write) at once, on
//! both ends, when it succeeds, when it fails and when the connection is
//! closed under them; and a read deadline flapping between past and future
//! while a stream goes through.
// What only the Linux-only tests (they watch threads park in `/proc`) use.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]
// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    Worker, bounded, client_builder, client_config, linger0, pki, server_config, small_rcvbuf, small_sndbuf, soon,
};
use tls::Closed;
// The close races line up with threads found parked in `/proc`.
#[cfg(target_os = "linux")]
use {
    support::{any_parked, spawn_tracked},
    testkit::race::{self, Intruders, spin, timing},
};

const ITERATIONS: usize = 300;

#[cfg(target_os = "linux")]
/// A server for `n` connections that handshakes each and then holds it,
/// silent and not reading, until the next one arrives (the last one until
/// the returned sender is dropped).
fn holding_server(n: usize) -> (SocketAddr, thread::JoinHandle<()>, mpsc::Sender<()>) {
    let (done, done_rx) = mpsc::channel();
    let l = support::listener(&server_config());
    small_rcvbuf(l.net_listener());
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        let mut held = None;
        for _ in 0..n {
            let c = l.accept().unwrap();
            c.set_deadline(Some(soon())).unwrap();
            // The client may have reset the previous connection before the
            // end of this side's handshake: only its own result counts.
            let _ = c.handshake();
            held = Some(c);
            l.set_deadline(Some(soon())).unwrap();
        }
        // Hold the last one until the test is done with it.
        let _ = done_rx.recv();
        drop(held);
    });
    (addr, h, done)
}

#[cfg(target_os = "linux")]
/// One race between `close` and `op` on an established client connection.
/// Returns whether an intruder took the closed descriptor number.
fn race(
    what: &str,
    i: usize,
    c: tls::Conn,
    op: impl FnOnce(&tls::Conn) -> io::Error + Send + 'static,
    workers: &(Worker, Worker),
) -> bool {
    let t = timing(i, 20000);
    let what = format!("{what}, iteration {i} ({t:?})");
    let fd = c.net_conn().as_raw_fd();
    // Close with a reset: hundreds of TIME_WAIT states on ephemeral ports
    // would starve binds to port 0 for a minute, here and in other tests.
    linger0(c.net_conn());
    let c = Arc::new(c);
    let (op_rx, close_rx) = race::start(t, &c, workers, op, |c: &tls::Conn| c.close().unwrap());
    bounded(&close_rx, &format!("{what}: close"));
    let intruders = Intruders::new();
    let reused = intruders.holds(fd);
    let err = bounded(&op_rx, &format!("{what}: the blocked call"));
    assert!(Closed::is(&err), "{what}: expected Closed, got {err:?}");
    intruders.check(&what);
    reused
}

#[cfg(target_os = "linux")]
#[test]
fn close_races_a_blocked_read() {
    let (addr, server, done) = holding_server(ITERATIONS);
    let cfg = client_config(); // one Config: the dials after the first resume
    let workers = (Worker::new(), Worker::new());
    let mut reused = 0;
    for i in 0..ITERATIONS {
        let c = support::dial(addr, &cfg).unwrap();
        let op = |c: &tls::Conn| {
            let mut buf = [0u8; 64];
            let mut r = c;
            match r.read(&mut buf) {
                Ok(n) => panic!("read {n} bytes ({:?}) from a silent peer", &buf[..n]),
                Err(e) => e,
            }
        };
        reused += race("close vs TLS read", i, c, op, &workers) as usize;
    }
    eprintln!("close vs TLS read: the freed number was reused in {reused} of {ITERATIONS} iterations");
    assert!(reused > 0, "the freed descriptor number was never reused: the test proved nothing");
    drop((workers, done));
    server.join().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn close_races_a_blocked_write() {
    let (addr, server, done) = holding_server(ITERATIONS);
    let cfg = client_config();
    let workers = (Worker::new(), Worker::new());
    let mut reused = 0;
    for i in 0..ITERATIONS {
        let c = support::dial(addr, &cfg).unwrap();
        small_sndbuf(c.net_conn());
        let op = |c: &tls::Conn| {
            // The peer never reads: the writes fill the buffers and block.
            let chunk = vec![0xa5u8; 64 * 1024];
            let mut w = c;
            loop {
                if let Err(e) = w.write(&chunk) {
                    return e;
                }
            }
        };
        reused += race("close vs TLS write", i, c, op, &workers) as usize;
    }
    eprintln!("close vs TLS write: the freed number was reused in {reused} of {ITERATIONS} iterations");
    assert!(reused > 0, "the freed descriptor number was never reused: the test proved nothing");
    drop((workers, done));
    server.join().unwrap();
}

#[cfg(target_os = "linux")]
/// A write that starts just as the connection is closed (both leave a
/// barrier, each spins a little): it either goes out before the close or
/// fails with `Closed`, never with another error (`close` closes the write
/// side too, which a write that passed its own check for `Closed` must not
/// report as a `close_write`).
#[test]
fn close_races_a_starting_write() {
    let (addr, server, done) = holding_server(ITERATIONS);
    let cfg = client_config();
    let workers = (Worker::new(), Worker::new());
    let mut failed = 0;
    for i in 0..ITERATIONS {
        let c = support::dial(addr, &cfg).unwrap();
        linger0(c.net_conn());
        let c = Arc::new(c);
        let barrier = Arc::new(Barrier::new(2));
        let (c2, barrier2) = (c.clone(), barrier.clone());
        let (write_spin, close_spin) = ((i * 37 % 256) as u32, (i * 53 % 256) as u32);
        let wrote = workers.0.run(move || {
            barrier2.wait();
            spin(write_spin);
            (&*c2).write(b"racing the close")
        });
        let c2 = c.clone();
        let closed = workers.1.run(move || {
            barrier.wait();
            spin(close_spin);
            c2.close().unwrap()
        });
        bounded(&closed, &format!("iteration {i}: close"));
        match bounded(&wrote, &format!("iteration {i}: write")) {
            Ok(n) => assert_eq!(n, 16, "iteration {i}: a short write"),
            Err(e) => {
                assert!(Closed::is(&e), "iteration {i}: a write racing close: expected Closed, got {e:?}");
                failed += 1;
            }
        }
    }
    eprintln!("a starting write lost the race to close in {failed} of {ITERATIONS} iterations");
    drop((workers, done));
    server.join().unwrap();
}

/// What every thread on one end of a connection does with it at once:
/// four call `handshake()`, one reads (its first read runs the handshake
/// too) and one writes.
fn crowd(c: &tls::Conn, send: &'static [u8], expect: &'static [u8]) -> Vec<Result<(), String>> {
    let barrier = Barrier::new(6);
    thread::scope(|s| {
        let mut hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    c.handshake().map_err(|e| format!("handshake: {e}"))
                })
            })
            .collect();
        hs.push(s.spawn(|| {
            barrier.wait();
            let mut buf = vec![0u8; expect.len()];
            let mut r = c;
            r.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
            if buf != expect {
                return Err(format!("read {buf:?}, expected {expect:?}"));
            }
            Ok(())
        }));
        hs.push(s.spawn(|| {
            barrier.wait();
            let mut w = c;
            w.write_all(send).map_err(|e| format!("write: {e}"))
        }));
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Six threads at once on each end of a lazy connection, 30 times over:
/// every one succeeds, the bytes cross in both directions, and both ends
/// agree on what was negotiated.
#[test]
fn crowds_on_both_ends_share_one_handshake() {
    const ROUNDS: usize = 30;
    let l = support::listener(&server_config());
    let addr = l.local_addr().unwrap();
    let server = thread::spawn(move || {
        (0..ROUNDS)
            .map(|_| {
                let c = l.accept().unwrap();
                c.set_deadline(Some(soon())).unwrap();
                let r = crowd(&c, b"from the server", b"from the client");
                (r, c.connection_state())
            })
            .collect::<Vec<_>>()
    });
    let cfg = client_config();
    let mut clients = Vec::new();
    for _ in 0..ROUNDS {
        let c = tls::client(tcp::connect_addr(addr).unwrap(), &cfg).unwrap();
        c.set_deadline(Some(soon())).unwrap();
        let r = crowd(&c, b"from the client", b"from the server");
        clients.push((r, c.connection_state(), c));
    }
    let servers = server.join().unwrap();
    for (i, ((cr, cst, _), (sr, sst))) in clients.iter().zip(&servers).enumerate() {
        assert!(cr.iter().all(Result::is_ok), "round {i}, client: {cr:?}");
        assert!(sr.iter().all(Result::is_ok), "round {i}, server: {sr:?}");
        assert!(cst.handshake_complete && sst.handshake_complete);
        assert_eq!(cst.version, sst.version, "round {i}");
        assert_eq!(cst.cipher_suite, sst.cipher_suite, "round {i}");
    }
}

/// A handshake that fails (the client does not trust the server's CA)
/// fails for every one of the threads that wanted it, at once, and stays
/// failed.
#[test]
fn a_failed_handshake_fails_every_caller() {
    let cfg = client_builder().ca_file(pki().path("ca2.pem")).build().unwrap();
    let (addr, server) = support::serve(&server_config(), 20, |_, c| c.handshake().is_err());
    for round in 0..20 {
        let c = tls::client(tcp::connect_addr(addr).unwrap(), &cfg).unwrap();
        c.set_deadline(Some(soon())).unwrap();
        let results = crowd(&c, b"never sent", b"never received");
        for r in &results {
            let e = r.as_ref().expect_err("a caller succeeded although the handshake failed");
            assert!(
                e.contains("certificate verify failed") || e.contains("handshake failed earlier"),
                "round {round}: {e}"
            );
        }
        assert!(matches!(c.handshake(), Err(tls::Error::Tls(_))), "round {round}: it stays failed");
        assert!(!c.is_open());
    }
    assert!(server.join().unwrap().into_iter().all(|failed| failed), "the server saw every handshake fail");
}

#[cfg(target_os = "linux")]
/// Threads waiting for a handshake that the peer never answers (one drives
/// it, parked on the socket; the others wait for it), and the connection is
/// closed under them: all of them return at once, long before the
/// handshake timeout, and a reader or writer among them sees `Closed`.
#[test]
fn close_under_a_crowd_waiting_for_the_handshake() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap(); // never answers
    let cfg = client_builder().handshake_timeout(Duration::from_secs(60)).build().unwrap();
    for round in 0..20 {
        let c = Arc::new(tls::client(tcp::connect_addr(silent.local_addr().unwrap()).unwrap(), &cfg).unwrap());
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let c = c.clone();
            waiters.push(("handshake", spawn_tracked(move || c.handshake().map_err(io::Error::from))));
        }
        let r = c.clone();
        waiters.push(("read", spawn_tracked(move || r.as_ref().read(&mut [0u8; 8]).map(drop))));
        let w = c.clone();
        waiters.push(("write", spawn_tracked(move || w.as_ref().write(b"x").map(drop))));
        let tids: Vec<i32> = waiters.iter().map(|(_, (tid, _))| *tid).collect();
        // Wait until one of them drives the handshake, parked on the socket.
        let deadline = soon();
        while !any_parked(&tids) {
            assert!(Instant::now() < deadline, "nobody ever waited for the server's answer");
            thread::yield_now();
        }
        let closed_at = Instant::now();
        c.close().unwrap();
        for (what, (_, rx)) in waiters {
            let (r, at) = bounded(&rx, &format!("round {round}: {what} after close"));
            let e = r.expect_err("succeeded on a connection closed during its handshake");
            assert!(at - closed_at < Duration::from_secs(5), "round {round}: {what} took {:?}", at - closed_at);
            if what != "handshake" {
                assert!(
                    Closed::is(&e),
                    "round {round}: a {what} waiting for the handshake: expected Closed, got {e:?}"
                );
            }
        }
    }
}

const STREAM: usize = 1 << 20;

fn pattern(seed: u64, off: usize, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let x = (seed ^ (off + i) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *b = (x >> 56) as u8;
    }
}

/// A server sends 1 MiB (in records of changing size) while another
/// thread flaps the client's read deadline between past, future and none,
/// and the client retries every timeout: every byte arrives, in order.
/// Repeated on a fresh connection until a read did time out.
#[test]
fn read_deadline_flapping_loses_nothing() {
    let cfg = client_config();
    let mut timeouts = 0;
    for round in 0..10u64 {
        let (addr, server) = support::serve_one(&server_config(), move |c| {
            let mut buf = vec![0u8; 40_000];
            let mut off = 0;
            let mut k = 0;
            while off < STREAM {
                let n = (1 + (k * 7919) % buf.len()).min(STREAM - off);
                k += 1;
                pattern(round, off, &mut buf[..n]);
                (&c).write_all(&buf[..n]).unwrap();
                off += n;
            }
            c.close_write().unwrap();
        });
        let c = support::dial(addr, &cfg).unwrap();
        let stop = AtomicBool::new(false);
        let flips = AtomicUsize::new(0);
        thread::scope(|s| {
            s.spawn(|| {
                let mut n = 0;
                // Each setting holds for a few tens of microseconds.
                while !stop.load(SeqCst) {
                    let _ = c.set_read_deadline(Some(Instant::now() - Duration::from_millis(1)));
                    hold(20);
                    let _ = c.set_read_deadline(Some(Instant::now() + Duration::from_secs(3600)));
                    hold(20);
                    let _ = c.set_read_deadline(if n % 2 == 0 { None } else { Some(soon()) });
                    hold(20);
                    n += 1;
                }
                flips.store(n, SeqCst);
            });
            let _stop = StopOnDrop(&stop);
            let mut buf = vec![0u8; 64 * 1024];
            let mut want = vec![0u8; 64 * 1024];
            let mut off = 0;
            let mut k = 0;
            loop {
                let len = 1 + (k * 4099) % buf.len();
                k += 1;
                match (&c).read(&mut buf[..len]) {
                    Ok(0) => break,
                    Ok(n) => {
                        pattern(round, off, &mut want[..n]);
                        assert!(buf[..n] == want[..n], "corrupt data in bytes {off}..{}", off + n);
                        off += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        assert!(tls::DeadlineExceeded::is(&e), "{e:?}");
                        timeouts += 1;
                        thread::yield_now(); // let the other thread move it again
                    }
                    Err(e) => panic!("read at offset {off}: {e:?}"),
                }
            }
            assert_eq!(off, STREAM, "bytes lost: the stream ended early");
        });
        server.join().unwrap();
        eprintln!("round {round}: {timeouts} timeouts in total, {} deadline flips", flips.load(SeqCst));
        if timeouts > 0 {
            return;
        }
    }
    panic!("no read ever timed out while the deadline flapped: the retry path never ran");
}

/// Busy-wait for `us` microseconds.
fn hold(us: u64) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

//! Faults under TLS: a peer that resets the connection in the middle of a
//! handshake (either end) or of a transfer, writes to a peer that has gone
//! (never SIGPIPE), and a reactor shut down under a TLS reader, handshake
//! and accept. Each ends in an error, promptly; the listener serves on.
//! (A peer that stops reading, so the write deadline fires, is in
//! `deadlines.rs`.)
// What only the Linux-only tests (they watch threads park in `/proc`) use.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]
// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    PATIENCE, capture_client_hello, client_config, dial, linger0, raises_sigpipe, server_config, small_rcvbuf,
    small_sndbuf, soon, still_serves,
};
// Threads are seen parked in `/proc`.
#[cfg(target_os = "linux")]
use {
    iopoll::ReactorShutdown,
    support::{spawn_tracked, until_parked},
};

fn is_reset(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

/// `Error::Tls` whose transport cause is a reset.
#[track_caller]
fn assert_reset_in_handshake(r: Result<(), tls::Error>, what: &str) {
    match r {
        Err(tls::Error::Tls(t)) => {
            assert_eq!(t.op, "handshake", "{what}");
            let cause = t.cause.as_ref().unwrap_or_else(|| panic!("{what}: no transport cause in {t}"));
            assert!(is_reset(cause), "{what}: expected a reset underneath, got {cause:?}");
        }
        other => panic!("{what}: expected Error::Tls caused by a reset, got {other:?}"),
    }
}

#[cfg(target_os = "linux")]
/// A client that resets the connection while the server's handshake waits
/// for it (half of its ClientHello sent; or all of it, the server's answer
/// unread): the handshake fails with the reset, long before the handshake
/// timeout, and the listener serves the next client.
#[test]
fn client_reset_mid_handshake_fails_that_handshake_only() {
    let hello = capture_client_hello(&client_config());
    let l = support::listener(&server_config());
    let addr = l.local_addr().unwrap();
    for (what, part) in [("half a ClientHello", &hello[..hello.len() / 2]), ("a whole ClientHello", &hello[..])] {
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.write_all(part).unwrap();
        let s = Arc::new(l.accept().unwrap());
        let s2 = s.clone();
        let (tid, rx) = spawn_tracked(move || s2.handshake());
        until_parked(tid); // waiting for the rest of the ClientHello, or the client's Finished
        let reset_at = Instant::now();
        linger0(&raw);
        drop(raw);
        let (r, at) = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("{what}: the handshake hangs after a reset"));
        assert_reset_in_handshake(r, what);
        assert!(at - reset_at < Duration::from_secs(5), "{what}: the reset took {:?} to surface", at - reset_at);
        assert!(!s.is_open());
    }
    still_serves(&l);
}

/// A server that takes our ClientHello and resets the connection: our
/// handshake fails with the reset.
#[test]
fn server_reset_mid_handshake_fails_our_handshake() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let resetter = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        assert!(s.read(&mut [0u8; 4096]).unwrap() > 0, "a ClientHello");
        linger0(&s);
    });
    let c = tls::client(tcp::connect_addr(addr).unwrap(), &client_config()).unwrap();
    c.set_deadline(Some(soon())).unwrap();
    let r = c.handshake();
    resetter.join().unwrap();
    assert_reset_in_handshake(r, "server reset");
}

const STREAM: usize = 1 << 20;

fn pattern(off: usize, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = ((off + i) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[7];
    }
}

#[cfg(target_os = "linux")]
/// The server resets in the middle of a 1 MiB stream (no close_notify,
/// RST instead of FIN): the reader gets a correct prefix and then
/// `ConnectionReset`, not a hang and not a clean end.
#[test]
fn reset_mid_transfer_fails_the_reader() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (addr, server) = support::serve_one(&server_config(), move |c| {
        let mut buf = vec![0u8; 16 * 1024];
        let mut off = 0;
        // Send a quarter, then wait until the client has read it, then reset.
        while off < STREAM / 4 {
            pattern(off, &mut buf);
            (&c).write_all(&buf).unwrap();
            off += buf.len();
        }
        go_rx.recv().unwrap();
        linger0(c.net_conn());
        c.net_conn().close().unwrap(); // the TCP connection, without close_notify
    });
    let c = dial(addr, &client_config()).unwrap();
    let mut got = vec![0u8; STREAM / 4];
    (&c).read_exact(&mut got).unwrap();
    let mut want = vec![0u8; STREAM / 4];
    pattern(0, &mut want);
    assert!(got == want, "corrupt data before the reset");
    let c = Arc::new(c);
    let c2 = c.clone();
    let (tid, rx) = spawn_tracked(move || (&*c2).read(&mut [0u8; 1024]));
    until_parked(tid);
    go_tx.send(()).unwrap();
    let (r, _) = rx.recv_timeout(PATIENCE).expect("the reader hangs after the peer reset");
    let e = r.expect_err("a read after the peer reset");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
    server.join().unwrap();
}

#[cfg(target_os = "linux")]
/// A writer parked on a full buffer when the peer resets: the write fails
/// with ECONNRESET or EPIPE, as does every later one, and no SIGPIPE is
/// raised on the way.
#[test]
fn reset_mid_transfer_fails_a_parked_writer() {
    let cfg = server_config();
    let l = support::listener(&cfg);
    small_rcvbuf(l.net_listener());
    let addr = l.local_addr().unwrap();
    let (reset_tx, reset_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let c = l.accept().unwrap();
        c.set_deadline(Some(soon())).unwrap();
        c.handshake().unwrap();
        reset_rx.recv().unwrap(); // never reads
        linger0(c.net_conn());
        c.net_conn().close().unwrap();
    });
    let c = Arc::new(dial(addr, &client_config()).unwrap());
    small_sndbuf(c.net_conn());
    let c2 = c.clone();
    let (tid, rx) = spawn_tracked(move || {
        raises_sigpipe(|| {
            let chunk = vec![7u8; 64 * 1024];
            loop {
                if let Err(e) = (&*c2).write(&chunk) {
                    let later = (&*c2).write(b"later");
                    return (e, later);
                }
            }
        })
    });
    until_parked(tid);
    reset_tx.send(()).unwrap();
    let (((e, later), sigpipe), _) = rx.recv_timeout(PATIENCE).expect("the writer hangs after the peer reset");
    assert!(!sigpipe, "a write to a peer that reset raised SIGPIPE");
    assert!(is_reset(&e), "expected ECONNRESET or EPIPE, got {e:?}");
    let later = later.expect_err("a write after the write side failed");
    assert!(is_reset(&later), "a later write keeps the kind: {later:?}");
    server.join().unwrap();
}

/// Writing to a TLS peer that has gone fails with EPIPE or ECONNRESET and
/// never raises SIGPIPE: in writes, close_write, close, and a handshake
/// whose ClientHello goes to a peer that reset.
#[test]
fn no_sigpipe_writing_to_a_tls_peer_that_closed() {
    let (addr, server) = support::serve_one(&server_config(), |c| {
        c.handshake().unwrap();
        // Gone without reading what the client sends: a reset follows.
        linger0(c.net_conn());
    });
    let c = dial(addr, &client_config()).unwrap();
    server.join().unwrap();
    let ((errors, close_write, closed), raised) = raises_sigpipe(|| {
        let mut errors = Vec::new();
        for _ in 0..10_000 {
            if let Err(e) = (&c).write(&[0u8; 1024]) {
                errors.push(e);
                if errors.len() == 2 {
                    break;
                }
            }
        }
        let close_write = c.close_write();
        (errors, close_write, c.close())
    });
    assert!(!raised, "a write to a TLS peer that had gone raised SIGPIPE");
    assert_eq!(errors.len(), 2, "writes to a dead peer kept succeeding");
    for e in &errors {
        assert!(is_reset(e), "a write to a dead peer: {e:?}");
    }
    assert!(close_write.is_err(), "close_write after the write side failed");
    closed.expect("close is best effort and succeeds");

    // A handshake against a peer that has already reset.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = tcp::connect_addr(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    linger0(&s);
    drop(s);
    let c = tls::client(tcp, &client_config()).unwrap();
    c.set_deadline(Some(soon())).unwrap();
    let (r, raised) = raises_sigpipe(|| c.handshake());
    assert!(!raised, "a handshake with a peer that had gone raised SIGPIPE");
    assert!(r.is_err(), "a handshake with a peer that had gone");
}

#[cfg(target_os = "linux")]
#[track_caller]
fn assert_shutdown(e: &io::Error, what: &str) {
    assert!(ReactorShutdown::is(e), "{what}: expected ReactorShutdown, got {e:?}");
}

#[cfg(target_os = "linux")]
/// `Runtime::shutdown` under TLS: a reader parked on an established
/// connection, a server handshake waiting for a silent client, and an
/// accept, all on a private runtime, wake with `ReactorShutdown`. Later
/// writes fail the same way, and `close` still returns promptly.
#[test]
fn reactor_shutdown_wakes_tls_waiters() {
    let rt = tcp::Runtime::spawn().unwrap();
    let tcp_l = tcp::ListenConfig::new().runtime(rt.clone()).bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = Arc::new(tls::Listener::from_tcp(tcp_l, &server_config()).unwrap());
    let addr = l.local_addr().unwrap();
    let dialer = tls::Dialer::new(tcp::Dialer::new().runtime(rt.clone()), client_config());

    let hs = thread::spawn({
        let l = l.clone();
        move || {
            let s = l.accept().unwrap();
            s.handshake().unwrap();
            s
        }
    });
    let c = Arc::new(dialer.connect_addr(addr).unwrap());
    let _server_end = hs.join().unwrap();
    let _silent = TcpStream::connect(addr).unwrap(); // connects, never says hello
    let lazy = Arc::new(l.accept().unwrap());

    let c2 = c.clone();
    let (read_tid, read_rx) = spawn_tracked(move || (&*c2).read(&mut [0u8; 16]));
    let lazy2 = lazy.clone();
    let (hs_tid, hs_rx) = spawn_tracked(move || lazy2.handshake());
    let l2 = l.clone();
    let (accept_tid, accept_rx) = spawn_tracked(move || l2.accept().map(drop));
    for tid in [read_tid, hs_tid, accept_tid] {
        until_parked(tid);
    }

    rt.shutdown().unwrap();

    let (r, _) = read_rx.recv_timeout(PATIENCE).expect("the TLS reader still parked after shutdown");
    assert_shutdown(&r.expect_err("a read on a shut-down reactor"), "read");
    let (r, _) = hs_rx.recv_timeout(PATIENCE).expect("the handshake still parked after shutdown");
    match r {
        Err(tls::Error::Tls(t)) => assert_shutdown(t.cause.as_ref().expect("a transport cause"), "handshake"),
        other => panic!("handshake: expected Error::Tls caused by ReactorShutdown, got {other:?}"),
    }
    let (r, _) = accept_rx.recv_timeout(PATIENCE).expect("the accept still parked after shutdown");
    match r {
        Err(tls::Error::Io(e)) => assert_shutdown(&e, "accept"),
        other => panic!("accept: expected Error::Io(ReactorShutdown), got {other:?}"),
    }
    assert_shutdown(&(&*c).write(b"x").unwrap_err(), "a later write");
    let start = Instant::now();
    c.close().unwrap();
    lazy.close().unwrap();
    l.close().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "close after shutdown took {:?}", start.elapsed());
}
